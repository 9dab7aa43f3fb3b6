/**
 * Cluster objects against a real etcd (one member in a namespace of this test, reached through
 * its unix socket): the store API and `flatnet apply|get|delete`.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Etcd3 } from 'etcd3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { connectEtcd } from '../../src/control/etcd.js';
import { ObjectStore, type ClusterObject } from '../../src/control/objects.js';
import { startEtcdCluster, type EtcdMember } from '../../src/lab/etcd.js';
import { ensureDist, REPO_ROOT } from '../support/lab.js';
import { Netns, netnsSkipReason } from '../support/netns.js';

const skip = netnsSkipReason();

describe.skipIf(skip !== null)('cluster objects in a real etcd', () => {
  const nets = new Netns('e');
  const dir = mkdtempSync(join(tmpdir(), 'flatnet-objects-'));
  let m: EtcdMember;
  let client: Etcd3;
  let store: ObjectStore;
  const cli = (...args: string[]): { code: number; out: string; err: string } => {
    try {
      return { code: 0, out: execFileSync(process.execPath, [join(REPO_ROOT, 'dist/src/cli/main.js'), ...args, '--etcd', m.unixUrl, '--prefix', '/cli'], { encoding: 'utf8', stdio: ['pipe', 'pipe', 'pipe'] }), err: '' };
    } catch (e) {
      const x = e as { status: number; stdout: string; stderr: string };
      return { code: x.status, out: x.stdout, err: x.stderr };
    }
  };

  beforeAll(async () => {
    ensureDist();
    const ns = nets.add('etcd');
    m = (await startEtcdCluster([{ name: 'o1', ns, ip: '127.0.0.1', dir: join(dir, 'o1') }]))[0]!;
    client = connectEtcd([m.unixUrl]);
    store = new ObjectStore(client, '/t');
  }, 60_000);
  afterAll(() => {
    client?.close();
    nets.destroy();
    rmSync(dir, { recursive: true, force: true });
  });

  const pod = (labels: Record<string, string>, rv?: string): ClusterObject => ({ apiVersion: 'v1', kind: 'Pod', metadata: { name: 'web-1', namespace: 'shop', labels, ...(rv === undefined ? {} : { resourceVersion: rv }) }, spec: { containers: [{ name: 'c', ports: [{ name: 'http', containerPort: 8080 }] }] } });

  it('creates, updates and keeps identity; resourceVersion is the etcd revision; stale updates conflict', async () => {
    await expect(store.apply(pod({ app: 'web' }))).rejects.toMatchObject({ code: 'ERR_OBJECT_NAMESPACE_NOT_FOUND' });
    expect((await store.apply({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'shop' } })).outcome).toBe('created');
    const c = await store.apply(pod({ app: 'web' }));
    expect(c.outcome).toBe('created');
    const got = await store.get('Pod', 'shop', 'web-1');
    expect(got.metadata!.resourceVersion).toBe(c.resourceVersion);
    expect(got.metadata!.uid).toMatch(/^[0-9a-f-]{36}$/);
    expect((await store.apply(pod({ app: 'web' }))).outcome).toBe('unchanged');
    const u = await store.apply(pod({ app: 'web', tier: 'front' }, c.resourceVersion));
    expect(u.outcome).toBe('configured');
    expect(Number(u.resourceVersion)).toBeGreaterThan(Number(c.resourceVersion));
    expect((await store.get('Pod', 'shop', 'web-1')).metadata!.uid).toBe(got.metadata!.uid);
    // An update based on the old version is refused, as the API server refuses it.
    await expect(store.apply(pod({ app: 'other' }, c.resourceVersion))).rejects.toMatchObject({ code: 'ERR_OBJECT_CONFLICT' });
    expect((await store.get('Pod', 'shop', 'web-1')).metadata!.labels).toEqual({ app: 'web', tier: 'front' });
  });

  it("publishPodIp puts the pod's IP and node next to its labels; applying the Pod again keeps them", async () => {
    const r = await store.publishPodIp('shop', 'web-1', '10.244.1.10', 'n1');
    expect(r.outcome).toBe('configured');
    expect((await store.publishPodIp('shop', 'web-1', '10.244.1.10', 'n1')).outcome).toBe('unchanged');
    await store.apply(pod({ app: 'web', tier: 'back' }));
    const p = await store.get('Pod', 'shop', 'web-1') as { metadata: { labels: Record<string, string> }; spec: { nodeName: string }; status: { podIP: string } };
    expect([p.metadata.labels['tier'], p.spec.nodeName, p.status.podIP]).toEqual(['back', 'n1', '10.244.1.10']);
    await expect(store.publishPodIp('shop', 'web-1', '10.244.2.10', 'n2')).rejects.toMatchObject({ code: 'ERR_OBJECT_CONFLICT' });
    const moved = pod({ app: 'web' }) as { spec: { nodeName?: string } };
    moved.spec.nodeName = 'n2';
    await expect(store.apply(moved)).rejects.toMatchObject({ code: 'ERR_OBJECT_INVALID', field: 'spec.nodeName' });
    // A pod the CNI plugin met first (podman): created with what is known.
    expect((await store.publishPodIp('default', 'lonely', '10.244.1.11', 'n1')).outcome).toBe('created');
    expect((await store.get('Pod', 'default', 'lonely') as { status: { podIP: string } }).status.podIP).toBe('10.244.1.11');
  });

  it('watches a kind: every settled change hands over the whole set', async () => {
    const seen: string[][] = [];
    const w = store.watch('Service', (objs) => seen.push(objs.map((o) => o.metadata!.name!).sort()));
    const until = async (f: () => boolean): Promise<void> => { for (let i = 0; i < 200 && !f(); i++) await new Promise((r) => setTimeout(r, 25)); };
    await until(() => seen.length > 0);
    await store.apply({ apiVersion: 'v1', kind: 'Service', metadata: { name: 'web', namespace: 'shop' }, spec: { selector: { app: 'web' }, ports: [{ port: 80, targetPort: 'http' }] } });
    await until(() => seen.at(-1)?.join() === 'web');
    await store.delete('Service', 'shop', 'web');
    await until(() => seen.at(-1)?.length === 0);
    expect(seen.at(-1)).toEqual([]);
    expect(seen.some((s) => s.join() === 'web')).toBe(true);
    await w.close();
  });

  it('deleting a Namespace deletes what is in it', async () => {
    const r = await store.delete('Namespace', null, 'shop');
    expect(r.deleted).toContain('Pod shop/web-1');
    await expect(store.get('Pod', 'shop', 'web-1')).rejects.toMatchObject({ code: 'ERR_NOT_FOUND' });
    await expect(store.delete('Namespace', null, 'shop')).rejects.toMatchObject({ code: 'ERR_NOT_FOUND' });
  });

  it('flatnet apply -f (several documents), get (-o json|yaml|wide, -A), delete', () => {
    const f = join(dir, 'objs.yaml');
    writeFileSync(f, [
      'apiVersion: v1\nkind: Pod\nmetadata: {name: web-1, namespace: shop, labels: {app: web}}\nspec: {nodeName: n1, containers: [{name: c, ports: [{name: http, containerPort: 8080}]}]}',
      'apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {name: allow-web, namespace: shop}\nspec: {podSelector: {matchLabels: {app: web}}, policyTypes: [Ingress], ingress: [{from: [{podSelector: {}}]}]}',
      'apiVersion: v1\nkind: Namespace\nmetadata: {name: shop}',
    ].join('\n---\n'));
    const a = cli('apply', '-f', f);
    expect(a.err).toBe('');
    expect(a.out.split('\n').filter(Boolean)).toEqual(['namespace/shop created', 'pod/web-1 (namespace shop) created', 'networkpolicy/allow-web (namespace shop) created']);
    expect(cli('apply', '-f', f).out).toContain('pod/web-1 (namespace shop) unchanged');
    const table = cli('get', 'pods', '-n', 'shop', '-o', 'wide').out;
    expect(table.split('\n')[0]).toMatch(/^NAME\s+NODE\s+IP\s+AGE\s+PORTS\s+LABELS$/);
    expect(table).toMatch(/web-1\s+n1\s+<none>\s+\S+\s+http:8080\/TCP\s+app=web/);
    const j = JSON.parse(cli('get', 'netpol', 'allow-web', '-n', 'shop', '-o', 'json').out) as ClusterObject;
    expect(j.metadata!.resourceVersion).toMatch(/^\d+$/);
    const y = parse(cli('get', 'pods', '-A', '-o', 'yaml').out) as { kind: string; items: ClusterObject[] };
    expect([y.kind, y.items.map((i) => i.metadata!.name)]).toEqual(['List', ['web-1']]);
    // A bad document stops the whole file before anything is written, naming document and field.
    const bad = join(dir, 'bad.yaml');
    writeFileSync(bad, 'apiVersion: v1\nkind: Namespace\nmetadata: {name: other}\n---\napiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec: {containers: [{name: c, ports: [{containerPort: 0}]}]}\n');
    const b = cli('apply', '-f', bad);
    expect(b.code).toBe(1);
    expect(b.err).toContain('spec.containers[0].ports[0].containerPort: document 2: Pod p:');
    expect(b.err).toContain('(ERR_OBJECT_INVALID)');
    expect(cli('get', 'ns', 'other').err).toContain('ERR_NOT_FOUND');
    expect(cli('delete', 'pod', 'web-1', '-n', 'shop').out).toBe('Pod shop/web-1 deleted\n');
    expect(cli('get', 'pods', '-n', 'shop').out).toBe('No Pod objects found in namespace shop.\n');
    expect(cli('get', 'deployments').err).toContain('ERR_OBJECT_KIND');
  });

  it('flatnet cluster init: created, unchanged, refused when different, replaced with --force; cluster leases lists and explains', async () => {
    const init = (...a: string[]): { code: number; out: string; err: string } => cli('cluster', 'init', ...a);
    expect(JSON.parse(init('--vni', '7').out)).toMatchObject({ key: '/cli/network/config', outcome: 'created', network: { network: '10.244.0.0/16', subnetLen: 24, vni: 7 } });
    expect(JSON.parse(init('--vni', '7').out).outcome).toBe('unchanged');
    const other = init('--vni', '8');
    expect([other.code, other.err]).toEqual([1, expect.stringContaining('ERR_CLUSTER_EXISTS')]);
    expect(JSON.parse(init('--vni', '8', '--force').out).outcome).toBe('replaced');
    const bad = init('--subnet-len', '16');
    expect(bad.err).toContain('flatnet: subnetLen: a subnet length of 16 does not split the network 10.244.0.0/16');
    expect(bad.err).toContain('(ERR_NETWORK_INVALID)');
    await client.put('/cli/subnets/10.244.5.0-24').value(JSON.stringify({ node: 'n5', underlay: '198.51.100.5', vtepMac: '0e:00:0a:f4:05:00', vni: 8, port: 4789 }));
    await client.put('/cli/subnets/10.244.6.0-24').value('{not json');
    const leases = JSON.parse(cli('cluster', 'leases', '--json').out) as { leases: { subnet: string; node: string }[]; rejected: { key: string; reason: string }[] };
    expect(leases.leases.map((l) => [l.subnet, l.node])).toEqual([['10.244.5.0/24', 'n5']]);
    expect(leases.rejected.map((r) => [r.key, r.reason])).toEqual([['/cli/subnets/10.244.6.0-24', 'malformed_json']]);
  });
});
