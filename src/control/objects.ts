/**
 * Kubernetes-shaped cluster objects in etcd: Namespace, Pod, Service (core/v1), NetworkPolicy
 * (networking.k8s.io/v1) and EndpointSlice (discovery.k8s.io/v1), with the shapes of the
 * `kubernetes-types` package, stored as JSON under the control plane's prefix:
 *
 *   PREFIX/objects/namespace/NAME
 *   PREFIX/objects/pod/NAMESPACE/NAME          (service, networkpolicy, endpointslice alike)
 *
 * As the API server does: etcd's mod_revision is `metadata.resourceVersion`; an update that
 * carries a resourceVersion must match the stored one (optimistic concurrency, ERR_OBJECT_CONFLICT);
 * `metadata.uid` and `creationTimestamp` are set at creation and kept; a Pod's `status` belongs
 * to the node that runs it (publishPodIp) and is kept when a Pod is applied again without one,
 * as is its `spec.nodeName` (which cannot change once set).
 * Validation names the field path ("spec.containers[0].ports[0].containerPort"), ERR_OBJECT_INVALID.
 * Namespaced objects need their Namespace (except `default`); deleting a Namespace deletes what is
 * in it, in one transaction.
 *
 * The store API (ObjectStore) is what other parts use: get/list/watch by kind, apply, delete, and
 * publishPodIp(namespace, name, ip, node) for the CNI plugin.
 */

import { randomUUID } from 'node:crypto';
import type { Etcd3 } from 'etcd3';
import type { EndpointSlice } from 'kubernetes-types/discovery/v1.js';
import type { Namespace, Pod, Service } from 'kubernetes-types/core/v1.js';
import type { NetworkPolicy } from 'kubernetes-types/networking/v1.js';
import type { Logger } from 'pino';
import { z } from 'zod';
import { ConfigError, FlatnetError } from '../errors.js';
import { schemaError } from '../daemon/validate.js';
import { Cidr } from '../fib/cidr.js';
import { rawOf } from './etcd.js';
import type { RawRecord } from './records.js';
import { PrefixWatcher } from './watch.js';

export type ClusterObject = Namespace | Pod | Service | NetworkPolicy | EndpointSlice;

export const KINDS = ['Namespace', 'Pod', 'Service', 'NetworkPolicy', 'EndpointSlice'] as const;
export type Kind = (typeof KINDS)[number];

const API_VERSION: Readonly<Record<Kind, string>> = {
  Namespace: 'v1', Pod: 'v1', Service: 'v1', NetworkPolicy: 'networking.k8s.io/v1', EndpointSlice: 'discovery.k8s.io/v1',
};
export const NAMESPACED: Readonly<Record<Kind, boolean>> = { Namespace: false, Pod: true, Service: true, NetworkPolicy: true, EndpointSlice: true };
/** Namespaces that exist without an object. */
export const BUILTIN_NAMESPACES: readonly string[] = ['default'];

/** KIND as users type it (kubectl's names and short names) to the Kind. */
const KIND_ALIASES: Readonly<Record<string, Kind>> = {
  namespace: 'Namespace', namespaces: 'Namespace', ns: 'Namespace',
  pod: 'Pod', pods: 'Pod', po: 'Pod',
  service: 'Service', services: 'Service', svc: 'Service',
  networkpolicy: 'NetworkPolicy', networkpolicies: 'NetworkPolicy', netpol: 'NetworkPolicy',
  endpointslice: 'EndpointSlice', endpointslices: 'EndpointSlice',
};

export function kindOf(text: string): Kind {
  const k = KIND_ALIASES[text.toLowerCase()] ?? KIND_ALIASES[text.toLowerCase().split('.')[0]!];
  if (k === undefined) throw new FlatnetError('ERR_OBJECT_KIND', `unknown kind ${JSON.stringify(text)}; one of ${KINDS.join(', ')} (or pods, svc, netpol, ns, ...)`);
  return k;
}

// ---------------------------------------------------------------------------------------
// Shapes (zod): the fields flatnet reads are checked strictly; others are kept as given.

