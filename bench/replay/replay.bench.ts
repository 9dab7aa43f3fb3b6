/**
 * Replay benchmark (issue 6): `flatnet replay` on every fixture of fixtures/replay/, each run in
 * its own process (so one fixture's paths do not shape the JIT for the next), with `--loop`
 * sized for at least `--seconds` of timed pipeline per run. Reports the median and the spread
 * of pps, ns/frame and heap bytes/frame, and the 64-byte case again with the daemon's
 * per-batch clock (--daemon-clock).
 *
 * Run: npm run build:ts && node dist/bench/replay/replay.bench.js [--runs 5] [--seconds 2] [--json out.json]
 *
 * Side by side with another build (`--baseline DIR`: a checkout of an earlier tree, built with
 * `tsc`, e.g. a `git worktree` of the commit before a change): every run of this tree is
 * followed by a run of the baseline's `flatnet replay` with the same --loop, so both see the
 * same machine load, and the table gets a baseline column and the ratio.
 */

import { execFileSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { ReplaySummary } from '../../src/cli/replay.js';
import { machine } from '../harness.js';

const arg = (name: string, dflt: string): string => {
  const i = process.argv.indexOf(name);
  return i > 0 && process.argv[i + 1] !== undefined ? process.argv[i + 1]! : dflt;
};
const RUNS = Number(arg('--runs', '5'));
const SECONDS = Number(arg('--seconds', '2'));
const CLI = fileURLToPath(new URL('../../src/cli/main.js', import.meta.url));
const BASELINE = arg('--baseline', '');
const BASE_CLI = BASELINE === '' ? '' : `${BASELINE.replace(/\/$/, '')}/dist/src/cli/main.js`;
/** --only A,B: the cases whose label starts with one of the comma-separated prefixes. */
const ONLY = arg('--only', '').split(',').map((x) => x.trim()).filter((x) => x !== '');
const FIXTURES = fileURLToPath(new URL('../../../fixtures/replay/', import.meta.url));

interface Case { readonly file: string; readonly extra: readonly string[]; readonly label: string }
const CASES: readonly Case[] = [
  { file: 'pod-to-remote-udp64.pcap', extra: [], label: 'pod-to-remote-udp64' },
  { file: 'pod-to-remote-udp64.pcap', extra: ['--daemon-clock'], label: 'pod-to-remote-udp64, daemon clock' },
  { file: 'imix.pcap', extra: [], label: 'imix' },
  { file: 'tcp-bulk.pcap', extra: [], label: 'tcp-bulk' },
  { file: 'from-peers.pcap', extra: [], label: 'from-peers' },
  { file: 'hostile.pcap', extra: [], label: 'hostile' },
];

function replay(c: Case, loop: number, cli = CLI): ReplaySummary {
  const out = execFileSync(process.execPath, [cli, 'replay', `${FIXTURES}${c.file}`, '--loop', String(loop), '--json', '--no-progress', ...c.extra], { encoding: 'utf8', maxBuffer: 1 << 20 });
  return JSON.parse(out) as ReplaySummary;
}

const median = (xs: readonly number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

interface Row { readonly label: string; readonly loop: number; readonly frames: number; readonly runs: readonly ReplaySummary[]; readonly base: readonly ReplaySummary[] }
const rows: Row[] = [];
for (const c of CASES.filter((x) => ONLY.length === 0 || ONLY.some((o) => x.label.startsWith(o)))) {
  // Calibrate: one short run, then enough passes for SECONDS of pipeline time.
  const probe = replay(c, Math.max(1, Math.ceil(200_000 / Math.max(1, replay(c, 1).framesPerPass))));
  let loop = Math.max(1, Math.ceil((1.1 * SECONDS * 1e9) / (probe.nsPerFrame * probe.framesPerPass)));
  const runs: ReplaySummary[] = [];
  const base: ReplaySummary[] = [];
  while (runs.length < RUNS) {
    const r = replay(c, loop);
    if (r.elapsedNs < SECONDS * 1e9) {
      // The probe was optimistic (a noisy machine): start over with more passes.
      loop = Math.ceil((loop * 1.1 * SECONDS * 1e9) / r.elapsedNs);
      runs.length = 0;
      base.length = 0;
      continue;
    }
    runs.push(r);
    if (BASE_CLI !== '') base.push(replay(c, loop, BASE_CLI));
  }
  rows.push({ label: c.label, loop, frames: runs[0]!.framesIn, runs, base });
  process.stderr.write(`${c.label}: ${runs.map((x) => x.nsPerFrame.toFixed(0)).join(' ')} ns/frame${base.length > 0 ? `; baseline ${base.map((x) => x.nsPerFrame.toFixed(0)).join(' ')}` : ''}\n`);
}

const lines = [
  `replay benchmark: ${machine()}, ${RUNS} runs per case, >= ${SECONDS} s each`,
  '',
  '| fixture | --loop | frames per run | s per run (min) | Mpps (median) | ns/frame (median) | ns/frame, all runs | heap bytes/frame (max) | GCs (max) |',
  '|---|---:|---:|---:|---:|---:|---|---:|---:|',
  ...rows.map((r) => {
    const ns = r.runs.map((x) => x.nsPerFrame);
    return `| ${r.label} | ${r.loop} | ${r.frames.toLocaleString('en-US')} | ${(Math.min(...r.runs.map((x) => x.elapsedNs)) / 1e9).toFixed(2)} | ${(1000 / median(ns)).toFixed(2)} | ${median(ns).toFixed(1)} | ${ns.map((x) => x.toFixed(0)).join(', ')} | ${Math.max(...r.runs.map((x) => x.heapBytesPerFrame)).toFixed(3)} | ${Math.max(...r.runs.map((x) => x.gcs))} |`;
  }),
];
if (BASE_CLI !== '') {
  lines.push('', `baseline: ${BASELINE}, runs interleaved with the rows above (same --loop)`, '',
    '| fixture | ns/frame (median) | baseline ns/frame (median) | this / baseline | baseline, all runs | heap bytes/frame (max) | baseline heap bytes/frame (max) |',
    '|---|---:|---:|---:|---|---:|---:|',
    ...rows.map((r) => {
      const ns = median(r.runs.map((x) => x.nsPerFrame)), bns = median(r.base.map((x) => x.nsPerFrame));
      return `| ${r.label} | ${ns.toFixed(1)} | ${bns.toFixed(1)} | ${(ns / bns).toFixed(3)} | ${r.base.map((x) => x.nsPerFrame.toFixed(0)).join(', ')} | ${Math.max(...r.runs.map((x) => x.heapBytesPerFrame)).toFixed(3)} | ${Math.max(...r.base.map((x) => x.heapBytesPerFrame)).toFixed(3)} |`;
    }));
}
process.stdout.write(`${lines.join('\n')}\n`);
const json = arg('--json', '');
if (json !== '') writeFileSync(json, JSON.stringify({ machine: machine(), runs: RUNS, seconds: SECONDS, rows }, null, 2));
