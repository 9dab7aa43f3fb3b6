/**
 * Big-endian field access over a Buffer: the only place in the codec that indexes bytes.
 *
 * Callers must have proven the range with a view's `checkLen()` first. An index outside the
 * buffer reads `undefined`, which the `!` below hides from the type checker; that is the one
 * unchecked assumption of the codec and it is why every view has a `checkLen()`.
 */

export const u8 = (b: Buffer, o: number): number => b[o]!;

export const u16 = (b: Buffer, o: number): number => (b[o]! << 8) | b[o + 1]!;

export const u24 = (b: Buffer, o: number): number => (b[o]! << 16) | (b[o + 1]! << 8) | b[o + 2]!;

export const u32 = (b: Buffer, o: number): number =>
  ((b[o]! << 24) | (b[o + 1]! << 16) | (b[o + 2]! << 8) | b[o + 3]!) >>> 0;

/** A 48-bit MAC address as an exact JS number (below 2^53). */
export const u48 = (b: Buffer, o: number): number => u16(b, o) * 0x1_0000_0000 + u32(b, o + 2);

export function putU8(b: Buffer, o: number, v: number): void {
  b[o] = v;
}

export function putU16(b: Buffer, o: number, v: number): void {
  b[o] = v >>> 8;
  b[o + 1] = v;
}

export function putU24(b: Buffer, o: number, v: number): void {
  b[o] = v >>> 16;
  b[o + 1] = v >>> 8;
  b[o + 2] = v;
}

export function putU32(b: Buffer, o: number, v: number): void {
  b[o] = v >>> 24;
  b[o + 1] = v >>> 16;
  b[o + 2] = v >>> 8;
  b[o + 3] = v;
}

export function putU48(b: Buffer, o: number, v: number): void {
  const hi = Math.floor(v / 0x1_0000_0000);
  putU16(b, o, hi);
  putU32(b, o + 2, v - hi * 0x1_0000_0000);
}

/** Little-endian reads, for the virtio-net header (host byte order on x86 and arm64). */
export const u16le = (b: Buffer, o: number): number => b[o]! | (b[o + 1]! << 8);

export function putU16le(b: Buffer, o: number, v: number): void {
  b[o] = v;
  b[o + 1] = v >>> 8;
}

/** An empty buffer that views point at before their first reset(). */
export const EMPTY: Buffer = Buffer.alloc(0);
