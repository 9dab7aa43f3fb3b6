// One UMEM shared by two XdpPorts, in namespaces this file creates (IPv6 off):
//
//   ns <prefix>-pa: ( eth0 )==veth==( va ) [ XdpPort a ]  ns <prefix>-host  [ XdpPort b ] ( vb )==veth==( eth0 ) ns <prefix>-pb
//
// Frames the pod behind `a` sends are read into a batch (the UMEM lent as its arena) and
// written to `b`: they reach the other pod byte for byte without being copied (zeroCopyTx), a
// frame from anywhere else is copied (copiedTx), and every chunk comes back to the pool.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Batch, FrameList } from '../../src/buf/batch.js';
import { withNetns } from '../../src/io/netns.js';
import { Umem, XdpPort } from '../../src/io/xdp-port.js';
import { podSendFrames, sniff } from '../support/capture.js';
import { listNetns, Netns, netnsSkipReason } from '../support/netns.js';
import { isTest, listOf, TEST_ETHERTYPE, testFrame } from '../support/port-frames.js';

const skip = netnsSkipReason();

describe.skipIf(skip !== null)(`XdpPorts sharing a UMEM${skip === null ? '' : ` (skipped: ${skip})`}`, () => {
  const netns = new Netns('xu');
  let host = '', pa = '', pb = '';

  beforeAll(() => {
    host = netns.add('host');
    pa = netns.add('pa');
    pb = netns.add('pb');
    netns.noIpv6(host, pa, pb);
    netns.veth(host, 'va', pa, 'eth0');
    netns.veth(host, 'vb', pb, 'eth0');
    for (const [ns, dev] of [[host, 'va'], [host, 'vb'], [pa, 'eth0'], [pb, 'eth0']] as const) netns.ip(ns, 'link', 'set', dev, 'up');
  });
  afterAll(() => {
    netns.destroy();
    expect(listNetns(netns.prefix)).toEqual([]);
  });

  /**
   * forward reads what arrives on `from` and writes each batch, as read, to `to`, until `want`
   * test frames went through (or 10 s).
   */
  const forward = (from: XdpPort, to: XdpPort, want: number): Promise<number> => {
    const batch = new Batch(32, 2048);
    let n = 0;
    return new Promise((resolve) => {
      const done = (): void => { clearTimeout(t); from.onReadable(null); resolve(n); };
      const t = setTimeout(done, 10_000);
      from.onReadable(() => {
        for (let k; (k = from.read(batch, 50)) > 0;) {
          let tests = 0;
          for (let i = 0; i < k; i++) if (isTest(batch.arena.subarray(batch.start(i), batch.end(i)))) tests++;
          expect(batch.arena).toBe(from.umem.buffer); // lent, not copied into the batch's slots
          expect(to.write(batch)).toBe(k);
          n += tests;
        }
        if (n >= want) done();
      });
    });
  };

  it('forwards frames read on one port to another of the same UMEM without a copy, byte for byte', async () => {
    // Shares of 1024 chunks: 768 in each fill ring, room for the 200 frames the pod sends at once.
    const umem = Umem.create(4096);
    const a = withNetns(host, () => XdpPort.open('va', false, 1024, umem));
    const b = withNetns(host, () => XdpPort.open('vb', false, 1024, umem));
    try {
      expect(umem.stats()).toMatchObject({ chunks: 4096, reserved: 2048, sockets: 2, free: 4096 - 2 * 768 });
      const frames = Array.from({ length: 200 }, (_, i) => testFrame(i, 60 + ((i * 53) % 1400), 0x020000000002, 0x020000000001, 3));
      const cap = await sniff(netns, pb, 'eth0', frames.length, TEST_ETHERTYPE, 'in');
      const fwd = forward(a, b, frames.length);
      podSendFrames(netns, pa, frames);
      expect(await fwd).toBe(frames.length);
      expect(await cap.frames).toEqual(frames);
      const bs = b.xdpStats()!;
      expect(bs.zeroCopyTx).toBeGreaterThanOrEqual(frames.length);
      expect(bs.copiedTx).toBe(0);
      expect(bs.umem).toMatchObject({ id: umem.id, chunks: 4096, sockets: 2 });
      expect(a.xdpStats()).toMatchObject({ fillRingEmpty: 0, rxDropped: 0 });

      // A frame from another arena is copied into a chunk; it arrives all the same.
      const one = testFrame(9999, 300, 0x020000000002, 0x020000000001, 4);
      const cap1 = await sniff(netns, pb, 'eth0', 1, TEST_ETHERTYPE, 'in');
      expect(b.write(listOf([one], { headroom: 50 }))).toBe(1);
      expect(await cap1.frames).toEqual([one]);
      expect(b.xdpStats()).toMatchObject({ copiedTx: 1 });
    } finally {
      a.close();
      b.close();
    }
    // Every chunk is back: the fill rings', the last batch's, the ones sent and completed.
    expect(umem.stats()).toEqual({ chunks: 4096, free: 4096, reserved: 0, sockets: 0 });
  });

  it('copies a frame written a second time (its chunk is already on a TX ring), and both copies arrive', async () => {
    const umem = Umem.create(1024);
    const a = withNetns(host, () => XdpPort.open('va', false, 256, umem));
    const b = withNetns(host, () => XdpPort.open('vb', false, 256, umem));
    try {
      const frames = Array.from({ length: 8 }, (_, i) => testFrame(i, 100 + i, 0x020000000002, 0x020000000001, 5));
      const cap = await sniff(netns, pb, 'eth0', 16, TEST_ETHERTYPE, 'in');
      const batch = new Batch(32, 2048);
      const got = new Promise<number>((resolve) => {
        let n = 0;
        a.onReadable(() => {
          for (let k; (k = a.read(batch, 50)) > 0;) {
            const tests = new FrameList(32, batch.arena);
            for (let i = 0; i < k; i++) if (isTest(batch.arena.subarray(batch.start(i), batch.end(i)))) tests.push(batch.arena, batch.start(i), batch.end(i));
            expect(b.write(tests)).toBe(tests.count);
            expect(b.write(tests)).toBe(tests.count); // the same windows again: replication
            n += tests.count;
          }
          if (n >= frames.length) { a.onReadable(null); resolve(n); }
        });
      });
      podSendFrames(netns, pa, frames);
      expect(await got).toBe(frames.length);
      // Each read's frames twice in a row: compared as sorted lists (the reads may split the 8).
      expect((await cap.frames).sort(Buffer.compare)).toEqual(frames.flatMap((f) => [f, f]).sort(Buffer.compare));
      expect(b.xdpStats()).toMatchObject({ zeroCopyTx: 8, copiedTx: 8 });
    } finally {
      a.close();
      b.close();
    }
    expect(umem.stats()).toMatchObject({ free: 1024, sockets: 0 });
  });

  it('refuses a socket its UMEM has no room for (ENOSPC), and shares one UMEM by default', () => {
    const small = Umem.create(256);
    const a = withNetns(host, () => XdpPort.open('va', false, 256, small));
    try {
      expect(() => withNetns(host, () => XdpPort.open('vb', false, 64, small))).toThrow(/ENOSPC/);
      expect(small.stats()).toMatchObject({ reserved: 256, sockets: 1 });
    } finally {
      a.close();
    }
    const x = withNetns(host, () => XdpPort.open('va'));
    const y = withNetns(host, () => XdpPort.open('vb'));
    try {
      expect(y.umem).toBe(x.umem);
      expect(x.features).toMatchObject({ link: true });
      expect(x.umem.stats()).toMatchObject({ sockets: 2, reserved: 4096 });
      expect(y.ioInfo()).toMatchObject({ umem: x.umem.id });
    } finally {
      x.close();
      y.close();
    }
  });
});
