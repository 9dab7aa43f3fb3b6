import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { Batch, Meta, MetaFlag } from '../../src/buf/batch.js';
import { Errno } from '../../src/io/errno.js';
import { PcapReplayPort } from '../../src/io/pcap-replay-port.js';
import { PcapWriterPort } from '../../src/io/pcap-writer-port.js';
import { LinkType, PcapReader, PcapWriter } from '../../src/pcap/pcap.js';
import { framesOf, listOf, metaOf, testFrame } from '../support/port-frames.js';

const FIXTURE = fileURLToPath(new URL('../../fixtures/kernel/vxlan-4789-udpcsum.pcap', import.meta.url));
const dir = mkdtempSync(join(tmpdir(), 'flatnet-pcap-ports-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function recordsOf(path: string): Buffer[] {
  return [...PcapReader.open(path)].map((r) => Buffer.from(r.data.subarray(r.off, r.off + r.capLen)));
}

function drain(port: PcapReplayPort, batch: Batch, headroom: number): Buffer[] {
  const out: Buffer[] = [];
  for (let guard = 0; guard < 10_000; guard++) {
    const n = port.read(batch, headroom);
    if (n === 0) return out;
    out.push(...framesOf(batch));
  }
  throw new Error('replay did not end');
}

describe('PcapReplayPort', () => {
  it('hands out every frame of a kernel capture, in order, byte for byte', () => {
    const expected = recordsOf(FIXTURE);
    expect(expected.length).toBe(21);
    const port = PcapReplayPort.open(FIXTURE);
    const batch = new Batch(8, 2048);
    const got = drain(port, batch, 50);
    expect(got).toEqual(expected);
    expect(port.done).toBe(true);
    expect(port.stats.rxPackets).toBe(21);
    expect(port.stats.rxBatches).toBe(3);
    expect(port.stats.rxBytes).toBe(expected.reduce((s, f) => s + f.length, 0));
  });

  it('loops the file `loops` times, then reports done', () => {
    const expected = recordsOf(FIXTURE);
    const port = PcapReplayPort.open(FIXTURE, { loops: 3 });
    const got = drain(port, new Batch(16, 2048), 0);
    expect(got).toEqual([...expected, ...expected, ...expected]);
    expect(port.pass).toBe(3);
    expect(port.done).toBe(true);
  });

  it('with loops = Infinity keeps going; an empty capture ends instead of spinning', () => {
    const port = PcapReplayPort.open(FIXTURE, { loops: Number.POSITIVE_INFINITY });
    const batch = new Batch(64, 2048);
    let total = 0;
    for (let i = 0; i < 10; i++) total += port.read(batch, 0);
    expect(total).toBe(640);
    expect(port.done).toBe(false);
    const empty = join(dir, 'empty.pcap');
    new PcapWriter(empty).close();
    const e = PcapReplayPort.open(empty, { loops: Number.POSITIVE_INFINITY });
    expect(e.read(batch, 0)).toBe(0);
    expect(e.done).toBe(true);
  });

  it('flags frames cut by the capture snaplen or by the slot as TRUNCATED', () => {
    const path = join(dir, 'cut.pcap');
    const w = new PcapWriter(path, { snapLen: 100 });
    const long = testFrame(1, 300), short = testFrame(2, 80), mid = testFrame(3, 200);
    w.write(long, 0, long.length); // stored as 100 of 300 bytes
    w.write(short, 0, short.length);
    w.write(mid, 0, mid.length, 0, 0, mid.length); // 100 stored again
    w.close();
    const port = PcapReplayPort.open(path);
    const batch = new Batch(4, 128); // 128 - 40 = 88 bytes of room
    expect(port.read(batch, 40)).toBe(3);
    expect(framesOf(batch)).toEqual([long.subarray(0, 88), short, mid.subarray(0, 88)]);
    expect(metaOf(batch, 0, Meta.FLAGS)).toBe(MetaFlag.TRUNCATED);
    expect(metaOf(batch, 1, Meta.FLAGS)).toBe(0);
    expect(metaOf(batch, 2, Meta.FLAGS)).toBe(MetaFlag.TRUNCATED);
  });

  it('refuses a non-Ethernet capture and a bad file with typed errors', () => {
    const raw = join(dir, 'raw.pcap');
    new PcapWriter(raw, { linkType: LinkType.RAW }).close();
    expect(() => PcapReplayPort.open(raw)).toThrow(expect.objectContaining({ code: 'ERR_PCAP_LINKTYPE' }));
    const junk = join(dir, 'junk.pcap');
    writeFileSync(junk, Buffer.alloc(64, 7));
    expect(() => PcapReplayPort.open(junk)).toThrow(expect.objectContaining({ code: 'ERR_PCAP_BAD_MAGIC' }));
    expect(() => PcapReplayPort.open(FIXTURE, { loops: 0 })).toThrow(expect.objectContaining({ code: 'ERR_IO_BAD_LOOPS' }));
  });

  it('is read-only: write returns -EOPNOTSUPP and counts the frames', () => {
    const port = PcapReplayPort.open(FIXTURE);
    expect(port.write(listOf([testFrame(1, 64), testFrame(2, 64)]))).toBe(Errno.EOPNOTSUPP);
    expect(port.stats.txErrors).toBe(2);
  });

  it('signals readiness until the capture is exhausted', async () => {
    const port = PcapReplayPort.open(FIXTURE);
    const batch = new Batch(5, 2048);
    let frames = 0, calls = 0;
    await new Promise<void>((resolve) => {
      port.onReadable(() => {
        calls++;
        frames += port.read(batch, 0);
        if (port.done) resolve();
      });
    });
    expect(frames).toBe(21);
    expect(calls).toBe(5); // 5 + 5 + 5 + 5 + 1: the 5th read takes the last frame and finds the end
    await new Promise((r) => setImmediate(r));
    expect(calls).toBe(5);
  });
});

describe('PcapWriterPort', () => {
  it('appends written frames to a pcap that reads back identically, stamped by the clock once per batch', () => {
    const path = join(dir, 'out.pcap');
    let now = 1_700_000_000_123_456_789n; // ns
    const port = PcapWriterPort.create(path, { clock: () => now, nanosecond: true });
    const a = [testFrame(1, 64), testFrame(2, 1514)];
    const b = [testFrame(3, 200)];
    expect(port.write(listOf(a, { headroom: 50 }))).toBe(2);
    now += 2_500_500_000n;
    expect(port.write(listOf(b, { headroom: 50 }))).toBe(1);
    port.close();
    const recs = [...PcapReader.open(path)];
    expect(recs.map((r) => Buffer.from(r.data.subarray(r.off, r.off + r.capLen)))).toEqual([...a, ...b]);
    expect(recs.map((r) => [r.tsSec, r.tsNsec])).toEqual([
      [1_700_000_000, 123_456_789],
      [1_700_000_000, 123_456_789],
      [1_700_000_002, 623_956_789],
    ]);
    expect(port.stats).toMatchObject({ txPackets: 3, txBatches: 2, txBytes: 64 + 1514 + 200 });
    expect(readFileSync(path).readUInt32LE(0)).toBe(0xa1b23c4d);
  });

  it('is write-only, and after close writes fail with -EBADF', () => {
    const path = join(dir, 'closed.pcap');
    const port = PcapWriterPort.create(path);
    expect(port.read(new Batch(1, 128), 0)).toBe(Errno.EOPNOTSUPP);
    expect(port.stats.rxErrors).toBe(1);
    port.close();
    port.close();
    expect(port.write(listOf([testFrame(1, 64)]))).toBe(Errno.EBADF);
    expect(port.stats.txErrors).toBe(1);
    expect([...PcapReader.open(path)]).toHaveLength(0);
  });
});
