import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { sumFolded } from '../../src/offload/sum.js';
import { dataViewOf } from '../../src/wire/bytes.js';
import { hex } from '../support/hex.js';
import { onesSumRef } from '../support/refs.js';

describe('sumFolded', () => {
  it.each([
    ['RFC 1071 §3 example', hex('00 01 f2 03 f4 f5 f6 f7'), 0xddf2],
    ['an odd byte is padded with zero (high byte)', hex('ab'), 0xab00],
    ['three bytes', hex('01 02 03'), 0x0402],
    ['end-around carry', hex('ff ff 00 01'), 0x0001],
    ['empty', Buffer.alloc(0), 0],
  ])('%s', (_n, b, want) => {
    expect(sumFolded(dataViewOf(b), 0, b.length)).toBe(want);
  });

  it('equals the byte-wise reference for any range of any buffer (fast-check, seed 1071)', () => {
    fc.assert(fc.property(fc.uint8Array({ minLength: 0, maxLength: 3000 }), fc.nat(40), fc.nat(40), (bytes, lead, trim) => {
      const b = Buffer.alloc(bytes.length + lead + 3, 0xa5);
      Buffer.from(bytes).copy(b, lead);
      const len = Math.max(0, bytes.length - trim);
      expect(sumFolded(dataViewOf(b), lead, len)).toBe(onesSumRef(b.subarray(lead, lead + len)));
    }), { seed: 1071, numRuns: 500 });
  });

  it('reads nothing outside the range (a DataView over exactly the range works)', () => {
    const b = hex('01 02 03 04 05 06 07');
    for (let len = 0; len <= 7; len++) {
      const exact = b.subarray(0, len);
      expect(sumFolded(new DataView(exact.buffer, exact.byteOffset, len), 0, len)).toBe(sumFolded(dataViewOf(b), 0, len));
    }
  });
});
