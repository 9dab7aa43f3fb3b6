/**
 * Internet checksum (RFC 1071) and its incremental update (RFC 1624).
 *
 * `sum16()` returns an unfolded ones'-complement accumulation; sums of several regions
 * (pseudo-header, header, payload) are added as plain numbers and folded once by `fold16()` or
 * turned into the field value by `finish()`. Sums are exact below 2^53, i.e. for any frame.
 *
 * The loop reads big-endian 32-bit words through a DataView and adds their 16-bit halves,
 * folding as it goes (RFC 1071 §2(C): deferred and partial carries give the same sum).
 * bench/wire/codec.bench.ts measures it.
 */

import { dataViewOf } from './bytes.js';

/** Folds an unfolded sum (a non-negative integer below 2^53) to 16 bits with end-around carry. */
export function fold16(s: number): number {
  while (s > 0xffff_ffff) {
    const hi = Math.floor(s / 0x1_0000_0000);
    s = s - hi * 0x1_0000_0000 + hi;
  }
  s = (s >>> 16) + (s & 0xffff);
  s = (s >>> 16) + (s & 0xffff);
  return s;
}

/** The checksum field value for an accumulated sum: the complement of its fold. */
export function finish(s: number): number {
  return ~fold16(s) & 0xffff;
}

/**
 * sum16 adds the big-endian 16-bit words of b[off, off + len) to `acc` (an odd final byte is
 * padded with a zero byte, as RFC 1071 says). Reads only inside the range; mutates nothing.
 */
export function sum16(b: Buffer, off: number, len: number, acc = 0): number {
  return dvSum16(dataViewOf(b), off, len, acc);
}

/**
 * dvSum16: sum16 over a DataView (for callers that already hold one).
 *
 * The loop adds each word's two 16-bit halves and folds the carry back every 16 bytes, so the
 * running sum stays a small integer that V8 keeps in a register. Summing whole 32-bit words
 * made it a double, which V8 boxed on every iteration where the loop is inlined into a bigger
 * function (decapFrame, EncapTemplate.encap): 16 heap bytes per 16 bytes of data, ~1.5 KB per
 * 1450-byte packet, and twice the time (bench/wire/codec.bench.ts). The result is `acc` plus a
 * partly folded sum: fold16()/finish() give the same value as before.
 */
export function dvSum16(dv: DataView, off: number, len: number, acc = 0): number {
  let t = 0;
  let i = off;
  const end = off + len;
  const end16 = off + (len & ~15);
  while (i < end16) {
    const a = dv.getUint32(i), b = dv.getUint32(i + 4), c = dv.getUint32(i + 8), d = dv.getUint32(i + 12);
    t += (a >>> 16) + (a & 0xffff) + (b >>> 16) + (b & 0xffff) + (c >>> 16) + (c & 0xffff) + (d >>> 16) + (d & 0xffff);
    t = (t >>> 16) + (t & 0xffff);
    i += 16;
  }
  while (i + 4 <= end) {
    const a = dv.getUint32(i);
    t += (a >>> 16) + (a & 0xffff);
    i += 4;
  }
  if (i + 2 <= end) {
    t += dv.getUint16(i);
    i += 2;
  }
  if (i < end) t += dv.getUint8(i) << 8;
  return acc + t;
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
