/**
 * Big-endian field access over a Buffer.
 *
 * Views read and write through a DataView over their Buffer (`dataViewOf`): on Node 20 a
 * DataView access compiles to one load (+ byte swap), where assembling a field from indexed
 * bytes costs several operations and, more importantly, enough bytecode that V8 stops inlining
 * the view getters into the pipeline (bench/wire/codec.bench.ts: decap 116 ns -> 14 ns per
 * 64-byte frame). The (b, o) helpers below are for cold paths.
 *
 * Callers must have proven the range with a view's `checkLen()`/`validate()` first. A DataView
 * covers exactly its Buffer, so an out-of-range access throws a RangeError rather than reading
 * a neighbour's bytes: a bug, never a silent misread.
 */

export const EMPTY: Buffer = Buffer.alloc(0);
export const EMPTY_DV: DataView = new DataView(new ArrayBuffer(0));

// A small cache of DataViews for the free functions (checksum, flow hash) that are handed a
// Buffer: the data path works over a few long-lived arenas, so this allocates only when a new
// buffer comes along. Views keep their own DataView and do not use this cache.
const CACHE_SIZE = 4;
const cacheBufs: Buffer[] = [EMPTY, EMPTY, EMPTY, EMPTY];
const cacheDvs: DataView[] = [EMPTY_DV, EMPTY_DV, EMPTY_DV, EMPTY_DV];
let cacheNext = 0;

/** dataViewOf returns a DataView spanning exactly `b` (offset 0 of the view = b[0]). */
export function dataViewOf(b: Buffer): DataView {
  for (let i = 0; i < CACHE_SIZE; i++) {
    if (cacheBufs[i] === b) return cacheDvs[i]!;
  }
  const dv = new DataView(b.buffer, b.byteOffset, b.byteLength);
  cacheBufs[cacheNext] = b;
  cacheDvs[cacheNext] = dv;
  cacheNext = (cacheNext + 1) % CACHE_SIZE;
  return dv;
}

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

/** DataView forms of the 48-bit MAC access. */
export function dvU48(dv: DataView, o: number): number {
  return dv.getUint16(o) * 0x1_0000_0000 + dv.getUint32(o + 2);
}

export function dvPutU48(dv: DataView, o: number, v: number): void {
  const hi = Math.floor(v / 0x1_0000_0000);
  dv.setUint16(o, hi);
  dv.setUint32(o + 2, v - hi * 0x1_0000_0000);
}

export function dvU24(dv: DataView, o: number): number {
  return (dv.getUint8(o) << 16) | dv.getUint16(o + 1);
}

export function dvPutU24(dv: DataView, o: number, v: number): void {
  dv.setUint8(o, v >>> 16);
  dv.setUint16(o + 1, v & 0xffff);
}

/** Little-endian reads, for the virtio-net header (host byte order on x86 and arm64). */
export const u16le = (b: Buffer, o: number): number => b[o]! | (b[o + 1]! << 8);

export function putU16le(b: Buffer, o: number, v: number): void {
  b[o] = v;
  b[o + 1] = v >>> 8;
}
