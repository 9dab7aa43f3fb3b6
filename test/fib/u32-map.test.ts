import { describe, expect, it } from 'vitest';
import { U32Filter, U32Map } from '../../src/fib/u32-map.js';
import { AllocationMeter } from '../../src/replay/alloc-meter.js';

describe('U32Map', () => {
  it('finds uint32 keys across the whole range, including keys that share their low 30 bits', () => {
    const m = new U32Map<string>();
    const keys = [0, 1, 0x3fff_ffff, 0x4000_0000, 0x8000_0001, 0xc633_6401, 0x0633_6401, 0x4633_6401, 0x8633_6401, 0xffff_ffff];
    for (const k of keys) m.set(k, `v${k.toString(16)}`);
    expect(m.size).toBe(keys.length);
    for (const k of keys) expect(m.get(k)).toBe(`v${k.toString(16)}`);
    // Signed and unsigned spellings of one address are one key.
    expect(m.get(0xc633_6401 | 0)).toBe('vc6336401');
    expect(m.get(0xc633_6402)).toBeUndefined();
    m.set(0xc633_6401, 'again');
    expect([m.size, m.get(0xc633_6401), m.get(0x0633_6401)]).toEqual([keys.length, 'again', 'v6336401']);
    expect([...m.values()].length).toBe(keys.length);
  });

  it('allocates nothing per lookup of a key above 2^30 (under 1 byte per lookup over 5M lookups)', () => {
    expect(bytesPerLookup(new U32Map<number>())).toBeLessThan(1);
  });

  it('(control) a plain Map does box such keys: the same loop allocates a heap number per lookup', () => {
    expect(bytesPerLookup(new Map<number, number>())).toBeGreaterThan(8);
  });
});

describe('U32Filter', () => {
  it('says "maybe" for every key added (either spelling) and "no" for nearly every other', () => {
    // 10,000 ClusterIPs from 10.96.0.10, and the pod addresses of 10.244.0.0/16.
    const f = new U32Filter(), vips = Array.from({ length: 10_000 }, (_, k) => (0x0a60_000a + k) >>> 0);
    for (const v of vips) f.add(v);
    for (const v of vips) expect([f.mayHave(v), f.mayHave(v | 0)]).toEqual([true, true]);
    let maybe = 0;
    for (let a = 0x0af4_0000; a < 0x0af5_0000; a++) if (f.mayHave(a)) maybe++;
    // A bit per key among 65,536 bits: about 1 - e^(-10000/65536) = 14% of other keys share one.
    expect(maybe / 65_536).toBeLessThan(0.2);
    expect(new U32Filter().mayHave(0x0a60_000a)).toBe(false);
  });
});

/**
 * Heap bytes allocated per lookup of 0xc6336401/0xc6336402, five million lookups. Counted with
 * the AllocationMeter (bytes, GCs included, synchronously), not by counting GCs: a GC count
 * also sees whatever else the test worker allocated meanwhile (seen in CI: 3 GCs, 0 from us).
 */
function bytesPerLookup(m: { set(k: number, v: number): unknown; get(k: number): number | undefined }): number {
  m.set(0xc633_6401, 1);
  let hits = 0;
  const run = (n: number): void => { for (let i = 0; i < n; i++) hits += m.get(0xc633_6401 + (i & 1)) ?? 0; };
  run(200_000); // optimize first
  const n = 5_000_000;
  const meter = new AllocationMeter();
  meter.start();
  run(n);
  const { bytes } = meter.stop();
  expect(hits).toBe(2_600_000);
  return bytes / n;
}
