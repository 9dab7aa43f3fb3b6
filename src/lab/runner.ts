/**
 * `flatnet lab test`: exercise a running lab and report one PASS/FAIL row per check.
 *
 *   daemon   every flatnet daemon is alive and answers on its control socket
 *   ping     every pod pings every other pod (all ordered pairs, local and across nodes)
 *   iperf3   TCP between pods of each kind of node pair (flatnet-flatnet, flatnet-kernel, ...),
 *            in both directions, and between two pods of one flatnet node
 *   tshark   the underlay capture taken during the pings and iperf3 runs (see tshark-check.ts)
 *
 * Nothing here judges speed: an iperf3 row passes when the transfer completes; its rate is
 * printed for information only. When a row fails, the flatnet nodes' counters are appended.
 */

import { spawn } from 'node:child_process';
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { request } from '../daemon/control.js';
import { render, type CountersSnapshot } from '../daemon/show.js';
import { inNsAsync, pool } from './exec.js';
import { liveDaemon } from './restart.js';
import { dissect, evaluateCapture, expectationOf, startCapture, tsharkMissing, type Capture, type CaptureReport } from './tshark-check.js';
import { allPods, kindLabel, type LabNode, type LabPod, type LabState } from './topology.js';

export interface TestRow {
  readonly check: 'daemon' | 'ping' | 'iperf3' | 'tshark';
  readonly from: string;
  readonly to: string;
  readonly ok: boolean;
  readonly detail: string;
}

export interface LabReport {
  readonly ok: boolean;
  readonly rows: readonly TestRow[];
  readonly capture: CaptureReport | null;
  /** `flatnet show counters` of each flatnet node, when something failed. */
  readonly counters: Readonly<Record<string, string>>;
  /** The underlay capture, when kept (after a failure, or when asked to). */
  readonly pcap: string | null;
}

export interface LabTestOptions {
  readonly pings?: boolean;
  readonly pingCount?: number;
  readonly iperf?: boolean;
  readonly iperfSeconds?: number;
  /** iperf3 -b: caps each run so that the capture stays small enough to dissect quickly. */
  readonly iperfBitrate?: string;
  readonly capture?: boolean;
  /** Keep the capture file also when every frame passed (it is kept after a failure). */
  readonly keepCapture?: boolean;
  readonly progress?: (line: string) => void;
}

const IPERF_PORT = 5201;

export async function labTest(state: LabState, o: LabTestOptions = {}): Promise<LabReport> {
  const progress = o.progress ?? (() => {});
  const rows: TestRow[] = [];
  rows.push(...(await daemonRows(state)));

  let capture: Capture | null = null;
  let captureRow: TestRow | null = null;
  const pcap = join(state.dir, 'underlay.pcapng');
  if (o.capture ?? true) {
    const missing = await tsharkMissing();
    if (missing !== null) captureRow = { check: 'tshark', from: 'underlay', to: '', ok: false, detail: missing };
    else capture = await startCapture(state, pcap);
  }

  let report: CaptureReport | null = null;
  try {
    if (o.pings ?? true) {
      progress(`ping: ${allPods(state).length * (allPods(state).length - 1)} pod pairs`);
      rows.push(...(await pingRows(state, o.pingCount ?? 3)));
    }
    if (o.iperf ?? true) {
      for (const [a, b, label] of iperfPairs(state)) {
        progress(`iperf3 ${label}: ${a.name} -> ${b.name}`);
        rows.push(await iperfRow(a, b, label, o.iperfSeconds ?? 2, o.iperfBitrate ?? '100M'));
      }
    }
  } finally {
    if (capture !== null) await capture.stop();
  }
  if (capture !== null) {
    progress('tshark: dissecting the underlay capture');
    report = evaluateCapture(await dissect(pcap, state.options.port), expectationOf(state));
    captureRow = { check: 'tshark', from: 'underlay', to: state.nodes.map((n) => n.underlayPort).join(','), ok: report.ok, detail: captureDetail(report) };
  }
  if (captureRow !== null) rows.push(captureRow);
  let keptPcap: string | null = null;
  if (capture !== null) {
    if (report?.ok === true && !(o.keepCapture ?? false)) rmSync(pcap, { force: true });
    else keptPcap = pcap;
  }

  const ok = rows.every((r) => r.ok);
  const counters: Record<string, string> = {};
  if (!ok) {
    for (const n of state.nodes.filter((x) => x.kind === 'flatnet')) {
      try {
        counters[n.name] = render('counters', (await request(n.socket!, { cmd: 'show', what: 'counters' })) as CountersSnapshot);
      } catch (e) {
        counters[n.name] = `(unreachable: ${(e as Error).message})\n`;
      }
    }
  }
  return { ok, rows, capture: report, counters, pcap: keptPcap };
}

