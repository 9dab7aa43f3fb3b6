/**
 * The e2e bench's results file (JSON, raw numbers of every round) and its summary (medians over
 * rounds, ratios computed from figures of the same run, the issue targets), rendered as markdown.
 * Pure functions: the unit test renders a synthetic result.
 */

import type { LimitedBy, PingResult, TcpResult, UdpPoint } from './measure.js';
import type { DaemonIo } from './probe.js';
import type { ProfileSummary } from './profile.js';
import type { SystemId } from './systems.js';
import type { WireCheck } from './wire-check.js';

export interface Machine {
  readonly cpuModel: string;
  readonly vcpus: number;
  readonly kernel: string;
  readonly node: string;
  readonly loadBefore: readonly number[];
  readonly loadAfter: readonly number[];
  /** Busy cores of the whole machine over 2 s just before the run: other users' work. */
  readonly busyCoresBefore: number;
  readonly gitCommit: string | null;
  readonly gitDirty: boolean | null;
}

export interface RoundResult {
  readonly round: number;
  /** The lab (namespace prefix fl-NAME-) this round was built as. */
  readonly lab: string;
  readonly startedAt: string;
  readonly setupSeconds: number;
  readonly offloads: Readonly<Record<string, unknown>>;
  readonly udp: readonly UdpPoint[];
  readonly tcp: readonly TcpResult[];
  /** The primary RTT figure: bench/e2e/gen.c's pinger, which sleeps between probes. */
  readonly ping: PingResult | null;
  /** The same with iputils ping (busy-polls a core at intervals under 10 ms). */
  readonly pingIputils: PingResult | null;
  /** Round 1 of a lab-built system: the tshark check of its underlay (null otherwise). */
  readonly wire: WireCheck | null;
  readonly error: string | null;
}

export interface SystemResult {
  readonly id: SystemId;
  readonly label: string;
  readonly description: string;
  readonly rounds: readonly RoundResult[];
}

export interface ProfileRun {
  readonly system: SystemId;
  readonly test: 'udp-max' | 'tcp-1' | 'ping';
  /** What the test measured while profiled (slower than unprofiled; for orientation only). */
  readonly measured: string;
  readonly io: readonly DaemonIo[];
  readonly nodes: readonly { readonly node: string; readonly summary: ProfileSummary | null; readonly error: string | null }[];
}

export interface BenchOptions {
  readonly quick: boolean;
  readonly rounds: number;
  readonly systems: readonly SystemId[];
  readonly udpRates: readonly number[];
  readonly udpSeconds: number;
  readonly tcpSeconds: number;
  readonly tcpOmitSeconds: number;
  readonly tcpStreams: readonly number[];
  readonly pingCount: number;
  readonly pingInterval: number;
  readonly underlayOffloads: boolean;
  readonly profile: boolean;
  /** The tshark check of the underlay in round 1 (bench/e2e/wire-check.ts). */
  readonly wireCheck: boolean;
}

export interface Results {
  readonly version: 1;
  readonly kind: 'flatnet-e2e';
  readonly startedAt: string;
  readonly finishedAt: string;
  readonly durationSeconds: number;
  readonly command: string;
  readonly options: BenchOptions;
  readonly machine: Machine;
  readonly systems: readonly SystemResult[];
  readonly summary: Summary;
  readonly profiles: readonly ProfileRun[];
  readonly errors: readonly string[];
}

export interface RatePoint {
  readonly offeredPps: number;
  readonly sentPps: number;
  readonly deliveredPps: number;
  readonly lossPct: number;
  readonly limitedBy: string;
  readonly flatnetCoresPerMpps: number | null;
}

export interface SystemSummary {
  readonly id: SystemId;
  readonly label: string;
  readonly rounds: number;
  /** Highest delivered rate over the sweep (median over rounds of each round's highest). */
  readonly udpPeakPps: number | null;
  readonly udpPeakOfferedPps: number | null;
  readonly udpPeakLimitedBy: string | null;
  readonly udpRates: readonly RatePoint[];
  readonly tcp: readonly { readonly streams: number; readonly gbps: number | null; readonly retransmits: number | null; readonly flatnetCoresPerGbps: number | null; readonly flatnetCores: number | null }[];
  readonly pingP50Us: number | null;
  readonly pingP99Us: number | null;
  readonly pingIputilsP50Us: number | null;
  readonly pingIputilsP99Us: number | null;
  readonly flatnetCoresPerMpps: number | null;
  /** The generator's CPU seconds per million datagrams it sent, at the peak (kernel VXLAN: the whole path runs there). */
  readonly generatorCoresPerMpps: number | null;
}

export interface Target {
  readonly name: string;
  readonly goal: string;
  readonly measured: string;
  /** null: a system it needs was not measured. */
  readonly met: boolean | null;
}

export interface Summary {
  readonly systems: readonly SystemSummary[];
  readonly ratios: Readonly<Record<string, number | null>>;
  readonly targets: readonly Target[];
}

