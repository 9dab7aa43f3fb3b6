/**
 * AllocationMeter: heap bytes allocated between start() and stop(), garbage collections
 * included.
 *
 * A heapUsed delta alone is only right when no GC ran in between: a loop that allocates 96
 * bytes per packet shows ~0 once the scavenger has freed them. A PerformanceObserver does not
 * help either: its 'gc' entries arrive asynchronously, after a synchronous loop is over.
 * v8.GCProfiler (Node >= 18.15) records the heap before and after every GC synchronously, so
 *
 *   allocated = (used at stop - used at start) + sum over GCs of (used before - used after)
 *
 * counts every byte allocated, with or without --expose-gc or a large young generation. Call
 * gc() first when exposed (node --expose-gc) so that start() begins from a collected heap.
 */

import { GCProfiler } from 'node:v8';

export interface Allocation {
  /** Bytes allocated on the V8 heap while the meter ran. */
  readonly bytes: number;
  /** Garbage collections while the meter ran. */
  readonly gcs: number;
}

interface GcHeapStats { usedHeapSize?: number; used_heap_size?: number }

function used(s: unknown): number {
  const h = s as GcHeapStats;
  return h.usedHeapSize ?? h.used_heap_size ?? 0;
}

export class AllocationMeter {
  private profiler: GCProfiler | null = null;
  private used0 = 0;

  start(): void {
    (globalThis as { gc?: () => void }).gc?.();
    this.profiler = new GCProfiler();
    this.profiler.start();
    this.used0 = process.memoryUsage().heapUsed;
  }

  stop(): Allocation {
    const used1 = process.memoryUsage().heapUsed;
    const p = this.profiler;
    if (p === null) throw new RangeError('AllocationMeter.stop() without start()');
    this.profiler = null;
    const r = p.stop();
    let freed = 0;
    for (const s of r.statistics) freed += used(s.beforeGC.heapStatistics) - used(s.afterGC.heapStatistics);
    return { bytes: Math.max(0, used1 - this.used0 + freed), gcs: r.statistics.length };
  }
}
