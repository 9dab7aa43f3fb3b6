/**
 * Frame builders and batch helpers for port tests: deterministic test frames (distinct
 * payloads so order and identity can be checked byte for byte) and copying frames out of a
 * batch.
 */

import { Batch, FrameList, Meta, META_STRIDE } from '../../src/buf/batch.js';

/** A local experimental EtherType (IEEE 802 "local experimental 1"), never sent by a kernel. */
export const TEST_ETHERTYPE = 0x88b5;

/** isTest: a frame of the tests' own EtherType (anything else on the link is the kernel's noise). */
export const isTest = (f: Buffer): boolean => f.length >= 14 && f.readUInt16BE(12) === TEST_ETHERTYPE;

/**
 * testFrame builds an Ethernet frame of `len` bytes (>= 14 + 4): dst, src, EtherType 0x88b5,
 * then a 4-byte sequence number and a pattern derived from `seq` and `salt`.
 */
export function testFrame(seq: number, len: number, dst = 0x02_00_00_00_00_02, src = 0x02_00_00_00_00_01, salt = 0): Buffer {
  if (len < 18) throw new RangeError(`test frame of ${len} bytes`);
  const b = Buffer.alloc(len);
  b.writeUIntBE(dst, 0, 6);
  b.writeUIntBE(src, 6, 6);
  b.writeUInt16BE(TEST_ETHERTYPE, 12);
  b.writeUInt32BE(seq >>> 0, 14);
  for (let i = 18; i < len; i++) b[i] = (seq * 31 + i * 7 + salt) & 0xff;
  return b;
}

/** testPayload: `len` bytes that encode `seq` (for UDP datagrams). */
export function testPayload(seq: number, len: number, salt = 0): Buffer {
  const b = Buffer.alloc(len);
  if (len >= 4) b.writeUInt32BE(seq >>> 0, 0);
  for (let i = 4; i < len; i++) b[i] = (seq * 13 + i * 5 + salt) & 0xff;
  return b;
}

/**
 * listOf copies `frames` into a fresh arena, each at `headroom` in its own slot, with `hdr`
 * (a virtio-net header, possibly empty) just before it; returns the FrameList to write.
 */
export function listOf(frames: readonly Buffer[], opts: { headroom?: number; slotSize?: number; hdr?: Buffer; addr?: readonly number[]; port?: readonly number[]; gso?: readonly number[] } = {}): FrameList {
  const headroom = opts.headroom ?? 64;
  const maxLen = Math.max(64, ...frames.map((f) => f.length));
  const slotSize = opts.slotSize ?? Math.ceil((headroom + maxLen) / 8) * 8;
  const batch = new Batch(Math.max(1, frames.length), slotSize);
  const list = new FrameList(Math.max(1, frames.length));
  frames.forEach((f, i) => {
    const start = batch.slotOff(i) + headroom;
    if (opts.hdr !== undefined) opts.hdr.copy(batch.arena, start - opts.hdr.length);
    f.copy(batch.arena, start);
    if (!list.push(batch.arena, start, start + f.length, opts.addr?.[i] ?? 0, opts.port?.[i] ?? 0, opts.gso?.[i] ?? 0)) throw new Error('list full');
  });
  return list;
}

/** framesOf copies frames [0, batch.count) out of a batch. */
export function framesOf(batch: Batch): Buffer[] {
  const out: Buffer[] = [];
  for (let i = 0; i < batch.count; i++) out.push(Buffer.from(batch.arena.subarray(batch.start(i), batch.end(i))));
  return out;
}

/** metaOf returns field `field` (a Meta index) of frame i. */
export function metaOf(batch: FrameList, i: number, field: number): number {
  return batch.meta[i * META_STRIDE + field]!;
}

export { Meta };
