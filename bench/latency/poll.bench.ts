/**
 * Ping latency with the switch's busy polling off and on (config `busyPoll`), against kernel
 * VXLAN measured in the same run. Root only; everything lives in namespaces this script creates
 * (two labs, `fl-<prefix>k-*` for kernel VXLAN and `fl-<prefix>f-*` for flatnet), removed at the
 * end, also on failure and on Ctrl-C.
 *
 *   flock /work/.bench.lock node dist/bench/latency/poll.bench.js [--settings off,20,50,100,auto]
 *       [--rounds 4] [--count 250] [--interval-ms 2] [--pin] [--out DIR]
 *
 * --pin puts each flatnet daemon on its own vCPU (taskset) for the whole run. --same-node measures
 * between two pods of one node instead (labs of 1 node, 2 pods: two crossings of one daemon).
 *
 * Settings: off, auto, N (spin N µs, always), auto:N (auto with an N µs budget).
 *
 * Both labs stay up for the whole run (2 nodes, 1 pod each, underlay offloads on as in the e2e
 * bench). Rounds interleave the systems, the order reversed every other round: kernel VXLAN,
 * then flatnet under each setting, which is switched between batches by rewriting the nodes'
 * config files and `flatnet reload` (busyPoll is applied live), with 1.5 s for auto's first
 * sample. Each batch is `count` ICMP echoes from bench/e2e/gen.c's pinger, which sleeps between
 * probes (RTT from the reply's kernel receive timestamp). Per batch: the daemons' CPU
 * (/proc/PID/stat), the machine's busy cores (/proc/stat), and the daemons' wake-ups and spin
 * counters (`show counters`). The table pools the RTTs of all rounds per system; "added" is its
 * p50 minus kernel VXLAN's, and the per-round differences show the spread.
 */

import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { request } from '../../src/daemon/control.js';
import { inNsAsync, sleep } from '../../src/lab/exec.js';
import { labDown, labUp } from '../../src/lab/lab.js';
import type { LabState } from '../../src/lab/topology.js';
import { percentile } from '../e2e/measure.js';
import { machineCpu, processCpuSeconds } from '../e2e/probe.js';

type Setting = 'off' | 'auto' | number | { us: number; auto: true };
interface Batch {
  system: string; round: number; rtts: number[]; daemonCores: number | null; machineBusyCores: number;
  wakeupsPerPing: number | null; spinFramesPerPing: number | null; spinMsPerPing: number | null; spinning: boolean[] | null;
}

const log = (s: string): void => { process.stderr.write(`${s}\n`); };
function cpuSeconds(pid: number): number {
  const s = processCpuSeconds(pid);
  if (s === null) throw new Error(`daemon ${pid} is gone`);
  return s;
}
const r1 = (x: number): number => Math.round(x * 10) / 10;

function parseArgs(argv: readonly string[]): { settings: Setting[]; rounds: number; count: number; intervalMs: number; pin: boolean; sameNode: boolean; out: string | null } {
  const o = { settings: ['off', 20, 50, 100, 'auto'] as Setting[], rounds: 4, count: 250, intervalMs: 2, pin: false, sameNode: false, out: null as string | null };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!, v = argv[i + 1] ?? '';
    if (a === '--settings') { o.settings = v.split(',').map(parseSetting); i++; }
    else if (a === '--rounds') { o.rounds = Number(v); i++; }
    else if (a === '--count') { o.count = Number(v); i++; }
    else if (a === '--interval-ms') { o.intervalMs = Number(v); i++; }
    else if (a === '--out') { o.out = v; i++; }
    else if (a === '--pin') o.pin = true;
    else if (a === '--same-node') o.sameNode = true;
    else throw new Error(`unknown option ${a}`);
  }
  return o;
}

