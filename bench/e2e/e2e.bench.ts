/**
 * The end-to-end benchmark (issue 6, and the side-by-side TCP table of issue 5): in one run,
 * build each system under test in network namespaces (systems.ts: a bare veth, kernel VXLAN,
 * flatnet with and without offloads and on AF_XDP, Open vSwitch's userspace datapath), run the
 * same measurements on each (measure.ts: 64-byte UDP at several offered rates, iperf3 TCP with 1
 * and 4 streams, ping RTT, the CPU time of flatnet's daemons or of ovs-vswitchd and their port
 * counters), remove it, and write bench/results/e2e-<timestamp>.{json,md} and
 * bench/results/latest.md with ratios computed within the run (report.ts).
 *
 *   npm run bench:e2e                      # setup, build, then this with the defaults (~7 minutes)
 *   node dist/bench/e2e/e2e.bench.js [--quick] [--rounds 2] [--systems veth,kernel,flatnet,flatnet-swseg,flatnet-nooffload,flatnet-xdp,ovs[,flatnet-xdp-generic]]
 *       [--udp-rates 50k,100k,150k,200k,300k,max] [--udp-seconds 3] [--tcp-seconds 8] [--tcp-omit 1]
 *       [--tcp-streams 1,4] [--ping-count 2000] [--ping-interval 0.002] [--underlay-offloads on|off]
 *       [--no-profile] [--no-wire-check] [--out DIR]
 *   In round 1 of each lab-built system, a tshark check of the underlay under the same UDP and
 *   TCP traffic follows the measured tests (wire-check.ts; --no-wire-check skips it).
 *
 * Root only. Everything happens in namespaces named fl-e2XXXX*-* that this run creates and
 * removes (also on failure and on SIGINT/SIGTERM); nothing is configured in the namespace it
 * starts in; addresses are 198.51.100.0/24 (underlay) and 10.244.0.0/16 (pods) inside them.
 */

import { execFileSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, release, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { sleep } from '../../src/lab/exec.js';
import { labDown } from '../../src/lab/lab.js';
import { killChildren, ping, pingIputils, tcp, udpSweep, warmUp } from './measure.js';
import { ovsMissing } from './ovs.js';
import { machineCpu, round } from './probe.js';
import { summarizeProfile } from './profile.js';
import { renderMarkdown, summarizeResults, type BenchOptions, type Machine, type ProfileRun, type Results, type RoundResult, type SystemResult } from './report.js';
import { buildSystem, DEFAULT_SYSTEMS, SYSTEM_DESCRIPTIONS, SYSTEM_IDS, SYSTEM_LABELS, type Sut, type SystemId } from './systems.js';
import { wireCheck } from './wire-check.js';

const log = (l: string): void => { process.stderr.write(`${l}\n`); };

export function repoRoot(): string {
  for (const rel of ['../../..', '../..']) {
    const p = fileURLToPath(new URL(rel, import.meta.url));
    if (existsSync(join(p, 'package.json')) && existsSync(join(p, 'bench/e2e/gen.c'))) return p;
  }
  throw new Error(`cannot find the repository (bench/e2e/gen.c) above ${fileURLToPath(import.meta.url)}`);
}

function parseRate(s: string): number {
  const t = s.trim().toLowerCase();
  if (t === 'max' || t === '0') return 0;
  const m = /^([0-9.]+)([km]?)$/.exec(t);
  if (m === null) throw new Error(`--udp-rates: ${s} is not a rate (e.g. 50k, 1.5m, max)`);
  const n = Number(m[1]) * (m[2] === 'k' ? 1e3 : m[2] === 'm' ? 1e6 : 1);
  if (!Number.isFinite(n) || n <= 0) throw new Error(`--udp-rates: ${s}`);
  return Math.round(n);
}

function positive(name: string, v: string | undefined, dflt: number, integer = false): number {
  if (v === undefined) return dflt;
  const n = Number(v);
  if (!Number.isFinite(n) || n <= 0 || (integer && !Number.isInteger(n))) throw new Error(`--${name}: ${v} is not a positive ${integer ? 'integer' : 'number'}`);
  return n;
}

export function parseOptions(argv: readonly string[]): BenchOptions & { out: string | null } {
  const { values } = parseArgs({
    args: [...argv],
    options: {
      quick: { type: 'boolean', default: false },
      rounds: { type: 'string' },
      systems: { type: 'string' },
      'udp-rates': { type: 'string' },
      'udp-seconds': { type: 'string' },
      'tcp-seconds': { type: 'string' },
      'tcp-omit': { type: 'string' },
      'tcp-streams': { type: 'string' },
      'ping-count': { type: 'string' },
      'ping-interval': { type: 'string' },
      'underlay-offloads': { type: 'string' },
      profile: { type: 'boolean' },
      'no-profile': { type: 'boolean' },
      'no-wire-check': { type: 'boolean' },
      out: { type: 'string' },
    },
    strict: true,
    allowPositionals: false,
  });
  const quick = values.quick === true;
  const systems = (values.systems?.split(',').map((s) => s.trim()) ?? [...DEFAULT_SYSTEMS]) as SystemId[];
  for (const s of systems) if (!(SYSTEM_IDS as readonly string[]).includes(s)) throw new Error(`--systems: ${s} is not one of ${SYSTEM_IDS.join(', ')}`);
  const ul = values['underlay-offloads'] ?? 'on';
  if (ul !== 'on' && ul !== 'off') throw new Error('--underlay-offloads: on or off');
  const streams = (values['tcp-streams'] ?? '1,4').split(',').map((s) => positive('tcp-streams', s, 1, true));
  return {
    quick,
    rounds: positive('rounds', values.rounds, quick ? 1 : 2, true),
    systems,
    udpRates: (values['udp-rates'] ?? (quick ? '20k,max' : '50k,100k,150k,200k,300k,max')).split(',').map(parseRate),
    udpSeconds: positive('udp-seconds', values['udp-seconds'], quick ? 0.5 : 3),
    tcpSeconds: positive('tcp-seconds', values['tcp-seconds'], quick ? 1 : 8, true),
    tcpOmitSeconds: values['tcp-omit'] === undefined ? (quick ? 0 : 1) : Number(values['tcp-omit']),
    tcpStreams: streams,
    pingCount: positive('ping-count', values['ping-count'], quick ? 50 : 2000, true),
    pingInterval: positive('ping-interval', values['ping-interval'], 0.002),
    underlayOffloads: ul === 'on',
    profile: values['no-profile'] === true ? false : values.profile === true ? true : !quick,
    wireCheck: values['no-wire-check'] !== true,
    out: values.out ?? null,
  };
}

function sh(cmd: string, args: readonly string[], cwd?: string): string | null {
  try {
    return execFileSync(cmd, args, { encoding: 'utf8', cwd, stdio: ['ignore', 'pipe', 'ignore'] }).trim();
  } catch {
    return null;
  }
}

async function describeMachine(root: string): Promise<Machine> {
  const model = /Model name:\s*(.+)/.exec(sh('lscpu', []) ?? '')?.[1]?.trim() ?? cpus()[0]?.model ?? 'unknown CPU';
  const a = machineCpu();
  await sleep(2000);
  const b = machineCpu();
  const status = sh('git', ['status', '--porcelain', '--untracked-files=no'], root);
  return {
    cpuModel: model,
    vcpus: cpus().length,
    kernel: release(),
    node: process.version,
    loadBefore: loadavg().map((x) => round(x, 2)),
    loadAfter: [],
    busyCoresBefore: round((b.busy - a.busy) / ((b.total - a.total) / cpus().length), 2),
    gitCommit: sh('git', ['rev-parse', 'HEAD'], root),
    gitDirty: status === null ? null : status !== '',
  };
}

function checkTools(systems: readonly SystemId[]): void {
  if (process.getuid?.() !== 0) throw new Error('the e2e bench builds network namespaces: run it as root');
  const missing = ['ip', 'iperf3', 'ping', 'gcc', 'ethtool', 'ss', 'bridge'].filter((t) => sh('sh', ['-c', `command -v ${t}`]) === null);
  if (missing.length > 0) throw new Error(`missing ${missing.join(', ')} (bash .ci/setup installs them)`);
  // Before anything is measured: a run that asks for ovs fails here rather than after the others.
  const ovs = systems.includes('ovs') ? ovsMissing() : null;
  if (ovs !== null) throw new Error(ovs);
}

/** What this run has up right now (its lab name, and the system once built), for the signal handlers. */
let current: Sut | null = null;
let currentName: string | null = null;
let tmpDir: string | null = null;
let aborting = false;

async function abort(signal: string): Promise<void> {
  if (aborting) return;
  aborting = true;
  log(`\n${signal}: removing what this run built`);
  killChildren();
  if (current !== null) await current.teardown().catch(() => {});
  else if (currentName !== null) await labDown(currentName).catch(() => {});
  if (tmpDir !== null) rmSync(tmpDir, { recursive: true, force: true });
  process.exit(signal === 'SIGINT' ? 130 : 143);
}

async function measureRound(id: SystemId, name: string, round: number, o: BenchOptions, gen: string): Promise<RoundResult> {
  const startedAt = new Date().toISOString();
  const t0 = Date.now();
  let sut: Sut | null = null;
  const res: { udp: RoundResult['udp']; tcp: RoundResult['tcp'][number][]; ping: RoundResult['ping']; pingIputils: RoundResult['pingIputils']; wire: RoundResult['wire']; setupSeconds: number; offloads: RoundResult['offloads'] } = { udp: [], tcp: [], ping: null, pingIputils: null, wire: null, setupSeconds: 0, offloads: {} };
  try {
    log(`  ${SYSTEM_LABELS[id]} (round ${round}, namespaces fl-${name}-*)`);
    currentName = name;
    sut = await buildSystem(id, name, { underlayOffloads: o.underlayOffloads, progress: log });
    current = sut;
    res.setupSeconds = round1((Date.now() - t0) / 1000);
    res.offloads = sut.offloads;
    await warmUp(sut, gen, o.quick ? 0.2 : 1);
    res.udp = await udpSweep(sut, gen, o.udpRates, o.udpSeconds, log);
    for (const n of o.tcpStreams) res.tcp.push(await tcp(sut, n, o.tcpSeconds, o.tcpOmitSeconds, log));
    res.ping = await ping(sut, gen, o.pingCount, o.pingInterval, log);
    res.pingIputils = await pingIputils(sut, o.pingCount, o.pingInterval, log);
    if (round === 1 && o.wireCheck && sut.lab !== null) res.wire = await wireCheck(sut, sut.lab, gen, log);
    return { round, lab: name, startedAt, ...res, error: null };
  } catch (e) {
    const msg = (e as Error).message;
    log(`    FAILED: ${msg}`);
    return { round, lab: name, startedAt, ...res, error: msg };
  } finally {
    await endSystem(sut, name);
  }
}

const round1 = (x: number): number => Math.round(x * 10) / 10;

/** endSystem: stop this system's children and remove its lab (whether or not it was built whole). */
async function endSystem(sut: Sut | null, name: string): Promise<void> {
  killChildren();
  if (sut !== null) await sut.teardown();
  else await buildSystemCleanup(name);
  current = null;
  currentName = null;
}

/** After a failed build: labDown by name removes whatever part of it exists. */
async function buildSystemCleanup(name: string): Promise<void> {
  await labDown(name).catch(() => {});
}

async function profilePass(name: string, o: BenchOptions, gen: string, dir: string): Promise<ProfileRun[]> {
  const runs: ProfileRun[] = [];
  let sut: Sut | null = null;
  try {
    log(`  profile pass: flatnet (namespaces fl-${name}-*), daemons restarted with node --cpu-prof for each test`);
    currentName = name;
    sut = await buildSystem('flatnet', name, { underlayOffloads: o.underlayOffloads, progress: log });
    current = sut;
    const tests: ProfileRun['test'][] = ['udp-max', 'tcp-1', 'ping'];
    for (const test of tests) {
      const pdir = join(dir, test);
      mkdirSync(pdir, { recursive: true });
      await sut.restartDaemons(['--cpu-prof', '--cpu-prof-dir', pdir]);
      const pids = new Map(sut.daemons.map((d) => [d.pid, d.node]));
      await warmUp(sut, gen, 0.5);
      let measured = '';
      let io: ProfileRun['io'] = [];
      const fromUs = Number(process.hrtime.bigint() / 1000n);
      if (test === 'udp-max') {
        const [p] = await udpSweep(sut, gen, [0], o.udpSeconds, log);
        measured = `sent ${p?.sentPps ?? 0} pps, delivered ${p?.deliveredPps ?? 0} pps`;
        io = p?.io ?? [];
      } else if (test === 'tcp-1') {
        const t = await tcp(sut, 1, o.tcpSeconds, o.tcpOmitSeconds, log);
        measured = `${t.gbps} Gbit/s, ${t.retransmits} retransmits`;
        io = t.io;
      } else {
        const p = await ping(sut, gen, o.pingCount, o.pingInterval, log);
        measured = `p50 ${p.p50Us} us, p99 ${p.p99Us} us`;
        io = p.io;
      }
      const toUs = Number(process.hrtime.bigint() / 1000n);
      await sut.stopDaemons();
      const files = readdirSync(pdir).filter((f) => f.endsWith('.cpuprofile'));
      const nodes = [...pids.entries()].map(([pid, node]) => {
        const f = files.find((x) => x.split('.').includes(String(pid)));
        if (f === undefined) return { node, summary: null, error: `no .cpuprofile for pid ${pid} in ${pdir}` };
        try {
          return { node, summary: summarizeProfile(join(pdir, f), { fromUs, toUs }), error: null };
        } catch (e) {
          return { node, summary: null, error: (e as Error).message };
        }
      });
      runs.push({ system: 'flatnet', test, measured, io, nodes });
    }
  } catch (e) {
    log(`    profile pass FAILED: ${(e as Error).message}`);
  } finally {
    await endSystem(sut, name);
  }
  return runs;
}

export async function main(argv: readonly string[]): Promise<number> {
  const opts = parseOptions(argv);
  checkTools(opts.systems);
  const root = repoRoot();
  const outDir = opts.out ?? join(root, 'bench/results');
  mkdirSync(outDir, { recursive: true });
  process.on('SIGINT', () => { void abort('SIGINT'); });
  process.on('SIGTERM', () => { void abort('SIGTERM'); });

  const started = new Date();
  const stamp = started.toISOString().replace(/[:]/g, '-').replace(/\.\d+Z$/, 'Z');
  // Lab names e2<run id><system><round>; $FLATNET_BENCH_PREFIX replaces `e2` (one prefix per developer).
  const runId = Math.random().toString(36).slice(2, 6).padEnd(4, '0');
  const lp = /^[a-z0-9]{1,3}$/.test(process.env['FLATNET_BENCH_PREFIX'] ?? '') ? process.env['FLATNET_BENCH_PREFIX']! : 'e2';
  const tmp = mkdtempSync(join(tmpdir(), 'flatnet-e2e-'));
  tmpDir = tmp;
  const errors: string[] = [];
  try {
    const gen = join(tmp, 'gen');
    execFileSync('gcc', ['-O2', '-Wall', '-o', gen, join(root, 'bench/e2e/gen.c')], { stdio: ['ignore', 'ignore', 'inherit'] });
    log(`e2e bench ${opts.quick ? '(quick) ' : ''}run ${lp}${runId}: ${opts.systems.join(', ')}; ${opts.rounds} round(s); measuring machine load for 2 s first`);
    const machine = await describeMachine(root);
    log(`  ${machine.cpuModel}, ${machine.vcpus} vCPUs, load ${machine.loadBefore.join(' ')}, ${machine.busyCoresBefore} cores busy before the run`);

    const results = new Map<SystemId, RoundResult[]>(opts.systems.map((s) => [s, []]));
    const code: Record<SystemId, string> = { veth: 'v', kernel: 'k', flatnet: 'f', 'flatnet-swseg': 'w', 'flatnet-nooffload': 'o', 'flatnet-xdp': 'x', 'flatnet-xdp-generic': 'g', ovs: 's' };
    for (let r = 1; r <= opts.rounds; r++) {
      const order = r % 2 === 1 ? opts.systems : [...opts.systems].reverse();
      log(`round ${r}/${opts.rounds}: ${order.join(', ')}`);
      for (const id of order) {
        const rr = await measureRound(id, `${lp}${runId}${code[id]}${r}`, r, opts, gen);
        if (rr.error !== null) errors.push(`${SYSTEM_LABELS[id]}, round ${r}: ${rr.error}`);
        results.get(id)!.push(rr);
      }
    }
    let profiles: ProfileRun[] = [];
    if (opts.profile && opts.systems.includes('flatnet')) {
      profiles = await profilePass(`${lp}${runId}p`, opts, gen, join(outDir, `e2e-${stamp}-profiles`));
      if (profiles.length === 0) errors.push('profile pass failed (see the log)');
    }

    const systems: SystemResult[] = opts.systems.map((id) => ({ id, label: SYSTEM_LABELS[id], description: SYSTEM_DESCRIPTIONS[id], rounds: results.get(id)! }));
    const finished = new Date();
    const { out: _out, ...options } = opts;
    const res: Results = {
      version: 1,
      kind: 'flatnet-e2e',
      startedAt: started.toISOString(),
      finishedAt: finished.toISOString(),
      durationSeconds: round((finished.getTime() - started.getTime()) / 1000, 1),
      command: `node dist/bench/e2e/e2e.bench.js${argv.length > 0 ? ` ${argv.join(' ')}` : ''}`,
      options,
      machine: { ...machine, loadAfter: loadavg().map((x) => round(x, 2)) },
      systems,
      summary: summarizeResults(systems),
      profiles,
      errors,
    };
    const base = join(outDir, `e2e-${stamp}`);
    writeFileSync(`${base}.json`, `${JSON.stringify(res, null, 2)}\n`);
    const md = renderMarkdown(res);
    writeFileSync(`${base}.md`, md);
    copyFileSync(`${base}.md`, join(outDir, 'latest.md'));
    process.stdout.write(md);
    log(`wrote ${base}.json, ${base}.md and ${join(outDir, 'latest.md')} (${Math.round(res.durationSeconds)} s)`);
    return errors.length === 0 ? 0 : 1;
  } finally {
    killChildren();
    rmSync(tmp, { recursive: true, force: true });
  }
}

if (process.argv[1] !== undefined && fileURLToPath(import.meta.url) === process.argv[1]) {
  main(process.argv.slice(2)).then((code) => { process.exitCode = code; }, (e: unknown) => {
    log(`e2e bench: ${(e as Error).message}`);
    process.exitCode = 2;
  });
}
