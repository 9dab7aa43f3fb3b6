/**
 * One ClusterIP, two mechanisms: a lab of two flatnet nodes and one kernel-VXLAN node on etcd,
 * where `flatnet kernel-agent` serves the store's Services on the kernel node with kube-proxy's
 * iptables rules (DNAT in the kernel's nat table) and the flatnet daemons serve them in their
 * switch. A Service with three endpoints, one pod on each node (the kernel node's pod is an
 * endpoint through an EndpointSlice with its address), is probed for real from a client pod on a
 * flatnet node (n1p0) and one on the kernel node (n3p0): TCP and UDP reach it, 10,000 TCP
 * connections per client spread uniformly (chi-square), ClientIP affinity keeps a client on one
 * endpoint, removing an endpoint moves new connections only, a Service without endpoints
 * refuses. Counters show which mechanism served which client: the kernel's DNAT rules for n3p0,
 * n1's switch for n1p0. The underlay is captured meanwhile and passes the tshark check.
 *
 *   n1 (flatnet)   n1p0 client   n1p1 endpoint "n1p1"
 *   n2 (flatnet)   n2p0 endpoint "n2p0" (the one removed)
 *   n3 (kernel)    n3p0 client   n3p1 endpoint "n3p1"
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { inNs, ipNs, isRunning, sleep } from '../../src/lab/exec.js';
import { labEtcdEndpoints, labEtcdSpecs, labPodNamespace } from '../../src/lab/etcd-lab.js';
import { flatnetMain } from '../../src/lab/flatnet-node.js';
import { labDown, labNamespaces, labUp } from '../../src/lab/lab.js';
import { dissect, evaluateCapture, expectationOf, startCapture, type Capture } from '../../src/lab/tshark-check.js';
import type { LabNode, LabPod, LabState } from '../../src/lab/topology.js';
import { ensureDist, labSkipReason, uniqueLabName } from '../support/lab.js';
import { chiSquareUniform, UNIFORMITY_ALPHA } from './chi-square.js';

const skip = labSkipReason();

/** An endpoint: answers every TCP connection (and every line on it) and every UDP datagram with its name. */
const SERVER = String.raw`
import socket, selectors, sys, threading
name = sys.argv[1].encode(); port = int(sys.argv[2])
def udp():
    u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); u.bind(('0.0.0.0', port))
    while True:
        d, a = u.recvfrom(2048); u.sendto(name, a)
threading.Thread(target=udp, daemon=True).start()
sel = selectors.DefaultSelector()
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1); s.bind(('0.0.0.0', port)); s.listen(4096); s.setblocking(False)
sel.register(s, selectors.EVENT_READ)
print('ready', flush=True)
while True:
    for key, _ in sel.select():
        if key.fileobj is s:
            try: c, _ = s.accept()
            except BlockingIOError: continue
            c.setblocking(False)
            try: c.send(name)
            except OSError: c.close(); continue
            sel.register(c, selectors.EVENT_READ)
        else:
            c = key.fileobj
            try: d = c.recv(64)
            except OSError: d = b''
            if d:
                try: c.send(name)
                except OSError: pass
            else:
                sel.unregister(c); c.close()
`;

/** N new connections (TCP) or N new sockets' datagrams (UDP): how often each answer came. */
const CLIENT = String.raw`
import socket, sys, json, errno
mode, vip, port, n = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
out = {}
for i in range(n):
    if mode == 'tcp':
        c = socket.socket(); c.settimeout(3)
        try:
            c.connect((vip, port)); r = c.recv(16).decode() or 'EOF'
        except socket.timeout: r = 'timeout'
        except OSError as e: r = errno.errorcode.get(e.errno, str(e))
    else:
        c = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); c.settimeout(2)
        try:
            c.connect((vip, port)); c.send(b'?'); r = c.recv(16).decode()
        except socket.timeout: r = 'timeout'
        except OSError as e: r = errno.errorcode.get(e.errno, str(e))
    c.close()
    out[r] = out.get(r, 0) + 1
print(json.dumps(out))
`;

