// AllocationMeter as its users read it (replay's and the benches' bytes per packet, the FIB's
// "no allocation per lookup" tests): bytes / N is what one iteration allocates, including what
// the scavenger freed while the loop ran, and a loop that allocates nothing measures ~0.
import { describe, expect, it } from 'vitest';
import { AllocationMeter } from '../../src/replay/alloc-meter.js';

/**
 * The V8 heap's tagged word: 8 bytes, or 4 with pointer compression (off in Node's own builds).
 * The sizes below follow V8's object layouts (objects.h): a JSObject is map, properties,
 * elements, then its in-object fields; a JSArray is map, properties, elements, length; its
 * FixedArray backing store is map, length, then one word per element.
 */
const W = (process.config.variables as { v8_enable_pointer_compression?: number }).v8_enable_pointer_compression === 1 ? 4 : 8;

/** Where allocated objects go: a ring, so that they escape (no allocation can be optimised away) and then die young. */
const ring: unknown[] = new Array<unknown>(1024).fill(null);

/** measure runs `alloc` n times under a fresh meter, after a warm-up run so that compilation is not measured. */
function measure(n: number, alloc: (i: number) => unknown): { bytes: number; gcs: number; naive: number } {
  const loop = (count: number): void => {
    for (let i = 0; i < count; i++) ring[i & 1023] = alloc(i);
  };
  loop(20_000);
  const m = new AllocationMeter();
  m.start();
  const h0 = process.memoryUsage().heapUsed;
  loop(n);
  const naive = process.memoryUsage().heapUsed - h0;
  return { ...m.stop(), naive };
}

describe('AllocationMeter', () => {
  // Each case allocates well over 64 MB, far more than the young generation holds, so scavenges
  // run and free most of it before stop().
  it.each<[string, number, (i: number) => unknown, number]>([
    ['an object literal with 4 fields', 2_000_000, (i) => ({ a: i, b: i, c: i, d: i }), 3 * W + 4 * W],
    ['an array literal of 8 small integers', 1_000_000, (i) => [i, i, i, i, i, i, i, i], 4 * W + 2 * W + 8 * W],
    ['new Array(128).fill(i)', 100_000, (i) => new Array<number>(128).fill(i), 4 * W + 2 * W + 128 * W],
  ])('measures N x the size of %s, GCs included', (_what, n, alloc, size) => {
    const a = measure(n, alloc);
    expect(a.gcs).toBeGreaterThan(0);
    expect(a.bytes / n).toBeGreaterThan(size * 0.95);
    expect(a.bytes / n).toBeLessThan(size * 1.05);
    // What a heapUsed delta alone would have said: most of it was collected meanwhile.
    expect(a.naive).toBeLessThan(a.bytes / 4);
  });

  it('measures ~0 for a loop that allocates nothing', () => {
    let sum = 0;
    const a = measure(5_000_000, (i) => { sum += i & 3; return null; });
    expect(sum).toBe(2 * 3 * (5_000_000 + 20_000) / 4);
    expect(a.bytes).toBeGreaterThanOrEqual(0);
    expect(a.bytes).toBeLessThan(64 * 1024); // < 0.02 bytes per iteration
  });

  it('can be started again after stop(), each run on its own', () => {
    const m = new AllocationMeter();
    m.start();
    for (let i = 0; i < 100_000; i++) ring[i & 1023] = [i, i, i, i, i, i, i, i];
    const first = m.stop();
    m.start();
    const second = m.stop();
    expect(first.bytes).toBeGreaterThan(100_000 * 14 * W * 0.95);
    expect(second.bytes).toBeLessThan(64 * 1024);
  });

  it.each<[string, (m: AllocationMeter) => void]>([
    ['stop() without start()', (m) => m.stop()],
    ['stop() twice', (m) => { m.start(); m.stop(); m.stop(); }],
  ])('%s is a RangeError', (_what, f) => {
    expect(() => f(new AllocationMeter())).toThrow(RangeError);
  });
});
