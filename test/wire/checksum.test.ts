import { describe, expect, it } from 'vitest';
import { finish, fold16, pseudoHeaderSum, sum16, updateChecksum16, updateChecksum32 } from '../../src/wire/checksum.js';
import { hex } from '../support/hex.js';
import { checksumRef, onesSumRef, prng, pseudoHeaderRef, randomBytesRef } from '../support/refs.js';

/** A Buffer whose data starts `align` bytes into a fresh ArrayBuffer (so the absolute alignment is known). */
function aligned(data: Buffer, align: number): Buffer {
  const b = Buffer.from(new ArrayBuffer(align + data.length + 3), align, data.length);
  data.copy(b);
  return b;
}

describe('sum16 / fold16 / finish', () => {
  it('matches the RFC 1071 §3 numerical example', () => {
    // RFC 1071: bytes 00 01 f2 03 f4 f5 f6 f7 have the ones'-complement sum ddf2, checksum 220d.
    const b = hex('00 01 f2 03 f4 f5 f6 f7');
    expect(fold16(sum16(b, 0, b.length))).toBe(0xddf2);
    expect(finish(sum16(b, 0, b.length))).toBe(0x220d);
  });

  it('pads an odd final byte with zero', () => {
    expect(fold16(sum16(hex('12 34 56'), 0, 3))).toBe(0x1234 + 0x5600);
  });

  it('adds to the accumulator it is given', () => {
    const b = hex('00 01 f2 03');
    expect(fold16(sum16(b, 2, 2, sum16(b, 0, 2)))).toBe(fold16(sum16(b, 0, 4)));
  });

  it('folds to 0xffff, never to 0, for a non-zero sum', () => {
    expect(fold16(0xffff)).toBe(0xffff);
    expect(fold16(0x1_fffe)).toBe(0xffff);
    expect(fold16(0)).toBe(0);
    expect(finish(0xffff)).toBe(0);
  });

  // Every absolute alignment (0-7) and every length 0-300: the byte loop below 64 bytes, the
  // Uint32 word path from 64 on (with its 2-byte alignment step), and odd lengths and starts.
  it.each([0, 1, 2, 3, 4, 5, 6, 7])('agrees with checksumRef at alignment %i for every length 0-300', (align) => {
    const rand = prng(0xc0ffee + align);
    for (let len = 0; len <= 300; len++) {
      const data = randomBytesRef(rand, len);
      const b = aligned(data, align);
      expect(finish(sum16(b, 0, len)), `len ${len}`).toBe(checksumRef(data));
    }
  });

  it('agrees with checksumRef on all-0xff data (the largest word sums)', () => {
    for (const len of [63, 64, 65, 1500, 9000]) {
      const data = Buffer.alloc(len, 0xff);
      expect(finish(sum16(aligned(data, 2), 0, len))).toBe(checksumRef(data));
    }
  });

  it('agrees with checksumRef up to 64 KiB and with a large accumulated sum carried in', () => {
    const rand = prng(0x5eed);
    for (const len of [1450, 9000, 65535]) {
      for (const data of [randomBytesRef(rand, len), Buffer.alloc(len, 0xff)]) {
        expect(finish(sum16(aligned(data, 1), 0, len)), `len ${len}`).toBe(checksumRef(data));
        const acc = 2 ** 40 + 12345; // fold16() of an unfolded sum of many regions
        expect(fold16(sum16(aligned(data, 0), 0, len, acc))).toBe(fold16(fold16(acc) + fold16(sum16(data, 0, len))));
      }
    }
  });

  it('sums a region in the middle of a larger buffer without reading around it', () => {
    const rand = prng(7);
    const big = aligned(randomBytesRef(rand, 400), 0);
    for (const [off, len] of [[1, 100], [3, 64], [10, 255], [131, 200]] as const) {
      expect(finish(sum16(big, off, len))).toBe(checksumRef(big.subarray(off, off + len)));
    }
  });

  it('stays right when alternating between ArrayBuffers (the word alias is cached per buffer)', () => {
    const rand = prng(11);
    const a = aligned(randomBytesRef(rand, 200), 0);
    const b = aligned(randomBytesRef(rand, 200), 4);
    const pooled = Buffer.from(randomBytesRef(rand, 120)); // from Node's shared pool
    for (let i = 0; i < 3; i++) {
      for (const x of [a, b, pooled]) expect(finish(sum16(x, 0, x.length))).toBe(checksumRef(x));
    }
  });
});

describe('pseudoHeaderSum', () => {
  it.each([
    ['10.244.1.1', '10.244.1.2', 17, 26],
    ['198.51.100.1', '198.51.100.2', 6, 1480],
    ['255.255.255.255', '255.255.255.255', 255, 65535],
  ])('%s -> %s proto %i len %i sums like the 12-byte pseudo-header', (src, dst, proto, len) => {
    const ref = pseudoHeaderRef(src, dst, proto, len);
    const s = pseudoHeaderSum(ref.readUInt32BE(0), ref.readUInt32BE(4), proto, len);
    expect(fold16(s)).toBe(onesSumRef(ref));
  });
});

describe('RFC 1624 incremental update', () => {
  it('gives 0x0000 for the RFC 1624 §4 example (where eqn. 2 gives 0xffff)', () => {
    expect(updateChecksum16(0xdd2f, 0x5555, 0x3285)).toBe(0x0000);
  });

  it('updateChecksum16 equals a full recompute for random headers and words', () => {
    const rand = prng(1624);
    for (let n = 0; n < 5000; n++) {
      const h = randomBytesRef(rand, 20);
      h.writeUInt16BE(0, 10);
      h.writeUInt16BE(checksumRef(h), 10);
      const at = 2 * Math.floor(rand() * 10);
      if (at === 10) continue; // the checksum word itself
      const oldWord = h.readUInt16BE(at);
      const newWord = Math.floor(rand() * 0x10000);
      const inc = updateChecksum16(h.readUInt16BE(10), oldWord, newWord);
      h.writeUInt16BE(newWord, at);
      h.writeUInt16BE(0, 10);
      expect(inc).toBe(checksumRef(h));
    }
  });

  it('updateChecksum32 equals a full recompute for address rewrites', () => {
    const rand = prng(3232);
    for (let n = 0; n < 5000; n++) {
      const h = randomBytesRef(rand, 20);
      h.writeUInt16BE(0, 10);
      h.writeUInt16BE(checksumRef(h), 10);
      const at = rand() < 0.5 ? 12 : 16;
      const oldValue = h.readUInt32BE(at);
      const newValue = Math.floor(rand() * 0x1_0000_0000);
      const inc = updateChecksum32(h.readUInt16BE(10), oldValue, newValue);
      h.writeUInt32BE(newValue, at);
      h.writeUInt16BE(0, 10);
      expect(inc).toBe(checksumRef(h));
    }
  });
});
