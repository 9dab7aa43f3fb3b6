/**
 * The Service catalog: core/v1 Services and discovery.k8s.io/v1 EndpointSlices (or, for a
 * Service with a selector and no slices, the Pods it selects, as the endpoints controller would
 * make them) compiled into frontends, one per ClusterIP:port/protocol, each with the backends
 * kube-proxy would program:
 * - ready endpoints (conditions.ready unset or true);
 * - when none is ready, the serving ones that are terminating (kube-proxy's fallback);
 * - internalTrafficPolicy Local: only endpoints on this node (none: the packet is dropped);
 * - no endpoint at all: the client is rejected (ICMP port unreachable, kube-proxy's REJECT).
 * A named targetPort is resolved per endpoint pod from its container ports (the slice carries
 * the resolved number already).
 *
 * Objects that cannot be used (a ClusterIP that is not IPv4, "None" for a headless Service, a
 * port without a number) are left out with a named problem, never thrown.
 */

import { parseIpv4 } from '../wire/addr.js';
import { selectorMatches } from '../policy/objects.js';
import type { Pod, Protocol } from '../policy/objects.js';
import { IP_PROTO } from '../policy/engine.js';
import { DEFAULT_MAGLEV_SIZE, maglevTable } from './maglev.js';

export interface ServicePort {
  readonly name?: string;
  readonly protocol?: Protocol;
  readonly port: number;
  readonly targetPort?: number | string;
}

export interface Service {
  readonly metadata: { readonly name: string; readonly namespace?: string };
  readonly spec: {
    readonly clusterIP?: string;
    readonly selector?: Readonly<Record<string, string>>;
    readonly ports?: readonly ServicePort[];
    readonly sessionAffinity?: 'None' | 'ClientIP';
    readonly sessionAffinityConfig?: { readonly clientIP?: { readonly timeoutSeconds?: number } };
    readonly internalTrafficPolicy?: 'Cluster' | 'Local';
  };
}

export interface EndpointSlice {
  readonly metadata: { readonly name: string; readonly namespace?: string; readonly labels?: Readonly<Record<string, string>> };
  readonly addressType?: string;
  readonly endpoints?: readonly {
    readonly addresses: readonly string[];
    readonly conditions?: { readonly ready?: boolean; readonly serving?: boolean; readonly terminating?: boolean };
    readonly nodeName?: string;
  }[];
  readonly ports?: readonly { readonly name?: string; readonly port?: number; readonly protocol?: Protocol }[];
}

export const SERVICE_NAME_LABEL = 'kubernetes.io/service-name';
export const DEFAULT_AFFINITY_TIMEOUT_S = 10_800;

export type LoadBalancing = 'random' | 'maglev';

export interface Backend {
  readonly ip: number;
  readonly port: number;
  readonly node: string | null;
  /** Connections sent to it (the data path counts). */
  hits: number;
}

export interface Frontend {
  /** namespace/name:port-name (or namespace/name:port). */
  readonly name: string;
  readonly ip: number;
  readonly proto: number;
  readonly port: number;
  /** The backends new connections may go to (after the ready/terminating and Local rules). */
  readonly backends: readonly Backend[];
  /** Why there are none: 'no-endpoints' (reject) or 'no-local-endpoints' (drop). */
  readonly empty: 'no-endpoints' | 'no-local-endpoints' | null;
  /** ClientIP affinity timeout in ms, or 0 without affinity. */
  readonly affinityMs: number;
  /** Maglev table over `backends` (when the catalog uses maglev). */
  readonly maglev: Int32Array | null;
  /** Connections refused or dropped for want of an endpoint. */
  rejected: number;
}

export interface CatalogProblem { readonly object: string; readonly field: string; readonly reason: string }

export interface CatalogInputs {
  readonly services: readonly Service[];
  readonly slices: readonly EndpointSlice[];
  readonly pods: readonly Pod[];
  /** This node's name (internalTrafficPolicy Local). */
  readonly node: string;
  readonly loadBalancing?: LoadBalancing;
  readonly maglevSize?: number;
}

interface Endpoint { ip: number; port: number; node: string | null; ready: boolean; serving: boolean; terminating: boolean }

const nsOf = (m: { namespace?: string }): string => m.namespace ?? 'default';
const frontendKey = (ip: number, proto: number, port: number): string => `${ip >>> 0}/${proto}/${port}`;

export class ServiceCatalog {
  readonly frontends: Frontend[] = [];
  readonly problems: CatalogProblem[] = [];
  readonly loadBalancing: LoadBalancing;
  private readonly byKey = new Map<string, Frontend>();
  /** ClusterIPs with at least one port (a packet to a ClusterIP on no port is rejected too). */
  private readonly ips = new Set<number>();

