/**
 * The measurements, identical for every system: 64-byte UDP at several offered rates, iperf3
 * TCP with 1 and 4 streams, and ping RTT, all from the source pod to the destination pod, each
 * with the CPU time of the flatnet daemons and their per-port counters over the same window.
 */

import { spawn, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import { inNsAsync, run, sleep } from '../../src/lab/exec.js';
import {
  allCounters, allIo, cpuMark, cpuSince, ifCounters, round, udpSnmp,
  type CpuWindow, type DaemonIo,
} from './probe.js';
import type { Sut } from './systems.js';

export const UDP_PORT = 9000;
export const IPERF_PORT = 5201;
/** 22-byte datagrams: 14 (Ethernet) + 20 (IPv4) + 8 (UDP) + 22 = 64-byte frames. */
export const UDP_PAYLOAD = 22;

/**
 * Why a point's delivered rate is what it is:
 *   'offered'    everything offered was delivered (< 1% loss) and the generator kept its rate:
 *                the data plane was not saturated;
 *   'generator'  < 1% loss, but the generator could not offer more (the max row, or below
 *                95% of the rate asked for): the figure is generator-limited; the data plane
 *                may have capacity left, and on these 2 vCPUs it shares them with the generator;
 *   'data plane' >= 1% loss: the data plane (or the receiving pod's queue) was saturated.
 */
export type LimitedBy = 'offered' | 'generator' | 'data plane';

export interface UdpPoint {
  /** Datagrams per second asked of the generator; 0 = as fast as it can. */
  readonly offeredPps: number;
  readonly seconds: number;
  readonly sent: number;
  readonly refused: number;
  readonly sentPps: number;
  /** Packets counted at the destination pod's eth0 (rx_packets difference). */
  readonly delivered: number;
  readonly deliveredPps: number;
  readonly lossPct: number;
  /** Datagrams that reached the destination pod's UDP layer (/proc/net/snmp InDatagrams + RcvbufErrors). */
  readonly udpLayer: number;
  readonly limitedBy: LimitedBy;
  readonly generatorCpuSeconds: number;
  readonly cpu: CpuWindow;
  /** The system's daemons' CPU seconds (flatnet's, or ovs-vswitchd's) per million delivered packets (= cores per Mpps). */
  readonly flatnetCoresPerMpps: number | null;
  readonly io: readonly DaemonIo[];
}

export interface TcpResult {
  readonly streams: number;
  readonly seconds: number;
  readonly omitSeconds: number;
  /** Receiver's rate over the measured (not omitted) seconds. */
  readonly gbps: number;
  readonly senderGbps: number;
  readonly retransmits: number;
  /** iperf3's own CPU figures (percent of one core... as iperf3 reports them). */
  readonly iperfCpu: { readonly host: number; readonly remote: number } | null;
  readonly cpu: CpuWindow;
  /** The system's daemons' CPU seconds (flatnet's, or ovs-vswitchd's) per Gbit moved, omitted second included (= cores per Gbit/s). */
  readonly flatnetCoresPerGbps: number | null;
  readonly io: readonly DaemonIo[];
  readonly error: string | null;
}

export interface PingResult {
  /** 'gen': bench/e2e/gen.c's pinger (sleeps between probes); 'iputils': ping -i INTERVAL (busy-polls below 10 ms). */
  readonly tool: 'gen' | 'iputils';
  readonly method: string;
  readonly sent: number;
  readonly received: number;
  readonly minUs: number;
  readonly p50Us: number;
  readonly p90Us: number;
  readonly p99Us: number;
  readonly maxUs: number;
  readonly meanUs: number;
  readonly cpu: CpuWindow;
  readonly io: readonly DaemonIo[];
}

/** Children this module started (generators, sinks, iperf3 servers): killed by killChildren(). */
const children = new Set<ChildProcess>();
function track(c: ChildProcess): ChildProcess {
  children.add(c);
  c.on('exit', () => children.delete(c));
  return c;
}
export function killChildren(): void {
  for (const c of children) {
    try { c.kill('SIGKILL'); } catch { /* gone */ }
  }
  children.clear();
}

/** Nearest-rank percentile of sorted values. */
export function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return Number.NaN;
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[i]!;
}

