/**
 * `flatnet apply|get|delete`: the cluster's Kubernetes-shaped objects in etcd (src/control/objects.ts).
 *   flatnet apply -f FILE|-                         YAML or JSON, several documents (or a List)
 *   flatnet get KIND [NAME] [-n NS | -A] [-o json|yaml|wide]
 *   flatnet delete KIND NAME [-n NS]
 * A file is validated as a whole before anything is written (the error names the document and
 * the field path); Namespaces in it are applied first.
 */

import { readFileSync } from 'node:fs';
import { Command, InvalidArgumentError } from 'commander';
import { parseAllDocuments, stringify } from 'yaml';
import { ConfigError, FlatnetError } from '../errors.js';
import { etcdOpts, etcdTarget, type EtcdFlags } from './control-plane.js';
import { kindOf, NAMESPACED, validateObject, type ClusterObject, type Kind } from '../control/objects.js';

type Write = (s: string) => void;

/** parseDocuments: every document of a YAML/JSON text (a List's items spread), ERR_OBJECT_PARSE naming the document. */
export function parseDocuments(text: string, source: string): unknown[] {
  const docs = parseAllDocuments(text);
  const out: unknown[] = [];
  docs.forEach((d, i) => {
    if (d.errors.length > 0) throw new FlatnetError('ERR_OBJECT_PARSE', `${source}: document ${i + 1}: ${d.errors[0]!.message.split('\n')[0]}`);
    const v = d.toJS() as unknown;
    if (v === null || v === undefined) return;
    const list = v as { kind?: unknown; items?: unknown };
    if (list.kind === 'List' && Array.isArray(list.items)) out.push(...(list.items as unknown[]));
    else out.push(v);
  });
  return out;
}

async function withStore<T>(o: EtcdFlags, fn: (s: import('../control/objects.js').ObjectStore) => Promise<T>): Promise<T> {
  const t = etcdTarget(o);
  const { connectEtcd } = await import('../control/etcd.js');
  const { ObjectStore } = await import('../control/objects.js');
  const client = connectEtcd(t.endpoints);
  try {
    return await fn(new ObjectStore(client, t.prefix));
  } finally {
    client.close();
  }
}

async function runApply(o: EtcdFlags & { filename: string }, write: Write): Promise<void> {
  const text = o.filename === '-' ? readFileSync(0, 'utf8') : readFileSync(o.filename, 'utf8');
  const docs = parseDocuments(text, o.filename === '-' ? 'stdin' : o.filename);
  if (docs.length === 0) throw new FlatnetError('ERR_OBJECT_PARSE', `${o.filename}: no objects`);
  docs.forEach((d, i) => {
    try {
      validateObject(d);
    } catch (e) {
      if (e instanceof ConfigError) throw new ConfigError(e.code, e.field, `document ${i + 1}: ${e.message.slice(e.field === '' ? 0 : e.field.length + 2)}`);
      throw e;
    }
  });
  const ordered = [...docs].sort((a, b) => Number((b as { kind: string }).kind === 'Namespace') - Number((a as { kind: string }).kind === 'Namespace'));
  await withStore(o, async (s) => {
    for (const d of ordered) {
      const r = await s.apply(d);
      write(`${r.kind.toLowerCase()}/${r.name}${r.namespace === null || r.namespace === 'default' ? '' : ` (namespace ${r.namespace})`} ${r.outcome}\n`);
    }
  });
}

const age = (o: ClusterObject): string => {
  const t = Date.parse(o.metadata?.creationTimestamp ?? '');
  if (Number.isNaN(t)) return '-';
  const s = Math.max(0, Math.round((Date.now() - t) / 1000));
  return s < 120 ? `${s}s` : s < 7200 ? `${Math.round(s / 60)}m` : s < 172_800 ? `${Math.round(s / 3600)}h` : `${Math.round(s / 86_400)}d`;
};
const kv = (m: Record<string, string> | undefined): string => (m === undefined || Object.keys(m).length === 0 ? '<none>' : Object.entries(m).map(([k, v]) => `${k}=${v}`).join(','));