const dns1123Label = z.string().max(63).regex(/^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/, "a DNS-1123 label: lowercase letters, digits and '-', starting and ending with a letter or digit");
const dns1123Subdomain = z.string().max(253).regex(/^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/, "a DNS-1123 subdomain: lowercase letters, digits, '-' and '.'");
const labelKey = z.string().regex(/^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*\/)?[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$/, 'a label key: [prefix/]name, name at most 63 characters of letters, digits, "-", "_", "."');
const labelValue = z.string().regex(/^(([A-Za-z0-9][-A-Za-z0-9_.]{0,61})?[A-Za-z0-9])?$/, 'a label value: at most 63 characters of letters, digits, "-", "_", ".", starting and ending with a letter or digit');
const labels = z.record(labelKey, labelValue);
const portName = z.string().max(15).regex(/^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/, 'an IANA service name: at most 15 lowercase letters, digits and "-"').refine((s) => /[a-z]/.test(s), 'a port name needs at least one letter');
const portNumber = z.number().int().min(1).max(65535);
const protocol = z.enum(['TCP', 'UDP', 'SCTP']);
const intOrName = z.union([portNumber, portName]);
const ipv4 = z.ipv4();

const metadata = (nameRule: z.ZodString) => z.looseObject({
  name: nameRule,
  namespace: dns1123Label.optional(),
  labels: labels.optional(),
  annotations: z.record(z.string(), z.string()).optional(),
  resourceVersion: z.string().regex(/^\d+$/, 'a resourceVersion as returned by get').optional(),
  uid: z.string().optional(),
  creationTimestamp: z.string().optional(),
});

const requirement = z.object({ key: labelKey, operator: z.enum(['In', 'NotIn', 'Exists', 'DoesNotExist']), values: z.array(labelValue).optional() }).strict()
  .refine((r) => (r.operator === 'In' || r.operator === 'NotIn') ? (r.values?.length ?? 0) > 0 : (r.values?.length ?? 0) === 0, 'In and NotIn need values; Exists and DoesNotExist take none');
const labelSelector = z.object({ matchLabels: labels.optional(), matchExpressions: z.array(requirement).optional() }).strict();

const cidrString = z.string().refine((s) => { try { Cidr.parse(s); return true; } catch { return false; } }, 'an aligned IPv4 CIDR block such as 10.244.0.0/16');
/** An `except` must lie inside its `cidr` (the API server's rule). */
const within = (outer: string, inner: string): boolean => {
  try {
    const o = Cidr.parse(outer), i = Cidr.parse(inner);
    return i.len > o.len && o.contains(i.network);
  } catch {
    return true; // the CIDR checks above name the field
  }
};
const ipBlock = z.object({ cidr: cidrString, except: z.array(cidrString).optional() }).strict()
  .superRefine((b, ctx) => {
    (b.except ?? []).forEach((e, i) => {
      if (!within(b.cidr, e)) ctx.addIssue({ code: 'custom', path: ['except', i], message: `${e} is not inside ${b.cidr} (an except must be a part of its cidr)` });
    });
  });
const peer = z.object({
  podSelector: labelSelector.optional(),
  namespaceSelector: labelSelector.optional(),
  ipBlock: ipBlock.optional(),
}).strict().refine((p) => p.ipBlock === undefined || (p.podSelector === undefined && p.namespaceSelector === undefined), 'ipBlock cannot be combined with podSelector or namespaceSelector');
const policyPort = z.object({ protocol: protocol.optional(), port: intOrName.optional(), endPort: portNumber.optional() }).strict()
  .refine((p) => p.endPort === undefined || typeof p.port === 'number' && p.endPort >= p.port, 'endPort needs a numeric port not above it');

