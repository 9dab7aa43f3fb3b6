import fc from 'fast-check';
import { FrameLayout } from '../../src/mtu/layout.js';
import { afterAll, describe, expect, it } from 'vitest';
import { Batch, FrameList } from '../../src/buf/batch.js';
import { TcpCoalescer, coalesceOutputBound } from '../../src/offload/coalesce.js';
import { segmentTcp } from '../../src/offload/segment.js';
import { MtuStatus } from '../../src/mtu/status.js';
import { hex } from '../support/hex.js';
import { payloadOf, tcpFrame, udpFrame, type TcpSpec } from '../support/l4-frames.js';
import { ACK, CWR, ECE, FIN, PSH, expectBytes, tcpSuperFrame } from '../support/superframes.js';

const CAP = 256;
const inArena = new Batch(CAP, 2048);
const outBuf = Buffer.alloc(CAP * 2100);
const out = new FrameList(CAP);
const lens = new Int32Array(CAP);
const segBuf = Buffer.alloc(CAP * 2048);
let propertyCases = 0;
afterAll(() => { process.stdout.write(`coalesce property cases: ${propertyCases}\n`); });

/** The frames in an rx-like arena: slot i at headroom 64, as the overlay receive path leaves them. */
function listOf(frames: readonly Buffer[]): Batch {
  inArena.clear();
  inArena.arena.fill(0x5a);
  frames.forEach((f, i) => {
    const o = inArena.slotOff(i) + 64;
    f.copy(inArena.arena, o);
    inArena.push(inArena.arena, o, o + f.length);
  });
  return inArena;
}

interface Out { readonly hdr: Buffer; readonly frame: Buffer }

function run(frames: readonly Buffer[], c = new TcpCoalescer({ maxFrames: CAP })): Out[] {
  const list = listOf(frames);
  const before = Buffer.from(list.arena);
  const n = c.coalesce(list, outBuf, 0, out);
  expect(n).toBe(out.count);
  expect(list.arena.equals(before)).toBe(true); // the input is only read
  const res: Out[] = [];
  for (let k = 0; k < n; k++) {
    const s = out.start(k), e = out.end(k);
    res.push({ hdr: Buffer.from(outBuf.subarray(s - c.vnetHdrLen, s)), frame: Buffer.from(outBuf.subarray(s, e)) });
  }
  return res;
}

const ZERO_HDR = Buffer.alloc(10);
const seg = (s: TcpSpec): Buffer => tcpFrame({ flags: ACK, ...s });

/** Flow A's segments: 100-byte payloads from seq 1000, IDs 0x100 + k (DF set). */
const A = (k: number, s: TcpSpec = {}): Buffer => seg({ seq: 1000 + 100 * k, id: 0x100 + k, payload: payloadOf(100, k + 1), ...s });
/** Flow B: other ports. */
const B = (k: number, s: TcpSpec = {}): Buffer => seg({ sport: 50000, seq: 7000 + 100 * k, id: 0x900 + k, payload: payloadOf(100, 50 + k), ...s });

/** What the merge of A(0..n-1) must be: the first segment's headers, all payloads, partial sum. */
function mergedA(n: number, s: TcpSpec = {}): Buffer {
  const payload = Buffer.concat([...Array(n).keys()].map((k) => payloadOf(100, k + 1)));
  return seg({ seq: 1000, id: 0x100, payload, csum: 'partial', ...s });
}

