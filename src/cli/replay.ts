/**
 * `flatnet replay IN.pcap [--out OUT.pcap] [--config FILE] [--loop N] [--json]`: push every
 * frame of a capture through the real pipeline in-process (src/replay/replay.ts) and print
 * frames in, frames out per port, drops by reason, pps, ns/frame and heap bytes per frame.
 *
 *   1. the node: --config FILE (a normal node configuration) or the built-in lab node 1
 *   2. read and classify the capture (untimed); a file that is not a capture is a PcapError
 *   3. warm up, then the timed run; a progress line on stderr every second on long runs
 *   4. --out: what the switch emitted during the first pass, as a classic pcap
 *   5. the summary: a table, or one JSON object with --json
 */

import { readFileSync } from 'node:fs';
import { type NodeConfig, loadConfig } from '../daemon/config.js';
import { FlatnetError } from '../errors.js';
import { MonotonicClock } from '../fib/clock.js';
import { LinkType, PcapWriter } from '../pcap/pcap.js';
import { formatMac, parseMac } from '../wire/addr.js';
import { DEFAULT_UNDERLAY_MACS, defaultNodeConfig } from '../replay/node.js';
import { type Progress, type ReplayInput, type ReplayResult, type Replayed, ReplayNode, replayCapture, rulesByName } from '../replay/replay.js';
import { FrameCapture } from '../replay/replay-port.js';

export interface ReplayCliOptions {
  readonly out?: string;
  readonly config?: string;
  readonly loop: number;
  readonly json: boolean;
  /** Progress lines on stderr during long runs (default true). */
  readonly progress: boolean;
  readonly warmup?: number;
  readonly underlayMac?: string;
  readonly nextHopMac?: string;
  /** Read the clock once per batch as the daemon does (MonotonicClock) instead of replay's own. */
  readonly daemonClock?: boolean;
}

/** The machine-readable summary (`--json`). */
export interface ReplaySummary extends ReplayResult {
  readonly file: string;
  readonly node: string;
  readonly config: string;
  readonly mode: string;
  readonly vni: number;
  readonly vxlanPort: number;
  readonly vtepMac: string;
  readonly vtepMacSource: string;
  /** 'replay' (advanced by the replay loop) or 'daemon' (MonotonicClock, read per batch). */
  readonly clock: string;
  readonly classified: Readonly<Record<string, number>>;
  readonly skippedLinkType: number;
  readonly snapTruncated: number;
  readonly fileTruncated: boolean;
  readonly out: string | null;
  /** Frames written to --out (the first pass). */
  readonly outFrames: number;
}

function macOption(v: string | undefined, dflt: number, what: string): number {
  if (v === undefined) return dflt;
  try {
    return parseMac(v);
  } catch (e) {
    throw new FlatnetError('ERR_REPLAY_BAD_OPTION', `${what}: ${(e as Error).message}`, { cause: e });
  }
}

function readCapture(path: string): Buffer {
  try {
    return readFileSync(path);
  } catch (e) {
    throw new FlatnetError('ERR_REPLAY_READ', `cannot read ${path}: ${(e as Error).message}`, { cause: e });
  }
}

/** replay runs the whole command and returns the summary (the CLI prints it). */
export function replay(file: string, opts: ReplayCliOptions, writeErr: (s: string) => void = (s) => process.stderr.write(s)): ReplaySummary {
  if (!Number.isInteger(opts.loop) || opts.loop < 1) throw new FlatnetError('ERR_REPLAY_BAD_OPTION', `--loop must be a positive integer, not ${opts.loop}`);
  const cfg: NodeConfig = opts.config === undefined ? defaultNodeConfig() : loadConfig(opts.config);
  const macs = {
    local: macOption(opts.underlayMac, DEFAULT_UNDERLAY_MACS.local, '--underlay-mac'),
    nextHop: macOption(opts.nextHopMac, DEFAULT_UNDERLAY_MACS.nextHop, '--next-hop-mac'),
  };
  const data = readCapture(file);
  // Load once up front: a file that is not a capture fails before the output file is created.
  const input: ReplayInput = new ReplayNode(cfg, { underlayMacs: macs }).load(data);
  if (input.fileTruncated) writeErr(`flatnet replay: ${file}: the capture ends in the middle of a frame; replaying the ${input.frames} frames before it\n`);
  if (input.skippedLinkType > 0) writeErr(`flatnet replay: ${file}: ${input.skippedLinkType} frames of a link type other than Ethernet are not replayed\n`);

  // Open the output before the run: a path that cannot be written fails before any work.
  let writer: PcapWriter | null = null;
  if (opts.out !== undefined) {
    try {
      writer = new PcapWriter(opts.out, { linkType: LinkType.ETHERNET });
    } catch (e) {
      throw new FlatnetError('ERR_REPLAY_WRITE', `cannot write ${opts.out}: ${(e as Error).message}`, { cause: e });
    }
  }
  const capture = writer === null ? null : new FrameCapture();
  const tty = process.stderr.isTTY === true;
  let progressShown = false;
  const onProgress = opts.progress ? (p: Progress): void => {
    progressShown = true;
    const s = p.elapsedNs / 1e9;
    const line = `replay: ${fmtInt(p.framesIn)} frames in ${s.toFixed(1)} s, ${fmtRate(p.framesIn / s)}, pass ${p.pass}/${p.loops}`;
    writeErr(tty ? `\r${line}\x1b[K` : `${line}\n`);
  } : null;
  let replayed: Replayed;
  try {
    replayed = replayCapture(cfg, data, {
      underlayMacs: macs, loops: opts.loop, capture, warmupFrames: opts.warmup, onProgress, ...(opts.daemonClock === true ? { clock: new MonotonicClock() } : {}),
    });
  } finally {
    if (progressShown && tty) writeErr('\n');
    if (writer !== null && capture !== null) {
      const w = writer;
      try {
        capture.forEach((buf, off, len, timeMs) => {
          const sec = Math.floor(timeMs / 1000);
          w.write(buf, off, len, sec, Math.round((timeMs - sec * 1000) * 1e6));
        });
      } finally {
        w.close();
      }
    }
  }
  return {
    file,
    node: cfg.node,
    config: opts.config ?? 'built-in lab node 1',
    mode: cfg.mode,
    vni: cfg.vni,
    vxlanPort: cfg.port,
    vtepMac: formatMac(replayed.node.vtepMac.mac),
    vtepMacSource: replayed.node.vtepMac.source,
    clock: opts.daemonClock === true ? 'daemon' : 'replay',
    classified: rulesByName(input),
    skippedLinkType: input.skippedLinkType,
    snapTruncated: input.snapTruncated,
    fileTruncated: input.fileTruncated,
    out: opts.out ?? null,
    outFrames: capture?.count ?? 0,
    ...replayed.result,
  };
}