export function classify(offeredPps: number, sentPps: number, lossPct: number): LimitedBy {
  if (lossPct >= 1) return 'data plane';
  if (offeredPps === 0 || sentPps < 0.95 * offeredPps) return 'generator';
  return 'offered';
}

/** Starts the sink in the destination pod; resolves once it is bound. */
async function startSink(sut: Sut, gen: string): Promise<ChildProcess> {
  const c = track(spawn('ip', ['netns', 'exec', sut.dst.ns, gen, 'sink', String(UDP_PORT)], { stdio: ['ignore', 'pipe', 'pipe'] }));
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('the UDP sink did not start within 5 s')), 5000);
    const rl = createInterface({ input: c.stdout! });
    rl.on('line', (l) => { if (l.trim() === 'ready') { clearTimeout(timer); resolve(); } });
    c.on('exit', (code) => { clearTimeout(timer); reject(new Error(`the UDP sink exited (${String(code)})`)); });
  });
  return c;
}

interface GenOut { sent: number; refused: number; seconds: number; errors: number; userSeconds: number; sysSeconds: number }

async function generate(sut: Sut, gen: string, rate: number, seconds: number): Promise<GenOut> {
  const r = await inNsAsync(sut.src.ns, gen, ['send', sut.dst.ip, String(UDP_PORT), String(rate), String(seconds), String(UDP_PAYLOAD)], { timeoutMs: (seconds + 20) * 1000 });
  if (r.code !== 0) throw new Error(`gen send exited ${String(r.code ?? r.signal)}: ${r.stderr.trim()}`);
  return JSON.parse(r.stdout.trim().split('\n').pop()!) as GenOut;
}

/** Warm-up traffic (ARP, the daemons' JIT): a few pings, then UDP untimed. */
export async function warmUp(sut: Sut, gen: string, seconds: number): Promise<void> {
  await inNsAsync(sut.src.ns, 'ping', ['-n', '-q', '-c', '5', '-i', '0.05', '-W', '1', sut.dst.ip], { timeoutMs: 10_000 });
  await udpBurst(sut, gen, 50_000, seconds);
}

/** udpBurst: the generator at `rate` for `seconds` into a sink in the destination pod, untimed. */
export async function udpBurst(sut: Sut, gen: string, rate: number, seconds: number): Promise<void> {
  const sink = await startSink(sut, gen);
  try {
    await generate(sut, gen, rate, seconds);
  } finally {
    sink.kill('SIGTERM');
  }
}

export async function udpSweep(sut: Sut, gen: string, rates: readonly number[], seconds: number, progress: (l: string) => void): Promise<UdpPoint[]> {
  const sink = await startSink(sut, gen);
  const points: UdpPoint[] = [];
  try {
    for (const rate of rates) {
      await sleep(300); // queues from the previous point drain
      const d = sut.daemons;
      const if0 = ifCounters(sut.dst.ns), snmp0 = udpSnmp(sut.dst.ns), c0 = await allCounters(d), m0 = cpuMark(d);
      const g = await generate(sut, gen, rate, seconds);
      await sleep(200); // in-flight packets (daemon queues) arrive
      const cpu = cpuSince(m0, d), c1 = await allCounters(d), if1 = ifCounters(sut.dst.ns), snmp1 = udpSnmp(sut.dst.ns);
      const delivered = if1.rxPackets - if0.rxPackets;
      const udpLayer = ((snmp1['InDatagrams'] ?? 0) - (snmp0['InDatagrams'] ?? 0)) + ((snmp1['RcvbufErrors'] ?? 0) - (snmp0['RcvbufErrors'] ?? 0));
      const secs = g.seconds > 0 ? g.seconds : seconds;
      const sentPps = g.sent / secs;
      const lossPct = g.sent > 0 ? (100 * (g.sent - delivered)) / g.sent : 0;
      const p: UdpPoint = {
        offeredPps: rate, seconds: round(secs, 3), sent: g.sent, refused: g.refused, sentPps: Math.round(sentPps),
        delivered, deliveredPps: Math.round(delivered / secs), lossPct: round(lossPct, 2), udpLayer,
        limitedBy: classify(rate, sentPps, lossPct),
        generatorCpuSeconds: round(g.userSeconds + g.sysSeconds, 3),
        cpu,
        flatnetCoresPerMpps: cpu.flatnetCpuSeconds === null || delivered <= 0 ? null : round(cpu.flatnetCpuSeconds / (delivered / 1e6), 3),
        io: allIo(d, c0, c1),
      };
      points.push(p);
      progress(`    udp ${rate === 0 ? 'max' : `${rate / 1000}k`}: sent ${(p.sentPps / 1000).toFixed(1)} kpps, delivered ${(p.deliveredPps / 1000).toFixed(1)} kpps, loss ${p.lossPct.toFixed(1)}%${cpu.flatnetCores === null ? '' : `, ${sut.daemonLabel ?? 'daemons'} ${cpu.flatnetCores.toFixed(2)} cores`}`);
    }
  } finally {
    sink.kill('SIGTERM');
  }
  return points;
}

