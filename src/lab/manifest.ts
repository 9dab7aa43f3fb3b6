/**
 * A lab's pods from a manifest (`flatnet lab up --manifest FILE`): Kubernetes Namespaces and Pods
 * in YAML or JSON (several documents separated by `---`, or a List), so that a setup such as the
 * NetworkPolicy e2e suite's (namespaces x, y, z; pods a, b, c) is one command.
 *
 *   Namespace   metadata.name, metadata.labels
 *   Pod         metadata.namespace (default "default"), metadata.name, metadata.labels,
 *               spec.nodeName (required: a lab node, n1, n2, ...), spec.containers[].ports
 *               (name, containerPort, protocol); anything else Kubernetes allows is kept as given
 *
 * The objects are checked with the store's own rules (src/control/objects.ts: DNS names, label
 * keys and values, port names and numbers), and then as a lab: every Pod names a node, no Pod or
 * Namespace twice, port names unique within a Pod. A Pod whose Namespace is not in the manifest
 * gets one (no labels but the automatic kubernetes.io/metadata.name). A Pod on a kernel-VXLAN node
 * is refused: the kernel nodes do not enforce NetworkPolicy, so a grid probed there would not say
 * what flatnet does. Errors are ManifestError (a ConfigError: code, field path, document number).
 *
 * What the lab does with a manifest (lab.ts): the Namespaces and Pods are applied to the lab's
 * etcd before any pod exists (so spec.nodeName binds each Pod to its node), then every Pod is
 * created by the CNI plugin on its node with its Kubernetes identity (K8S_POD_NAMESPACE,
 * K8S_POD_NAME) and an address from the node's IPAM; the node publishes the address in the Pod's
 * status, where policies meet the labels.
 */

import { readFileSync } from 'node:fs';
import type { Namespace, Pod } from 'kubernetes-types/core/v1.js';
import { parseAllDocuments } from 'yaml';
import { validateObject } from '../control/objects.js';
import { ConfigError } from '../errors.js';

/** A pod per node at most (the node's /24 leaves 253 addresses; the lab keeps well inside). */
export const MAX_MANIFEST_PODS_PER_NODE = 100;

/** A manifest error: `field` is the path inside document `document` (1-based; 0: the file as a whole). */
export class ManifestError extends ConfigError {
  readonly document: number;
  constructor(code: string, source: string, document: number, field: string, message: string) {
    super(code, field, `${source}${document > 0 ? `: document ${document}` : ''}: ${message}`);
    this.document = document;
  }
}

export interface ManifestPod {
  readonly namespace: string;
  readonly name: string;
  /** The lab node, n<index>. */
  readonly node: string;
  readonly nodeIndex: number;
  /** The document it came from (1-based), for errors found later (against the lab's options). */
  readonly document: number;
}

export interface LabManifest {
  /** The file it was read from (errors name it). */
  readonly source: string;
  /** What the lab applies to the store: the Namespaces (given, then implied) and the Pods, without status. */
  readonly objects: readonly (Namespace | Pod)[];
  readonly pods: readonly ManifestPod[];
  /** Namespaces that Pods use but the manifest does not define: the lab creates them without labels. */
  readonly impliedNamespaces: readonly string[];
  /** The highest node index a Pod names: the lab's node count unless --nodes asks for more. */
  readonly nodes: number;
}

const NODE_RE = /^n([1-9][0-9]{0,2})$/;

