/**
 * The e2e bench's pure parts: option parsing, the limiter classification, percentiles, the
 * summary (medians over rounds, ratios, targets), the markdown, and profile windows.
 */

import { describe, expect, it } from 'vitest';
import { parseOptions } from '../../bench/e2e/e2e.bench.js';
import { classify, percentile, type PingResult, type TcpResult, type UdpPoint } from '../../bench/e2e/measure.js';
import type { CpuWindow } from '../../bench/e2e/probe.js';
import { summarize } from '../../bench/e2e/profile.js';
import { median, renderMarkdown, summarizeResults, type Results, type RoundResult, type SystemResult } from '../../bench/e2e/report.js';
import { SYSTEM_DESCRIPTIONS, SYSTEM_LABELS, type SystemId } from '../../bench/e2e/systems.js';

const cpu = (cores: number | null): CpuWindow => ({
  wallSeconds: 1, flatnetCpuSeconds: cores, flatnetCores: cores, perDaemon: cores === null ? {} : { n1: cores / 2, n2: cores / 2 }, machineBusyCores: 1.5, machineSoftirqCores: 0.2,
});

function udp(offeredPps: number, sentPps: number, deliveredPps: number, cores: number | null): UdpPoint {
  const lossPct = (100 * (sentPps - deliveredPps)) / sentPps;
  return {
    offeredPps, seconds: 1, sent: sentPps, refused: 0, sentPps, delivered: deliveredPps, deliveredPps, lossPct, udpLayer: deliveredPps,
    limitedBy: classify(offeredPps, sentPps, lossPct), generatorCpuSeconds: 0.5, cpu: cpu(cores),
    flatnetCoresPerMpps: cores === null ? null : cores / (deliveredPps / 1e6), io: [],
  };
}
const tcp = (streams: number, gbps: number, cores: number | null): TcpResult => ({
  streams, seconds: 8, omitSeconds: 1, gbps, senderGbps: gbps, retransmits: 3, iperfCpu: null, cpu: cpu(cores),
  flatnetCoresPerGbps: cores === null ? null : cores / gbps, io: [], error: null,
});
const ping = (p50Us: number, tool: PingResult['tool'] = 'gen'): PingResult => ({
  tool, method: 'ping', sent: 100, received: 100, minUs: p50Us - 5, p50Us, p90Us: p50Us + 5, p99Us: p50Us + 20, maxUs: p50Us + 50, meanUs: p50Us, cpu: cpu(null), io: [],
});

function round(r: number, peak: number, gbps: number, p50: number, flatnet: boolean): RoundResult {
  const c = flatnet ? 1 : null;
  return {
    round: r, lab: `e2test${r}`, startedAt: '2026-01-01T00:00:00Z', setupSeconds: 1, offloads: {},
    udp: [udp(50_000, 50_000, 50_000, c), udp(0, flatnet ? 400_000 : peak, peak, c)], tcp: [tcp(1, gbps, c), tcp(4, gbps * 1.2, c)],
    ping: ping(p50), pingIputils: ping(p50 * 0.7, 'iputils'), error: null,
    wire: r !== 1 || !flatnet ? null : {
      ok: r === 1 && peak !== 100_000, skipped: null, frames: 5000, vxlan: 4990, innerTcp: 900, superFrames: 40, checksumsJudged: false,
      problems: peak === 100_000 ? ['frame 7 (u1): malformed: Malformed Packet (Exception occurred)'] : [], problemCount: peak === 100_000 ? 1 : 0,
      pcap: peak === 100_000 ? '/run/flatnet/lab-e2test1/bench-underlay.pcapng' : null,
    },
  };
}

function system(id: SystemId, rounds: RoundResult[]): SystemResult {
  return { id, label: SYSTEM_LABELS[id], description: SYSTEM_DESCRIPTIONS[id], rounds };
}

const systems: SystemResult[] = [
  system('veth', [round(1, 390_000, 20, 10, false), round(2, 410_000, 22, 12, false)]),
  system('kernel', [round(1, 110_000, 14, 20, false), round(2, 120_000, 16, 22, false)]),
  system('flatnet', [round(1, 120_000, 3, 140, true), round(2, 140_000, 5, 160, true)]),
  system('flatnet-nooffload', [round(1, 100_000, 1, 200, true), round(2, 100_000, 1, 200, true)]),
];

