// tunnelOffload: auto in a lab of two flatnet nodes and one kernel-VXLAN node: TCP super-frames
// from pods go whole to the kernel through each daemon's tunnel TAP (UDP-tunnel GSO), which
// forwards them to the underlay. Once with the underlay veths' offloads on (the super-frames
// cross the underlay whole, as the kernel's own VXLAN sends them, and the receiving flatnet node
// takes them in as TSO frames) and once with them off (`flatnet lab`'s setting: the sending
// node's kernel cuts them into datagrams). Every pod pings every pod, iperf3 TCP runs both ways
// for every kind of node pair (flatnet <-> flatnet, flatnet <-> kernel), the underlay capture
// passes the tshark check, and the counters say which path the frames took.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { request } from '../../src/daemon/control.js';
import { inNs } from '../../src/lab/exec.js';
import { labDown, labNamespaces, labUp } from '../../src/lab/lab.js';
import { labTest, renderReport, type LabReport } from '../../src/lab/runner.js';
import type { LabNode, LabState } from '../../src/lab/topology.js';
import { ensureDist, labSkipReason, uniqueLabName } from '../support/lab.js';

const skip = labSkipReason(true);

interface Status { counters: Record<string, number>; drops: Record<string, number>; offloads: { tunnelOffload?: string; tunnelOffloadWhy?: string } }
const status = async (n: LabNode): Promise<Status> => {
  const s = (await request(n.socket!, { cmd: 'status' }, 2000)) as { overlay: Status['offloads'] };
  const c = (await request(n.socket!, { cmd: 'show', what: 'counters' }, 2000)) as { counters: Record<string, number>; drops: { reason: string; count: number }[] };
  return { counters: c.counters, drops: Object.fromEntries(c.drops.map((d) => [d.reason, d.count])), offloads: s.overlay };
};

for (const underlayOffloads of [true, false]) {
  describe.skipIf(skip !== null)(`tunnel offload (UDP-tunnel GSO through a TAP), underlay offloads ${underlayOffloads ? 'on' : 'off'}${skip === null ? '' : ` (skipped: ${skip})`}`, () => {
    const name = uniqueLabName('t');
    let lab: LabState;
    let rep: LabReport;
    let before: Status[];

    beforeAll(async () => {
      ensureDist();
      const saved = process.env['FLATNET_TUNNEL_OFFLOAD'];
      process.env['FLATNET_TUNNEL_OFFLOAD'] = 'auto'; // the daemons inherit it: their default
      try {
        // The kernel node sends zero outer UDP checksums: with the underlay offloads on, a computed
        // one would still be partial where the capture sees it, on every frame it sends.
        lab = await labUp({ name, nodes: 3, kernelNodes: 1, kernelUdpCsum: [false], pods: 1, underlayOffloads });
      } finally {
        if (saved === undefined) delete process.env['FLATNET_TUNNEL_OFFLOAD'];
        else process.env['FLATNET_TUNNEL_OFFLOAD'] = saved;
      }
      before = await Promise.all(lab.nodes.slice(0, 2).map(status));
      rep = await labTest(lab, { pingCount: 2, iperfSeconds: 2, iperfBitrate: '200M' });
    }, 180_000);
    afterAll(async () => {
      await labDown(name);
      expect(labNamespaces(name)).toEqual([]);
    });

    it('each flatnet node has its tunnel TAP, set up in its own namespace only', () => {
      for (const [i, n] of lab.nodes.slice(0, 2).entries()) {
        expect(before[i]!.offloads.tunnelOffload, JSON.stringify(before[i]!.offloads)).toBe('flatnet0-tnl');
        const conf = (k: string): string => inNs(n.ns, 'sysctl', ['-n', `net.ipv4.conf.flatnet0-tnl.${k}`]).trim();
        expect([conf('forwarding'), conf('accept_local'), conf('rp_filter')]).toEqual(['1', '1', '0']);
        // Forwarding is on for what arrives on the TAP only, not for the namespace.
        expect(inNs(n.ns, 'sysctl', ['-n', 'net.ipv4.conf.eth0.forwarding']).trim()).toBe('0');
      }
    });

    it('pings and TCP both ways between every kind of node pair, and a clean underlay capture', () => {
      expect(rep.rows.filter((r) => !r.ok), renderReport(rep)).toEqual([]);
      const labels = rep.rows.filter((r) => r.check === 'iperf3').map((r) => r.detail.split(':')[0]);
      expect(labels).toEqual(expect.arrayContaining(['flatnet -> flatnet', 'flatnet -> kernel(noudpcsum)', 'kernel(noudpcsum) -> flatnet']));
      expect(rep.capture!.problems, renderReport(rep)).toEqual([]);
      expect(rep.capture!.innerTcp).toBeGreaterThan(100);
      // With the underlay offloads on, super-frames crossed it whole (the kernel node's too).
      if (underlayOffloads) expect(rep.capture!.superFrames).toBeGreaterThan(10);
      else expect(rep.capture!.superFrames).toBe(0);
    });

    it('the super-frames went through the tunnel TAP (and, with the underlay offloads on, arrived whole)', async () => {
      const after = await Promise.all(lab.nodes.slice(0, 2).map(status));
      const rose = (k: string): number[] => after.map((a, i) => (a.counters[k] ?? 0) - (before[i]!.counters[k] ?? 0));
      for (const v of rose('tunnel_gso_frames')) expect(v).toBeGreaterThan(10);
      // Received whole: from the other flatnet node's TAP and from the kernel node's own VXLAN.
      for (const v of rose('overlay_super_frames')) {
        if (underlayOffloads) expect(v).toBeGreaterThan(10);
        else expect(v).toBe(0);
      }
      for (const a of after) expect(a.drops['tx_error'] ?? 0).toBe(0);
    });
  });
}
