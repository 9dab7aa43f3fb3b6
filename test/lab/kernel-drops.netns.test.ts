// Loss the kernel causes is visible in the daemon: with n1's daemon stopped (SIGSTOP), a pod of
// n1 floods its veth (the AF_PACKET queue of that pod port overflows) and a pod of n2 floods n1
// through the overlay (n1's UDP receive buffer overflows). After SIGCONT, `show ports` has the
// drops per port, `show counters` their sum as kernel_dropped, /metrics
// flatnet_port_kernel_drops_total, and the log says which counter rose. The netns-af_xdp project
// runs it again with an AF_XDP overlay, whose ring drops (XDP_STATISTICS) count the same way.
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { request } from '../../src/daemon/control.js';
import type { CountersSnapshot, PortRow } from '../../src/daemon/show.js';
import { sleep } from '../../src/lab/exec.js';
import { labDown, labNamespaces, labUp } from '../../src/lab/lab.js';
import type { LabState } from '../../src/lab/topology.js';
import { ensureDist, labSkipReason, uniqueLabName } from '../support/lab.js';

const skip = labSkipReason();

const flood = (ns: string, dst: string, n: number): void => {
  execFileSync('ip', ['netns', 'exec', ns, 'python3', '-c', `
import socket
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
for i in range(${n}):
    s.sendto(b'x' * 18, ('${dst}', 9))
`], { timeout: 60_000 });
};

describe.skipIf(skip !== null)(`kernel drops in a lab${skip === null ? '' : ` (skipped: ${skip})`}`, () => {
  const name = uniqueLabName('h');
  let s: LabState;
  beforeAll(async () => {
    ensureDist();
    // Pods attached by the CNI plugin after the daemon started, a moment before the flood.
    s = await labUp({ name, nodes: 2, kernelNodes: 0, pods: 1 });
  });
  afterAll(async () => {
    await labDown(name);
    expect(labNamespaces(name)).toEqual([]);
  });

  it('counts the AF_PACKET and UDP socket drops of a stopped daemon per port, in counters, /metrics and the log', async () => {
    const n1 = s.nodes.find((n) => n.name === 'n1')!, n2 = s.nodes.find((n) => n.name === 'n2')!;
    const p1 = n1.pods[0]!, p2 = n2.pods[0]!;
    const pid = s.daemons['n1']!.pid;
    // Neighbours resolved first: with n1 stopped, an ARP for the gateway would go unanswered and
    // hold the flood's datagrams (and its socket buffer) until it fails.
    execFileSync('ip', ['netns', 'exec', p1.ns, 'ping', '-c', '2', '-i', '0.2', p2.ip], { timeout: 30_000 });
    execFileSync('ip', ['netns', 'exec', p2.ns, 'ping', '-c', '2', '-i', '0.2', p1.ip], { timeout: 30_000 });
    process.kill(pid, 'SIGSTOP');
    try {
      flood(p1.ns, p2.ip, 40_000); // into n1's pod port, which n1 does not read now
      flood(p2.ns, p1.ip, 60_000); // through n2 into n1's overlay socket
    } finally {
      process.kill(pid, 'SIGCONT');
    }
    await sleep(1500);
    const ports = (await request(n1.socket!, { cmd: 'show', what: 'ports' })) as PortRow[];
    const pod = ports.find((p) => p.role === 'pod')!, overlay = ports.find((p) => p.role === 'overlay')!, host = ports.find((p) => p.role === 'host')!;
    expect(pod.kernelDrops!.socket).toBeGreaterThan(0);
    expect(overlay.kernelDrops!.socket).toBeGreaterThan(0);
    expect(pod.kernelDrops!.ifRxDropped).not.toBeNull();
    expect(host.kernelDrops).not.toBeNull(); // the TAP: its interface counters
    const counters = (await request(n1.socket!, { cmd: 'show', what: 'counters' })) as CountersSnapshot;
    expect(counters.counters['kernel_dropped']).toBeGreaterThanOrEqual(pod.kernelDrops!.socket + overlay.kernelDrops!.socket);
    const metrics = execFileSync('ip', ['netns', 'exec', n1.ns, 'python3', '-c', "import urllib.request;print(urllib.request.urlopen('http://127.0.0.1:9465/metrics').read().decode())"], { encoding: 'utf8' });
    const m = metrics.match(new RegExp(`flatnet_port_kernel_drops_total\\{[^}]*port="${pod.name}"[^}]*where="socket"[^}]*\\} (\\d+)`));
    expect(Number(m?.[1])).toBeGreaterThan(0);
    const log = readFileSync(n1.log, 'utf8').split('\n').filter((l) => l !== '').map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(log.some((l) => l['counter'] === 'kernel_socket_drops' && l['port'] === pod.name)).toBe(true);
    console.log(`kernel drops on n1: pod port ${pod.kernelDrops!.socket}, overlay ${overlay.kernelDrops!.socket}, total ${counters.counters['kernel_dropped']}`);
  });
});