/** parseSetting: off, auto, N (µs, always) or auto:N (auto with an N µs budget). */
function parseSetting(s: string): Setting {
  if (s === 'off' || s === 'auto') return s;
  const m = /^auto:(\d+)$/.exec(s);
  return m !== null ? { us: Number(m[1]), auto: true } : Number(s);
}

const label = (s: Setting): string => (s === 'off' ? 'flatnet, busyPoll off' : s === 'auto' ? 'flatnet, busyPoll auto' : typeof s === 'object' ? `flatnet, busyPoll auto, ${s.us} µs` : `flatnet, busyPoll ${s} µs`);

async function setBusyPoll(lab: LabState, s: Setting): Promise<void> {
  for (const n of lab.nodes) {
    const cfg = JSON.parse(readFileSync(n.config!, 'utf8')) as Record<string, unknown>;
    cfg['busyPoll'] = s;
    writeFileSync(n.config!, `${JSON.stringify(cfg, null, 2)}\n`);
    await request(n.socket!, { cmd: 'reload' }, 5000);
  }
}

async function counters(lab: LabState | null): Promise<{ wakeups: number; frames: number; us: number } | null> {
  if (lab === null) return null;
  let wakeups = 0, frames = 0, us = 0;
  for (const n of lab.nodes) {
    const c = ((await request(n.socket!, { cmd: 'show', what: 'counters' }, 5000)) as { counters: Record<string, number> }).counters;
    wakeups += c['wakeups']!; frames += c['busy_poll_frames']!; us += c['busy_poll_us']!;
  }
  return { wakeups, frames, us };
}

async function batch(lab: LabState, fl: LabState | null, gen: string, count: number, intervalMs: number): Promise<Omit<Batch, 'system' | 'round'>> {
  // Two nodes: pod n1p0 -> pod n2p0 (four daemon crossings per echo); one node: n1p0 -> n1p1 (two).
  const src = lab.nodes[0]!.pods[0]!, dst = lab.nodes.length > 1 ? lab.nodes[1]!.pods[0]! : lab.nodes[0]!.pods[1]!;
  const pids = fl === null ? [] : fl.nodes.map((n) => fl.daemons[n.name]!.pid);
  const c0 = await counters(fl);
  const t0 = process.hrtime.bigint(), cpu0 = pids.map(cpuSeconds), m0 = machineCpu().busy;
  const r = await inNsAsync(src.ns, gen, ['icmp', dst.ip, String(count), String(Math.round(intervalMs * 1000))], { timeoutMs: Math.round((count * (intervalMs / 1000 + 1) + 30) * 1000) });
  const wall = Number(process.hrtime.bigint() - t0) / 1e9;
  const cpu1 = pids.map(cpuSeconds), m1 = machineCpu().busy;
  const c1 = await counters(fl);
  if (r.code !== 0) throw new Error(`gen icmp exited ${String(r.code ?? r.signal)}: ${r.stderr.trim()}`);
  const j = JSON.parse(r.stdout.trim().split('\n').pop()!) as { sent: number; received: number; rttNs: number[] };
  const pings = Math.max(1, j.received);
  let spinning: boolean[] | null = null;
  if (fl !== null) {
    spinning = [];
    for (const n of fl.nodes) spinning.push(((await request(n.socket!, { cmd: 'status' }, 5000)) as { busyPoll: { spinning: boolean } }).busyPoll.spinning);
  }
  return {
    rtts: j.rttNs.map((ns) => ns / 1000),
    daemonCores: fl === null ? null : Math.round((cpu1.reduce((a, b) => a + b, 0) - cpu0.reduce((a, b) => a + b, 0)) / wall * 1000) / 1000,
    machineBusyCores: Math.round((m1 - m0) / wall * 1000) / 1000,
    wakeupsPerPing: c0 === null || c1 === null ? null : r1((c1.wakeups - c0.wakeups) / pings),
    spinFramesPerPing: c0 === null || c1 === null ? null : r1((c1.frames - c0.frames) / pings),
    spinMsPerPing: c0 === null || c1 === null ? null : Math.round((c1.us - c0.us) / pings) / 1000,
    spinning,
  };
}