export function runReplay(file: string, opts: ReplayCliOptions, write: (s: string) => void, writeErr?: (s: string) => void): number {
  const s = replay(file, opts, writeErr);
  write(opts.json ? `${JSON.stringify(s)}\n` : formatSummary(s));
  return 0;
}

const fmtInt = (n: number): string => Math.round(n).toLocaleString('en-US');

function fmtRate(pps: number): string {
  if (!Number.isFinite(pps) || pps === 0) return '0 pps';
  if (pps >= 1e6) return `${(pps / 1e6).toFixed(2)} Mpps`;
  if (pps >= 1e3) return `${(pps / 1e3).toFixed(1)} kpps`;
  return `${pps.toFixed(0)} pps`;
}

function fmtTime(ns: number): string {
  if (ns >= 1e9) return `${(ns / 1e9).toFixed(3)} s`;
  if (ns >= 1e6) return `${(ns / 1e6).toFixed(3)} ms`;
  return `${(ns / 1e3).toFixed(1)} µs`;
}

/** formatSummary: the human-readable summary table. */
export function formatSummary(s: ReplaySummary): string {
  const lines: string[] = [];
  const passes = s.loops === 1 ? '1 pass' : `${fmtInt(s.loops)} passes`;
  lines.push(`replay ${s.file}: ${fmtInt(s.framesPerPass)} frames x ${passes}`);
  lines.push(`node ${s.node} (${s.config}): ${s.mode}, vni ${s.vni}, vxlan port ${s.vxlanPort}, vtep mac ${s.vtepMac}${s.vtepMacSource === 'config' ? '' : ` (${s.vtepMacSource})`}`);
  lines.push('');
  const kv: [string, string][] = [
    ['frames in', fmtInt(s.framesIn)],
    ['frames out', fmtInt(s.framesOut)],
    ['frames dropped', fmtInt(s.dropsTotal)],
    ['time', `${fmtTime(s.elapsedNs)} (pipeline only; warm-up ${fmtInt(s.warmupFrames)} frames untimed)`],
    ['rate', `${fmtRate(s.pps)}, ${s.nsPerFrame.toFixed(1)} ns/frame`],
    ['heap', `${s.heapBytesPerFrame.toFixed(2)} bytes/frame allocated (${fmtInt(s.heapBytes)} bytes, ${s.gcs} GCs)${s.clock === 'daemon' ? ', with the daemon\'s per-batch clock' : ''}`],
  ];
  for (const [k, v] of kv) lines.push(`  ${k.padEnd(16)}${v}`);
  lines.push('');
  const nameW = Math.max(6, ...s.ports.map((p) => p.name.length));
  lines.push(`  ${'port'.padEnd(nameW)}  ${'role'.padEnd(7)}  ${'frames in'.padStart(13)}  ${'frames out'.padStart(13)}`);
  for (const p of s.ports) lines.push(`  ${p.name.padEnd(nameW)}  ${p.role.padEnd(7)}  ${fmtInt(p.framesIn).padStart(13)}  ${fmtInt(p.framesOut).padStart(13)}`);
  lines.push('');
  const drops = Object.entries(s.drops).sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1));
  if (drops.length === 0) lines.push('  drops: none');
  else {
    const w = Math.max(...drops.map(([k]) => k.length));
    lines.push(`  ${'drop reason'.padEnd(w)}  ${'frames'.padStart(13)}`);
    for (const [k, v] of drops) lines.push(`  ${k.padEnd(w)}  ${fmtInt(v).padStart(13)}`);
  }
  const ev = s.events;
  const events = Object.entries(ev).filter(([, v]) => v > 0).map(([k, v]) => `${k} ${fmtInt(v)}`);
  if (events.length > 0) lines.push('', `  events: ${events.join(', ')}`);
  const notes: string[] = [];
  if (s.snapTruncated > 0) notes.push(`${fmtInt(s.snapTruncated)} frames per pass were cut by the capture's snaplen (counted as rx_truncated)`);
  if (s.skippedLinkType > 0) notes.push(`${fmtInt(s.skippedLinkType)} frames of another link type skipped`);
  if (s.fileTruncated) notes.push('the capture ends in the middle of a frame');
  if (s.out !== null) notes.push(`wrote ${fmtInt(s.outFrames)} frames (the first pass) to ${s.out}; copying them out is part of the timed run`);
  if (s.vtepMacSource === 'default') notes.push(`the configuration has no vtepMac: frames for the gateway must use ${s.vtepMac}`);
  for (const n of notes) lines.push(`  note: ${n}`);
  return `${lines.join('\n')}\n`;
}