interface IperfJson {
  error?: string;
  intervals?: { sum?: { bytes?: number; omitted?: boolean } }[];
  end?: {
    sum_sent?: { bits_per_second?: number; retransmits?: number; bytes?: number };
    sum_received?: { bits_per_second?: number; bytes?: number };
    cpu_utilization_percent?: { host_total?: number; remote_total?: number };
  };
}

async function waitListening(ns: string, port: number, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const out = run('ip', ['netns', 'exec', ns, 'ss', '-Hltn', `sport = :${port}`]);
    if (out.trim() !== '') return;
    await sleep(50);
  }
  throw new Error(`iperf3 -s did not listen on :${port} within ${timeoutMs} ms`);
}

/** withIperfServer runs `fn` while a one-shot iperf3 server listens in the destination pod. */
export async function withIperfServer<T>(sut: Sut, fn: () => Promise<T>): Promise<T> {
  const server = track(spawn('ip', ['netns', 'exec', sut.dst.ns, 'iperf3', '-s', '-1', '-p', String(IPERF_PORT)], { stdio: 'ignore' }));
  try {
    await waitListening(sut.dst.ns, IPERF_PORT, 5000);
    return await fn();
  } finally {
    server.kill('SIGKILL');
  }
}

export async function tcp(sut: Sut, streams: number, seconds: number, omit: number, progress: (l: string) => void): Promise<TcpResult> {
  const d = sut.daemons;
  return withIperfServer(sut, async () => {
    const c0 = await allCounters(d), m0 = cpuMark(d);
    const args = ['-c', sut.dst.ip, '-p', String(IPERF_PORT), '-t', String(seconds), '-P', String(streams), '-J'];
    if (omit > 0) args.push('-O', String(omit));
    const r = await inNsAsync(sut.src.ns, 'iperf3', args, { timeoutMs: (seconds + omit + 30) * 1000 });
    const cpu = cpuSince(m0, d), c1 = await allCounters(d);
    let j: IperfJson = {};
    try { j = JSON.parse(r.stdout) as IperfJson; } catch { /* below */ }
    const error = j.error ?? (r.code === 0 ? null : `iperf3 exited ${String(r.code ?? r.signal)}: ${r.stderr.trim().slice(0, 200)}`);
    const gbps = (j.end?.sum_received?.bits_per_second ?? 0) / 1e9;
    const allBytes = (j.intervals ?? []).reduce((s, i) => s + (i.sum?.bytes ?? 0), 0);
    const gbit = (allBytes * 8) / 1e9;
    const cpuPct = j.end?.cpu_utilization_percent;
    const res: TcpResult = {
      streams, seconds, omitSeconds: omit,
      gbps: round(gbps, 3), senderGbps: round((j.end?.sum_sent?.bits_per_second ?? 0) / 1e9, 3),
      retransmits: j.end?.sum_sent?.retransmits ?? 0,
      iperfCpu: cpuPct === undefined ? null : { host: round(cpuPct.host_total ?? 0, 1), remote: round(cpuPct.remote_total ?? 0, 1) },
      cpu,
      flatnetCoresPerGbps: cpu.flatnetCpuSeconds === null || gbit <= 0 ? null : round(cpu.flatnetCpuSeconds / gbit, 3),
      io: allIo(d, c0, c1),
      error,
    };
    progress(`    tcp ${streams} stream${streams > 1 ? 's' : ''}: ${res.gbps.toFixed(2)} Gbit/s, ${res.retransmits} retransmits${cpu.flatnetCores === null ? '' : `, ${sut.daemonLabel ?? 'daemons'} ${cpu.flatnetCores.toFixed(2)} cores`}${error === null ? '' : ` (${error})`}`);
    return res;
  });
}

