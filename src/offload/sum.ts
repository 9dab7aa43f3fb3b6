/**
 * The bulk ones'-complement sum used by the offload paths (segmentation, coalescing, partial
 * checksum completion), where almost every byte of a 64 KB super-frame is summed once.
 *
 * It reads little-endian 32-bit words (the host order on x86 and arm64, so no byte swap per
 * load) and swaps the folded result once: RFC 1071 §2(B), the sum is byte-order independent.
 * bench/offload/offload.bench.ts measures it against `dvSum16` (big-endian loads): 4.9 vs 6.8 µs
 * per 64 KB on Node 20 (1.4x). The result equals fold16(dvSum16(dv, off, len)) for every input.
 *
 * How the switch uses this: it does not call it directly; segment.ts, coalesce.ts and
 * checksum-offload.ts do.
 */

import { fold16 } from '../wire/checksum.js';

/**
 * sumFolded returns the folded (16-bit, not complemented) ones'-complement sum of the
 * big-endian 16-bit words of dv[off, off + len), an odd last byte padded with zero. Reads only
 * inside the range; mutates nothing; allocates nothing.
 */
export function sumFolded(dv: DataView, off: number, len: number): number {
  let s = 0;
  let i = off;
  const end = off + len;
  const end16 = off + (len & ~15);
  while (i < end16) {
    s += dv.getUint32(i, true) + dv.getUint32(i + 4, true) + dv.getUint32(i + 8, true) + dv.getUint32(i + 12, true);
    i += 16;
  }
  while (i + 4 <= end) {
    s += dv.getUint32(i, true);
    i += 4;
  }
  if (i + 2 <= end) {
    s += dv.getUint16(i, true);
    i += 2;
  }
  if (i < end) s += dv.getUint8(i); // the low byte of the little-endian word = the high byte big-endian
  const f = fold16(s);
  return ((f & 0xff) << 8) | (f >>> 8);
}
