/**
 * NetworkPolicy and Services end to end, through the store: a two-node lab on etcd whose pods
 * are made by the CNI plugin (the daemons publish their IPs under namespace lab-NAME), labels
 * applied with `flatnet apply`, then a NetworkPolicy and Services applied, and the effect
 * measured with real TCP probes between the pods' namespaces (src/lab/probe.ts), not with the
 * engine's own answer; `flatnet show policy|services|conntrack` read from the daemons.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { request } from '../../src/daemon/control.js';
import { inNs } from '../../src/lab/exec.js';
import { labEtcdEndpoints, labEtcdSpecs, labPodNamespace } from '../../src/lab/etcd-lab.js';
import { flatnetMain } from '../../src/lab/flatnet-node.js';
import { labDown, labNamespaces, labUp } from '../../src/lab/lab.js';
import { ProbeServers, probeMatrix, renderGrid, type ProbePod } from '../../src/lab/probe.js';
import type { LabNode, LabState } from '../../src/lab/topology.js';
import { ensureDist, labSkipReason, uniqueLabName } from '../support/lab.js';

const skip = labSkipReason();

const CLIENT = String.raw`
import socket, sys, json, errno
out = []
for i in range(int(sys.argv[3])):
    c = socket.socket(); c.settimeout(2)
    try:
        c.connect((sys.argv[1], int(sys.argv[2]))); out.append('ok')
    except socket.timeout:
        out.append('timeout')
    except OSError as e:
        out.append(errno.errorcode.get(e.errno, str(e)))
    c.close()
print(json.dumps(out))
`;

describe.skipIf(skip !== null)(`NetworkPolicy and Services through the store, probed for real${skip === null ? '' : ` (skipped: ${skip})`}`, () => {
  const name = uniqueLabName('o');
  let lab: LabState, n1: LabNode, n2: LabNode;
  let pods: ProbePod[] = [];
  let servers: ProbeServers | null = null;
  let ns = '';
  const flatnet = (node: LabNode, ...args: string[]): string => inNs(node.ns, process.execPath, [flatnetMain(), ...args, '--socket', node.socket!]);
  const store = (...args: string[]): string => inNs(labEtcdSpecs(lab)[0]!.ns, process.execPath, [flatnetMain(), ...args, '--etcd', labEtcdEndpoints(lab).join(',')]);
  const apply = (docs: unknown[]): string => {
    const f = join(lab.stateDir, `apply-${Date.now()}.json`);
    writeFileSync(f, docs.map((d) => JSON.stringify(d)).join('\n---\n'));
    return store('apply', '-f', f);
  };
  const grid = async (): Promise<string[]> => renderGrid(await probeMatrix(pods, 80, 'tcp', 0.5)).split('\n').slice(1);
  const until = async (what: string, f: () => Promise<boolean>, ms = 15_000): Promise<number> => {
    const t0 = Date.now();
    while (!(await f())) {
      if (Date.now() - t0 > ms) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
      await new Promise((r) => setTimeout(r, 50));
    }
    return Date.now() - t0;
  };

  beforeAll(async () => {
    ensureDist();
    lab = await labUp({ name, nodes: 2, kernelNodes: 0, pods: 2, etcd: 1, leaseTtlSeconds: 5 });
    [n1, n2] = lab.nodes as [LabNode, LabNode];
    ns = labPodNamespace(name);
    pods = lab.nodes.flatMap((n) => n.pods.map((p) => ({ name: p.name, netns: p.ns, ip: p.ip })));
    // The daemons publish the pods the CNI plugin attached; then the labels go on them.
    await until('the pods published', async () => (JSON.parse(store('get', 'pods', '-n', ns, '-o', 'json')) as { items: { status?: { podIP?: string } }[] }).items.filter((p) => p.status?.podIP !== undefined).length === 4);
    const app: Record<string, string> = { n1p0: 'client', n1p1: 'other', n2p0: 'web', n2p1: 'web' };
    apply(pods.map((p) => ({ apiVersion: 'v1', kind: 'Pod', metadata: { name: p.name, namespace: ns, labels: { app: app[p.name]! } }, spec: { containers: [{ name: 'main', ports: [{ name: 'http', containerPort: 80 }] }] } })));
    servers = await ProbeServers.start(pods, [80]);
  }, 180_000);
  afterAll(async () => {
    servers?.stop();
    await labDown(name);
    expect(labNamespaces(name)).toEqual([]);
  });

  it('without a policy every pod reaches every pod', async () => {
    expect(await grid()).toEqual(['     n1p0 n1p1 n2p0 n2p1', 'n1p0 .    .    .    .', 'n1p1 .    .    .    .', 'n2p0 .    .    .    .', 'n2p1 .    .    .    .']);
  });

  it('a NetworkPolicy applied to the store isolates the web pods within a second; only the client gets in, on the named port', async () => {
    apply([{ apiVersion: 'networking.k8s.io/v1', kind: 'NetworkPolicy', metadata: { name: 'web-from-clients', namespace: ns }, spec: { podSelector: { matchLabels: { app: 'web' } }, ingress: [{ from: [{ podSelector: { matchLabels: { app: 'client' } } }], ports: [{ port: 'http' }] }] } }]);
    const ms = await until('the policy in force', async () => (await probeMatrix([pods[1]!, pods[2]!], 80, 'tcp', 0.3)).reach['n1p1']!['n2p0'] === false);
    expect(ms).toBeLessThan(5000);
    // Other web pods are not clients either (n2p0 <-> n2p1); loopback is not judged.
    expect(await grid()).toEqual(['     n1p0 n1p1 n2p0 n2p1', 'n1p0 .    .    .    .', 'n1p1 .    .    X    X', 'n2p0 .    .    .    X', 'n2p1 .    .    X    .']);
    // The same grid from the command line, compared with an expected one (a mismatch exits 1).
    const want = join(lab.stateDir, 'expected.grid');
    writeFileSync(want, ['     n1p0 n1p1 n2p0 n2p1', 'n1p0 .    .    .    .', 'n1p1 .    .    X    X', 'n2p0 .    .    .    X', 'n2p1 .    .    X    .'].join('\n'));
    expect(execFileSync(process.execPath, [flatnetMain(), 'lab', 'probe', '--name', name, '--timeout', '0.5', '--expect', want], { encoding: 'utf8' })).toContain('matches the expected grid');
    writeFileSync(want, ['     n1p0 n1p1 n2p0 n2p1', 'n1p0 .    .    .    .', 'n1p1 .    .    .    X', 'n2p0 .    .    .    X', 'n2p1 .    .    X    .'].join('\n'));
    const r = spawnSync(process.execPath, [flatnetMain(), 'lab', 'probe', '--name', name, '--timeout', '0.5', '--expect', want], { encoding: 'utf8' });
    expect([r.status, r.stdout.split('\n').find((l) => l.startsWith('n1p1'))]).toEqual([1, 'n1p1 .    .    !    X']);
    expect(r.stdout).toContain('n1p1 -> n2p0: expected ., got X');
    const shown = flatnet(n2, 'show', 'policy');
    expect(shown).toMatch(new RegExp(`^${ns}\\s+web-from-clients\\s+Ingress\\s+2\\s+`, 'm'));
    expect(shown).toContain(`selects      ${ns}/n2p0 ${ns}/n2p1`);
    const st = (await request(n2.socket!, { cmd: 'status' })) as { cluster: { lastChangeToInstalledMs: number; policies: number } };
    expect(st.cluster.policies).toBe(1);
    expect(st.cluster.lastChangeToInstalledMs).toBeLessThan(1000);
  });

  it('a Service spreads the client over both web pods (DNAT on the client node), and one without endpoints refuses', async () => {
    apply([
      { apiVersion: 'v1', kind: 'Service', metadata: { name: 'web', namespace: ns }, spec: { clusterIP: '10.96.0.10', selector: { app: 'web' }, ports: [{ name: 'http', port: 80, targetPort: 'http' }] } },
      { apiVersion: 'v1', kind: 'Service', metadata: { name: 'nobody', namespace: ns }, spec: { clusterIP: '10.96.0.11', selector: { app: 'nobody' }, ports: [{ port: 80 }] } },
    ]);
    const client = pods[0]!;
    await until('the Service in force', async () => (JSON.parse(inNs(client.netns, '/usr/bin/python3', ['-c', CLIENT, '10.96.0.10', '80', '1'])) as string[])[0] === 'ok');
    const got = JSON.parse(inNs(client.netns, '/usr/bin/python3', ['-c', CLIENT, '10.96.0.10', '80', '40'])) as string[];
    expect(got.filter((x) => x === 'ok').length).toBe(40);
    const rows = JSON.parse(flatnet(n1, 'show', 'services', '--json')) as { frontend: string; backends: { address: string; hits: number }[] }[];
    const web = rows.find((r) => r.frontend === '10.96.0.10:80')!;
    expect(web.backends.map((b) => b.address).sort()).toEqual([`${pods[2]!.ip}:80`, `${pods[3]!.ip}:80`]);
    expect(web.backends.every((b) => b.hits >= 5)).toBe(true);
    expect(flatnet(n1, 'show', 'conntrack')).toMatch(/^tcp\s+6 \d+ \w+ src=10\.244\.1\.10 dst=10\.96\.0\.10 sport=\d+ dport=80 .* src=10\.244\.2\.1[01] dst=10\.244\.1\.10 sport=80 /m);
    // The other client is still refused by the policy, through the Service too (judged after DNAT).
    expect(JSON.parse(inNs(pods[1]!.netns, '/usr/bin/python3', ['-c', CLIENT, '10.96.0.10', '80', '1']))).toEqual(['timeout']);
    expect(JSON.parse(inNs(client.netns, '/usr/bin/python3', ['-c', CLIENT, '10.96.0.11', '80', '1']))).toEqual(['ECONNREFUSED']);
  });

  it('deleting the policy opens the web pods again', async () => {
    store('delete', 'networkpolicy', 'web-from-clients', '-n', ns);
    await until('the policy gone', async () => (await probeMatrix([pods[1]!, pods[2]!], 80, 'tcp', 0.3)).reach['n1p1']!['n2p0'] === true);
    expect((await grid()).every((l) => !l.includes('X'))).toBe(true);
    expect(flatnet(n2, 'show', 'policy').trim()).toBe('No NetworkPolicies installed.');
  });
});