describe('TcpCoalescer: hand-checked cases', () => {
  it('merges three in-order segments into one super-frame with a GSO header', () => {
    const r = run([A(0), A(1), A(2, { flags: ACK | PSH })]);
    expect(r).toHaveLength(1);
    // NEEDS_CSUM, TCPV4, hdr_len 54, gso_size 100, csum_start 34, csum_offset 16
    expect(r[0]!.hdr).toEqual(hex('01 01 3600 6400 2200 1000'));
    const want = mergedA(3, { flags: ACK | PSH });
    expect(r[0]!.frame).toEqual(want);
    expect(want.readUInt16BE(16)).toBe(340); // IPv4 total length 20 + 20 + 300
  });

  it('counts what it did', () => {
    const c = new TcpCoalescer({ maxFrames: CAP });
    run([A(0), A(1), A(2), udpFrame({ payload: payloadOf(10) })], c);
    expect({ ...c.stats }).toEqual({ superFrames: 1, segmentsMerged: 3, passedThrough: 1, checksumFailed: 0 });
  });

  it('PSH ends a run: the segment after it starts anew', () => {
    const r = run([A(0), A(1, { flags: ACK | PSH }), A(2)]);
    expect(r.map((o) => o.hdr[1])).toEqual([1, 0]);
    expect(r[0]!.frame).toEqual(mergedA(2, { flags: ACK | PSH }));
    expect(r[1]!).toEqual({ hdr: ZERO_HDR, frame: A(2) });
  });

  it.each([
    ['a sequence gap', [A(0), A(2)]],
    ['a retransmission (seq goes back)', [A(1), A(0)]],
    ['a different ack', [A(0), A(1, { ack: 1 })]],
    ['a different window', [A(0), A(1, { window: 1000 })]],
    ['different TCP options', [A(0, { tcpOptions: hex('0101080a 00000001 00000002') }), A(1, { tcpOptions: hex('0101080a 00000002 00000002') })]],
    ['a different TTL', [A(0), A(1, { ttl: 63 })]],
    ['a different TOS (ECN)', [A(0), A(1, { tos: 3 })]],
    ['a different destination MAC', [A(0), A(1, { dstMac: hex('0e 00 0a f4 09 09') })]],
    ['DF clear and IDs not consecutive', [A(0, { flagsFrag: 0 }), A(1, { flagsFrag: 0, id: 0x777 })]],
    ['DF on one, not the other', [A(0), A(1, { flagsFrag: 0 })]],
    ['a second segment longer than the first', [A(0, { payload: payloadOf(50, 1) }), seg({ seq: 1050, id: 0x101, payload: payloadOf(100, 2) })]],
    ['FIN on the second', [A(0), A(1, { flags: ACK | FIN })]],
    ['CWR on the first (never coalesced)', [A(0, { flags: ACK | CWR }), A(1)]],
    ['URG', [A(0, { flags: ACK | 0x20 }), A(1, { flags: ACK | 0x20 })]],
    ['IPv4 options', [A(0, { ipOptions: hex('94040000') }), A(1, { ipOptions: hex('94040000') })]],
    ['no ACK flag', [A(0, { flags: 0 }), A(1, { flags: 0 })]],
    ['zero-payload segments', [A(0, { payload: Buffer.alloc(0) }), A(0, { payload: Buffer.alloc(0) })]],
  ])('does not merge across %s: every frame goes out unchanged, in order', (_n, frames) => {
    const r = run(frames);
    expect(r).toEqual(frames.map((f) => ({ hdr: ZERO_HDR, frame: f })));
  });

  it('Ethernet padding (frame longer than its IP packet) is not merged', () => {
    const padded = Buffer.concat([A(1), Buffer.alloc(4)]);
    expect(run([A(0), padded])).toEqual([{ hdr: ZERO_HDR, frame: A(0) }, { hdr: ZERO_HDR, frame: padded }]);
  });

  it('merges DF-clear segments whose IDs are consecutive (the kernel\'s flush_id rule)', () => {
    const r = run([A(0, { flagsFrag: 0 }), A(1, { flagsFrag: 0 })]);
    expect(r).toHaveLength(1);
    expect(r[0]!.frame).toEqual(mergedA(2, { flagsFrag: 0 }));
  });

  it('a smaller segment ends the run (it may only be last)', () => {
    const short = seg({ seq: 1200, id: 0x102, payload: payloadOf(40, 3) });
    const r = run([A(0), A(1), short, seg({ seq: 1240, id: 0x103, payload: payloadOf(100, 4) })]);
    expect(r.map((o) => o.hdr[1])).toEqual([1, 0]);
    expect(r[0]!.frame).toEqual(seg({ seq: 1000, id: 0x100, payload: Buffer.concat([payloadOf(100, 1), payloadOf(100, 2), payloadOf(40, 3)]), csum: 'partial' }));
  });

  it('interleaved flows merge separately, in order of their first segment', () => {
    const r = run([A(0), B(0), A(1), B(1), A(2)]);
    expect(r).toHaveLength(2);
    expect(r[0]!.frame).toEqual(mergedA(3));
    expect(r[1]!.frame).toEqual(seg({ sport: 50000, seq: 7000, id: 0x900, payload: Buffer.concat([payloadOf(100, 50), payloadOf(100, 51)]), csum: 'partial' }));
  });

  it('a frame of the same 4-tuple that cannot join closes the run: nothing overtakes it', () => {
    const pureAck = seg({ seq: 1100, id: 0x555, payload: Buffer.alloc(0) });
    const r = run([A(0), pureAck, A(1), A(2)]);
    expect(r).toHaveLength(3);
    expect(r[0]).toEqual({ hdr: ZERO_HDR, frame: A(0) });
    expect(r[1]).toEqual({ hdr: ZERO_HDR, frame: pureAck });
    expect(r[2]!.frame).toEqual(seg({ seq: 1100, id: 0x101, payload: Buffer.concat([payloadOf(100, 2), payloadOf(100, 3)]), csum: 'partial' }));
  });

  it('a segment whose checksum fails is passed through and never merged; the run before it is closed', () => {
    const bad = A(1);
    bad[bad.length - 1]! ^= 0xff;
    const c = new TcpCoalescer({ maxFrames: CAP });
    const r = run([A(0), bad, A(2), A(3)], c);
    expect(r.map((o) => o.frame)).toEqual([A(0), bad, mergedFrom(2, 2)]);
    expect(c.stats.checksumFailed).toBe(1);
  });

  it('a first segment whose checksum fails goes out alone; the next one starts the run', () => {
    const bad = A(0);
    bad[60]! ^= 0x01;
    const c = new TcpCoalescer({ maxFrames: CAP });
    const r = run([bad, A(1), A(2)], c);
    expect(r.map((o) => o.frame)).toEqual([bad, mergedFrom(1, 2)]);
    expect(r[0]!.hdr).toEqual(ZERO_HDR);
    expect(c.stats.checksumFailed).toBe(1);
  });

  it('a bad IPv4 header checksum makes a frame a non-candidate', () => {
    const badIp = A(1, { badIpChecksum: true });
    expect(run([A(0), badIp, A(2)]).map((o) => o.frame)).toEqual([A(0), badIp, A(2)]);
  });

  it('non-TCP frames pass through unchanged, in place in the order', () => {
    const arp = Buffer.concat([hex('ff ff ff ff ff ff 0e 00 0a f4 01 01 08 06'), Buffer.alloc(28, 1)]);
    const u = udpFrame({ payload: payloadOf(30) });
    const r = run([arp, A(0), u, A(1), hex('00 11')]);
    expect(r.map((o) => o.hdr[1])).toEqual([0, 1, 0, 0]);
    expect(r[0]!.frame).toEqual(arp);
    expect(r[1]!.frame).toEqual(mergedA(2));
    expect(r[2]!.frame).toEqual(u);
    expect(r[3]!.frame).toEqual(hex('00 11'));
  });

  it('IPv6: gso_type TCPV6, csum_start 54, payload length fixed', () => {
    const V = (k: number): Buffer => seg({ v6: true, flowLabel: 0x12345, seq: 5 + 300 * k, payload: payloadOf(300, k) });
    const r = run([V(0), V(1), V(2), V(3)]);
    expect(r).toHaveLength(1);
    expect(r[0]!.hdr).toEqual(hex('01 04 4a00 2c01 3600 1000')); // hdr_len 74, gso_size 300
    expect(r[0]!.frame).toEqual(seg({ v6: true, flowLabel: 0x12345, seq: 5, payload: Buffer.concat([0, 1, 2, 3].map((k) => payloadOf(300, k))), csum: 'partial' }));
  });

  it('IPv6 flows with different flow labels do not merge', () => {
    const a = seg({ v6: true, flowLabel: 1, seq: 0, payload: payloadOf(10) });
    const b = seg({ v6: true, flowLabel: 2, seq: 10, payload: payloadOf(10) });
    expect(run([a, b]).map((o) => o.frame)).toEqual([a, b]);
  });

  it('stops at 65,535 bytes of IP packet: 46 segments of 1400 merge, the next 4 start another run', () => {
    const S = (k: number): Buffer => seg({ seq: 1400 * k, id: k, payload: payloadOf(1400, k) });
    const frames = [...Array(50).keys()].map(S);
    const r = run(frames);
    expect(r).toHaveLength(2);
    expect(r[0]!.frame.readUInt16BE(16)).toBe(40 + 46 * 1400);
    expect(r[1]!.frame.readUInt16BE(16)).toBe(40 + 4 * 1400);
    expect(r[1]!.frame.readUInt32BE(38)).toBe(46 * 1400);
  });

  it('maxIpLen lowers that limit', () => {
    const r = run([A(0), A(1), A(2), A(3)], new TcpCoalescer({ maxFrames: CAP, maxIpLen: 40 + 250 }));
    expect(r.map((o) => o.frame.readUInt16BE(16))).toEqual([240, 240]);
  });

  it('a 12-byte header (mergeable buffers) carries num_buffers = 1', () => {
    const c = new TcpCoalescer({ maxFrames: CAP, vnetHdrLen: 12 });
    const r = run([A(0), A(1), udpFrame()], c);
    expect(r[0]!.hdr).toEqual(hex('01 01 3600 6400 2200 1000 0100'));
    expect(r[1]!.hdr).toEqual(hex('00 00 0000 0000 0000 0000 0100'));
  });

  it('refuses, writing nothing, when the output buffer or list is too small or overlaps an input frame', () => {
    const c = new TcpCoalescer({ maxFrames: 4 });
    const list = listOf([A(0), A(1), A(2)]);
    const need = coalesceOutputBound(list, 10);
    expect(need).toBe(3 * (A(0).length + 10));
    const small = Buffer.alloc(need - 1, 0xee);
    expect(c.coalesce(list, small, 0, out)).toBe(MtuStatus.NO_ROOM);
    expect(small.every((b) => b === 0xee)).toBe(true);
    expect(c.coalesce(list, Buffer.alloc(need), 0, out)).toBe(1);
    expect(c.coalesce(list, Buffer.alloc(need + 5), 6, out)).toBe(MtuStatus.NO_ROOM);
    expect(c.coalesce(list, Buffer.alloc(need), 0, new FrameList(2))).toBe(MtuStatus.NO_ROOM);
    expect(c.coalesce(list, list.arena.subarray(2048), 0, out)).toBe(MtuStatus.NO_ROOM); // slot 1 holds a frame
    expect(c.coalesce(list, list.arena, 2 * 2048 + 64 + A(0).length - 1, out)).toBe(MtuStatus.NO_ROOM); // the last byte of frame 2
    expect(c.coalesce(list, list.arena, 2 * 2048 + 64 + A(0).length, out)).toBe(1); // right after it
    expect(c.coalesce(listOf([A(0), A(1), A(2), A(3), A(4)]), outBuf, 0, out)).toBe(MtuStatus.TOO_MANY_SEGMENTS);
    expect(out.count).toBe(0);
  });

  it('may write into free space of the input\'s own arena (spare slots): same result', () => {
    const c = new TcpCoalescer({ maxFrames: 8 });
    const list = listOf([A(0), A(1), udpFrame(), A(2)]);
    const want = run([A(0), A(1), udpFrame(), A(2)]);
    const list2 = listOf([A(0), A(1), udpFrame(), A(2)]);
    expect(list2).toBe(list);
    const spare = list.arena.subarray(100 * 2048);
    expect(c.coalesce(list, spare, 0, out)).toBe(want.length);
    for (let k = 0; k < out.count; k++) {
      expect(Buffer.from(spare.subarray(out.start(k) - 10, out.end(k)))).toEqual(Buffer.concat([want[k]!.hdr, want[k]!.frame]));
    }
  });

  it('rejects bad options at construction', () => {
    expect(() => new TcpCoalescer({ maxFrames: 0 })).toThrow(RangeError);
    expect(() => new TcpCoalescer({ maxFrames: 8, vnetHdrLen: 11 })).toThrow(RangeError);
    expect(() => new TcpCoalescer({ maxFrames: 8, maxIpLen: 70000 })).toThrow(RangeError);
  });
});

