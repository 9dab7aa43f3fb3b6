import { describe, expect, it } from 'vitest';
import { Batch, Meta, MetaFlag } from '../../src/buf/batch.js';
import { Errno } from '../../src/io/errno.js';
import { MemoryPort } from '../../src/io/memory-port.js';
import { framesOf, listOf, metaOf, testFrame } from '../support/port-frames.js';

describe('MemoryPort', () => {
  it('delivers frames written to one end to the other, byte for byte and in order, at the headroom', () => {
    const [a, b] = MemoryPort.pair('a', 'b');
    const frames = Array.from({ length: 10 }, (_, i) => testFrame(i, 60 + i * 37));
    expect(a.write(listOf(frames))).toBe(10);
    const batch = new Batch(16, 2048);
    expect(b.read(batch, 50)).toBe(10);
    expect(batch.count).toBe(10);
    for (let i = 0; i < 10; i++) expect(batch.start(i)).toBe(batch.slotOff(i) + 50);
    expect(framesOf(batch)).toEqual(frames);
    expect(b.read(batch, 50)).toBe(0);
    expect(a.stats).toMatchObject({ txPackets: 10, txBytes: frames.reduce((s, f) => s + f.length, 0), txBatches: 1, txDropped: 0 });
    expect(b.stats).toMatchObject({ rxPackets: 10, rxBatches: 1, rxErrors: 0 });
    // and the other direction is independent
    expect(a.read(batch, 50)).toBe(0);
    expect(b.write(listOf([frames[3]!]))).toBe(1);
    expect(a.read(batch, 50)).toBe(1);
    expect(framesOf(batch)).toEqual([frames[3]]);
  });

  it('reads no more than the batch holds and keeps the rest queued', () => {
    const [a, b] = MemoryPort.pair('a', 'b');
    const frames = Array.from({ length: 7 }, (_, i) => testFrame(i, 100));
    a.write(listOf(frames));
    const batch = new Batch(3, 256);
    expect(b.read(batch, 64)).toBe(3);
    expect(framesOf(batch)).toEqual(frames.slice(0, 3));
    expect(b.pending).toBe(4);
    expect(b.read(batch, 64)).toBe(3);
    expect(framesOf(batch)).toEqual(frames.slice(3, 6));
    expect(b.read(batch, 64)).toBe(1);
    expect(framesOf(batch)).toEqual(frames.slice(6));
  });

  it('bounds the queue: overflow is counted in txDropped and the accepted count is returned', () => {
    const [a, b] = MemoryPort.pair('a', 'b', { queueLimit: 4 });
    const frames = Array.from({ length: 6 }, (_, i) => testFrame(i, 80));
    expect(a.write(listOf(frames))).toBe(4);
    expect(a.stats.txDropped).toBe(2);
    expect(a.stats.txPackets).toBe(4);
    expect(a.write(listOf(frames))).toBe(0);
    expect(a.stats.txDropped).toBe(8);
    const batch = new Batch(8, 256);
    expect(b.read(batch, 0)).toBe(4);
    expect(framesOf(batch)).toEqual(frames.slice(0, 4));
  });

  it('cuts frames longer than the reader slot or the queue slot and flags them TRUNCATED', () => {
    const [a, b] = MemoryPort.pair('a', 'b', { maxFrameLen: 1000 });
    const big = testFrame(1, 1500), mid = testFrame(2, 600), small = testFrame(3, 100);
    expect(a.write(listOf([big, mid, small]))).toBe(3);
    const batch = new Batch(4, 512); // 512 - 12 = 500 bytes of room
    expect(b.read(batch, 12)).toBe(3);
    expect(framesOf(batch)).toEqual([big.subarray(0, 500), mid.subarray(0, 500), small]);
    expect(metaOf(batch, 0, Meta.FLAGS) & MetaFlag.TRUNCATED).toBe(MetaFlag.TRUNCATED);
    expect(metaOf(batch, 1, Meta.FLAGS) & MetaFlag.TRUNCATED).toBe(MetaFlag.TRUNCATED);
    expect(metaOf(batch, 2, Meta.FLAGS)).toBe(0);
    expect(b.stats.rxErrors).toBe(2);
  });

  it('carries ADDR, PORT and GSO_SIZE with the frame, and the virtio-net header before it', () => {
    const [a, b] = MemoryPort.pair('a', 'b', { vnetHdrLen: 10 });
    const hdr = Buffer.from([1, 5, 42, 0, 0xdc, 0x05, 34, 0, 6, 0]);
    const f = testFrame(9, 300);
    expect(a.write(listOf([f], { hdr, addr: [0xc6336402 | 0], port: [4789], gso: [1000] }))).toBe(1);
    const batch = new Batch(2, 512);
    expect(b.read(batch, 50)).toBe(1);
    const start = batch.start(0);
    expect(batch.arena.subarray(start - 10, start)).toEqual(hdr);
    expect(framesOf(batch)).toEqual([f]);
    expect(metaOf(batch, 0, Meta.ADDR) >>> 0).toBe(0xc6336402);
    expect(metaOf(batch, 0, Meta.PORT)).toBe(4789);
    expect(metaOf(batch, 0, Meta.GSO_SIZE)).toBe(1000);
  });

  it('rejects a headroom that cannot hold the vnet header, and frames outside the arena', () => {
    const [a, b] = MemoryPort.pair('a', 'b', { vnetHdrLen: 10 });
    expect(() => b.read(new Batch(1, 128), 4)).toThrow(expect.objectContaining({ code: 'ERR_IO_BAD_HEADROOM' }));
    const list = listOf([testFrame(1, 64)], { headroom: 64 });
    list.meta[Meta.START] = 4; // the header would start before the arena
    expect(a.write(list)).toBe(Errno.EINVAL);
    expect(a.stats.txErrors).toBe(1);
  });

  it('calls the readiness callback once per turn while frames wait (level-triggered)', async () => {
    const [a, b] = MemoryPort.pair('a', 'b');
    const batch = new Batch(2, 256);
    const seen: number[] = [];
    let calls = 0;
    const done = new Promise<void>((resolve) => {
      b.onReadable(() => {
        calls++;
        const n = b.read(batch, 0); // reads 2 of 5 per wakeup
        for (let i = 0; i < n; i++) seen.push(batch.arena.readUInt32BE(batch.start(i) + 14));
        if (seen.length === 5) resolve();
      });
    });
    a.write(listOf(Array.from({ length: 5 }, (_, i) => testFrame(i, 64))));
    await done;
    expect(seen).toEqual([0, 1, 2, 3, 4]);
    expect(calls).toBe(3);
    // nothing waiting: no more callbacks
    await new Promise((r) => setImmediate(r));
    await new Promise((r) => setImmediate(r));
    expect(calls).toBe(3);
    b.onReadable(null);
  });

  it('after close: reads and writes fail with counted errors, the peer gets EPIPE, close is idempotent', () => {
    const [a, b] = MemoryPort.pair('a', 'b');
    a.write(listOf([testFrame(1, 64)]));
    b.close();
    b.close();
    const batch = new Batch(1, 128);
    expect(b.read(batch, 0)).toBe(Errno.EBADF);
    expect(b.stats.rxErrors).toBe(1);
    expect(a.write(listOf([testFrame(2, 64), testFrame(3, 64)]))).toBe(Errno.EPIPE);
    expect(a.stats.txErrors).toBe(2);
    expect(b.write(listOf([testFrame(4, 64)]))).toBe(Errno.EBADF);
    expect(() => b.onReadable(() => {})).toThrow(expect.objectContaining({ code: 'ERR_IO_PORT_CLOSED' }));
  });

  it('inject() delivers a frame to this end as its peer would, with metadata and virtio header; take() returns what this end wrote', () => {
    const [a, b] = MemoryPort.pair('a', 'b', { vnetHdrLen: 10 });
    const f = testFrame(7, 90), vnet = Buffer.from('01000000000022001000', 'hex');
    a.inject(f, 0xc6336402, 4789, { vnet, gsoSize: 0 });
    const batch = new Batch(4, 2048);
    expect(a.read(batch, 64)).toBe(1);
    expect(framesOf(batch)).toEqual([f]);
    expect(batch.arena.subarray(batch.start(0) - 10, batch.start(0))).toEqual(vnet);
    expect([metaOf(batch, 0, Meta.ADDR) >>> 0, metaOf(batch, 0, Meta.PORT)]).toEqual([0xc6336402, 4789]);
    // What `a` writes, take() hands back as `b` would read it (and `b` no longer has it).
    expect(a.write(listOf([testFrame(8, 70)], { hdr: Buffer.alloc(10, 7) }))).toBe(1);
    const got = a.take();
    expect(got.map((w) => [w.frame, w.vnet])).toEqual([[testFrame(8, 70), Buffer.alloc(10, 7)]]);
    expect(b.read(batch, 64)).toBe(0);
  });

  it('inject() throws when the frame cannot be queued (a full queue), so a test never loses one silently', () => {
    const [a] = MemoryPort.pair('a', 'b', { queueLimit: 1 });
    a.inject(testFrame(1, 64));
    expect(() => a.inject(testFrame(2, 64))).toThrow(expect.objectContaining({ code: 'ERR_IO_INJECT' }));
  });
});