/** pingResult: a PingResult from RTTs in microseconds, sorted ascending. */
function pingResult(tool: PingResult['tool'], method: string, sent: number, received: number, rtts: readonly number[], cpu: CpuWindow, io: readonly DaemonIo[]): PingResult {
  return {
    tool, method, sent, received,
    minUs: round(rtts[0] ?? Number.NaN, 1),
    p50Us: round(percentile(rtts, 50), 1),
    p90Us: round(percentile(rtts, 90), 1),
    p99Us: round(percentile(rtts, 99), 1),
    maxUs: round(rtts[rtts.length - 1] ?? Number.NaN, 1),
    meanUs: round(rtts.reduce((s, x) => s + x, 0) / Math.max(1, rtts.length), 1),
    cpu,
    io,
  };
}

export async function ping(sut: Sut, gen: string, count: number, intervalS: number, progress: (l: string) => void): Promise<PingResult> {
  const d = sut.daemons;
  const c0 = await allCounters(d), m0 = cpuMark(d);
  const r = await inNsAsync(sut.src.ns, gen, ['icmp', sut.dst.ip, String(count), String(Math.round(intervalS * 1e6))], { timeoutMs: (count * (intervalS + 1) + 30) * 1000 });
  const cpu = cpuSince(m0, d), c1 = await allCounters(d);
  if (r.code !== 0) throw new Error(`gen icmp exited ${String(r.code ?? r.signal)}: ${r.stderr.trim()}`);
  const j = JSON.parse(r.stdout.trim().split('\n').pop()!) as { sent: number; received: number; rttNs: number[] };
  const rtts = j.rttNs.map((ns) => ns / 1000).sort((a, b) => a - b);
  const res = pingResult('gen',
    `ICMP echo, 56-byte payload, ${count} probes every ${intervalS * 1000} ms, sleeping between probes (bench/e2e/gen.c); RTT = kernel receive timestamp of the reply - time before sendto, as ping computes it`,
    j.sent, j.received, rtts, cpu, allIo(d, c0, c1));
  progress(`    ping (gen icmp, sleeping): ${res.received}/${count}, p50 ${res.p50Us} us, p99 ${res.p99Us} us`);
  return res;
}

/**
 * pingIputils: the same with iputils `ping -i INTERVAL -c COUNT`, what people run by hand. Below
 * 10 ms intervals it busy-polls (one core at 100%, measured), which keeps its vCPU awake: lower
 * RTTs for every system, and one core fewer for the data plane. RTTs as ping prints them (us).
 */
export async function pingIputils(sut: Sut, count: number, intervalS: number, progress: (l: string) => void): Promise<PingResult> {
  const d = sut.daemons;
  const c0 = await allCounters(d), m0 = cpuMark(d);
  const r = await inNsAsync(sut.src.ns, 'ping', ['-n', '-i', String(intervalS), '-c', String(count), '-W', '1', sut.dst.ip], { timeoutMs: (count * (intervalS + 1) + 30) * 1000 });
  const cpu = cpuSince(m0, d), c1 = await allCounters(d);
  const rtts: number[] = [];
  for (const m of r.stdout.matchAll(/time=([0-9.]+) ms/g)) rtts.push(Number(m[1]) * 1000);
  rtts.sort((a, b) => a - b);
  const res = pingResult('iputils',
    `iputils ping -i ${intervalS} -c ${count} (56-byte payload; busy-polls one core at this interval; RTT in whole microseconds)`,
    count, rtts.length, rtts, cpu, allIo(d, c0, c1));
  progress(`    ping (iputils -i ${intervalS}): ${res.received}/${count}, p50 ${res.p50Us} us, p99 ${res.p99Us} us`);
  return res;
}