/** The merge of A(first .. first + n - 1). */
function mergedFrom(first: number, n: number): Buffer {
  const payload = Buffer.concat([...Array(n).keys()].map((k) => payloadOf(100, first + k + 1)));
  return seg({ seq: 1000 + 100 * first, id: 0x100 + first, payload, csum: 'partial' });
}

/** segmentTcp(x, mss) as separate Buffers. */
function segmentsOf(x: Buffer, mss: number): Buffer[] {
  const n = segmentTcp(FrameLayout.of(x), mss, segBuf, 0, 0, lens);
  expect(n).toBeGreaterThan(0);
  const stride = lens[0]!;
  return [...Array(n).keys()].map((k) => Buffer.from(segBuf.subarray(k * stride, k * stride + lens[k]!)));
}

/** Each output as the segments the kernel would make of it (a GSO output is re-segmented at gso_size). */
function resegment(outs: readonly Out[]): Buffer[] {
  return outs.flatMap((o) => (o.hdr[1] === 0 ? [o.frame] : segmentsOf(o.frame, o.hdr.readUInt16LE(4))));
}

describe('coalesce properties (fast-check, fixed seeds)', () => {
  const plainFlags = fc.constantFrom(ACK, ACK | PSH, ACK | ECE, ACK | ECE | PSH);

  it('coalesce(segment(x)) == x for super-frames with ACK[/PSH/ECE], IPv4 without options or IPv6 (seed 42)', () => {
    fc.assert(fc.property(tcpSuperFrame({ flags: plainFlags, ipOpts: false, csum: 'partial', maxPayload: 30000 }), (c) => {
      propertyCases++;
      const segs = segmentsOf(c.frame, c.mss);
      const r = run(segs);
      if (segs.length === 1) {
        expect(r).toEqual([{ hdr: ZERO_HDR, frame: segs[0]! }]);
        return;
      }
      expect(r).toHaveLength(1);
      const v6 = c.spec.v6 === true;
      const hl = c.frame.length - c.payloadLen;
      const h = Buffer.alloc(10);
      h[0] = 1; h[1] = v6 ? 4 : 1;
      h.writeUInt16LE(hl, 2); h.writeUInt16LE(c.mss, 4); h.writeUInt16LE(v6 ? 54 : 34, 6); h.writeUInt16LE(16, 8);
      expect(r[0]!.hdr).toEqual(h);
      expectBytes(r[0]!.frame, c.frame, 'coalesced super-frame');
    }), { seed: 42, numRuns: 250 });
  });

  it('segment(coalesce(segment(x))) == segment(x) for any flags and IPv4 options (seed 43)', () => {
    fc.assert(fc.property(tcpSuperFrame({ maxPayload: 30000 }), (c) => {
      propertyCases++;
      const segs = segmentsOf(c.frame, c.mss);
      const again = resegment(run(segs));
      expect(again).toHaveLength(segs.length);
      again.forEach((s, k) => expectBytes(s, segs[k]!, `segment ${k}`));
    }), { seed: 43, numRuns: 200 });
  });

  it('interleaved flows and other frames: per-flow order kept, nothing lost, nothing changed (seed 44)', () => {
    const flow = (sport: number) => tcpSuperFrame({ flags: plainFlags, ipOpts: false, maxPayload: 6000 }).map((c) => ({ ...c, frame: tcpFrame({ ...c.spec, sport }) }));
    fc.assert(fc.property(flow(1), flow(2), flow(3), fc.array(fc.nat(2), { maxLength: 200 }), fc.nat(5), (f1, f2, f3, picks, others) => {
      propertyCases++;
      const queues = [f1, f2, f3].map((c) => segmentsOf(c.frame, c.mss));
      const tagged: { frame: Buffer; tag: number }[] = [];
      const q = queues.map((s) => [...s]);
      for (const p of picks) {
        const from = q[p]!.length > 0 ? p : q.findIndex((x) => x.length > 0);
        if (from < 0) break;
        tagged.push({ frame: q[from]!.shift()!, tag: from });
        if (tagged.length % 7 === others) tagged.push({ frame: udpFrame({ payload: payloadOf(20, tagged.length) }), tag: 9 });
      }
      q.forEach((rest, t) => rest.forEach((frame) => tagged.push({ frame, tag: t })));
      if (tagged.length > CAP) return;
      const outs = run(tagged.map((t) => t.frame));
      // Per flow (the source port says which), the re-segmented outputs are the flow's segments in order.
      const perFlow = new Map<number, Buffer[]>();
      const udps: Buffer[] = [];
      for (const o of outs) {
        const isTcp = o.frame.readUInt16BE(12) === 0x86dd ? o.frame[20] === 6 : o.frame[23] === 6;
        if (!isTcp) { udps.push(o.frame); continue; }
        const l4 = o.frame.readUInt16BE(12) === 0x86dd ? 54 : 14 + (o.frame[14]! & 15) * 4;
        const sport = o.frame.readUInt16BE(l4);
        perFlow.set(sport, [...(perFlow.get(sport) ?? []), ...resegment([o])]);
      }
      queues.forEach((segs, t) => {
        const got = perFlow.get(t + 1) ?? [];
        expect(got).toHaveLength(segs.length);
        got.forEach((s, k) => expectBytes(s, segs[k]!, `flow ${t + 1} segment ${k}`));
      });
      expect(udps).toEqual(tagged.filter((t) => t.tag === 9).map((t) => t.frame));
    }), { seed: 44, numRuns: 120 });
  });

  it('random and bit-flipped frames never throw; every output is an input frame or a valid run (seed 45)', () => {
    const base = segmentsOf(tcpFrame({ payload: payloadOf(4000), csum: 'partial' }), 500);
    fc.assert(fc.property(fc.array(fc.tuple(fc.nat(base.length - 1), fc.nat(2000), fc.nat(7), fc.boolean(), fc.uint8Array({ maxLength: 80 })), { maxLength: 40 }), (picks) => {
      propertyCases++;
      const frames = picks.map(([i, at, bit, flip, junk]) => {
        if (junk.length > 60 && !flip) return Buffer.from(junk);
        const f = Buffer.from(base[i]!);
        if (flip) f[at % f.length]! ^= 1 << bit;
        return f;
      });
      const outs = run(frames);
      expect(outs.length).toBeLessThanOrEqual(frames.length);
      for (const o of outs) {
        if (o.hdr[1] === 0) {
          expect(o.hdr).toEqual(ZERO_HDR);
          expect(frames.some((f) => f.equals(o.frame))).toBe(true);
        } else {
          // A run re-segments into frames that were all inputs, in order.
          for (const s of resegment([o])) expect(frames.some((f) => f.equals(s))).toBe(true);
        }
      }
    }), { seed: 45, numRuns: 400 });
  });
});
