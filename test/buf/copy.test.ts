import { describe, expect, it } from 'vitest';
import { copyBytes } from '../../src/buf/copy.js';

const seq = (n: number): Buffer => Buffer.from([...Array(n).keys()].map((i) => i & 0xff));

describe('copyBytes', () => {
  it('copies between separate Buffers', () => {
    const a = seq(32), b = Buffer.alloc(32, 0xee);
    copyBytes(a, 4, b, 10, 8);
    expect([...b.subarray(8, 20)]).toEqual([0xee, 0xee, 4, 5, 6, 7, 8, 9, 10, 11, 0xee, 0xee]);
  });

  it('copies between two Buffers over one ArrayBuffer, with offsets relative to each Buffer', () => {
    const arena = Buffer.alloc(4096, 0xee);
    seq(64).copy(arena, 1000);
    const src = arena.subarray(1000, 1100), dst = arena.subarray(3000);
    copyBytes(src, 2, dst, 5, 10);
    expect([...arena.subarray(3005, 3015)]).toEqual([2, 3, 4, 5, 6, 7, 8, 9, 10, 11]);
    expect(arena[3004]).toBe(0xee);
    expect(arena[3015]).toBe(0xee);
  });

  it('overlapping ranges in one Buffer behave like memmove, both directions', () => {
    const b = seq(16);
    copyBytes(b, 0, b, 2, 8);
    expect([...b.subarray(0, 12)]).toEqual([0, 1, 0, 1, 2, 3, 4, 5, 6, 7, 10, 11]);
    const c = seq(16);
    copyBytes(c, 4, c, 1, 8);
    expect([...c.subarray(0, 12)]).toEqual([0, 4, 5, 6, 7, 8, 9, 10, 11, 9, 10, 11]);
  });

  it('a zero or negative length copies nothing', () => {
    const a = seq(8), b = Buffer.alloc(8, 0xee);
    copyBytes(a, 0, b, 0, 0);
    copyBytes(a, 0, b, 0, -3);
    expect(b).toEqual(Buffer.alloc(8, 0xee));
  });

  it('works for more ArrayBuffers than its view cache holds', () => {
    const bufs = [...Array(9).keys()].map(() => Buffer.alloc(16));
    bufs.forEach((b, i) => { b[0] = i; copyBytes(b, 0, b, 8, 1); });
    expect(bufs.map((b) => b[8])).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8]);
  });
});
