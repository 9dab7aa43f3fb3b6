// The `io` backend through the lab (two flatnet nodes and a kernel node, one pod each), the
// daemons started with FLATNET_IO=af_xdp (what CI's second namespace pass sets):
//
//   - `show ports`: the overlay says backend af_xdp (program attached natively on the underlay
//     veth, through a BPF link), and so do the pods (a program on each pod's veth); pods reach
//     each other across flatnet and kernel nodes, VXLAN arriving and leaving through the AF_XDP
//     socket, the next hop resolved from the kernel's neighbour table after one frame through
//     the raw socket;
//   - TCP from pods with TX checksum offload on (the veth default): the pod port finishes the
//     partial checksums XDP hands over, and iperf3 runs both ways to flatnet and kernel nodes;
//   - the node's own underlay traffic (ARP, ping) is the kernel's, as before;
//   - SIGKILL: no XDP program left on the underlay or the pod's veth, the node's underlay still
//     answers;
//   - `podIo: packet` ($FLATNET_POD_IO): the pods on AF_PACKET beside the AF_XDP overlay;
//   - a pod whose veth refuses XDP (MTU 9000) stays on AF_PACKET, the overlay on AF_XDP;
//   - fallback forced (no program object): `io: auto` runs on the packet backend and forwards;
//     `io: af_xdp` refuses to start with ERR_IO_AF_XDP.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { request } from '../../src/daemon/control.js';
import type { PortRow } from '../../src/daemon/show.js';
import { inNs, inNsAsync, ipNs } from '../../src/lab/exec.js';
import { spawnDaemon, stopDaemon, waitReady } from '../../src/lab/flatnet-node.js';
import { labDown, labNamespaces, labUp } from '../../src/lab/lab.js';
import { iperf, ping } from '../../src/lab/runner.js';
import { writeState, type LabNode, type LabState } from '../../src/lab/topology.js';
import { ensureDist, labSkipReason, uniqueLabName } from '../support/lab.js';

const skip = labSkipReason(false);

async function ports(node: LabNode): Promise<PortRow[]> {
  return (await request(node.socket!, { cmd: 'show', what: 'ports' })) as PortRow[];
}

/** withEnv runs `fn` with `vars` set in process.env (daemons spawned inside inherit them). */
async function withEnv<T>(vars: Record<string, string>, fn: () => Promise<T>): Promise<T> {
  const saved = Object.fromEntries(Object.keys(vars).map((k) => [k, process.env[k]]));
  Object.assign(process.env, vars);
  try {
    return await fn();
  } finally {
    for (const [k, v] of Object.entries(saved)) {
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
    }
  }
}

const xdpOn = (n: LabNode, dev: string): boolean => /prog\/xdp/.test(ipNs(n.ns, '-d', 'link', 'show', dev));
const xdpOnUnderlay = (n: LabNode): boolean => xdpOn(n, 'eth0');

/** The kernel frees a BPF link (and so detaches its program) from a work item: poll briefly. */
async function xdpGone(n: LabNode): Promise<boolean> {
  for (let i = 0; i < 100; i++) {
    if (!xdpOnUnderlay(n) && !xdpOn(n, n.pods[0]!.hostIf)) return true;
    await new Promise((r) => setTimeout(r, 20));
  }
  return false;
}