async function daemonRows(state: LabState): Promise<TestRow[]> {
  const rows: TestRow[] = [];
  for (const n of state.nodes.filter((x) => x.kind === 'flatnet')) {
    const d = state.daemons[n.name];
    const subject = `${n.name} (flatnet)`;
    // The daemon running now, which need not be the one lab.json recorded (restarted by hand).
    const pid = liveDaemon(n, d);
    if (pid === null) {
      rows.push({ check: 'daemon', from: subject, to: '', ok: false, detail: `not running (recorded pid ${d?.pid ?? '?'}); see ${n.log}; \`flatnet lab restart ${n.name} --name ${state.name}\` starts it again` });
      continue;
    }
    try {
      const s = (await request(n.socket!, { cmd: 'status' })) as { vtepMac: string; pods: number; peers: number; podMtu: number };
      const macOk = s.vtepMac === n.vtepMac;
      rows.push({
        check: 'daemon', from: subject, to: '', ok: macOk,
        detail: `pid ${pid}${d !== undefined && d.pid !== pid ? ` (lab.json recorded ${d.pid})` : ''}, VTEP MAC ${s.vtepMac}${macOk ? '' : ` (expected ${n.vtepMac})`}, ${s.pods} pods, ${s.peers} peers, pod MTU ${s.podMtu}`,
      });
    } catch (e) {
      rows.push({ check: 'daemon', from: subject, to: '', ok: false, detail: (e as Error).message });
    }
  }
  return rows;
}

export interface PingResult { readonly sent: number; readonly received: number; readonly avgMs: number | null; readonly error: string | null }

/** ping runs `ping -c COUNT` from a pod to an address (inside the pod's namespace). */
export async function ping(from: LabPod, ip: string, count = 3): Promise<PingResult> {
  const r = await inNsAsync(from.ns, 'ping', ['-n', '-q', '-c', String(count), '-i', '0.2', '-W', '2', ip], { timeoutMs: 10_000 + count * 1000 });
  const m = /(\d+) packets transmitted, (\d+) received/.exec(r.stdout);
  const avg = /= [\d.]+\/([\d.]+)\//.exec(r.stdout);
  if (m === null) return { sent: count, received: 0, avgMs: null, error: (r.stderr || r.stdout).trim() || `exit ${r.code}` };
  return { sent: Number(m[1]), received: Number(m[2]), avgMs: avg === null ? null : Number(avg[1]), error: null };
}

async function pingRows(state: LabState, count: number): Promise<TestRow[]> {
  const pods = allPods(state);
  const jobs: (() => Promise<TestRow>)[] = [];
  for (const a of pods) {
    for (const b of pods) {
      if (a === b) continue;
      jobs.push(async () => {
        const r = await ping(a, b.ip, count);
        const ok = r.error === null && r.received === r.sent;
        const detail = r.error ?? `${r.received}/${r.sent} replies${r.avgMs === null ? '' : `, avg ${r.avgMs.toFixed(2)} ms`}`;
        return { check: 'ping', from: `${a.name} ${a.ip}`, to: `${b.name} ${b.ip}`, ok, detail };
      });
    }
  }
  return pool(8, jobs);
}

/**
 * iperfPairs: for each kind of node pair (by kindLabel, so kernel nodes with and without outer
 * checksums count as different kinds), the first two such nodes, both directions; plus two pods
 * of the first flatnet node (the switch's local path). Pod 0 of each node takes part.
 */
export function iperfPairs(state: LabState): [LabPod, LabPod, string][] {
  const byLabel = new Map<string, LabNode[]>();
  for (const n of state.nodes) byLabel.set(kindLabel(n), [...(byLabel.get(kindLabel(n)) ?? []), n]);
  const labels = [...byLabel.keys()];
  const out: [LabPod, LabPod, string][] = [];
  for (let i = 0; i < labels.length; i++) {
    for (let j = i; j < labels.length; j++) {
      const A = byLabel.get(labels[i]!)!, B = byLabel.get(labels[j]!)!;
      const a = A[0]!, b = i === j ? A[1] : B[0]!;
      // A lab from a manifest may leave a node without pods.
      if (b === undefined || a.pods[0] === undefined || b.pods[0] === undefined) continue;
      out.push([a.pods[0]!, b.pods[0]!, `${kindLabel(a)} -> ${kindLabel(b)}`]);
      out.push([b.pods[0]!, a.pods[0]!, `${kindLabel(b)} -> ${kindLabel(a)}`]);
    }
  }
  const f = state.nodes.find((n) => n.kind === 'flatnet' && n.pods.length >= 2);
  if (f !== undefined) out.push([f.pods[0]!, f.pods[1]!, 'flatnet (same node)']);
  return out;
}

export interface IperfResult { readonly ok: boolean; readonly bitsPerSecond: number; readonly bytes: number; readonly retransmits: number; readonly error: string | null }