const SCHEMAS: Readonly<Record<Kind, z.ZodType>> = {
  Namespace: z.object({ apiVersion: z.literal('v1'), kind: z.literal('Namespace'), metadata: metadata(dns1123Label), spec: z.looseObject({}).optional(), status: z.looseObject({}).optional() }).strict(),
  Pod: z.object({
    apiVersion: z.literal('v1'), kind: z.literal('Pod'), metadata: metadata(dns1123Subdomain),
    spec: z.looseObject({
      nodeName: dns1123Subdomain.optional(),
      containers: z.array(z.looseObject({
        name: dns1123Label,
        image: z.string().optional(),
        ports: z.array(z.looseObject({ name: portName.optional(), containerPort: portNumber, protocol: protocol.optional() })).optional(),
      })).min(1),
    }),
    status: z.looseObject({ podIP: ipv4.optional(), podIPs: z.array(z.object({ ip: ipv4 }).strict()).optional(), phase: z.string().optional() }).optional(),
  }).strict(),
  Service: z.object({
    apiVersion: z.literal('v1'), kind: z.literal('Service'), metadata: metadata(dns1123Label),
    spec: z.looseObject({
      type: z.enum(['ClusterIP']).optional(),
      clusterIP: z.union([ipv4, z.literal('None')]).optional(),
      selector: labels.optional(),
      ports: z.array(z.looseObject({ name: portName.optional(), port: portNumber, targetPort: intOrName.optional(), protocol: protocol.optional() })).min(1)
        .superRefine((ports, ctx) => {
          // As the API server: names unique, and each needed when there is more than one port;
          // one port and protocol once.
          const names = new Set<string>(), keys = new Set<string>();
          ports.forEach((p, i) => {
            if (ports.length > 1 && p.name === undefined) ctx.addIssue({ code: 'custom', path: [i, 'name'], message: 'required when a Service has more than one port' });
            if (p.name !== undefined && names.has(p.name)) ctx.addIssue({ code: 'custom', path: [i, 'name'], message: `duplicate port name ${p.name}` });
            if (p.name !== undefined) names.add(p.name);
            const k = `${p.port}/${p.protocol ?? 'TCP'}`;
            if (keys.has(k)) ctx.addIssue({ code: 'custom', path: [i, 'port'], message: `duplicate port ${k}` });
            keys.add(k);
          });
        }),
    }),
    status: z.looseObject({}).optional(),
  }).strict(),
  NetworkPolicy: z.object({
    apiVersion: z.literal('networking.k8s.io/v1'), kind: z.literal('NetworkPolicy'), metadata: metadata(dns1123Subdomain),
    spec: z.object({
      podSelector: labelSelector,
      policyTypes: z.array(z.enum(['Ingress', 'Egress'])).optional(),
      ingress: z.array(z.object({ from: z.array(peer).optional(), ports: z.array(policyPort).optional() }).strict()).optional(),
      egress: z.array(z.object({ to: z.array(peer).optional(), ports: z.array(policyPort).optional() }).strict()).optional(),
    }).strict(),
  }).strict(),
  EndpointSlice: z.object({
    apiVersion: z.literal('discovery.k8s.io/v1'), kind: z.literal('EndpointSlice'), metadata: metadata(dns1123Subdomain),
    addressType: z.literal('IPv4'),
    endpoints: z.array(z.looseObject({
      addresses: z.array(ipv4).min(1).max(100),
      conditions: z.looseObject({ ready: z.boolean().optional(), serving: z.boolean().optional(), terminating: z.boolean().optional() }).optional(),
      nodeName: z.string().optional(),
      targetRef: z.looseObject({ kind: z.string().optional(), name: z.string().optional(), namespace: z.string().optional() }).optional(),
    })),
    ports: z.array(z.looseObject({ name: z.string().max(15).optional(), port: portNumber.optional(), protocol: protocol.optional() })).optional(),
  }).strict(),
};

/** An object's identity. */
export interface ObjectRef { readonly kind: Kind; readonly namespace: string | null; readonly name: string }

export function describeRef(r: ObjectRef): string {
  return `${r.kind} ${r.namespace === null ? '' : `${r.namespace}/`}${r.name}`;
}

/**
 * validateObject checks one document and returns it with its identity (namespace defaulted to
 * "default" for namespaced kinds). ERR_OBJECT_INVALID names the field path.
 */