export function median(xs: readonly number[]): number | null {
  const v = xs.filter((x) => Number.isFinite(x)).sort((a, b) => a - b);
  if (v.length === 0) return null;
  const m = v.length >> 1;
  return v.length % 2 === 1 ? v[m]! : (v[m - 1]! + v[m]!) / 2;
}

const ok = (r: RoundResult): boolean => r.error === null;

function summarizeSystem(s: SystemResult): SystemSummary {
  const rounds = s.rounds.filter((r) => r.udp.length > 0 || r.tcp.length > 0 || r.ping !== null);
  const peaks = rounds.map((r) => r.udp.reduce<UdpPoint | null>((best, p) => (best === null || p.deliveredPps > best.deliveredPps ? p : best), null)).filter((p): p is UdpPoint => p !== null);
  const peakPps = median(peaks.map((p) => p.deliveredPps));
  // The peak's offered rate and limiter: from the round whose peak is closest to the median.
  const rep = peakPps === null ? null : peaks.reduce((a, b) => (Math.abs(b.deliveredPps - peakPps) < Math.abs(a.deliveredPps - peakPps) ? b : a));
  const rates = [...new Set(rounds.flatMap((r) => r.udp.map((p) => p.offeredPps)))];
  const udpRates: RatePoint[] = rates.map((rate) => {
    const pts = rounds.map((r) => r.udp.find((p) => p.offeredPps === rate)).filter((p): p is UdpPoint => p !== undefined);
    const lim = [...new Set(pts.map((p) => p.limitedBy))] as LimitedBy[];
    return {
      offeredPps: rate,
      sentPps: Math.round(median(pts.map((p) => p.sentPps)) ?? 0),
      deliveredPps: Math.round(median(pts.map((p) => p.deliveredPps)) ?? 0),
      lossPct: Math.round((median(pts.map((p) => p.lossPct)) ?? 0) * 100) / 100,
      limitedBy: lim.join(' / '),
      flatnetCoresPerMpps: median(pts.map((p) => p.flatnetCoresPerMpps ?? Number.NaN)),
    };
  });
  const streams = [...new Set(rounds.flatMap((r) => r.tcp.map((t) => t.streams)))].sort((a, b) => a - b);
  const tcp = streams.map((n) => {
    const ts = rounds.map((r) => r.tcp.find((t) => t.streams === n && t.error === null)).filter((t): t is TcpResult => t !== undefined);
    return {
      streams: n,
      gbps: median(ts.map((t) => t.gbps)),
      retransmits: median(ts.map((t) => t.retransmits)),
      flatnetCoresPerGbps: median(ts.map((t) => t.flatnetCoresPerGbps ?? Number.NaN)),
      flatnetCores: median(ts.map((t) => t.cpu.flatnetCores ?? Number.NaN)),
    };
  });
  const pings = rounds.map((r) => r.ping).filter((p): p is PingResult => p !== null && p.received > 0);
  const pingsI = rounds.map((r) => r.pingIputils ?? null).filter((p): p is PingResult => p !== null && p.received > 0);
  return {
    id: s.id,
    label: s.label,
    rounds: s.rounds.filter(ok).length,
    udpPeakPps: peakPps === null ? null : Math.round(peakPps),
    udpPeakOfferedPps: rep?.offeredPps ?? null,
    udpPeakLimitedBy: rep?.limitedBy ?? null,
    udpRates,
    tcp,
    pingP50Us: median(pings.map((p) => p.p50Us)),
    pingP99Us: median(pings.map((p) => p.p99Us)),
    pingIputilsP50Us: median(pingsI.map((p) => p.p50Us)),
    pingIputilsP99Us: median(pingsI.map((p) => p.p99Us)),
    flatnetCoresPerMpps: median(peaks.map((p) => p.flatnetCoresPerMpps ?? Number.NaN)),
    generatorCoresPerMpps: median(peaks.map((p) => (p.sent > 0 ? Math.round((1000 * p.generatorCpuSeconds) / (p.sent / 1e6)) / 1000 : Number.NaN))),
  };
}

const ratio = (a: number | null | undefined, b: number | null | undefined): number | null =>
  a == null || b == null || b === 0 ? null : Math.round((a / b) * 1000) / 1000;
const diff = (a: number | null | undefined, b: number | null | undefined): number | null =>
  a == null || b == null ? null : Math.round((a - b) * 10) / 10;

export function tcpOf(s: SystemSummary | undefined, streams: number): number | null {
  return s?.tcp.find((t) => t.streams === streams)?.gbps ?? null;
}