/** One TCP connection held open, to an endpoint other than argv[3]: its name, then one answer per line read. */
const HOLD = String.raw`
import socket, sys
vip, port, avoid = sys.argv[1], int(sys.argv[2]), sys.argv[3]
for i in range(50):
    c = socket.socket(); c.settimeout(3); c.connect((vip, port)); first = c.recv(16).decode()
    if first != avoid: break
    c.close()
print(first, flush=True)
for line in sys.stdin:
    try:
        c.send(b'x'); print(c.recv(16).decode() or 'EOF', flush=True)
    except OSError as e:
        print('error ' + str(e), flush=True)
`;

const VIP = '10.96.0.10', STICKY = '10.96.0.12', NOBODY = '10.96.0.11';
const CONNECTIONS = 10_000;

type Answers = Record<string, number>;

describe.skipIf(skip !== null)(`a ClusterIP served by kube-proxy's rules on the kernel node and by flatnet on flatnet nodes${skip === null ? '' : ` (skipped: ${skip})`}`, () => {
  const name = uniqueLabName('s');
  let lab: LabState, n1: LabNode, n3: LabNode;
  let clients: { flatnet: LabPod; kernel: LabPod };
  let endpoints: LabPod[] = [];
  let capture: Capture | null = null;
  const procs: ChildProcess[] = [];
  let ns = '';

  const store = (...args: string[]): string => inNs(labEtcdSpecs(lab)[0]!.ns, process.execPath, [flatnetMain(), ...args, '--etcd', labEtcdEndpoints(lab).join(',')]);
  const apply = (docs: unknown[]): string => {
    const f = join(lab.stateDir, `apply-${Date.now()}.json`);
    writeFileSync(f, docs.map((d) => JSON.stringify(d)).join('\n---\n'));
    return store('apply', '-f', f);
  };
  const probe = (pod: LabPod, mode: 'tcp' | 'udp', vip: string, n: number): Answers =>
    JSON.parse(inNs(pod.ns, '/usr/bin/python3', ['-c', CLIENT, mode, vip, '80', String(n)], { timeoutMs: 120_000 })) as Answers;
  const until = async (what: string, f: () => boolean | Promise<boolean>, ms = 15_000): Promise<void> => {
    const t0 = Date.now();
    while (!(await f())) {
      if (Date.now() - t0 > ms) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
      await sleep(50);
    }
  };
  const slice = (svc: string, eps: LabPod[]): unknown => ({
    apiVersion: 'discovery.k8s.io/v1', kind: 'EndpointSlice', addressType: 'IPv4',
    metadata: { name: `${svc}-1`, namespace: ns, labels: { 'kubernetes.io/service-name': svc } },
    ports: [{ name: 'tcp', port: 8080, protocol: 'TCP' }, { name: 'udp', port: 8080, protocol: 'UDP' }],
    endpoints: eps.map((p) => ({ addresses: [p.ip], nodeName: p.node, conditions: { ready: true } })),
  });
  const service = (svc: string, ip: string, extra: Record<string, unknown> = {}): unknown => ({
    apiVersion: 'v1', kind: 'Service', metadata: { name: svc, namespace: ns },
    spec: { clusterIP: ip, ports: [{ name: 'tcp', port: 80, protocol: 'TCP', targetPort: 8080 }, { name: 'udp', port: 80, protocol: 'UDP', targetPort: 8080 }], ...extra },
  });
  /** The kernel node's nat rules with their counters: packets through each DNAT of Service echo's TCP port. */
  const kernelDnat = (): Record<string, number> => {
    const out: Record<string, number> = {};
    for (const l of inNs(n3.ns, 'iptables-save', ['-c', '-t', 'nat']).split('\n')) {
      const m = /^\[(\d+):\d+\] -A KUBE-SEP-\S+ -p tcp -m comment --comment "?([^" ]+)"? .*--to-destination ([\d.]+):8080/.exec(l);
      if (m !== null && m[2] === `${ns}/echo:tcp`) out[m[3]!] = (out[m[3]!] ?? 0) + Number(m[1]);
    }
    return out;
  };
  /** n1's switch: new connections it sent to each TCP backend of the Service. */
  const flatnetHits = (): Record<string, number> => {
    const rows = JSON.parse(inNs(n1.ns, process.execPath, [flatnetMain(), 'show', 'services', '--json', '--socket', n1.socket!])) as { frontend: string; protocol: string; backends: { address: string; hits: number }[] }[];
    const out: Record<string, number> = {};
    for (const r of rows.filter((x) => x.frontend === `${VIP}:80` && x.protocol.toUpperCase() === 'TCP')) for (const b of r.backends) out[b.address.split(':')[0]!] = b.hits;
    return out;
  };

  beforeAll(async () => {
    ensureDist();
    lab = await labUp({ name, nodes: 3, kernelNodes: 1, pods: 2, etcd: 1, leaseTtlSeconds: 5 });
    const [a, b, c] = lab.nodes as [LabNode, LabNode, LabNode];
    n1 = a;
    n3 = c;
    ns = labPodNamespace(name);
    clients = { flatnet: a.pods[0]!, kernel: c.pods[0]! };
    endpoints = [a.pods[1]!, b.pods[0]!, c.pods[1]!];
    // Each client opens more than 10,000 connections within a minute (the ports in TIME_WAIT stay taken).
    for (const p of Object.values(clients)) inNs(p.ns, 'sysctl', ['-qw', 'net.ipv4.ip_local_port_range=1024 65000']);
    // A node has a default route: without one, a packet to a ClusterIP that kube-proxy does not
    // DNAT fails routing on the kernel node before the filter table can REJECT it. Nothing leaves
    // by it (REJECT answers in FORWARD, before any neighbour lookup; the capture would show it).
    ipNs(n3.ns, 'route', 'add', 'default', 'via', '198.51.100.254', 'dev', 'eth0');
    capture = await startCapture(lab, join(lab.dir, 'underlay.pcapng'));
    await Promise.all(endpoints.map((p) => new Promise<void>((resolve, reject) => {
      const s = spawn('ip', ['netns', 'exec', p.ns, '/usr/bin/python3', '-c', SERVER, p.name, '8080'], { stdio: ['ignore', 'pipe', 'inherit'] });
      procs.push(s);
      s.stdout!.once('data', () => resolve());
      s.once('exit', (code) => reject(new Error(`the server in ${p.name} exited (${code})`)));
    })));
    apply([service('echo', VIP), slice('echo', endpoints), service('sticky', STICKY, { sessionAffinity: 'ClientIP' }), slice('sticky', endpoints), service('nobody', NOBODY)]);
    const names = endpoints.map((e) => e.name);
    await until('the Services in force on both nodes', () => Object.values(clients).every((p) => Object.keys(probe(p, 'tcp', VIP, 3)).every((k) => names.includes(k))));
    await until("kube-proxy's rules for the three endpoints on the kernel node", () => Object.keys(kernelDnat()).length === 3);
  }, 120_000);

  afterAll(async () => {
    for (const p of procs) if (p.exitCode === null && p.pid !== undefined) p.kill('SIGKILL');
    await capture?.stop().catch(() => undefined);
    await labDown(name);
    expect(labNamespaces(name)).toEqual([]);
  });

  it('clients on both kinds of node reach the ClusterIP over TCP and UDP, every endpoint answering', () => {
    for (const p of Object.values(clients)) {
      for (const mode of ['tcp', 'udp'] as const) {
        const got = probe(p, mode, VIP, 60);
        expect(Object.keys(got).sort(), `${p.name} ${mode}`).toEqual(['n1p1', 'n2p0', 'n3p1']);
      }
    }
  });

  it.each([['flatnet', 'n1p0'], ['kernel', 'n3p0']] as const)(`10,000 TCP connections from the %s node's client (%s) spread uniformly over the 3 endpoints (chi-square, df 2)`, (kind, _client) => {
    const client = clients[kind];
    const dnat0 = kernelDnat(), hits0 = flatnetHits();
    const got = probe(client, 'tcp', VIP, CONNECTIONS);
    const counts = endpoints.map((e) => got[e.name] ?? 0);
    expect(counts.reduce((s, x) => s + x, 0), JSON.stringify(got)).toBe(CONNECTIONS);
    const chi = chiSquareUniform(counts);
    console.log(`${kind} node (${client.name}): ${endpoints.map((e, i) => `${e.name} ${counts[i]}`).join(', ')}; X^2 = ${chi.statistic.toFixed(3)}, df ${chi.df}, p = ${chi.p.toPrecision(3)}`);
    expect(chi.p).toBeGreaterThan(UNIFORMITY_ALPHA);
    // Who translated: the kernel's DNAT rules for the kernel node's client, n1's switch for n1's.
    const dnat = kernelDnat(), hits = flatnetHits();
    const sum = (now: Record<string, number>, before: Record<string, number>): number => Object.entries(now).reduce((s, [k, v]) => s + v - (before[k] ?? 0), 0);
    if (kind === 'kernel') {
      expect(sum(dnat, dnat0)).toBe(CONNECTIONS);
      expect(sum(hits, hits0)).toBe(0);
    } else {
      expect(sum(hits, hits0)).toBe(CONNECTIONS);
      expect(sum(dnat, dnat0)).toBe(0);
    }
  });

  it('sessionAffinity ClientIP sends each client to one endpoint, over TCP and UDP', () => {
    for (const p of Object.values(clients)) {
      for (const mode of ['tcp', 'udp'] as const) {
        const got = probe(p, mode, STICKY, 40);
        expect(Object.values(got), `${p.name} ${mode}: ${JSON.stringify(got)}`).toEqual([40]);
        expect(endpoints.map((e) => e.name)).toContain(Object.keys(got)[0]);
      }
    }
  });

  it('a Service without endpoints refuses, over TCP and UDP (ICMP port unreachable), on both', () => {
    for (const p of Object.values(clients)) {
      expect(probe(p, 'tcp', NOBODY, 1), p.name).toEqual({ ECONNREFUSED: 1 });
      expect(probe(p, 'udp', NOBODY, 1), p.name).toEqual({ ECONNREFUSED: 1 });
    }
  });

  it('removing an endpoint moves new connections only: an open connection to a remaining endpoint keeps working', async () => {
    const removed = endpoints[1]!;
    const held = await Promise.all(Object.values(clients).map(async (p) => {
      const h = spawn('ip', ['netns', 'exec', p.ns, '/usr/bin/python3', '-c', HOLD, VIP, '80', removed.name], { stdio: ['pipe', 'pipe', 'inherit'] });
      procs.push(h);
      const lines = createInterface({ input: h.stdout! })[Symbol.asyncIterator]();
      const next = async (): Promise<string> => ((await lines.next()).value as string | undefined) ?? 'EOF';
      return { client: p.name, proc: h, first: await next(), ask: async (): Promise<string> => { h.stdin!.write('?\n'); return next(); } };
    }));
    for (const h of held) expect(h.first).not.toBe(removed.name);
    apply([slice('echo', endpoints.filter((e) => e !== removed))]);
    await until('the endpoint gone from the kernel rules', () => kernelDnat()[removed.ip] === undefined);
    // And, as kube-proxy does, the kernel's UDP connections to it deleted (a reused client port would still reach it).
    await until('no UDP connection to the endpoint left on the kernel node', () => inNs(n3.ns, 'conntrack', ['-L', '-p', 'udp', '--orig-dst', VIP, '--dst-nat', removed.ip]).trim() === '');
    await until("the endpoint gone from n1's switch", () => flatnetHits()[removed.ip] === undefined);
    for (const h of held) expect(await h.ask(), h.client).toBe(h.first);
    for (const p of Object.values(clients)) {
      for (const mode of ['tcp', 'udp'] as const) {
        const got = probe(p, mode, VIP, 300);
        expect(Object.keys(got).sort(), `${p.name} ${mode}: ${JSON.stringify(got)}`).toEqual([endpoints[0]!.name, endpoints[2]!.name]);
      }
    }
    for (const h of held) expect(await h.ask(), h.client).toBe(h.first);
    for (const h of held) h.proc.stdin!.end();
  });

  it('the underlay capture is VXLAN of this lab only, nothing malformed (tshark)', async () => {
    await capture!.stop();
    const r = evaluateCapture(await dissect(capture!.file, lab.options.port), expectationOf(lab));
    capture = null;
    expect(r.problems).toEqual([]);
    expect(r.ok).toBe(true);
    expect(r.innerTcp).toBeGreaterThan(2 * CONNECTIONS);
  }, 120_000);

  it('the kernel agent removes every rule it wrote when it exits', async () => {
    const pid = lab.agents!['n3']!.pid;
    expect(inNs(n3.ns, 'iptables-save', [])).toContain('KUBE-SVC-');
    process.kill(pid, 'SIGTERM');
    await until('the agent gone', () => !isRunning(pid), 10_000);
    const left = inNs(n3.ns, 'iptables-save', []).split('\n').filter((l) => l.includes('KUBE'));
    expect(left).toEqual([]);
  });
});
