// The MTU tax at the boundary (issue 5), through the lab: two flatnet nodes and one kernel node
// (flannel-style), pods with offloads on (TSO/GSO, partial checksums), one pod of n1
// misconfigured with MTU 1500 on a 1500-byte underlay (50 bytes too many after VXLAN).
//
//   - ping -M do -s 1472 (a 1500-byte packet with DF) to a remote pod: answered with ICMP
//     fragmentation needed, next-hop MTU 1450; the pod's route cache learns 1450;
//   - TCP from that pod to remote pods (flatnet and kernel nodes) then completes, data intact;
//   - ping -M dont -s 1472 (no DF): the remote pod gets the whole payload (fragmented inside
//     the tunnel, reassembled by the receiver) and answers;
//   - iperf3 with offloads on, both directions, flatnet <-> flatnet and flatnet <-> kernel;
//   - the underlay capture of all this: no outer fragment, no outer packet above the underlay
//     MTU, every frame VXLAN.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { inNs, inNsAsync, ipNs, runAsync } from '../../src/lab/exec.js';
import { labDown, labNamespaces, labUp } from '../../src/lab/lab.js';
import { startCapture, type Capture } from '../../src/lab/tshark-check.js';
import type { LabNode, LabPod, LabState } from '../../src/lab/topology.js';
import { ensureDist, labSkipReason, uniqueLabName } from '../support/lab.js';

const skip = labSkipReason(false);