describe('e2e bench: pure parts', () => {
  it('classifies what limited a point', () => {
    expect(classify(50_000, 50_000, 0)).toBe('offered');
    expect(classify(300_000, 200_000, 0.5)).toBe('generator');
    expect(classify(0, 200_000, 0)).toBe('generator');
    expect(classify(0, 200_000, 40)).toBe('data plane');
    expect(classify(100_000, 100_000, 1)).toBe('data plane');
  });

  it('takes nearest-rank percentiles and medians', () => {
    const v = Array.from({ length: 100 }, (_, i) => i + 1);
    expect(percentile(v, 50)).toBe(50);
    expect(percentile(v, 99)).toBe(99);
    expect(percentile([7], 99)).toBe(7);
    expect(median([3, 1, 2])).toBe(2);
    expect(median([1, 2, 3, 4])).toBe(2.5);
    expect(median([Number.NaN])).toBeNull();
  });

  it('parses options, with quick defaults', () => {
    const q = parseOptions(['--quick']);
    expect(q).toMatchObject({ quick: true, rounds: 1, udpRates: [20_000, 0], profile: false, underlayOffloads: true });
    const f = parseOptions(['--udp-rates', '10k,1.5m,max', '--systems', 'kernel,flatnet', '--underlay-offloads', 'off', '--no-profile']);
    expect(f).toMatchObject({ quick: false, rounds: 2, udpRates: [10_000, 1_500_000, 0], systems: ['kernel', 'flatnet'], underlayOffloads: false, profile: false });
    expect(() => parseOptions(['--systems', 'dpdk'])).toThrow(/--systems/);
    expect(() => parseOptions(['--udp-rates', 'fast'])).toThrow(/--udp-rates/);
    expect(() => parseOptions(['--rounds', '0'])).toThrow(/--rounds/);
    expect(q.wireCheck).toBe(true);
    expect(parseOptions(['--no-wire-check']).wireCheck).toBe(false);
  });

  it('summarizes rounds into medians, ratios of the same run and the targets', () => {
    const s = summarizeResults(systems);
    const f = s.systems.find((x) => x.id === 'flatnet')!;
    expect(f.udpPeakPps).toBe(130_000);
    expect(f.udpPeakLimitedBy).toBe('data plane');
    expect(f.tcp.find((t) => t.streams === 1)?.gbps).toBe(4);
    expect(f.pingP50Us).toBe(150);
    expect(s.ratios['udpPeak.flatnet/kernel']).toBeCloseTo(130 / 115, 3);
    expect(s.ratios['tcp1.flatnet/kernel']).toBeCloseTo(4 / 15, 3);
    expect(s.ratios['tcp1.flatnet/flatnet-nooffload']).toBe(4);
    expect(s.ratios['pingP50.flatnet-kernel.us']).toBe(129);
    expect(s.ratios['pingIputilsP50.flatnet-kernel.us']).toBe(90.3);
    expect(s.targets.map((t) => t.met)).toEqual([true, false, false, true]);
  });

  it('renders the markdown with the summary, the issue 5 table and the sweep', () => {
    const res: Results = {
      version: 1, kind: 'flatnet-e2e', startedAt: '2026-01-01T00:00:00.000Z', finishedAt: '2026-01-01T00:08:00.000Z', durationSeconds: 480,
      command: 'node dist/bench/e2e/e2e.bench.js', options: { ...parseOptions([]) },
      machine: { cpuModel: 'Test CPU', vcpus: 2, kernel: '6.1', node: 'v20', loadBefore: [1, 1, 1], loadAfter: [2, 2, 2], busyCoresBefore: 0.1, gitCommit: 'abc', gitDirty: false },
      systems, summary: summarizeResults(systems), profiles: [], errors: [],
    };
    const md = renderMarkdown(res);
    expect(md).toContain('Test CPU, 2 vCPUs, Linux 6.1, Node v20');
    expect(md).toContain('| 64 B UDP, peak delivered | 400.0 kpps @max (g) | 115.0 kpps @max (g) | 130.0 kpps @max (d) | 100.0 kpps @max (d) | 1.13x | 0.33x |');
    expect(md).toContain('| TCP 1 stream, Gbit/s (retransmits) | 21.00 (3) | 15.00 (3) | 4.00 (3) | 1.00 (3) | 0.27x | 0.19x |');
    expect(md).toContain('## TCP, offloads on vs off vs kernel (issue 5)');
    expect(md).toContain('| 50k | 50.0 kpps (0.0%, o) |');
    expect(md).toContain('| added ping RTT p50 over kernel VXLAN (issue 6) | <= 30 us | +129.0 us (150 us vs 21 us); with iputils ping +90.3 us (105 us vs 15 us) | **no** |');
    expect(md).toContain('| ping RTT p50 (iputils ping -i 0.002, busy-polls) | 8 us | 15 us | 105 us | 140 us | +90.3 us |  |');
    // The underlay check: one row per checked round, a failure with its problems and the kept capture.
    expect(md).toContain('## Underlay check (tshark, round 1)');
    expect(md).toContain('| flatnet | 5000 | 4990 | 900 | 40 | no malformed frame, no expert error |');
    expect(md).toContain('| flatnet, offloads off | 5000 | 4990 | 900 | 40 | **1 problem(s)**: frame 7 (u1): malformed: Malformed Packet (Exception occurred) (capture kept: /run/flatnet/lab-e2test1/bench-underlay.pcapng) |');
  });

  it('summarizes a CPU profile inside a time window', () => {
    const p = {
      startTime: 1000, endTime: 1000 + 60,
      nodes: [
        { id: 1, callFrame: { functionName: '(root)', url: '', lineNumber: -1 } },
        { id: 2, callFrame: { functionName: '(idle)', url: '', lineNumber: -1 } },
        { id: 3, callFrame: { functionName: 'write', url: 'file:///r/dist/src/io/raw-ip-port.js', lineNumber: 31 } },
        { id: 4, callFrame: { functionName: '(garbage collector)', url: '', lineNumber: -1 } },
      ],
      // samples at t = 1010, 1020, ..., 1060, each lasting 10 us
      samples: [3, 3, 2, 4, 3, 3], timeDeltas: [10, 10, 10, 10, 10, 10],
    };
    const all = summarize('x', p);
    expect(all.busyMs).toBe(0); // microseconds round to 0 ms; check shares instead
    expect(all.topFunctions[0]).toMatchObject({ name: 'write src/io/raw-ip-port.ts:32' });
    expect(all.topFunctions[0]!.pct).toBeCloseTo(75, 0); // 3 of 4 busy samples with a following delta
    const w = summarize('x', p, { fromUs: 1035, toUs: 1045 });
    expect(w.topFunctions.map((e) => e.name)).toEqual(['(garbage collector)']);
    expect(w.byFile[0]!.name).toBe('(garbage collector)');
  });
});