export function summarizeResults(systems: readonly SystemResult[]): Summary {
  const sums = systems.map(summarizeSystem);
  const by = (id: SystemId): SystemSummary | undefined => sums.find((s) => s.id === id);
  const f = by('flatnet'), k = by('kernel'), v = by('veth'), o = by('flatnet-nooffload'), x15 = by('flatnet-xdp'), ovs = by('ovs'), sw = by('flatnet-swseg');
  const ratios: Record<string, number | null> = {
    'udpPeak.flatnet/kernel': ratio(f?.udpPeakPps, k?.udpPeakPps),
    'udpPeak.flatnet/veth': ratio(f?.udpPeakPps, v?.udpPeakPps),
    'udpPeak.kernel/veth': ratio(k?.udpPeakPps, v?.udpPeakPps),
    'udpPeak.flatnet/flatnet-nooffload': ratio(f?.udpPeakPps, o?.udpPeakPps),
    'tcp1.flatnet/kernel': ratio(tcpOf(f, 1), tcpOf(k, 1)),
    'tcp1.flatnet/veth': ratio(tcpOf(f, 1), tcpOf(v, 1)),
    'tcp1.kernel/veth': ratio(tcpOf(k, 1), tcpOf(v, 1)),
    'tcp1.flatnet/flatnet-nooffload': ratio(tcpOf(f, 1), tcpOf(o, 1)),
    'tcp1.flatnet-nooffload/kernel': ratio(tcpOf(o, 1), tcpOf(k, 1)),
    'tcp4.flatnet/kernel': ratio(tcpOf(f, 4), tcpOf(k, 4)),
    'tcp4.flatnet/veth': ratio(tcpOf(f, 4), tcpOf(v, 4)),
    'tcp4.kernel/veth': ratio(tcpOf(k, 4), tcpOf(v, 4)),
    'tcp4.flatnet/flatnet-nooffload': ratio(tcpOf(f, 4), tcpOf(o, 4)),
    'tcp1.flatnet/flatnet-swseg': ratio(tcpOf(f, 1), tcpOf(sw, 1)),
    'tcp4.flatnet/flatnet-swseg': ratio(tcpOf(f, 4), tcpOf(sw, 4)),
    'tcp1.flatnet-swseg/kernel': ratio(tcpOf(sw, 1), tcpOf(k, 1)),
    'tcp4.flatnet-swseg/kernel': ratio(tcpOf(sw, 4), tcpOf(k, 4)),
    'pingP50.flatnet-kernel.us': diff(f?.pingP50Us, k?.pingP50Us),
    'pingP99.flatnet-kernel.us': diff(f?.pingP99Us, k?.pingP99Us),
    'pingP50.kernel-veth.us': diff(k?.pingP50Us, v?.pingP50Us),
    'pingP50.flatnet/kernel': ratio(f?.pingP50Us, k?.pingP50Us),
    'pingIputilsP50.flatnet-kernel.us': diff(f?.pingIputilsP50Us, k?.pingIputilsP50Us),
    'pingIputilsP99.flatnet-kernel.us': diff(f?.pingIputilsP99Us, k?.pingIputilsP99Us),
    'udpPeak.flatnet-xdp/kernel': ratio(x15?.udpPeakPps, k?.udpPeakPps),
    'udpPeak.flatnet-xdp/flatnet': ratio(x15?.udpPeakPps, f?.udpPeakPps),
    'tcp1.flatnet-xdp/kernel': ratio(tcpOf(x15, 1), tcpOf(k, 1)),
    'tcp4.flatnet-xdp/kernel': ratio(tcpOf(x15, 4), tcpOf(k, 4)),
    'pingP50.flatnet-xdp-kernel.us': diff(x15?.pingP50Us, k?.pingP50Us),
    'udpPeak.flatnet/ovs': ratio(f?.udpPeakPps, ovs?.udpPeakPps),
    'udpPeak.kernel/ovs': ratio(k?.udpPeakPps, ovs?.udpPeakPps),
    'udpPeak.flatnet-xdp/ovs': ratio(x15?.udpPeakPps, ovs?.udpPeakPps),
    'tcp1.flatnet/ovs': ratio(tcpOf(f, 1), tcpOf(ovs, 1)),
    'tcp4.flatnet/ovs': ratio(tcpOf(f, 4), tcpOf(ovs, 4)),
    'pingP50.flatnet/ovs': ratio(f?.pingP50Us, ovs?.pingP50Us),
    'pingP50.flatnet-ovs.us': diff(f?.pingP50Us, ovs?.pingP50Us),
    'pingP99.flatnet-ovs.us': diff(f?.pingP99Us, ovs?.pingP99Us),
    'pingIputilsP50.flatnet-ovs.us': diff(f?.pingIputilsP50Us, ovs?.pingIputilsP50Us),
    'pingIputilsP99.flatnet-ovs.us': diff(f?.pingIputilsP99Us, ovs?.pingIputilsP99Us),
  };
  const x = (r: number | null): string => (r === null ? 'n/a' : `${r.toFixed(2)}x`);
  const targets: Target[] = [];
  const pps = ratios['udpPeak.flatnet/kernel'] ?? null;
  targets.push({ name: '64-byte UDP pps, flatnet / kernel VXLAN (issue 6)', goal: '>= 1.0x', measured: `${x(pps)} (${fmtPps(f?.udpPeakPps)} vs ${fmtPps(k?.udpPeakPps)})`, met: pps === null ? null : pps >= 1.0 });
  const added = ratios['pingP50.flatnet-kernel.us'] ?? null;
  const addedI = ratios['pingIputilsP50.flatnet-kernel.us'] ?? null;
  targets.push({
    name: 'added ping RTT p50 over kernel VXLAN (issue 6)', goal: '<= 30 us',
    measured: (added === null ? 'n/a' : `+${added.toFixed(1)} us (${fmtUs(f?.pingP50Us)} vs ${fmtUs(k?.pingP50Us)})`) +
      (addedI === null ? '' : `; with iputils ping +${addedI.toFixed(1)} us (${fmtUs(f?.pingIputilsP50Us)} vs ${fmtUs(k?.pingIputilsP50Us)})`),
    met: added === null ? null : added <= 30,
  });
  const t1 = ratios['tcp1.flatnet/kernel'] ?? null;
  targets.push({ name: 'TCP 1 stream, flatnet (offloads) / kernel VXLAN (issue 5)', goal: '>= 0.5x', measured: `${x(t1)} (${fmtGbps(tcpOf(f, 1))} vs ${fmtGbps(tcpOf(k, 1))})`, met: t1 === null ? null : t1 >= 0.5 });
  const t2 = ratios['tcp1.flatnet/flatnet-nooffload'] ?? null;
  targets.push({ name: 'TCP 1 stream, flatnet offloads on / off (issue 5)', goal: '>= 4x', measured: `${x(t2)} (${fmtGbps(tcpOf(f, 1))} vs ${fmtGbps(tcpOf(o, 1))})`, met: t2 === null ? null : t2 >= 4 });
  if (sw !== undefined) {
    // Issue 15's TCP targets, on the packet backend with the tunnel TAP (flatnet) and without (swseg).
    const a1 = ratios['tcp1.flatnet/kernel'] ?? null, a4 = ratios['tcp4.flatnet/kernel'] ?? null;
    targets.push({ name: 'TCP 1 stream, flatnet (tunnel TAP) / kernel VXLAN (issue 15)', goal: '>= 0.8x', measured: `${x(a1)} (${fmtGbps(tcpOf(f, 1))} vs ${fmtGbps(tcpOf(k, 1))}); software segmentation ${x(ratios['tcp1.flatnet-swseg/kernel'] ?? null)}`, met: a1 === null ? null : a1 >= 0.8 });
    targets.push({ name: 'TCP 4 streams, flatnet (tunnel TAP) / kernel VXLAN (issue 15)', goal: '>= 0.5x', measured: `${x(a4)} (${fmtGbps(tcpOf(f, 4))} vs ${fmtGbps(tcpOf(k, 4))}); software segmentation ${x(ratios['tcp4.flatnet-swseg/kernel'] ?? null)}`, met: a4 === null ? null : a4 >= 0.5 });
  }
  if (x15 !== undefined) {
    const xp = ratios['udpPeak.flatnet-xdp/kernel'] ?? null, x1 = ratios['tcp1.flatnet-xdp/kernel'] ?? null;
    const x4 = ratios['tcp4.flatnet-xdp/kernel'] ?? null, xa = ratios['pingP50.flatnet-xdp-kernel.us'] ?? null;
    targets.push({ name: '64-byte UDP peak, flatnet AF_XDP / kernel VXLAN (issue 15)', goal: '>= 1.5x', measured: `${x(xp)} (${fmtPps(x15.udpPeakPps)} vs ${fmtPps(k?.udpPeakPps)})`, met: xp === null ? null : xp >= 1.5 });
    targets.push({ name: 'TCP 1 stream, flatnet AF_XDP / kernel VXLAN (issue 15)', goal: '>= 0.8x', measured: `${x(x1)} (${fmtGbps(tcpOf(x15, 1))} vs ${fmtGbps(tcpOf(k, 1))})`, met: x1 === null ? null : x1 >= 0.8 });
    targets.push({ name: 'TCP 4 streams, flatnet AF_XDP / kernel VXLAN (issue 15)', goal: '>= 0.5x', measured: `${x(x4)} (${fmtGbps(tcpOf(x15, 4))} vs ${fmtGbps(tcpOf(k, 4))})`, met: x4 === null ? null : x4 >= 0.5 });
    targets.push({ name: 'added ping RTT p50 over kernel VXLAN, flatnet AF_XDP, no poll mode (issue 15)', goal: '<= 80 us', measured: xa === null ? 'n/a' : `+${xa.toFixed(1)} us (${fmtUs(x15.pingP50Us)} vs ${fmtUs(k?.pingP50Us)})`, met: xa === null ? null : xa <= 80 });
  }
  if (x15 !== undefined && ovs !== undefined) {
    const xo = ratios['udpPeak.flatnet-xdp/ovs'] ?? null;
    targets.push({ name: '64-byte UDP peak, flatnet AF_XDP / Open vSwitch userspace (issue 15)', goal: '>= 3x', measured: `${x(xo)} (${fmtPps(x15.udpPeakPps)} vs ${fmtPps(ovs.udpPeakPps)})`, met: xo === null ? null : xo >= 3 });
  }
  return { systems: sums, ratios, targets };
}

