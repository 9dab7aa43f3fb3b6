/**
 * A small in-process benchmark harness for packet work: time a function that processes
 * `perCall` packets, report ns/packet, Mpps and heap bytes allocated per packet.
 *
 * - Timing: process.hrtime.bigint() around repeated calls; `samples` samples of at least
 *   `sampleMs` each after a warm-up; the median is reported (shared, noisy machines).
 * - Allocation: heap bytes allocated during a long loop, GCs included (AllocationMeter: the
 *   heapUsed delta plus what every GC in between freed, from v8.GCProfiler). A heapUsed delta
 *   alone reads ~0 for a loop that allocates once the scavenger has run, and a
 *   PerformanceObserver reports its 'gc' entries only after a synchronous loop is over. Run
 *   node with --expose-gc (a collected heap to start from) and --max-semi-space-size=64 (fewer
 *   GCs in the timed samples).
 * Every figure is meant to be read as a ratio against a baseline measured in the same run.
 */

import { cpus } from 'node:os';
import { AllocationMeter } from '../src/replay/alloc-meter.js';

export interface Result {
  readonly name: string;
  readonly nsPerPacket: number;
  readonly mpps: number;
  readonly bytesPerPacket: number;
  readonly gcDuringAllocCheck: number;
}

/**
 * A sink the optimizer cannot see through. A typed-array slot, not a module variable: an int32
 * outside the small-integer range stored into a variable is boxed (a heap number per call),
 * which would be counted as the measured code's allocation.
 */
const sinkSlot = new Int32Array(1);
export function consume(v: number): void {
  sinkSlot[0] = (sinkSlot[0]! + v) | 0;
}
export function sink(): number {
  return sinkSlot[0]!;
}

const gcFn = (globalThis as { gc?: () => void }).gc;

export function measure(name: string, perCall: number, fn: () => void, opts: { samples?: number; sampleMs?: number; allocPackets?: number } = {}): Result {
  const samples = opts.samples ?? 7;
  const sampleMs = opts.sampleMs ?? 150;
  // Warm-up: let the JIT settle.
  const warmEnd = performance.now() + 200;
  while (performance.now() < warmEnd) fn();

  const per: number[] = [];
  for (let s = 0; s < samples; s++) {
    let calls = 0;
    const t0 = process.hrtime.bigint();
    const stop = t0 + BigInt(sampleMs) * 1_000_000n;
    let t = t0;
    while (t < stop) {
      for (let k = 0; k < 16; k++) fn();
      calls += 16;
      t = process.hrtime.bigint();
    }
    per.push(Number(t - t0) / (calls * perCall));
  }
  per.sort((a, b) => a - b);
  const ns = per[Math.floor(per.length / 2)]!;

  // Allocation check.
  const allocPackets = opts.allocPackets ?? 2_000_000;
  const calls = Math.max(1, Math.ceil(allocPackets / perCall));
  gcFn?.();
  const meter = new AllocationMeter();
  meter.start();
  for (let c = 0; c < calls; c++) fn();
  const a = meter.stop();
  return { name, nsPerPacket: ns, mpps: 1000 / ns, bytesPerPacket: a.bytes / (calls * perCall), gcDuringAllocCheck: a.gcs };
}

export function machine(): string {
  const c = cpus();
  return `${c.length} x ${c[0]?.model ?? 'unknown CPU'}, Node ${process.version}, ${process.platform} ${process.arch}`;
}

export function table(rows: readonly Result[], baseline?: (r: Result) => Result | undefined): string {
  const head = '| case | ns/packet | Mpps | heap bytes/packet | GCs in alloc check |' + (baseline ? ' speed-up vs baseline |' : '');
  const sep = '|---|---:|---:|---:|---:|' + (baseline ? '---:|' : '');
  const lines = rows.map((r) => {
    const b = baseline?.(r);
    const ratio = b ? ` ${(b.nsPerPacket / r.nsPerPacket).toFixed(1)}x (${b.name}) |` : baseline ? ' |' : '';
    return `| ${r.name} | ${r.nsPerPacket.toFixed(1)} | ${r.mpps.toFixed(2)} | ${r.bytesPerPacket.toFixed(2)} | ${r.gcDuringAllocCheck} |${ratio}`;
  });
  return [head, sep, ...lines].join('\n');
}