describe.skipIf(skip !== null)(`MTU rules and offloads end to end${skip === null ? '' : ` (skipped: ${skip})`}`, () => {
  const name = uniqueLabName('mt');
  let dir = ''; // made in beforeAll: a skipped suite's body still runs, its hooks do not
  let lab: LabState;
  let capture: Capture;
  let bad: LabPod, flatnetPeer: LabPod, kernelPeer: LabPod;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'flatnet-mtu-'));
    ensureDist();
    lab = await labUp({ name, nodes: 3, kernelNodes: 1, pods: 1 });
    const [n1, n2, k] = lab.nodes as [LabNode, LabNode, LabNode];
    bad = n1.pods[0]!;
    flatnetPeer = n2.pods[0]!;
    kernelPeer = k.pods[0]!;
    ipNs(bad.ns, 'link', 'set', 'eth0', 'mtu', '1500'); // the misconfiguration
    capture = await startCapture(lab, join(dir, 'underlay.pcapng'));
  });
  afterAll(async () => {
    await capture?.stop().catch(() => undefined);
    await labDown(name);
    if (dir !== '') rmSync(dir, { recursive: true, force: true });
    expect(labNamespaces(name)).toEqual([]);
  });

  it('answers a 1500-byte DF ping with fragmentation needed (MTU 1450), and the pod learns it', async () => {
    const r = await inNsAsync(bad.ns, 'ping', ['-M', 'do', '-s', '1472', '-c', '3', '-i', '0.2', '-W', '1', flatnetPeer.ip]);
    expect(r.code).not.toBe(0);
    expect(`${r.stdout}${r.stderr}`).toMatch(/mtu\s*=\s*1450/i);
    expect(ipNs(bad.ns, 'route', 'get', flatnetPeer.ip)).toMatch(/mtu 1450/);
    // With the learned MTU, a DF ping that fits goes through.
    const ok = await inNsAsync(bad.ns, 'ping', ['-M', 'do', '-s', '1422', '-c', '2', '-i', '0.2', '-W', '2', flatnetPeer.ip]);
    expect(ok.stdout).toMatch(/2 received/);
  });

  it('delivers a 1500-byte ping without DF whole: fragmented in the tunnel, reassembled by the receiver', async () => {
    for (const to of [flatnetPeer, kernelPeer]) {
      const r = await inNsAsync(bad.ns, 'ping', ['-M', 'dont', '-s', '1472', '-c', '3', '-i', '0.2', '-W', '2', to.ip]);
      expect(r.stdout, `${bad.name} -> ${to.name}`).toMatch(/3 received/);
      expect(r.stdout).toMatch(/1480 bytes from/);
    }
  });

  it('completes TCP from the misconfigured pod with the data intact (flatnet and kernel peers)', async () => {
    // 4 MB through a Python sink that answers with the SHA-256 of what it received.
    const script = (host: string): string => `
import hashlib, os, socket, sys
data = bytes((i * 7 + 3) & 0xff for i in range(4 << 20))
s = socket.create_connection((${JSON.stringify(host)}, 7001), timeout=20)
s.sendall(data); s.shutdown(socket.SHUT_WR)
got = b''
while True:
    b = s.recv(4096)
    if not b: break
    got += b
print(got.decode() == hashlib.sha256(data).hexdigest())
`;
    const sink = `
import hashlib, socket
l = socket.socket(); l.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1); l.bind(('0.0.0.0', 7001)); l.listen(1)
c, _ = l.accept(); h = hashlib.sha256()
while True:
    b = c.recv(65536)
    if not b: break
    h.update(b)
c.sendall(h.hexdigest().encode()); c.close(); l.close()
`;
    for (const to of [flatnetPeer, kernelPeer]) {
      const server = inNsAsync(to.ns, '/usr/bin/python3', ['-c', sink], { timeoutMs: 40_000 });
      await new Promise((r) => setTimeout(r, 400));
      const client = await inNsAsync(bad.ns, '/usr/bin/python3', ['-c', script(to.ip)], { timeoutMs: 40_000 });
      expect(client.stdout.trim(), `${bad.name} -> ${to.name}: ${client.stderr}`).toBe('True');
      expect((await server).code).toBe(0);
    }
  });

  it('moves iperf3 TCP with offloads on in both directions, flatnet <-> flatnet and flatnet <-> kernel', async () => {
    const good = lab.nodes[0]!.pods[0]!;
    ipNs(good.ns, 'link', 'set', 'eth0', 'mtu', '1450');
    for (const [a, b] of [[good, flatnetPeer], [flatnetPeer, good], [good, kernelPeer], [kernelPeer, good]] as const) {
      inNs(b.ns, 'iperf3', ['-s', '-1', '-D', '-p', '5220']);
      await new Promise((r) => setTimeout(r, 300));
      const r = await inNsAsync(a.ns, 'iperf3', ['-c', b.ip, '-p', '5220', '-t', '1', '-b', '200M', '-J'], { timeoutMs: 30_000 });
      const j = JSON.parse(r.stdout) as { error?: string; end: { sum_received: { bytes: number } } };
      expect(j.error, `${a.name} -> ${b.name}`).toBeUndefined();
      expect(j.end.sum_received.bytes, `${a.name} -> ${b.name}`).toBeGreaterThan(5_000_000);
    }
    ipNs(good.ns, 'link', 'set', 'eth0', 'mtu', '1500');
  });

  it('never put an outer fragment, or an outer packet above the underlay MTU, on the underlay', async () => {
    await capture.stop();
    // The first IPv4 header of each frame is the outer one (-E occurrence=f).
    const r = await runAsync('tshark', ['-r', capture.file, '-Y', 'udp', '-T', 'fields', '-E', 'occurrence=f', '-e', 'ip.len', '-e', 'ip.flags.mf', '-e', 'ip.frag_offset', '-e', 'udp.dstport', '-d', `udp.port==${lab.options.port},vxlan`], { timeoutMs: 120_000 });
    expect(r.code, r.stderr).toBe(0);
    const rows = r.stdout.trim().split('\n').filter(Boolean).map((l) => l.split('\t'));
    expect(rows.length).toBeGreaterThan(1000);
    const bigOrFragmented = rows.filter(([len, mf, off]) => Number(len) > 1500 || mf === 'True' || mf === '1' || Number(off) > 0);
    expect(bigOrFragmented).toEqual([]);
    expect(rows.every(([, , , dport]) => Number(dport) === lab.options.port)).toBe(true);
  });
});