/** iperf runs an iperf3 TCP test from pod `a` (client) to pod `b` (server, started and stopped here). */
export async function iperf(a: LabPod, b: LabPod, seconds: number, bitrate: string): Promise<IperfResult> {
  const server = spawn('ip', ['netns', 'exec', b.ns, 'iperf3', '-s', '-1', '-p', String(IPERF_PORT), '--forceflush'], { stdio: ['ignore', 'pipe', 'pipe'] });
  const serverExit = new Promise<void>((resolve) => server.on('exit', () => resolve()));
  try {
    await new Promise<void>((resolve, reject) => {
      let out = '';
      const t = setTimeout(() => reject(new Error('iperf3 server did not start within 5 s')), 5000);
      server.stdout.on('data', (d: Buffer) => { out += d.toString(); if (out.includes('Server listening')) { clearTimeout(t); resolve(); } });
      server.on('exit', (code) => { clearTimeout(t); reject(new Error(`iperf3 server exited (${code}): ${out.trim()}`)); });
    });
    const r = await inNsAsync(a.ns, 'iperf3', ['-c', b.ip, '-p', String(IPERF_PORT), '-t', String(seconds), '-b', bitrate, '-J', '--connect-timeout', '3000'], { timeoutMs: (seconds + 20) * 1000 });
    let j: { error?: string; end?: { sum_sent?: { bytes: number; retransmits?: number }; sum_received?: { bytes: number; bits_per_second: number } } };
    try {
      j = JSON.parse(r.stdout) as typeof j;
    } catch {
      return { ok: false, bitsPerSecond: 0, bytes: 0, retransmits: 0, error: `iperf3 exit ${r.code}: ${(r.stderr || r.stdout).trim().slice(0, 200)}` };
    }
    const rx = j.end?.sum_received;
    const ok = r.code === 0 && j.error === undefined && rx !== undefined && rx.bytes > 0;
    return { ok, bitsPerSecond: rx?.bits_per_second ?? 0, bytes: rx?.bytes ?? 0, retransmits: j.end?.sum_sent?.retransmits ?? 0, error: j.error ?? (r.code === 0 ? null : `exit ${r.code}`) };
  } catch (e) {
    return { ok: false, bitsPerSecond: 0, bytes: 0, retransmits: 0, error: (e as Error).message };
  } finally {
    if (server.exitCode === null && server.signalCode === null) server.kill('SIGKILL');
    await serverExit;
  }
}

async function iperfRow(a: LabPod, b: LabPod, label: string, seconds: number, bitrate: string): Promise<TestRow> {
  const r = await iperf(a, b, seconds, bitrate);
  const detail = r.error !== null
    ? r.error
    : `${label}: ${(r.bitsPerSecond / 1e6).toFixed(1)} Mbit/s (-b ${bitrate}), ${(r.bytes / 1e6).toFixed(1)} MB received, ${r.retransmits} retransmits`;
  return { check: 'iperf3', from: `${a.name} ${a.ip}`, to: `${b.name} ${b.ip}`, ok: r.ok, detail };
}

function captureDetail(r: CaptureReport): string {
  if (!r.ok) return `${r.problemCount} problem(s) in ${r.copies} captured frames: ${r.problems.slice(0, 3).join('; ')}`;
  const cs = Object.entries(r.checksums).map(([n, c]) => `${n} ${c.good > 0 ? 'good' : c.zero > 0 ? 'zero' : '-'}`).join(' ');
  return `${r.frames} frames (${r.vxlan} VXLAN, ${r.arp} ARP), VNI ${r.vnis.join(',')}, port ${r.ports.join(',')}, ` +
    `${r.innerIcmp} ICMP + ${r.innerTcp} TCP inside, no malformed/expert errors; outer UDP checksum: ${cs}`;
}

/** renderReport prints the table (and, after a failure, the counters and the problems found). */
export function renderReport(rep: LabReport): string {
  const head = ['CHECK', 'FROM', 'TO', 'RESULT', 'DETAIL'];
  const body = rep.rows.map((r) => [r.check, r.from, r.to, r.ok ? 'PASS' : 'FAIL', r.detail]);
  const widths = head.map((h, i) => Math.max(h.length, ...body.map((row) => row[i]!.length)));
  widths[4] = 0; // the detail column is last: no padding
  const line = (cells: string[]): string => cells.map((c, i) => (i === 4 ? c : c.padEnd(widths[i]!))).join('  ').trimEnd();
  const lines = [line(head), ...body.map(line)];
  const failed = rep.rows.filter((r) => !r.ok).length;
  lines.push('', rep.ok ? `PASS: all ${rep.rows.length} checks passed` : `FAIL: ${failed} of ${rep.rows.length} checks failed`);
  if (rep.capture !== null && !rep.capture.ok) {
    lines.push('', `underlay capture problems (${rep.capture.problemCount}):`, ...rep.capture.problems.map((p) => `  ${p}`));
  }
  if (rep.pcap !== null) lines.push(`underlay capture: ${rep.pcap}`);
  for (const [node, text] of Object.entries(rep.counters)) lines.push('', `flatnet show counters (${node}):`, text.trimEnd());
  return `${lines.join('\n')}\n`;
}