export function validateObject(doc: unknown): { ref: ObjectRef; obj: ClusterObject } {
  if (typeof doc !== 'object' || doc === null || Array.isArray(doc)) throw new ConfigError('ERR_OBJECT_INVALID', '', 'an object must be a mapping with apiVersion, kind and metadata');
  const d = doc as Record<string, unknown>;
  if (typeof d['kind'] !== 'string') throw new ConfigError('ERR_OBJECT_INVALID', 'kind', 'required: one of ' + KINDS.join(', '));
  const kind = KINDS.find((k) => k === d['kind']);
  if (kind === undefined) throw new ConfigError('ERR_OBJECT_INVALID', 'kind', `${JSON.stringify(d['kind'])} is not supported; one of ${KINDS.join(', ')}`);
  if (d['apiVersion'] !== API_VERSION[kind]) throw new ConfigError('ERR_OBJECT_INVALID', 'apiVersion', `${kind} is ${API_VERSION[kind]}, not ${JSON.stringify(d['apiVersion'])}`);
  const r = SCHEMAS[kind].safeParse(doc);
  if (!r.success) {
    const e = schemaError('ERR_OBJECT_INVALID', r.error);
    const name = typeof (d['metadata'] as { name?: unknown } | undefined)?.name === 'string' ? ` ${(d['metadata'] as { name: string }).name}` : '';
    throw new ConfigError('ERR_OBJECT_INVALID', e.field, `${kind}${name}: ${e.message.slice(e.field === '' ? 0 : e.field.length + 2)}`);
  }
  const obj = r.data as ClusterObject & { metadata: { name: string; namespace?: string } };
  if (!NAMESPACED[kind] && obj.metadata.namespace !== undefined) throw new ConfigError('ERR_OBJECT_INVALID', 'metadata.namespace', `a ${kind} is not namespaced`);
  const namespace = NAMESPACED[kind] ? obj.metadata.namespace ?? 'default' : null;
  if (namespace !== null) obj.metadata.namespace = namespace;
  return { ref: { kind, namespace, name: obj.metadata.name }, obj };
}

// ---------------------------------------------------------------------------------------
// Keys

export const objectsPrefix = (prefix: string): string => `${prefix}/objects/`;
export const kindPrefix = (prefix: string, kind: Kind, namespace?: string | null): string =>
  `${objectsPrefix(prefix)}${kind.toLowerCase()}/${namespace === undefined || namespace === null ? '' : `${namespace}/`}`;
export const objectKey = (prefix: string, r: ObjectRef): string => `${kindPrefix(prefix, r.kind, r.namespace)}${r.name}`;

export type ApplyOutcome = 'created' | 'configured' | 'unchanged';
export interface ApplyResult extends ObjectRef { readonly outcome: ApplyOutcome; readonly resourceVersion: string }

/** A stored object with its resourceVersion (etcd's mod_revision) filled in. */
function withVersion(kv: RawRecord): ClusterObject {
  const o = JSON.parse(kv.value) as ClusterObject;
  o.metadata = { ...o.metadata, resourceVersion: String(kv.modRevision) };
  return o;
}

/** The stored form: no resourceVersion (etcd has it), keys in a stable order for comparisons. */
function stored(o: ClusterObject): string {
  const { resourceVersion: _rv, ...meta } = o.metadata ?? {};
  return JSON.stringify({ ...o, metadata: meta });
}

export class ObjectStore {
  constructor(private readonly client: Etcd3, readonly prefix: string) {}

  private async read(key: string): Promise<RawRecord | null> {
    const r = await this.client.get(key).exec();
    return r.kvs[0] === undefined ? null : rawOf(r.kvs[0]);
  }

  private async namespaceExists(ns: string): Promise<boolean> {
    return BUILTIN_NAMESPACES.includes(ns) || (await this.read(objectKey(this.prefix, { kind: 'Namespace', namespace: null, name: ns }))) !== null;
  }