  constructor(inputs: CatalogInputs) {
    this.loadBalancing = inputs.loadBalancing ?? 'random';
    const slicesBySvc = new Map<string, EndpointSlice[]>();
    for (const s of inputs.slices) {
      const svc = s.metadata.labels?.[SERVICE_NAME_LABEL];
      if (svc === undefined) { this.problems.push({ object: `endpointslice ${nsOf(s.metadata)}/${s.metadata.name}`, field: `metadata.labels["${SERVICE_NAME_LABEL}"]`, reason: 'missing: the slice belongs to no Service' }); continue; }
      const k = `${nsOf(s.metadata)}/${svc}`;
      slicesBySvc.set(k, [...(slicesBySvc.get(k) ?? []), s]);
    }
    for (const svc of inputs.services) {
      const ns = nsOf(svc.metadata), id = `${ns}/${svc.metadata.name}`, where = `service ${id}`;
      const cip = svc.spec.clusterIP;
      if (cip === undefined || cip === '' || cip === 'None') { this.problems.push({ object: where, field: 'spec.clusterIP', reason: cip === 'None' ? 'headless: nothing to balance' : 'not allocated' }); continue; }
      let ip: number;
      try { ip = parseIpv4(cip) >>> 0; } catch { this.problems.push({ object: where, field: 'spec.clusterIP', reason: `not an IPv4 address: ${cip}` }); continue; }
      const affinityMs = svc.spec.sessionAffinity === 'ClientIP' ? (svc.spec.sessionAffinityConfig?.clientIP?.timeoutSeconds ?? DEFAULT_AFFINITY_TIMEOUT_S) * 1000 : 0;
      const local = svc.spec.internalTrafficPolicy === 'Local';
      (svc.spec.ports ?? []).forEach((sp, i) => {
        if (!Number.isInteger(sp.port) || sp.port < 1 || sp.port > 65535) { this.problems.push({ object: where, field: `spec.ports[${i}].port`, reason: `not a port number: ${String(sp.port)}` }); return; }
        const proto = IP_PROTO[sp.protocol ?? 'TCP'];
        const eps = slicesBySvc.has(id)
          ? fromSlices(slicesBySvc.get(id)!, sp, proto)
          : svc.spec.selector !== undefined ? fromPods(inputs.pods, ns, svc.spec.selector, sp, proto) : [];
        const ready = eps.filter((e) => e.ready);
        let chosen = ready.length > 0 ? ready : eps.filter((e) => e.serving && e.terminating);
        const any = chosen.length > 0;
        if (local) chosen = chosen.filter((e) => e.node === inputs.node);
        const backends: Backend[] = chosen.map((e) => ({ ip: e.ip, port: e.port, node: e.node, hits: 0 }));
        const fe: Frontend = {
          name: `${id}:${sp.name ?? String(sp.port)}`, ip, proto, port: sp.port, backends,
          empty: backends.length > 0 ? null : any && local ? 'no-local-endpoints' : 'no-endpoints',
          affinityMs, rejected: 0,
          maglev: this.loadBalancing === 'maglev' ? maglevTable(backends.map((b) => `${b.ip}:${b.port}`), inputs.maglevSize ?? DEFAULT_MAGLEV_SIZE) : null,
        };
        this.frontends.push(fe);
        this.byKey.set(frontendKey(ip, proto, sp.port), fe);
        this.ips.add(ip);
      });
    }
  }

  /** The frontend for a packet to ip:port/proto, or undefined (cold path; the NAT stage indexes its own). */
  frontend(ip: number, proto: number, port: number): Frontend | undefined {
    return this.byKey.get(frontendKey(ip, proto, port));
  }

  /** Whether `ip` is a ClusterIP (a packet to it on a port no Service has is rejected). */
  isClusterIp(ip: number): boolean {
    return this.ips.has(ip >>> 0);
  }
}

function fromSlices(slices: readonly EndpointSlice[], sp: ServicePort, proto: number): Endpoint[] {
  const out: Endpoint[] = [];
  for (const s of slices) {
    if (s.addressType !== undefined && s.addressType !== 'IPv4') continue;
    // The slice's port of the same name (unnamed service port: the slice's unnamed port).
    const p = (s.ports ?? []).find((x) => (x.name ?? '') === (sp.name ?? '') && IP_PROTO[x.protocol ?? 'TCP'] === proto);
    if (p?.port === undefined) continue;
    for (const e of s.endpoints ?? []) {
      let ip: number;
      try { ip = parseIpv4(e.addresses[0] ?? '') >>> 0; } catch { continue; }
      const c = e.conditions ?? {};
      out.push({ ip, port: p.port, node: e.nodeName ?? null, ready: c.ready !== false, serving: c.serving ?? c.ready !== false, terminating: c.terminating === true });
    }
  }
  return out;
}

function fromPods(pods: readonly Pod[], ns: string, selector: Readonly<Record<string, string>>, sp: ServicePort, proto: number): Endpoint[] {
  const out: Endpoint[] = [];
  for (const pod of pods) {
    if (nsOf(pod.metadata) !== ns || !selectorMatches({ matchLabels: selector }, pod.metadata.labels ?? {})) continue;
    const ipText = pod.status?.podIP;
    if (ipText === undefined) continue;
    let ip: number;
    try { ip = parseIpv4(ipText) >>> 0; } catch { continue; }
    const tp = sp.targetPort ?? sp.port;
    let port: number | undefined;
    if (typeof tp === 'number') port = tp;
    else {
      // A named targetPort: this pod's container port of that name and protocol.
      for (const c of pod.spec?.containers ?? []) for (const cp of c.ports ?? []) if (cp.name === tp && IP_PROTO[cp.protocol ?? 'TCP'] === proto) port = cp.containerPort;
    }
    if (port === undefined) continue;
    out.push({ ip, port, node: pod.spec?.nodeName ?? null, ready: true, serving: true, terminating: false });
  }
  return out;
}