export async function main(argv: readonly string[]): Promise<number> {
  const o = parseArgs(argv);
  const root = join(dirname(fileURLToPath(import.meta.url)), '../../..');
  const outDir = o.out ?? join(root, 'bench/results');
  mkdirSync(outDir, { recursive: true });
  const id = `p${Math.random().toString(36).slice(2, 6).padEnd(4, '0')}`;
  const names = [`${id}k`, `${id}f`];
  const tmp = mkdtempSync(join(tmpdir(), 'flatnet-poll-'));
  let downing: Promise<void> | null = null;
  const down = (): Promise<void> => (downing ??= Promise.all(names.map((n) => labDown(n).catch(() => undefined))).then(() => undefined));
  const onSignal = (sig: string): void => { log(`${sig}: removing the labs`); void down().finally(() => process.exit(130)); };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  const started = new Date();
  try {
    const gen = join(tmp, 'gen');
    execFileSync('gcc', ['-O2', '-Wall', '-o', gen, join(root, 'bench/e2e/gen.c')], { stdio: ['ignore', 'ignore', 'inherit'] });
    const load = loadavg().map((x) => Math.round(x * 100) / 100);
    log(`poll bench ${id}: ${o.settings.map(String).join(', ')}; ${o.rounds} rounds of ${o.count} pings every ${o.intervalMs} ms; load ${load.join(' ')}`);
    const [nodes, pods] = o.sameNode ? [1, 2] : [2, 1];
    const kernel = await labUp({ name: names[0]!, nodes, pods, kernelNodes: nodes, underlayOffloads: true });
    const fl = await labUp({ name: names[1]!, nodes, pods, kernelNodes: 0, underlayOffloads: true, flatnetBusyPoll: 'off' });
    if (o.pin) {
      // Each daemon (all its threads) on its own vCPU: the scheduler cannot queue one behind the other.
      fl.nodes.forEach((n, i) => execFileSync('taskset', ['-a', '-cp', String(i % cpus().length), String(fl.daemons[n.name]!.pid)], { stdio: 'ignore' }));
    }
    // Warm-up: ARP, the daemons' JIT.
    for (const lab of [kernel, fl]) await batch(lab, lab === fl ? fl : null, gen, 100, 1);
    const systems: { name: string; setting: Setting | null }[] = [{ name: baseName(o.sameNode), setting: null }, ...o.settings.map((s) => ({ name: label(s), setting: s }))];
    const batches: Batch[] = [];
    for (let r = 1; r <= o.rounds; r++) {
      const order = r % 2 === 1 ? systems : [...systems].reverse();
      for (const s of order) {
        if (s.setting !== null) {
          await setBusyPoll(fl, s.setting);
          await sleep(1500);
        }
        const b = await batch(s.setting === null ? kernel : fl, s.setting === null ? null : fl, gen, o.count, o.intervalMs);
        batches.push({ system: s.name, round: r, ...b });
        const sorted = [...b.rtts].sort((x, y) => x - y);
        log(`  round ${r} ${s.name}: p50 ${r1(percentile(sorted, 50))} us, p99 ${r1(percentile(sorted, 99))} us, daemons ${b.daemonCores ?? '-'} cores, machine ${b.machineBusyCores}, wakeups/ping ${b.wakeupsPerPing ?? '-'}, spin frames/ping ${b.spinFramesPerPing ?? '-'}${b.spinning === null ? '' : `, spinning ${b.spinning.join('/')}`}`);
      }
    }
    const md = render(o, systems.map((s) => s.name), batches, { id, started, load, cpus: cpus().length, model: cpus()[0]?.model ?? '?' });
    const stamp = started.toISOString().replace(/[:]/g, '-').replace(/\.\d+Z$/, 'Z');
    writeFileSync(join(outDir, `poll-${stamp}.md`), md);
    writeFileSync(join(outDir, `poll-${stamp}.json`), `${JSON.stringify({ options: o, startedAt: started.toISOString(), batches: batches.map((b) => ({ ...b, rtts: undefined, p50Us: r1(percentile([...b.rtts].sort((x, y) => x - y), 50)) })) }, null, 2)}\n`);
    process.stdout.write(md);
    log(`wrote ${join(outDir, `poll-${stamp}.md`)}`);
    return 0;
  } finally {
    await down();
    rmSync(tmp, { recursive: true, force: true });
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
}

/** The baseline: kernel VXLAN between two nodes; on one node the kernel lab's pods meet on its cni0 bridge. */
const baseName = (sameNode: boolean): string => (sameNode ? 'kernel (cni0 bridge, one node)' : 'kernel VXLAN');

function render(o: ReturnType<typeof parseArgs>, systems: string[], batches: Batch[], m: { id: string; started: Date; load: number[]; cpus: number; model: string }): string {
  const base = baseName(o.sameNode);
  const pooled = (s: string): number[] => batches.filter((b) => b.system === s).flatMap((b) => b.rtts).sort((x, y) => x - y);
  const kp50 = percentile(pooled(base), 50);
  const rows = systems.map((s) => {
    const bs = batches.filter((b) => b.system === s), all = pooled(s);
    const p50 = percentile(all, 50);
    const perRound = bs.map((b) => {
      const k = batches.find((x) => x.system === base && x.round === b.round)!;
      return r1(percentile([...b.rtts].sort((x, y) => x - y), 50) - percentile([...k.rtts].sort((x, y) => x - y), 50));
    });
    const mean = (f: (b: Batch) => number | null): string => {
      const v = bs.map(f).filter((x): x is number => x !== null);
      return v.length === 0 ? '' : String(Math.round((v.reduce((a, b) => a + b, 0) / v.length) * 1000) / 1000);
    };
    return `| ${s} | ${all.length} | ${r1(p50)} | ${r1(percentile(all, 99))} | ${s === base ? '' : `**${p50 >= kp50 ? '+' : ''}${r1(p50 - kp50)}**`} | ${s === base ? '' : perRound.map((x) => `${x >= 0 ? '+' : ''}${x}`).join(', ')} | ${mean((b) => b.daemonCores)} | ${mean((b) => b.machineBusyCores)} | ${mean((b) => b.wakeupsPerPing)} | ${mean((b) => b.spinFramesPerPing)} | ${mean((b) => b.spinMsPerPing)} |`;
  });
  return [
    `Busy-poll bench ${m.id}, ${m.started.toISOString()}: ${m.model}, ${m.cpus} vCPUs, load ${m.load.join(' ')} before; ${o.rounds} rounds x ${o.count} pings every ${o.intervalMs} ms per system, interleaved${o.pin ? '; flatnet daemons pinned to vCPU 0 and 1 (taskset)' : ''}${o.sameNode ? '; ONE node, pod n1p0 -> pod n1p1 (two daemon crossings per echo)' : ''}.`,
    '',
    `| system | pings | p50 µs | p99 µs | added p50 over ${o.sameNode ? 'the kernel bridge' : 'kernel'} | added p50 per round | daemon cores | machine busy cores | wake-ups per ping (both daemons) | frames caught spinning per ping | spin ms per ping |`,
    '|---|---:|---:|---:|---:|---|---:|---:|---:|---:|---:|',
    ...rows,
    '',
  ].join('\n');
}

if (process.argv[1] !== undefined && fileURLToPath(import.meta.url) === process.argv[1]) {
  main(process.argv.slice(2)).then((code) => { process.exitCode = code; }, (e: unknown) => {
    log(`poll bench: ${(e as Error).stack ?? String(e)}`);
    process.exitCode = 2;
  });
}