  /** apply creates or updates one object (see the module comment). */
  async apply(doc: unknown): Promise<ApplyResult> {
    const { ref, obj } = validateObject(doc);
    if (ref.namespace !== null && !(await this.namespaceExists(ref.namespace))) {
      throw new FlatnetError('ERR_OBJECT_NAMESPACE_NOT_FOUND', `namespace ${ref.namespace} not found (apply the Namespace first, or in the same file before the ${ref.kind})`);
    }
    const key = objectKey(this.prefix, ref);
    for (let attempt = 0; attempt < 5; attempt++) {
      const cur = await this.read(key);
      const given = obj.metadata?.resourceVersion;
      if (given !== undefined && (cur === null || String(cur.modRevision) !== given)) {
        throw new FlatnetError('ERR_OBJECT_CONFLICT', `${describeRef(ref)}: the object has been modified (resourceVersion ${given}, stored ${cur === null ? 'none' : cur.modRevision}); get it again and retry`);
      }
      if (cur === null) {
        const o = { ...obj, metadata: { ...obj.metadata, uid: randomUUID(), creationTimestamp: new Date().toISOString() } } as ClusterObject;
        const t = await this.client.if(key, 'Create', '==', 0).then(this.client.put(key).value(stored(o))).commit();
        if (t.succeeded) return { ...ref, outcome: 'created', resourceVersion: String(t.header.revision) };
        continue;
      }
      const old = JSON.parse(cur.value) as ClusterObject & { status?: unknown };
      const o = { ...obj, metadata: { ...obj.metadata, uid: old.metadata?.uid, creationTimestamp: old.metadata?.creationTimestamp } } as ClusterObject & { status?: unknown };
      if (ref.kind === 'Pod') {
        // The node's part: status, and the binding to a node (immutable once set, as in Kubernetes).
        if (o.status === undefined && old.status !== undefined) o.status = old.status;
        const was = (old as Pod).spec?.nodeName, now = (o as Pod).spec?.nodeName;
        if (was !== undefined && now !== undefined && now !== was) throw new ConfigError('ERR_OBJECT_INVALID', 'spec.nodeName', `${describeRef(ref)} is bound to node ${was}; the binding cannot change`);
        if (was !== undefined && now === undefined) (o as Pod).spec = { ...(o as Pod).spec!, nodeName: was };
      }
      const value = stored(o);
      if (value === stored(old)) return { ...ref, outcome: 'unchanged', resourceVersion: String(cur.modRevision) };
      const t = await this.client.if(key, 'Mod', '==', cur.modRevision).then(this.client.put(key).value(value)).commit();
      if (t.succeeded) return { ...ref, outcome: 'configured', resourceVersion: String(t.header.revision) };
      if (given !== undefined) throw new FlatnetError('ERR_OBJECT_CONFLICT', `${describeRef(ref)}: the object was modified meanwhile; get it again and retry`);
    }
    throw new FlatnetError('ERR_OBJECT_CONFLICT', `${describeRef(ref)}: modified concurrently five times in a row`);
  }

  async get(kind: Kind, namespace: string | null, name: string): Promise<ClusterObject> {
    const ref = { kind, namespace: NAMESPACED[kind] ? namespace ?? 'default' : null, name };
    const kv = await this.read(objectKey(this.prefix, ref));
    if (kv === null) throw new FlatnetError('ERR_NOT_FOUND', `${describeRef(ref)} not found`);
    return withVersion(kv);
  }

  /** list: every object of `kind` (in `namespace`, or all namespaces when null), sorted by namespace and name. */
  async list(kind: Kind, namespace: string | null = null): Promise<{ items: ClusterObject[]; resourceVersion: string }> {
    const r = await this.client.getAll().prefix(kindPrefix(this.prefix, kind, NAMESPACED[kind] ? namespace : null)).exec();
    return { items: r.kvs.map((kv) => withVersion(rawOf(kv))), resourceVersion: r.header.revision };
  }

  /** delete removes an object; a Namespace takes everything in it along (one transaction). */
  async delete(kind: Kind, namespace: string | null, name: string): Promise<{ deleted: string[] }> {
    const ref = { kind, namespace: NAMESPACED[kind] ? namespace ?? 'default' : null, name };
    const key = objectKey(this.prefix, ref);
    if ((await this.read(key)) === null) throw new FlatnetError('ERR_NOT_FOUND', `${describeRef(ref)} not found`);
    const deleted = [describeRef(ref)];
    const ops = [this.client.delete().key(key)];
    if (kind === 'Namespace') {
      for (const k of KINDS.filter((x) => NAMESPACED[x])) {
        const p = kindPrefix(this.prefix, k, name);
        const inside = await this.client.getAll().prefix(p).keys();
        for (const kk of inside) deleted.push(`${k} ${name}/${kk.slice(p.length)}`);
        ops.push(this.client.delete().prefix(p));
      }
    }
    const t = await this.client.if(key, 'Create', '>', 0).then(...ops).commit();
    if (!t.succeeded) throw new FlatnetError('ERR_NOT_FOUND', `${describeRef(ref)} not found`);
    return { deleted };
  }

