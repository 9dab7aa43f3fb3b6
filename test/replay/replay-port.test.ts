import { describe, expect, it } from 'vitest';
import { Batch, FrameList, META_STRIDE, Meta, MetaFlag } from '../../src/buf/batch.js';
import { Errno } from '../../src/io/errno.js';
import { FrameCapture, FrameStore, ReplayPort, copyBytes } from '../../src/replay/replay-port.js';

/** A store of `n` frames of `len` bytes (frame i filled with byte i + 1) inside one file buffer. */
function store(n: number, len: number, cut: readonly number[] = []): { s: FrameStore; file: Buffer } {
  const file = Buffer.alloc(7 + n * (len + 5));
  const s = new FrameStore();
  for (let i = 0; i < n; i++) {
    const off = 7 + i * (len + 5);
    file.fill(i + 1, off, off + len);
    s.add(file, off, len, cut.includes(i));
  }
  return { s, file };
}

function frames(b: Batch, n: number): { start: number; end: number; flags: number; first: number }[] {
  return Array.from({ length: n }, (_, i) => {
    const o = i * META_STRIDE, start = b.meta[o + Meta.START]!, end = b.meta[o + Meta.END]!;
    return { start, end, flags: b.meta[o + Meta.FLAGS]!, first: b.arena[start]! };
  });
}

describe('ReplayPort', () => {
  it('reads frames in order at slotOff(i) + headroom, copied once into the batch', () => {
    const { s, file } = store(5, 60);
    const p = new ReplayPort('pod');
    p.load(s, 1);
    const b = new Batch(4, 256);
    expect(p.read(b, 50)).toBe(4);
    expect(frames(b, 4)).toEqual([0, 1, 2, 3].map((i) => ({ start: i * 256 + 50, end: i * 256 + 110, flags: 0, first: i + 1 })));
    b.arena.fill(0xee);
    expect(file.subarray(7, 67).every((x) => x === 1)).toBe(true); // the capture is untouched
    expect(p.read(b, 50)).toBe(1);
    expect(frames(b, 1)[0]!.first).toBe(5);
    expect(p.read(b, 50)).toBe(0);
    expect(b.count).toBe(0);
    expect([p.stats.rxPackets, p.stats.rxBytes, p.stats.rxBatches]).toEqual([5, 300, 2]);
  });

  it('replays `passes` times over, across batch boundaries, then reports 0', () => {
    const { s } = store(3, 20);
    const p = new ReplayPort('pod');
    p.load(s, 3);
    expect(p.remaining).toBe(9);
    const b = new Batch(4, 128);
    const seen: number[] = [];
    for (let n = p.read(b, 50); n > 0; n = p.read(b, 50)) seen.push(...frames(b, n).map((f) => f.first));
    expect(seen).toEqual([1, 2, 3, 1, 2, 3, 1, 2, 3]);
    expect(p.remaining).toBe(0);
    p.load(s, 0);
    expect(p.read(b, 50)).toBe(0);
  });

  it('flags frames the capture cut short, and frames longer than the slot (passed on empty)', () => {
    const { s } = store(3, 100, [1]);
    s.add(Buffer.alloc(300, 9), 0, 300, false);
    const p = new ReplayPort('ov');
    p.load(s, 1);
    const b = new Batch(8, 256);
    expect(p.read(b, 50)).toBe(4);
    const f = frames(b, 4);
    expect(f.map((x) => x.flags)).toEqual([0, MetaFlag.TRUNCATED, 0, MetaFlag.TRUNCATED]);
    expect(f[1]!.end - f[1]!.start).toBe(100);
    expect(f[3]!.end - f[3]!.start).toBe(0);
    expect(p.stats.rxErrors).toBe(2);
  });

  it('write counts frames and bytes and copies nothing without a capture', () => {
    const p = new ReplayPort('ov');
    const arena = Buffer.alloc(1024);
    const l = new FrameList(8);
    l.push(arena, 0, 64);
    l.push(arena, 100, 300);
    expect(p.write(l)).toBe(2);
    expect(p.write(new FrameList(1))).toBe(0);
    expect([p.stats.txPackets, p.stats.txBytes, p.stats.txBatches]).toEqual([2, 264, 1]);
  });

  it('write copies every frame into an attached capture, which keeps them after the arena is reused', () => {
    const p = new ReplayPort('ov');
    const cap = new FrameCapture(256);
    p.capture = cap;
    const arena = Buffer.alloc(1024);
    for (let i = 0; i < arena.length; i++) arena[i] = (i * 7) & 0xff;
    const want = [arena.subarray(3, 70), arena.subarray(500, 700), arena.subarray(10, 11)].map((x) => Buffer.from(x));
    const l = new FrameList(8);
    l.push(arena, 3, 70);
    l.push(arena, 500, 700);
    l.push(arena, 10, 11);
    p.write(l);
    arena.fill(0);
    const got: Buffer[] = [];
    cap.forEach((buf, off, len, t) => {
      got.push(Buffer.from(buf.subarray(off, off + len)));
      expect(t).toBeGreaterThan(1.6e12); // ms since the epoch
    });
    expect(got).toEqual(want);
    expect(cap.count).toBe(3);
  });

  it('a capture grows past its chunk and index sizes', () => {
    const cap = new FrameCapture(1000);
    const arena = Buffer.alloc(600);
    const l = new FrameList(1);
    for (let i = 0; i < 2500; i++) {
      arena.fill(i & 0xff);
      l.clear();
      l.push(arena, 0, 1 + (i % 600));
      cap.add(l, 1, 0);
    }
    let i = 0;
    cap.forEach((buf, off, len) => {
      expect(len).toBe(1 + (i % 600));
      expect(buf[off]).toBe(i & 0xff);
      expect(buf[off + len - 1]).toBe(i & 0xff);
      i++;
    });
    expect(i).toBe(2500);
  });

  it('copyBytes copies every length and offset, word and byte tails alike', () => {
    const src = Buffer.alloc(64);
    for (let i = 0; i < 64; i++) src[i] = i + 1;
    for (let len = 0; len <= 20; len++) {
      for (const from of [0, 1, 3]) {
        const dst = Buffer.alloc(40, 0xaa);
        copyBytes(new DataView(src.buffer, src.byteOffset, 64), from, new DataView(dst.buffer, dst.byteOffset, 40), 5, len);
        expect(dst.subarray(5, 5 + len)).toEqual(src.subarray(from, from + len));
        expect(dst[4]).toBe(0xaa);
        expect(dst[5 + len]).toBe(0xaa);
      }
    }
  });

  it('after close: read and write fail with -EBADF, counted; bad headroom is a typed error', () => {
    const { s } = store(2, 20);
    const p = new ReplayPort('pod');
    p.load(s, 1);
    const b = new Batch(4, 128);
    expect(() => p.read(b, 128)).toThrow(expect.objectContaining({ code: 'ERR_IO_BAD_HEADROOM' }));
    p.close();
    expect(p.read(b, 50)).toBe(Errno.EBADF);
    const l = new FrameList(2);
    l.push(Buffer.alloc(10), 0, 10);
    expect(p.write(l)).toBe(Errno.EBADF);
    expect([p.stats.rxErrors, p.stats.txErrors]).toEqual([1, 1]);
    expect(() => p.onReadable(() => {})).toThrow(expect.objectContaining({ code: 'ERR_IO_PORT_CLOSED' }));
    expect(() => p.load(s, -1)).toThrow(expect.objectContaining({ code: 'ERR_REPLAY_BAD_LOOPS' }));
  });
});