/** The table columns of a kind (wide adds some). */
export function rows(kind: Kind, items: readonly ClusterObject[], wide: boolean, allNs: boolean): string[][] {
  const head: string[] = [...(allNs && NAMESPACED[kind] ? ['NAMESPACE'] : []), 'NAME'];
  const ns = (o: ClusterObject): string[] => (allNs && NAMESPACED[kind] ? [o.metadata?.namespace ?? ''] : []);
  const name = (o: ClusterObject): string => o.metadata?.name ?? '';
  let cols: string[];
  let cells: (o: ClusterObject) => string[];
  switch (kind) {
    case 'Namespace':
      cols = ['AGE', ...(wide ? ['LABELS'] : [])];
      cells = (o) => [age(o), ...(wide ? [kv(o.metadata?.labels)] : [])];
      break;
    case 'Pod':
      cols = ['NODE', 'IP', 'AGE', ...(wide ? ['PORTS', 'LABELS'] : [])];
      cells = (o) => {
        const p = o as import('kubernetes-types/core/v1.js').Pod;
        const ports = (p.spec?.containers ?? []).flatMap((c) => (c.ports ?? []).map((x) => `${x.name === undefined ? '' : `${x.name}:`}${x.containerPort}/${x.protocol ?? 'TCP'}`));
        return [p.spec?.nodeName ?? '<none>', p.status?.podIP ?? '<none>', age(o), ...(wide ? [ports.join(',') || '<none>', kv(p.metadata?.labels)] : [])];
      };
      break;
    case 'Service':
      cols = ['CLUSTER-IP', 'PORTS', 'AGE', ...(wide ? ['SELECTOR'] : [])];
      cells = (o) => {
        const s = o as import('kubernetes-types/core/v1.js').Service;
        const ports = (s.spec?.ports ?? []).map((x) => `${x.port}${x.targetPort === undefined ? '' : `:${x.targetPort}`}/${x.protocol ?? 'TCP'}`);
        return [s.spec?.clusterIP ?? '<none>', ports.join(','), age(o), ...(wide ? [kv(s.spec?.selector)] : [])];
      };
      break;
    case 'NetworkPolicy':
      cols = ['POD-SELECTOR', 'AGE', ...(wide ? ['POLICY-TYPES'] : [])];
      cells = (o) => {
        const n = o as import('kubernetes-types/networking/v1.js').NetworkPolicy;
        const sel = kv(n.spec?.podSelector?.matchLabels);
        return [sel === '<none>' ? '<all>' : sel, age(o), ...(wide ? [(n.spec?.policyTypes ?? ['Ingress']).join(',')] : [])];
      };
      break;
    case 'EndpointSlice':
      cols = ['ADDRESSES', 'PORTS', 'AGE', ...(wide ? ['SERVICE'] : [])];
      cells = (o) => {
        const e = o as import('kubernetes-types/discovery/v1.js').EndpointSlice;
        return [e.endpoints.flatMap((x) => x.addresses).join(',') || '<none>', (e.ports ?? []).map((p) => String(p.port ?? '')).join(',') || '<none>', age(o),
          ...(wide ? [e.metadata?.labels?.['kubernetes.io/service-name'] ?? '<none>'] : [])];
      };
      break;
  }
  return [[...head, ...cols], ...items.map((o) => [...ns(o), name(o), ...cells(o)])];
}

export function table(r: string[][]): string {
  const w = r[0]!.map((_, i) => Math.max(...r.map((x) => (x[i] ?? '').length)));
  return r.map((x) => x.map((c, i) => (i === x.length - 1 ? c : c.padEnd(w[i]! + 3))).join('').trimEnd()).join('\n') + '\n';
}

interface GetFlags extends EtcdFlags { namespace: string; allNamespaces: boolean; output?: string }

async function runGet(kindText: string, name: string | undefined, o: GetFlags, write: Write): Promise<void> {
  const kind = kindOf(kindText);
  const out = o.output ?? 'table';
  if (!['table', 'json', 'yaml', 'wide'].includes(out)) throw new InvalidArgumentError(`-o ${out}: json, yaml or wide`);
  await withStore(o, async (s) => {
    if (name !== undefined) {
      const obj = await s.get(kind, o.namespace, name);
      if (out === 'json') write(`${JSON.stringify(obj, null, 2)}\n`);
      else if (out === 'yaml') write(stringify(obj));
      else write(table(rows(kind, [obj], out === 'wide', false)));
      return;
    }
    const { items, resourceVersion } = await s.list(kind, o.allNamespaces ? null : o.namespace);
    const list = { apiVersion: 'v1', kind: 'List', metadata: { resourceVersion }, items };
    if (out === 'json') write(`${JSON.stringify(list, null, 2)}\n`);
    else if (out === 'yaml') write(stringify(list));
    else if (items.length === 0) write(`No ${kind} objects found${NAMESPACED[kind] && !o.allNamespaces ? ` in namespace ${o.namespace}` : ''}.\n`);
    else write(table(rows(kind, items, out === 'wide', o.allNamespaces)));
  });
}

async function runDelete(kindText: string, name: string, o: EtcdFlags & { namespace: string }, write: Write): Promise<void> {
  const kind = kindOf(kindText);
  await withStore(o, async (s) => {
    const r = await s.delete(kind, o.namespace, name);
    for (const d of r.deleted) write(`${d} deleted\n`);
  });
}

export function registerObjects(program: Command, write: Write): void {
  etcdOpts(program.command('apply')
    .description('create or update cluster objects (Namespace, Pod, Service, NetworkPolicy, EndpointSlice) from YAML or JSON')
    .requiredOption('-f, --filename <file>', 'the file (several documents allowed), or - for stdin'))
    .action(async (o: EtcdFlags & { filename: string }) => { await runApply(o, write); });
  etcdOpts(program.command('get')
    .description('list cluster objects, or show one')
    .argument('<kind>', 'namespace(s)|ns, pod(s)|po, service(s)|svc, networkpolicy(ies)|netpol, endpointslice(s)')
    .argument('[name]', 'one object')
    .option('-n, --namespace <ns>', 'namespace', 'default')
    .option('-A, --all-namespaces', 'every namespace', false)
    .option('-o, --output <format>', 'json, yaml or wide'))
    .action(async (kind: string, name: string | undefined, o: GetFlags) => { await runGet(kind, name, o, write); });
  etcdOpts(program.command('delete')
    .description('delete a cluster object (a Namespace with everything in it)')
    .argument('<kind>', 'the kind, as for get')
    .argument('<name>', 'the object')
    .option('-n, --namespace <ns>', 'namespace', 'default'))
    .action(async (kind: string, name: string, o: EtcdFlags & { namespace: string }) => { await runDelete(kind, name, o, write); });
}
