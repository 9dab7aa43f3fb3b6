/**
 * Reading `node --cpu-prof` output: self time per function and per source file, idle and GC
 * apart, so that the bench can say where a flatnet daemon spent its CPU during one test.
 */

import { readFileSync } from 'node:fs';

interface CallFrame { functionName: string; url: string; lineNumber: number }
interface ProfileNode { id: number; callFrame: CallFrame; hitCount?: number }
interface CpuProfile { nodes: ProfileNode[]; startTime: number; endTime: number; samples?: number[]; timeDeltas?: number[] }

export interface ProfileEntry { readonly name: string; readonly ms: number; readonly pct: number }

export interface ProfileSummary {
  readonly file: string;
  /** The part of the profile summarized: [from, to] in the monotonic clock's microseconds (process.hrtime), or the whole profile. */
  readonly window: { readonly fromUs: number; readonly toUs: number } | null;
  readonly wallMs: number;
  /** Sampled time not idle (JS, native, GC, "(program)"). */
  readonly busyMs: number;
  readonly idleMs: number;
  readonly gcMs: number;
  /** "(program)": native code V8 cannot attribute to a JS frame (system calls inside the addon land here or in the binding). */
  readonly programMs: number;
  /** Top functions by self time, as a share of busy time. */
  readonly topFunctions: readonly ProfileEntry[];
  /** Self time per source file (dist/src/... shortened to src/...), share of busy time. */
  readonly byFile: readonly ProfileEntry[];
}

function shortUrl(url: string): string {
  if (url === '') return '(native)';
  const i = url.indexOf('/dist/');
  if (i >= 0) return url.slice(i + 6).replace(/\.js$/, '.ts');
  const n = url.indexOf('node:');
  if (n >= 0) return url.slice(n);
  return url.replace(/^file:\/\//, '');
}

/**
 * V8 stamps profiles with its monotonic clock in microseconds, the clock of process.hrtime on
 * Linux (CLOCK_MONOTONIC), so a window taken with process.hrtime in the bench selects the samples
 * of one test and leaves out the daemon's start-up and warm-up.
 */
export function summarizeProfile(file: string, window: { fromUs: number; toUs: number } | null = null, top = 15): ProfileSummary {
  const p = JSON.parse(readFileSync(file, 'utf8')) as CpuProfile;
  return summarize(file, p, window, top);
}

export function summarize(file: string, p: CpuProfile, window: { fromUs: number; toUs: number } | null = null, top = 15): ProfileSummary {
  const byId = new Map<number, ProfileNode>();
  for (const n of p.nodes) byId.set(n.id, n);
  const selfUs = new Map<number, number>();
  const samples = p.samples ?? [], deltas = p.timeDeltas ?? [];
  // timeDeltas[i] is the time before sample i; the time until the next sample belongs to sample i.
  const from = window?.fromUs ?? -Infinity, to = window?.toUs ?? Infinity;
  let t = p.startTime, first = Infinity, last = -Infinity;
  for (let i = 0; i < samples.length; i++) {
    t += deltas[i] ?? 0;
    if (t < from || t > to) continue;
    first = Math.min(first, t);
    last = Math.max(last, t);
    const dt = deltas[i + 1] ?? 0;
    selfUs.set(samples[i]!, (selfUs.get(samples[i]!) ?? 0) + Math.max(0, dt));
  }
  let idle = 0, gc = 0, program = 0, busy = 0;
  const fns = new Map<string, number>(), files = new Map<string, number>();
  for (const [id, us] of selfUs) {
    const cf = byId.get(id)?.callFrame;
    const fn = cf?.functionName ?? '';
    if (fn === '(idle)') { idle += us; continue; }
    busy += us;
    if (fn === '(garbage collector)') gc += us;
    if (fn === '(program)') program += us;
    const file = fn.startsWith('(') ? fn : shortUrl(cf?.url ?? '');
    const name = fn.startsWith('(') ? fn : `${fn === '' ? '(anonymous)' : fn} ${file}:${(cf?.lineNumber ?? 0) + 1}`;
    fns.set(name, (fns.get(name) ?? 0) + us);
    files.set(file, (files.get(file) ?? 0) + us);
  }
  const entries = (m: Map<string, number>): ProfileEntry[] => [...m.entries()]
    .sort((a, b) => b[1] - a[1]).slice(0, top)
    .map(([name, us]) => ({ name, ms: Math.round(us / 100) / 10, pct: busy > 0 ? Math.round((1000 * us) / busy) / 10 : 0 }));
  return {
    file,
    window: window === null ? null : { fromUs: window.fromUs, toUs: window.toUs },
    wallMs: window === null ? Math.round((p.endTime - p.startTime) / 1000) : last >= first ? Math.round((last - first) / 1000) : 0,
    busyMs: Math.round(busy / 1000),
    idleMs: Math.round(idle / 1000),
    gcMs: Math.round(gc / 1000),
    programMs: Math.round(program / 1000),
    topFunctions: entries(fns),
    byFile: entries(files),
  };
}
