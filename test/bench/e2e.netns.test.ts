/**
 * `bench/e2e` end to end on its smallest settings (`--quick`, 1 round, 2 offered UDP rates,
 * 1-second iperf3 runs, 50 pings, and the profiling pass): it must build and remove every system,
 * deliver traffic through each, and write results of the expected shape. Nothing here judges
 * performance. Open vSwitch (system `ovs`) is part of every run: .ci/setup installs it, and a
 * machine without it fails here with the bench's message naming .ci/setup.
 */

import { execFile } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Results } from '../../bench/e2e/report.js';
import { listNamespaces } from '../../src/lab/exec.js';
import { labSkipReason, REPO_ROOT } from '../support/lab.js';

const run = promisify(execFile);
const reason = labSkipReason();
const BENCH = join(REPO_ROOT, 'dist/bench/e2e/e2e.bench.js');

describe.skipIf(reason !== null)(`bench e2e --quick${reason === null ? '' : ` (skipped: ${reason})`}`, () => {
  let out = ''; // made in beforeAll: a skipped suite's body still runs, its hooks do not
  beforeAll(() => { out = mkdtempSync(join(tmpdir(), 'flatnet-e2e-test-')); });
  afterAll(() => { if (out !== '') rmSync(out, { recursive: true, force: true }); });

  it('measures every system, delivers traffic through each, writes JSON + markdown and leaves nothing behind', async () => {
    // The bench runs from dist/ (the daemons it starts too): compile the tree as it is.
    await run(join(REPO_ROOT, 'node_modules/.bin/tsc'), ['-p', join(REPO_ROOT, 'tsconfig.json')]);
    const r = await run(process.execPath, [BENCH, '--quick', '--profile', '--out', out], { timeout: 300_000, maxBuffer: 16 << 20 }).catch((e: { stderr?: string; code?: number }) => {
      throw new Error(`bench exited ${String(e.code)}:\n${e.stderr ?? ''}`);
    });
    expect(r.stdout).toContain('## Summary');

    const files = readdirSync(out);
    const json = files.find((f) => /^e2e-.*\.json$/.test(f));
    expect(json).toBeDefined();
    expect(files).toContain(json!.replace(/\.json$/, '.md'));
    expect(files).toContain('latest.md');
    expect(readFileSync(join(out, 'latest.md'), 'utf8')).toBe(readFileSync(join(out, json!.replace(/\.json$/, '.md')), 'utf8'));

    const res = JSON.parse(readFileSync(join(out, json!), 'utf8')) as Results;
    expect(res).toMatchObject({ version: 1, kind: 'flatnet-e2e', errors: [] });
    expect(res.options.quick).toBe(true);
    expect(res.machine.vcpus).toBeGreaterThan(0);
    expect(res.machine.kernel).not.toBe('');
    expect(res.machine.loadBefore).toHaveLength(3);
    expect(res.machine.loadAfter).toHaveLength(3);
    expect(res.systems.map((s) => s.id)).toEqual(['veth', 'kernel', 'flatnet', 'flatnet-swseg', 'flatnet-nooffload', 'flatnet-xdp', 'ovs']);

    for (const s of res.systems) {
      expect(s.rounds, s.id).toHaveLength(1);
      const rd = s.rounds[0]!;
      expect(rd.error, s.id).toBeNull();
      expect(rd.udp.map((p) => p.offeredPps), s.id).toEqual([20_000, 0]);
      for (const p of rd.udp) {
        expect(p.sent, `${s.id} udp ${p.offeredPps}`).toBeGreaterThan(0);
        expect(p.delivered, `${s.id} udp ${p.offeredPps}`).toBeGreaterThan(0);
        expect(['offered', 'generator', 'data plane']).toContain(p.limitedBy);
      }
      expect(rd.tcp.map((t) => t.streams), s.id).toEqual([1, 4]);
      for (const t of rd.tcp) {
        expect(t.error, `${s.id} tcp ${t.streams}`).toBeNull();
        expect(t.gbps, `${s.id} tcp ${t.streams}`).toBeGreaterThan(0);
      }
      for (const p of [rd.ping, rd.pingIputils]) {
        expect(p?.received, `${s.id} ${p?.tool}`).toBeGreaterThan(0);
        expect(p!.p50Us).toBeGreaterThan(0);
        expect(p!.p99Us).toBeGreaterThanOrEqual(p!.p50Us);
      }
      expect([rd.ping!.tool, rd.pingIputils!.tool]).toEqual(['gen', 'iputils']);
      // The underlay of every lab-built system, captured under the bench's UDP and TCP traffic:
      // tshark finds no malformed frame and no expert error (veth has no underlay; OVS builds its own).
      if (s.id === 'veth' || s.id === 'ovs') expect(rd.wire, s.id).toBeNull();
      else {
        expect(rd.wire?.problems, s.id).toEqual([]);
        expect(rd.wire, s.id).toMatchObject({ ok: true, skipped: null, pcap: null });
        expect(rd.wire!.vxlan, s.id).toBeGreaterThan(1000);
        expect(rd.wire!.innerTcp, s.id).toBeGreaterThan(0);
      }

      const flatnet = s.id.startsWith('flatnet');
      const peak = rd.udp[1]!;
      if (flatnet) {
        // Both daemons were watched, and their counters moved with the traffic.
        expect(Object.keys(peak.cpu.perDaemon).sort()).toEqual(['n1', 'n2']);
        expect(peak.cpu.flatnetCpuSeconds).toBeGreaterThan(0);
        expect(peak.flatnetCoresPerMpps).toBeGreaterThan(0);
        expect(rd.tcp[0]!.flatnetCoresPerGbps).toBeGreaterThan(0);
        const n1 = peak.io.find((d) => d.node === 'n1');
        expect(n1?.ports.find((p) => p.role === 'pod')?.rxPackets).toBeGreaterThan(0);
        expect(n1?.ports.find((p) => p.role === 'pod')?.rxPerBatch).toBeGreaterThan(0);
        // Which TCP path each ran: the tunnel TAP (flatnet), the switch's segmentation (swseg:
        // off; nooffload: no virtio headers; xdp: the AF_XDP overlay).
        // (Under FLATNET_IO=af_xdp every flatnet system's overlay is on AF_XDP: no tunnel TAP.)
        const ov = rd.offloads['n1'] as { tunnelOffload?: string; io?: string } | null;
        expect(ov?.tunnelOffload, s.id).toBe(s.id === 'flatnet' && ov?.io === 'packet' ? 'flatnet0-tnl' : 'off');
      } else if (s.id === 'ovs') {
        // Both ovs-vswitchd were watched; the pod's frames entered OVS on node 1, left it on the
        // underlay, and came out of node 2's OVS into the destination pod.
        expect(Object.keys(peak.cpu.perDaemon).sort()).toEqual(['n1', 'n2']);
        expect(peak.cpu.flatnetCpuSeconds).toBeGreaterThan(0);
        expect(peak.flatnetCoresPerMpps).toBeGreaterThan(0);
        const port = (node: string, name: string): number[] => {
          const p = peak.io.find((d) => d.node === node)?.ports.find((x) => x.name === name);
          return [p?.rxPackets ?? 0, p?.txPackets ?? 0];
        };
        expect(port('n1', 'vp0')[0], 'n1 vp0 rx').toBeGreaterThan(0);
        expect(port('n1', 'eth0')[1], 'n1 eth0 tx').toBeGreaterThan(0);
        expect(port('n2', 'eth0')[0], 'n2 eth0 rx').toBeGreaterThan(0);
        expect(port('n2', 'vp0')[1], 'n2 vp0 tx').toBeGreaterThan(0);
        // The build's ping crossed the underlay as VXLAN (UDP 4789, I flag, VNI 1), both ways.
        const check = rd.offloads['vxlanCheck'] as { udpPort: number; vni: number; frames: string[] };
        expect(check).toMatchObject({ capturedOn: 'u1', udpPort: 4789, vni: 1 });
        expect(check.frames.some((l) => /198\.51\.100\.1\.\d+ > 198\.51\.100\.2\.4789: VXLAN, flags \[I\] \(0x08\), vni 1\b/.test(l))).toBe(true);
        expect(check.frames.some((l) => /198\.51\.100\.2\.\d+ > 198\.51\.100\.1\.4789: VXLAN, flags \[I\] \(0x08\), vni 1\b/.test(l))).toBe(true);
      } else {
        expect(peak.cpu.flatnetCores).toBeNull();
        expect(peak.io).toEqual([]);
      }
    }

    const sums = res.summary.systems;
    expect(sums).toHaveLength(7);
    for (const s of sums) {
      expect(s.udpPeakPps, s.id).toBeGreaterThan(0);
      expect(s.pingP50Us, s.id).toBeGreaterThan(0);
      expect(s.pingIputilsP50Us, s.id).toBeGreaterThan(0);
    }
    expect(res.summary.ratios['udpPeak.flatnet/kernel']).toBeGreaterThan(0);
    expect(res.summary.ratios['tcp1.flatnet/kernel']).toBeGreaterThan(0);
    expect(res.summary.ratios['tcp1.flatnet/flatnet-nooffload']).toBeGreaterThan(0);
    expect(res.summary.targets).toHaveLength(11); // issue 5 and 6's four, issue 15's two TCP (tunnel TAP), four (flatnet-xdp) and one against OVS
    expect(res.summary.ratios['tcp1.flatnet/flatnet-swseg']).toBeGreaterThan(0);
    expect(res.summary.ratios['udpPeak.flatnet-xdp/kernel']).toBeGreaterThan(0);
    expect(res.summary.ratios['udpPeak.flatnet/ovs']).toBeGreaterThan(0);
    expect(res.summary.ratios['udpPeak.flatnet-xdp/ovs']).toBeGreaterThan(0);
    expect(r.stdout).toContain('## Open vSwitch: frames per port (round 1)');
    for (const t of res.summary.targets) expect(typeof t.met).toBe('boolean');

    // The profiling pass: one summary per daemon per test, restricted to the test's window.
    expect(res.profiles.map((p) => p.test)).toEqual(['udp-max', 'tcp-1', 'ping']);
    for (const p of res.profiles) {
      for (const n of p.nodes) {
        expect(n.error, `${p.test} ${n.node}`).toBeNull();
        expect(n.summary!.window).not.toBeNull();
        expect(n.summary!.wallMs).toBeGreaterThan(0);
      }
    }

    // Nothing of the run is left: no namespace of any of its labs, no daemon.
    const labs = [...res.systems.flatMap((s) => s.rounds.map((x) => x.lab))];
    expect(labs.length).toBe(7);
    const left = listNamespaces().filter((ns) => labs.some((l) => ns.startsWith(`fl-${l}-`)) || ns.startsWith(`fl-${labs[0]!.slice(0, 6)}p-`));
    expect(left).toEqual([]);
  }, 320_000);
});
