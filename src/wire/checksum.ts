/**
 * Internet checksum (RFC 1071) and its incremental update (RFC 1624).
 *
 * `sum16()` returns an unfolded ones'-complement accumulation of big-endian 16-bit words; sums
 * of several regions (pseudo-header, header, payload) are added as plain numbers and folded
 * once by `fold16()` or turned into the field value by `finish()`. The sum is exact as long as
 * it stays below 2^53, i.e. for any frame this code will ever see.
 *
 * Long regions take a word-at-a-time path over a Uint32Array alias of the Buffer's memory
 * (little-endian words; RFC 1071 §2(B): the sum of byte-swapped words is the byte-swapped sum).
 * bench/wire/checksum.bench.ts measures it against the byte-pair loop it replaces.
 */

import { endianness } from 'node:os';

const LITTLE_ENDIAN = endianness() === 'LE';

/** Regions shorter than this are summed byte-pair by byte-pair (the alias set-up costs more). */
const WORD_PATH_MIN_LEN = 64;

// One-entry cache of the Uint32Array alias of the last ArrayBuffer summed: the data path works
// over a few long-lived arenas, so this allocates only when the arena changes.
let aliasSource: ArrayBufferLike | null = null;
let alias: Uint32Array<ArrayBufferLike> = new Uint32Array(0);

function wordsOf(buffer: ArrayBufferLike): Uint32Array<ArrayBufferLike> {
  if (aliasSource !== buffer) {
    aliasSource = buffer;
    alias = new Uint32Array(buffer, 0, buffer.byteLength >>> 2);
  }
  return alias;
}

/** Folds an unfolded sum to 16 bits, ones'-complement style (end-around carry). */
export function fold16(s: number): number {
  return s === 0 ? 0 : ((s - 1) % 0xffff) + 1;
}

/** The checksum field value for an accumulated sum: the complement of its fold. */
export function finish(s: number): number {
  return ~fold16(s) & 0xffff;
}

function swap16(v: number): number {
  return ((v & 0xff) << 8) | (v >>> 8);
}

/**
 * sum16 adds the big-endian 16-bit words of b[off, off + len) to `acc` (an odd final byte is
 * padded with a zero byte, as RFC 1071 says). Reads only inside the range; mutates nothing.
 */
export function sum16(b: Buffer, off: number, len: number, acc = 0): number {
  let s = acc;
  let i = off;
  let end = off + len;
  if (len >= WORD_PATH_MIN_LEN && LITTLE_ENDIAN) {
    // Bring the absolute address to a 4-byte boundary with whole 16-bit words first. An odd
    // absolute start cannot be aligned without splitting a word: use the byte loop for it.
    const abs = b.byteOffset + i;
    if ((abs & 1) === 0) {
      if ((abs & 2) !== 0) {
        s += (b[i]! << 8) | b[i + 1]!;
        i += 2;
      }
      const words = wordsOf(b.buffer);
      let w = (b.byteOffset + i) >>> 2;
      const nWords = (end - i) >>> 2;
      const wEnd = w + nWords;
      let le = 0;
      const wEnd4 = w + (nWords & ~3);
      while (w < wEnd4) {
        le += words[w]! + words[w + 1]! + words[w + 2]! + words[w + 3]!;
        w += 4;
      }
      while (w < wEnd) le += words[w++]!;
      s += swap16(fold16(le));
      i += nWords << 2;
    }
  }
  const pairsEnd = end - ((end - i) & 1);
  while (i < pairsEnd) {
    s += (b[i]! << 8) | b[i + 1]!;
    i += 2;
  }
  if (i < end) s += b[i]! << 8;
  return s;
}

/** The IPv4 pseudo-header sum for UDP/TCP: addresses, protocol and the L4 length. */
export function pseudoHeaderSum(src: number, dst: number, proto: number, l4Len: number): number {
  return (src >>> 16) + (src & 0xffff) + (dst >>> 16) + (dst & 0xffff) + proto + l4Len;
}

/**
 * updateChecksum16 returns the checksum after one 16-bit word of the covered data changed from
 * `oldWord` to `newWord` (RFC 1624 eqn. 3: HC' = ~(~HC + ~m + m')).
 */
export function updateChecksum16(csum: number, oldWord: number, newWord: number): number {
  const s = (~csum & 0xffff) + (~oldWord & 0xffff) + (newWord & 0xffff);
  return ~fold16(s) & 0xffff;
}

/** updateChecksum32: as updateChecksum16, for a 32-bit field (an address or a sequence number). */
export function updateChecksum32(csum: number, oldValue: number, newValue: number): number {
  const s =
    (~csum & 0xffff) +
    (~(oldValue >>> 16) & 0xffff) +
    (~oldValue & 0xffff) +
    (newValue >>> 16) +
    (newValue & 0xffff);
  return ~fold16(s) & 0xffff;
}
