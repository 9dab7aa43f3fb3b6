import { describe, expect, it } from 'vitest';
import { AllocationMeter } from '../../src/replay/alloc-meter.js';

let keep: unknown = null;

describe('AllocationMeter', () => {
  it('counts what a loop allocates even when the scavenger frees it meanwhile', () => {
    const m = new AllocationMeter();
    m.start();
    const h0 = process.memoryUsage().heapUsed;
    // 200,000 short-lived 1 KiB arrays (~200 MiB): far more than a young generation holds.
    for (let i = 0; i < 200_000; i++) keep = new Array<number>(128).fill(i);
    const naive = process.memoryUsage().heapUsed - h0;
    const a = m.stop();
    expect(a.gcs).toBeGreaterThan(0);
    expect(a.bytes).toBeGreaterThan(200_000 * 1024);
    // What a heapUsed delta alone would have said.
    expect(naive).toBeLessThan(a.bytes / 4);
    expect(keep).toBeDefined();
  });

  it('stop() without start() is an error', () => {
    expect(() => new AllocationMeter().stop()).toThrow(RangeError);
  });
});