  /**
   * publishPodIp records where a pod runs and its IP (status.podIP, status.podIPs, phase Running,
   * spec.nodeName), so that its labels and its IP meet in one object. A Pod that was never
   * applied is created with what is known (one container named after the pod, no labels);
   * applying it later keeps this status. ERR_OBJECT_CONFLICT when the Pod is bound to another node.
   */
  async publishPodIp(namespace: string, name: string, ip: string, node: string): Promise<ApplyResult> {
    if (!ipv4.safeParse(ip).success) throw new ConfigError('ERR_OBJECT_INVALID', 'status.podIP', `${ip} is not an IPv4 address`);
    const ref: ObjectRef = { kind: 'Pod', namespace, name };
    const key = objectKey(this.prefix, ref);
    for (let attempt = 0; attempt < 5; attempt++) {
      const cur = await this.read(key);
      if (cur === null) {
        const pod: Pod = { apiVersion: 'v1', kind: 'Pod', metadata: { name, namespace, annotations: { 'flatnet.io/created-by': 'publishPodIp' } }, spec: { nodeName: node, containers: [{ name: 'main' }] }, status: { phase: 'Running', podIP: ip, podIPs: [{ ip }] } };
        validateObject(pod);
        if (!(await this.namespaceExists(namespace))) throw new FlatnetError('ERR_OBJECT_NAMESPACE_NOT_FOUND', `namespace ${namespace} not found`);
        const o = { ...pod, metadata: { ...pod.metadata, uid: randomUUID(), creationTimestamp: new Date().toISOString() } };
        const t = await this.client.if(key, 'Create', '==', 0).then(this.client.put(key).value(stored(o))).commit();
        if (t.succeeded) return { ...ref, outcome: 'created', resourceVersion: String(t.header.revision) };
        continue;
      }
      const pod = JSON.parse(cur.value) as Pod;
      if (pod.spec?.nodeName !== undefined && pod.spec.nodeName !== node) {
        throw new FlatnetError('ERR_OBJECT_CONFLICT', `Pod ${namespace}/${name} is bound to node ${pod.spec.nodeName}, not ${node}`);
      }
      const next: Pod = { ...pod, spec: { ...pod.spec!, nodeName: node }, status: { ...pod.status, phase: 'Running', podIP: ip, podIPs: [{ ip }] } };
      if (stored(next) === stored(pod)) return { ...ref, outcome: 'unchanged', resourceVersion: String(cur.modRevision) };
      const t = await this.client.if(key, 'Mod', '==', cur.modRevision).then(this.client.put(key).value(stored(next))).commit();
      if (t.succeeded) return { ...ref, outcome: 'configured', resourceVersion: String(t.header.revision) };
    }
    throw new FlatnetError('ERR_OBJECT_CONFLICT', `Pod ${namespace}/${name}: modified concurrently five times in a row`);
  }

  /**
   * watch keeps the objects of `kind` (all namespaces) in memory and calls `onChange` with all
   * of them after each settled change (list, then watch from the next revision; see watch.ts).
   */
  watch(kind: Kind, onChange: (objects: readonly ClusterObject[], revision: number) => void, log?: Logger): PrefixWatcher {
    const w = new PrefixWatcher(this.client, kindPrefix(this.prefix, kind), (kvs, rev) => {
      const out: ClusterObject[] = [];
      for (const kv of kvs.values()) {
        try { out.push(withVersion(kv)); } catch { log?.warn({ key: kv.key }, 'ignoring a stored object that is not JSON'); }
      }
      onChange(out, rev);
    }, { log });
    w.start();
    return w;
  }
}