/** loadManifest reads and checks a manifest file (parseManifest); an unreadable file is ERR_LAB_MANIFEST. */
export function loadManifest(path: string): LabManifest {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    throw new ManifestError('ERR_LAB_MANIFEST', path, 0, '', `cannot read it (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
  }
  return parseManifest(text, path);
}

/** parseManifest checks a manifest's text as a whole (see the module comment); throws ManifestError. */
export function parseManifest(text: string, source: string): LabManifest {
  const docs: { doc: number; value: unknown }[] = [];
  parseAllDocuments(text).forEach((d, i) => {
    if (d.errors.length > 0) throw new ManifestError('ERR_LAB_MANIFEST', source, i + 1, '', d.errors[0]!.message.split('\n')[0]!);
    const v = d.toJS() as unknown;
    if (v === null || v === undefined) return;
    const list = v as { kind?: unknown; items?: unknown };
    if (list.kind === 'List' && Array.isArray(list.items)) for (const item of list.items as unknown[]) docs.push({ doc: i + 1, value: item });
    else docs.push({ doc: i + 1, value: v });
  });
  if (docs.length === 0) throw new ManifestError('ERR_LAB_MANIFEST', source, 0, '', 'no Namespaces or Pods in it');

  const namespaces = new Map<string, Namespace>();
  const pods: ManifestPod[] = [];
  const podObjects: Pod[] = [];
  const seen = new Set<string>();
  for (const { doc, value } of docs) {
    const kind = (value as { kind?: unknown } | null)?.kind;
    if (kind !== 'Namespace' && kind !== 'Pod') {
      throw new ManifestError('ERR_LAB_MANIFEST', source, doc, 'kind', `${JSON.stringify(kind)}: a lab manifest holds Namespaces and Pods (apply NetworkPolicies, Services and the rest with \`flatnet apply\` once the lab is up)`);
    }
    let checked;
    try {
      checked = validateObject(value);
    } catch (e) {
      if (e instanceof ConfigError) throw new ManifestError('ERR_LAB_MANIFEST', source, doc, e.field, e.message.slice(e.field === '' ? 0 : e.field.length + 2));
      throw e;
    }
    if (checked.ref.kind === 'Namespace') {
      const ns = checked.obj as Namespace;
      if (namespaces.has(checked.ref.name)) throw new ManifestError('ERR_LAB_MANIFEST_DUPLICATE', source, doc, 'metadata.name', `Namespace ${checked.ref.name} is in the manifest twice`);
      namespaces.set(checked.ref.name, ns);
      continue;
    }
    const pod = checked.obj as Pod;
    const id = `${checked.ref.namespace}/${checked.ref.name}`;
    if (seen.has(id)) throw new ManifestError('ERR_LAB_MANIFEST_DUPLICATE', source, doc, 'metadata.name', `Pod ${id} is in the manifest twice`);
    seen.add(id);
    const nodeName = pod.spec?.nodeName;
    if (nodeName === undefined) throw new ManifestError('ERR_LAB_MANIFEST_NODE', source, doc, 'spec.nodeName', `Pod ${id}: required, the lab node it runs on (n1, n2, ...)`);
    const m = NODE_RE.exec(nodeName);
    if (m === null) throw new ManifestError('ERR_LAB_MANIFEST_NODE', source, doc, 'spec.nodeName', `Pod ${id}: ${JSON.stringify(nodeName)} is not a lab node (n1, n2, ...)`);
    const names = new Set<string>();
    (pod.spec?.containers ?? []).forEach((c, ci) => (c.ports ?? []).forEach((p, pi) => {
      if (p.name === undefined) return;
      if (names.has(p.name)) throw new ManifestError('ERR_LAB_MANIFEST_DUPLICATE', source, doc, `spec.containers[${ci}].ports[${pi}].name`, `Pod ${id}: port name ${p.name} is used twice in the pod`);
      names.add(p.name);
    }));
    pods.push({ namespace: checked.ref.namespace!, name: checked.ref.name, node: nodeName, nodeIndex: Number(m[1]), document: doc });
    const { status: _status, ...rest } = pod;
    podObjects.push(rest);
  }
  const implied = [...new Set(pods.map((p) => p.namespace))].filter((ns) => !namespaces.has(ns) && ns !== 'default');
  const objects: (Namespace | Pod)[] = [
    ...namespaces.values(),
    ...implied.map((name): Namespace => ({ apiVersion: 'v1', kind: 'Namespace', metadata: { name } })),
    ...podObjects,
  ];
  if (pods.length === 0) throw new ManifestError('ERR_LAB_MANIFEST', source, 0, '', 'no Pods in it (a lab needs at least one)');
  return { source, objects, pods, impliedNamespaces: implied, nodes: Math.max(...pods.map((p) => p.nodeIndex)) };
}

/**
 * checkManifest: the manifest against the lab's nodes: every Pod on an existing node
 * (n1..n<nodes>), none on a kernel node (the last `kernelNodes`), at most
 * MAX_MANIFEST_PODS_PER_NODE per node. Throws ManifestError naming the Pod's spec.nodeName.
 */
export function checkManifest(m: LabManifest, nodes: number, kernelNodes: number): void {
  const perNode = new Map<number, number>();
  for (const p of m.pods) {
    const id = `${p.namespace}/${p.name}`;
    if (p.nodeIndex > nodes) throw new ManifestError('ERR_LAB_MANIFEST_NODE', m.source, p.document, 'spec.nodeName', `Pod ${id}: the lab has no node ${p.node} (--nodes ${nodes}: n1 to n${nodes})`);
    if (p.nodeIndex > nodes - kernelNodes) {
      throw new ManifestError('ERR_LAB_MANIFEST_NODE', m.source, p.document, 'spec.nodeName', `Pod ${id}: ${p.node} is a kernel-VXLAN node, which does not enforce NetworkPolicy; put the pod on a flatnet node (n1 to n${nodes - kernelNodes})`);
    }
    const n = (perNode.get(p.nodeIndex) ?? 0) + 1;
    if (n > MAX_MANIFEST_PODS_PER_NODE) throw new ManifestError('ERR_LAB_MANIFEST_NODE', m.source, p.document, 'spec.nodeName', `Pod ${id}: more than ${MAX_MANIFEST_PODS_PER_NODE} pods on ${p.node}`);
    perNode.set(p.nodeIndex, n);
  }
}

/** The network namespace of a manifest pod: the lab's prefix, its namespace, a dot, its name (a dot never is in a namespace's name). */
export const manifestPodNetns = (prefix: string, p: Pick<ManifestPod, 'namespace' | 'name'>): string => `${prefix}${p.namespace}.${p.name}`;