// ---------------------------------------------------------------------------------------------
// Markdown

export function fmtPps(p: number | null | undefined): string {
  if (p == null) return 'n/a';
  return p >= 1e6 ? `${(p / 1e6).toFixed(2)} Mpps` : `${(p / 1e3).toFixed(1)} kpps`;
}
export const fmtGbps = (g: number | null | undefined): string => (g == null ? 'n/a' : `${g.toFixed(2)} Gbit/s`);
export const fmtUs = (u: number | null | undefined): string => (u == null ? 'n/a' : `${u.toFixed(0)} us`);
const fmtX = (r: number | null | undefined): string => (r == null ? 'n/a' : `${r.toFixed(2)}x`);
const fmtN = (n: number | null | undefined, d = 2): string => (n == null ? 'n/a' : n.toFixed(d));
const rateName = (r: number): string => (r === 0 ? 'max' : r >= 1e6 ? `${r / 1e6}M` : `${r / 1e3}k`);
const LIMIT_CODE: Readonly<Record<string, string>> = { offered: 'o', generator: 'g', 'data plane': 'd' };

export function machineLine(m: Machine): string {
  return `${m.cpuModel}, ${m.vcpus} vCPUs, Linux ${m.kernel}, Node ${m.node}`;
}

export function renderMarkdown(r: Results): string {
  const s = r.summary;
  const sys = s.systems;
  const by = (id: SystemId): SystemSummary | undefined => sys.find((x) => x.id === id);
  const f = by('flatnet'), k = by('kernel'), ovs = by('ovs');
  const L: string[] = [];
  const o = r.options;
  L.push(`# flatnet end to end, ${r.startedAt.slice(0, 10)}${o.quick ? ' (quick mode: smoke figures, not a benchmark)' : ''}`);
  L.push('');
  L.push(`**Machine.** ${machineLine(r.machine)}. Load average ${r.machine.loadBefore.map((x) => x.toFixed(2)).join(' / ')} (1/5/15 min) before, ${r.machine.loadAfter.map((x) => x.toFixed(2)).join(' / ')} after; ` +
    `${r.machine.busyCoresBefore.toFixed(2)} of ${r.machine.vcpus} cores busy in the 2 s before the run (work other than this bench). ` +
    `Tree ${r.machine.gitCommit?.slice(0, 12) ?? 'unknown'}${r.machine.gitDirty === true ? ' (with uncommitted changes)' : ''}.`);
  L.push('');
  L.push(`**Run.** \`${r.command}\`, ${r.startedAt} to ${r.finishedAt} (${Math.round(r.durationSeconds)} s). ${o.rounds} round${o.rounds > 1 ? 's' : ''} over the systems ` +
    `(${o.rounds > 1 ? 'each round in the reverse order of the previous; ' : ''}every system built, measured and removed in turn); figures are medians over rounds. ` +
    `Underlay veth offloads ${o.underlayOffloads ? 'on (veth defaults)' : 'off (ethtool -K eth0 tx off on every node)'}. ` +
    `Generator, receiver and data plane share the same ${r.machine.vcpus} vCPUs.`);
  L.push('');
  L.push('Systems:');
  for (const x of r.systems) L.push(`- **${x.label}**: ${x.description}.`);
  L.push('');

  const cols = sys.map((x) => x.label);
  L.push('## Summary');
  L.push('');
  // A flatnet / OVS column when the run measured Open vSwitch.
  L.push(`| | ${cols.join(' | ')} | flatnet / kernel | flatnet / veth |${ovs === undefined ? '' : ' flatnet / OVS |'}`);
  L.push(`|---|${cols.map(() => '---:').join('|')}|---:|---:|${ovs === undefined ? '' : '---:|'}`);
  const row = (name: string, vals: string[], a: string, b: string, c = ''): void => { L.push(`| ${name} | ${vals.join(' | ')} | ${a} | ${b} |${ovs === undefined ? '' : ` ${c} |`}`); };
  row('64 B UDP, peak delivered', sys.map((x) => `${fmtPps(x.udpPeakPps)}${x.udpPeakOfferedPps === null ? '' : ` @${rateName(x.udpPeakOfferedPps)} (${LIMIT_CODE[x.udpPeakLimitedBy ?? ''] ?? '?'})`}`), fmtX(s.ratios['udpPeak.flatnet/kernel']), fmtX(s.ratios['udpPeak.flatnet/veth']), fmtX(s.ratios['udpPeak.flatnet/ovs']));
  for (const n of o.tcpStreams) {
    row(`TCP ${n} stream${n > 1 ? 's' : ''}, Gbit/s (retransmits)`, sys.map((x) => { const t = x.tcp.find((y) => y.streams === n); return t?.gbps == null ? 'n/a' : `${t.gbps.toFixed(2)} (${t.retransmits ?? '?'})`; }),
      fmtX(s.ratios[`tcp${n}.flatnet/kernel`]), fmtX(s.ratios[`tcp${n}.flatnet/veth`]), fmtX(ratio(tcpOf(f, n), tcpOf(ovs, n))));
  }
  const plus = (k: string): string => (s.ratios[k] == null ? 'n/a' : `${s.ratios[k]! >= 0 ? '+' : ''}${s.ratios[k]} us`);
  row('ping RTT p50 (pinger sleeps between probes)', sys.map((x) => fmtUs(x.pingP50Us)), plus('pingP50.flatnet-kernel.us'), '', plus('pingP50.flatnet-ovs.us'));
  row('ping RTT p99 (pinger sleeps between probes)', sys.map((x) => fmtUs(x.pingP99Us)), plus('pingP99.flatnet-kernel.us'), '', plus('pingP99.flatnet-ovs.us'));
  row(`ping RTT p50 (iputils ping -i ${o.pingInterval}, busy-polls)`, sys.map((x) => fmtUs(x.pingIputilsP50Us)), plus('pingIputilsP50.flatnet-kernel.us'), '', plus('pingIputilsP50.flatnet-ovs.us'));
  row(`ping RTT p99 (iputils ping -i ${o.pingInterval}, busy-polls)`, sys.map((x) => fmtUs(x.pingIputilsP99Us)), plus('pingIputilsP99.flatnet-kernel.us'), '', plus('pingIputilsP99.flatnet-ovs.us'));
  row('generator cores per Mpps sent (at the UDP peak)', sys.map((x) => fmtN(x.generatorCoresPerMpps)), '', '');
  // The daemons' CPU: flatnet's two daemons, or the OVS system's two ovs-vswitchd.
  const daemons = (x: SystemSummary): boolean => x.id.startsWith('flatnet') || x.id === 'ovs';
  const who = ovs === undefined ? 'flatnet' : 'daemon (flatnet, ovs-vswitchd)';
  row(`${who} cores per Mpps (at the UDP peak)`, sys.map((x) => (daemons(x) ? fmtN(x.flatnetCoresPerMpps) : '')), '', '', fmtX(ratio(f?.flatnetCoresPerMpps, ovs?.flatnetCoresPerMpps)));
  for (const n of o.tcpStreams) {
    row(`${who} cores per Gbit/s (TCP ${n} stream${n > 1 ? 's' : ''})`, sys.map((x) => (daemons(x) ? fmtN(x.tcp.find((y) => y.streams === n)?.flatnetCoresPerGbps) : '')), '', '');
  }
  L.push('');
  L.push('Peak: the highest delivered rate over the offered rates, with the rate it was reached at and what limited it: ' +
    '(o) the offered rate itself, (g) the generator (< 1% loss but it could not offer more; on 2 vCPUs it competes with the data plane for CPU), (d) the data plane (>= 1% loss). ' +
    `Cores = CPU seconds (user + system, /proc/PID/stat) of both flatnet daemons${ovs === undefined ? '' : ' (for Open vSwitch: of both ovs-vswitchd, all threads)'} per million delivered packets or per Gbit moved; ` +
    "the generator's from its getrusage (with kernel VXLAN the whole encap/decap path runs in the generator's system calls and is counted there). " +
    `RTT: ${o.pingCount} ICMP echoes every ${o.pingInterval * 1000} ms, first from bench/e2e/gen.c, which sleeps between probes like an application (RTT from the reply's kernel receive timestamp, as ping computes it), ` +
    'then from iputils ping, which at intervals under 10 ms busy-polls one core: its vCPU never idles (lower RTTs for every system) and the data plane has one core fewer.');
  L.push('');

  L.push('## Targets');
  L.push('');
  L.push('| target | goal | measured | met |');
  L.push('|---|---|---|---|');
  for (const t of s.targets) L.push(`| ${t.name} | ${t.goal} | ${t.measured} | ${t.met === null ? 'n/a' : t.met ? 'yes' : '**no**'} |`);
  L.push('');

  const off = by('flatnet-nooffload');
  if (f !== undefined || off !== undefined || k !== undefined) {
    L.push('## TCP, offloads on vs off vs kernel (issue 5)');
    L.push('');
    L.push(`| system | ${o.tcpStreams.map((n) => `TCP ${n} stream${n > 1 ? 's' : ''}, Gbit/s`).join(' | ')} | retransmits (${o.tcpStreams.join(' / ')}) | flatnet cores (${o.tcpStreams.join(' / ')}) |`);
    L.push(`|---|${o.tcpStreams.map(() => '---:').join('|')}|---:|---:|`);
    for (const x of [k, f, off]) {
      if (x === undefined) continue;
      const ts = o.tcpStreams.map((n) => x.tcp.find((y) => y.streams === n));
      L.push(`| ${x.label} | ${ts.map((t) => fmtN(t?.gbps)).join(' | ')} | ${ts.map((t) => t?.retransmits ?? 'n/a').join(' / ')} | ${x.id === 'kernel' ? '' : ts.map((t) => fmtN(t?.flatnetCores)).join(' / ')} |`);
    }
    L.push('');
    L.push(`Ratios: flatnet offloads on / kernel VXLAN ${o.tcpStreams.map((n) => `${fmtX(s.ratios[`tcp${n}.flatnet/kernel`])} (${n})`).join(', ')}; ` +
      `offloads on / off ${o.tcpStreams.map((n) => `${fmtX(s.ratios[`tcp${n}.flatnet/flatnet-nooffload`])} (${n})`).join(', ')}.`);
    L.push('');
  }

  L.push('## 64-byte UDP, offered rate sweep');
  L.push('');
  L.push(`Delivered rate at the destination pod's eth0 (loss %, limiter), ${o.udpSeconds} s per point; "max" = the generator as fast as it goes (its rate differs per system: with kernel VXLAN the whole path runs in the generator's system calls).`);
  L.push('');
  const rates = [...new Set(sys.flatMap((x) => x.udpRates.map((p) => p.offeredPps)))].sort((a, b) => (a === 0 ? 1 : b === 0 ? -1 : a - b));
  L.push(`| offered | ${cols.join(' | ')} | flatnet / kernel |${ovs === undefined ? '' : ' flatnet / OVS |'}`);
  L.push(`|---|${cols.map(() => '---:').join('|')}|---:|${ovs === undefined ? '' : '---:|'}`);
  for (const rate of rates) {
    const cell = (x: SystemSummary): string => {
      const p = x.udpRates.find((y) => y.offeredPps === rate);
      if (p === undefined) return 'n/a';
      const lim = p.limitedBy.split(' / ').map((l) => LIMIT_CODE[l] ?? '?').join('/');
      return `${fmtPps(p.deliveredPps)} (${p.lossPct.toFixed(1)}%, ${lim})${rate === 0 ? ` of ${fmtPps(p.sentPps)}` : ''}`;
    };
    const fr = f?.udpRates.find((y) => y.offeredPps === rate), kr = k?.udpRates.find((y) => y.offeredPps === rate);
    const or = ovs?.udpRates.find((y) => y.offeredPps === rate);
    L.push(`| ${rateName(rate)} | ${sys.map(cell).join(' | ')} | ${fmtX(ratio(fr?.deliveredPps, kr?.deliveredPps))} |${ovs === undefined ? '' : ` ${fmtX(ratio(fr?.deliveredPps, or?.deliveredPps))} |`}`);
  }
  L.push('');

  // Frames per system call, from the first round that has them.
  const ioRows: string[] = [];
  for (const x of r.systems.filter((y) => y.id.startsWith('flatnet'))) {
    const rd = x.rounds.find((y) => y.error === null) ?? x.rounds[0];
    if (rd === undefined) continue;
    const peak = rd.udp.reduce<UdpPoint | null>((b, p) => (b === null || p.deliveredPps > b.deliveredPps ? p : b), null);
    const tests: [string, readonly DaemonIo[]][] = [];
    if (peak !== null) tests.push([`UDP @${rateName(peak.offeredPps)}`, peak.io]);
    for (const t of rd.tcp) tests.push([`TCP ${t.streams}`, t.io]);
    if (rd.ping !== null) tests.push(['ping', rd.ping.io]);
    for (const [test, io] of tests) {
      for (const d of io) {
        for (const p of d.ports) {
          ioRows.push(`| ${x.label} | ${test} | ${d.node} | ${p.name} (${p.role}) | ${p.rxPackets} | ${fmtN(p.rxPerBatch)} | ${p.txPackets} | ${fmtN(p.txPerBatch)} | ${p.txDropped} |`);
        }
      }
    }
  }
  if (ioRows.length > 0) {
    L.push('## flatnet: frames per system-call batch (round 1)');
    L.push('');
    L.push('From `flatnet show ports` before and after each test: frames moved and frames per read/write batch, per port.');
    L.push('');
    L.push('| system | test | node | port | rx frames | rx per batch | tx frames | tx per batch | tx dropped |');
    L.push('|---|---|---|---|---:|---:|---:|---:|---:|');
    L.push(...ioRows);
    L.push('');
  }

  const wires = r.systems.flatMap((x) => x.rounds.filter((rd) => rd.wire !== null && rd.wire !== undefined).map((rd) => [x, rd.wire!] as const));
  if (wires.length > 0) {
    L.push('## Underlay check (tshark, round 1)');
    L.push('');
    L.push('After the measured tests, the same UDP generator (20 kpps, 1 s) and one iperf3 stream (1 s, up to 300 Mbit/s) with every frame on the underlay bridge captured and dissected by tshark, ' +
      'judged by the lab\'s check (src/lab/tshark-check.ts): nothing malformed, no expert error, VXLAN flags and VNI, inner addresses, outer UDP checksums as each sender is configured' +
      (r.options.underlayOffloads ? ' (TCP/UDP checksums not judged: the underlay veths have checksum offload on, so they may be partial where the capture sees them)' : '') + '.');
    L.push('');
    L.push('| system | frames | VXLAN | inner TCP | super-frames | result |');
    L.push('|---|---:|---:|---:|---:|---|');
    for (const [x, w] of wires) {
      const result = w.skipped !== null ? `not checked: ${w.skipped}` : w.ok ? 'no malformed frame, no expert error' : `**${w.problemCount} problem(s)**: ${w.problems.slice(0, 3).join('; ')} (capture kept: ${w.pcap ?? '-'})`;
      L.push(`| ${x.label} | ${w.frames} | ${w.vxlan} | ${w.innerTcp} | ${w.superFrames} | ${result} |`);
    }
    L.push('');
  }

  const ovsRound = r.systems.find((y) => y.id === 'ovs')?.rounds.find((y) => y.error === null);
  if (ovsRound !== undefined) {
    const peak = ovsRound.udp.reduce<UdpPoint | null>((b, p) => (b === null || p.deliveredPps > b.deliveredPps ? p : b), null);
    const tests: [string, readonly DaemonIo[]][] = [];
    if (peak !== null) tests.push([`UDP @${rateName(peak.offeredPps)}`, peak.io]);
    for (const t of ovsRound.tcp) tests.push([`TCP ${t.streams}`, t.io]);
    if (ovsRound.ping !== null) tests.push(['ping', ovsRound.ping.io]);
    L.push('## Open vSwitch: frames per port (round 1)');
    L.push('');
    L.push('From `ovs-appctl dpctl/show -s` before and after each test: the netdev datapath\'s ports (eth0 = the underlay, vp0 = the pod veth\'s host end, br-phy = the tap with the node address). ' +
      'An AF_PACKET port\'s rx is the kernel device\'s count: frames the pod sent into the veth, including those dropped at the packet socket before ovs-vswitchd read them; ' +
      'what ovs-vswitchd processed is its datapath lookups (hit = flow cache, missed = upcalls to the OpenFlow tables, lost = upcalls dropped), ' +
      'where a receiving node counts each tunnelled frame twice (before and after decapsulation, which recirculates it).');
    L.push('');
    L.push('| test | node | port | rx frames | tx frames | tx dropped | datapath hit / missed / lost |');
    L.push('|---|---|---|---:|---:|---:|---|');
    for (const [test, io] of tests) {
      for (const d of io) {
        const c = d.counters;
        const dp = `${c['dp.hit'] ?? 0} / ${c['dp.missed'] ?? 0} / ${c['dp.lost'] ?? 0}`;
        for (const p of d.ports.filter((x) => x.rxPackets + x.txPackets > 0)) {
          L.push(`| ${test} | ${d.node} | ${p.name} (${p.role}) | ${p.rxPackets} | ${p.txPackets} | ${p.txDropped} | ${dp} |`);
        }
      }
    }
    L.push('');
  }

  if (r.profiles.length > 0) {
    L.push('## flatnet CPU profiles (node --cpu-prof, a separate pass)');
    L.push('');
    for (const p of r.profiles) {
      L.push(`**${p.test}** (${p.system}; while profiled: ${p.measured})`);
      L.push('');
      for (const n of p.nodes) {
        if (n.summary === null) { L.push(`- ${n.node}: no profile (${n.error ?? 'unknown'})`); continue; }
        const u = n.summary;
        const busyPct = u.wallMs > 0 ? Math.round((100 * u.busyMs) / u.wallMs) : 0;
        L.push(`- ${n.node}: busy ${u.busyMs} ms of the test's ${u.wallMs} ms (${busyPct}%), GC ${u.gcMs} ms, (program) ${u.programMs} ms. ` +
          `Self time: ${u.topFunctions.slice(0, 8).map((e) => `${e.name} ${e.pct}%`).join('; ')}. ` +
          `By file: ${u.byFile.slice(0, 6).map((e) => `${e.name} ${e.pct}%`).join('; ')}.`);
      }
      L.push('');
    }
  }
  if (r.errors.length > 0) {
    L.push('## Errors');
    L.push('');
    for (const e of r.errors) L.push(`- ${e}`);
    L.push('');
  }
  return `${L.join('\n')}\n`;
}