describe.skipIf(skip !== null)(`io backends: AF_XDP overlay, fallback, daemon killed${skip === null ? '' : ` (skipped: ${skip})`}`, () => {
  const name = uniqueLabName('xb');
  let lab: LabState;
  let n1: LabNode, n2: LabNode, k: LabNode;

  beforeAll(async () => {
    ensureDist();
    lab = await withEnv({ FLATNET_IO: 'af_xdp' }, () => labUp({ name, nodes: 3, kernelNodes: 1, pods: 1 }));
    [n1, n2, k] = lab.nodes as [LabNode, LabNode, LabNode];
  });
  afterAll(async () => {
    await labDown(name);
    expect(labNamespaces(name)).toEqual([]);
  });

  async function start(node: LabNode, env: Record<string, string>): Promise<void> {
    lab.daemons[node.name] = await withEnv(env, async () => spawnDaemon(node));
    writeState(lab);
    await waitReady(node, lab.daemons[node.name]!.pid);
  }

  async function restart(node: LabNode, env: Record<string, string>): Promise<void> {
    await stopDaemon(node, lab.daemons[node.name]!.pid, 'SIGTERM', 10_000);
    await start(node, env);
  }

  it('runs the overlay and the pods on AF_XDP and forwards between flatnet and kernel nodes', async () => {
    for (const n of [n1, n2]) {
      const rows = await ports(n);
      const ov = rows.find((r) => r.role === 'overlay')!;
      expect(ov.backend).toBe('af_xdp');
      expect(ov.io).toMatchObject({ backend: 'af_xdp', attach: 'native', link: true });
      expect(rows.filter((r) => r.role === 'pod').map((r) => r.backend)).toEqual(['af_xdp']);
      expect(rows.find((r) => r.role === 'pod')!.io).toMatchObject({ backend: 'af_xdp', link: true, xsk: { umemFrames: 2048 } });
      // One UMEM for the node's sockets: the underlay's and the pod's.
      expect((rows.find((r) => r.role === 'pod')!.io as { umem: number }).umem).toBe((ov.io as { umem: number }).umem);
      expect(xdpOnUnderlay(n)).toBe(true);
      expect(xdpOn(n, n.pods[0]!.hostIf)).toBe(true);
    }
    const p1 = n1.pods[0]!, p2 = n2.pods[0]!, pk = k.pods[0]!;
    for (const [a, b] of [[p1, p2], [p2, p1], [p1, pk], [pk, p1]] as const) {
      expect((await ping(a, b.ip)).received, `${a.name} -> ${b.name}`).toBe(3);
    }
    const ov = (await ports(n1)).find((r) => r.role === 'overlay')!;
    const io = ov.io as { nextHop: { resolved: number; viaKernel: number }; kernel: { rxPackets: number; txPackets: number }; xsk: { rxInvalid: number } };
    // Both peers resolved; after that, frames leave and arrive through the AF_XDP socket.
    expect(io.nextHop.resolved).toBeGreaterThanOrEqual(2);
    expect(ov.txPackets - io.kernel.txPackets).toBeGreaterThan(io.kernel.txPackets);
    expect(ov.rxPackets - io.kernel.rxPackets).toBeGreaterThan(0);
    expect(io.kernel.rxPackets).toBe(0);
  });

  it('carries TCP from pods with checksum offload on, finishing their partial checksums', async () => {
    const p1 = n1.pods[0]!, p2 = n2.pods[0]!, pk = k.pods[0]!;
    type Xsk = { partialChecksums: number; rxInvalid: number; zeroCopyTx: number; copiedTx: number };
    const xsk = async (n: LabNode, role: string): Promise<Xsk> => ((await ports(n)).find((r) => r.role === role)!.io as { xsk: Xsk }).xsk;
    const podXsk = (n: LabNode): Promise<Xsk> => xsk(n, 'pod');
    const before = (await podXsk(n1)).partialChecksums;
    const [pod0, ov0] = [await podXsk(n1), await xsk(n1, 'overlay')];
    for (const [a, b] of [[p1, p2], [p2, p1], [p1, pk], [pk, p1]] as const) {
      const r = await iperf(a, b, 1, '200M');
      expect(r.error, `${a.name} -> ${b.name}`).toBeNull();
      expect(r.bytes, `${a.name} -> ${b.name}`).toBeGreaterThan(1_000_000);
    }
    // The pod's stack handed every TCP segment over with a partial checksum: one finished per
    // data segment it sent (1 s at up to 200 Mbit/s from n1p0, twice: thousands).
    const after = await podXsk(n1);
    expect(after.partialChecksums - before).toBeGreaterThan(1000);
    expect(after.rxInvalid).toBe(0);
    // Both ways through the shared UMEM without a copy: the pod's segments left on the
    // underlay's TX ring from the chunks they arrived in, the peer's went to the pod the same way.
    const ov1 = await xsk(n1, 'overlay');
    expect(ov1.zeroCopyTx - ov0.zeroCopyTx).toBeGreaterThan(1000);
    expect(after.zeroCopyTx - pod0.zeroCopyTx).toBeGreaterThan(1000);
  });

  it('leaves the node\'s own underlay traffic to the kernel (ARP, ping between node addresses)', async () => {
    ipNs(n1.ns, 'neigh', 'flush', 'dev', 'eth0');
    expect((await inNsAsync(n1.ns, 'ping', ['-c', '2', '-i', '0.2', '-W', '2', n2.underlayIp])).code).toBe(0);
    expect((await inNsAsync(n1.ns, 'ping', ['-c', '2', '-i', '0.2', '-W', '2', k.underlayIp])).code).toBe(0);
  });

  it('a killed daemon leaves no XDP program and a working underlay; a restart takes over again', async () => {
    await stopDaemon(n1, lab.daemons[n1.name]!.pid, 'SIGKILL', 5000);
    expect(await xdpGone(n1)).toBe(true);
    expect((await inNsAsync(n1.ns, 'ping', ['-c', '2', '-i', '0.2', '-W', '2', n2.underlayIp])).code).toBe(0);
    lab.daemons[n1.name] = await withEnv({ FLATNET_IO: 'af_xdp' }, async () => spawnDaemon(n1));
    writeState(lab);
    await waitReady(n1, lab.daemons[n1.name]!.pid);
    expect(xdpOnUnderlay(n1)).toBe(true);
    expect((await ping(n1.pods[0]!, n2.pods[0]!.ip)).received).toBe(3);
  });

  it('podIo packet: the overlay on AF_XDP, the pods on AF_PACKET with their TSO; ping and TCP both ways', async () => {
    await restart(n1, { FLATNET_IO: 'af_xdp', FLATNET_POD_IO: 'packet' });
    try {
      const rows = await ports(n1);
      expect(rows.find((r) => r.role === 'overlay')!.backend).toBe('af_xdp');
      const pod = rows.find((r) => r.role === 'pod')!;
      expect(pod.backend).toBe('packet');
      expect(xdpOn(n1, n1.pods[0]!.hostIf)).toBe(false);
      expect(xdpOnUnderlay(n1)).toBe(true);
      // The pod keeps TSO (a veth gives it up while its peer runs a native XDP program).
      const tso = (): string => /tcp-segmentation-offload: (\w+)/.exec(inNs(n1.pods[0]!.ns, 'ethtool', ['-k', 'eth0']))![1]!;
      expect(tso()).toBe('on');
      const p1 = n1.pods[0]!, p2 = n2.pods[0]!;
      expect((await ping(p1, p2.ip)).received).toBe(3);
      const csumErrors = (): number => {
        const lines = inNs(p2.ns, 'cat', ['/proc/net/snmp']).split('\n').filter((l) => l.startsWith('Tcp:'));
        const [names, values] = lines.map((l) => l.split(/\s+/));
        return Number(values![names!.indexOf('InCsumErrors')]);
      };
      const errors0 = csumErrors();
      const counters = async (): Promise<Record<string, number>> => ((await request(n1.socket!, { cmd: 'show', what: 'counters' })) as { counters: Record<string, number> }).counters;
      const inPlace0 = (await counters())['gso_segments_in_place']!;
      for (const [a, b] of [[p1, p2], [p2, p1]] as const) {
        const r = await iperf(a, b, 1, '200M');
        expect(r.error, `${a.name} -> ${b.name}`).toBeNull();
        expect(r.bytes, `${a.name} -> ${b.name}`).toBeGreaterThan(1_000_000);
      }
      // The pod's super-frames were segmented by the switch (no tunnel TAP beside the AF_XDP
      // overlay) and left as trains in pieces, their payloads where they lay; the far pod's
      // TCP found every segment's checksum good.
      const c = await counters();
      expect(c['gso_segments_in_place']! - inPlace0).toBeGreaterThan(500);
      expect(c['gso_segments_in_place']).toBe(c['gso_segments']);
      expect(csumErrors()).toBe(errors0);
    } finally {
      await restart(n1, { FLATNET_IO: 'af_xdp' });
    }
    const back = await ports(n1);
    expect(back.filter((r) => r.role === 'pod').map((r) => r.backend)).toEqual(['af_xdp']);
    expect(/tcp-segmentation-offload: (\w+)/.exec(inNs(n1.pods[0]!.ns, 'ethtool', ['-k', 'eth0']))![1]).toBe('off');
  });

  it('a pod whose veth refuses XDP (MTU 9000) stays on AF_PACKET under io af_xdp, and keeps its network', async () => {
    const pod = n1.pods[0]!;
    const mtu = /mtu (\d+)/.exec(ipNs(pod.ns, 'link', 'show', 'eth0'))![1]!;
    await stopDaemon(n1, lab.daemons[n1.name]!.pid, 'SIGTERM', 10_000);
    expect(await xdpGone(n1)).toBe(true);
    // Without a program on its peer the pod may take an MTU XDP cannot (a veth refuses XDP while
    // its peer's MTU exceeds what a page holds).
    ipNs(pod.ns, 'link', 'set', 'eth0', 'mtu', '9000');
    try {
      await start(n1, { FLATNET_IO: 'af_xdp' });
      const rows = await ports(n1);
      expect(rows.find((r) => r.role === 'overlay')!.backend).toBe('af_xdp');
      expect(rows.filter((r) => r.role === 'pod').map((r) => r.backend)).toEqual(['packet']);
      expect(xdpOn(n1, pod.hostIf)).toBe(false);
      expect((await ping(pod, n2.pods[0]!.ip)).received).toBe(3);
    } finally {
      ipNs(pod.ns, 'link', 'set', 'eth0', 'mtu', mtu);
      await restart(n1, { FLATNET_IO: 'af_xdp' });
    }
    expect((await ports(n1)).filter((r) => r.role === 'pod').map((r) => r.backend)).toEqual(['af_xdp']);
  });

  it('falls back to the packet backend with io auto when AF_XDP is unavailable; io af_xdp refuses to start', async () => {
    const missing = { FLATNET_XDP_OBJECT: '/nonexistent/flatnet_xdp.o' };
    await restart(n1, { FLATNET_IO: 'auto', ...missing });
    const ov = (await ports(n1)).find((r) => r.role === 'overlay')!;
    expect(ov.backend).toBe('packet');
    expect(ov.io).toBeNull();
    expect((await ports(n1)).filter((r) => r.role === 'pod').map((r) => r.backend)).toEqual(['packet']);
    expect(await xdpGone(n1)).toBe(true);
    expect((await ping(n1.pods[0]!, n2.pods[0]!.ip)).received).toBe(3);

    await stopDaemon(n1, lab.daemons[n1.name]!.pid, 'SIGTERM', 10_000);
    const rec = await withEnv({ FLATNET_IO: 'af_xdp', ...missing }, async () => spawnDaemon(n1));
    lab.daemons[n1.name] = rec;
    writeState(lab);
    await expect(waitReady(n1, rec.pid)).rejects.toThrow(/ERR_IO_AF_XDP/);
    await restart(n1, { FLATNET_IO: 'af_xdp' });
  });
});
