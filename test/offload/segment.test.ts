import fc from 'fast-check';
import { FrameLayout } from '../../src/mtu/layout.js';
import { dataViewOf } from '../../src/wire/bytes.js';
import { afterAll, describe, expect, it } from 'vitest';
import { segmentGso, segmentGsoHeaders, segmentTcp, segmentUdp } from '../../src/offload/segment.js';
import { MtuStatus } from '../../src/mtu/status.js';
import { VirtioGso } from '../../src/wire/virtio-net-hdr.js';
import { dirty, hex } from '../support/hex.js';
import { ipv4HeaderOk, l4ChecksumOk, payloadOf, tcpFrame, udpFrame } from '../support/l4-frames.js';
import { ACK, CWR, ECE, FIN, PSH, expectBytes, expectTcpSegments, expectUdpSegments, tcpSuperFrame, udpSuperFrame } from '../support/superframes.js';

const lens = new Int32Array(256);
let propertyCases = 0;
afterAll(() => { process.stdout.write(`segment property cases: ${propertyCases}\n`); });

describe('segmentTcp: a hand-checked IPv4 example', () => {
  // 10 payload bytes "0123456789", mss 4, prefix 8: three segments of 4, 4 and 2 bytes.
  // Header bytes per segment: 14 + 20 + 20 = 54; stride = 8 + 54 + 4 = 66.
  const x = tcpFrame({ seq: 1000, id: 0x1234, flags: ACK | PSH | FIN | CWR | ECE, payload: Buffer.from('0123456789'), csum: 'partial' });
  const out = dirty(300);
  const n = segmentTcp(FrameLayout.of(x), 4, out, 0, 8, lens);
  const seg = (k: number, len: number): Buffer => out.subarray(k * 66 + 8, k * 66 + 8 + len);

  it('makes 3 segments of 58, 58 and 56 bytes at stride 66', () => {
    expect(n).toBe(3);
    expect([...lens.subarray(0, 3)]).toEqual([58, 58, 56]);
  });

  it.each([
    // k, IP total length, IP ID, seq, TCP flags byte, payload
    [0, 44, 0x1234, 1000, 0xd0 /* CWR ECE ACK */, '0123'],
    [1, 44, 0x1235, 1004, 0x50 /* ECE ACK */, '4567'],
    [2, 42, 0x1236, 1008, 0x59 /* ECE ACK PSH FIN */, '89'],
  ])('segment %i: length %i, ID %i, seq %i, flags %i, payload %s', (k, ipLen, id, seq, flags, pay) => {
    const s = seg(k, lens[k]!);
    expect(s.readUInt16BE(16)).toBe(ipLen);
    expect(s.readUInt16BE(18)).toBe(id);
    expect(s.readUInt32BE(38)).toBe(seq);
    expect(s[47]).toBe(flags);
    expect(s.subarray(54).toString()).toBe(pay);
    expect(ipv4HeaderOk(s) && l4ChecksumOk(s)).toBe(true);
    // everything else is the super-frame's: MACs, TOS, DF, TTL, addresses, ports, ack, window
    expect(s.subarray(0, 16)).toEqual(x.subarray(0, 16));
    expect(s.subarray(20, 24)).toEqual(x.subarray(20, 24));
    expect(s.subarray(26, 38)).toEqual(x.subarray(26, 38));
    expect(s.subarray(42, 47)).toEqual(x.subarray(42, 47));
    expect(s.subarray(48, 50)).toEqual(x.subarray(48, 50));
  });

  it('leaves every prefix byte and everything after the last segment untouched', () => {
    for (const [a, b] of [[0, 8], [66, 74], [132, 140], [196, 300]] as const) expect(out.subarray(a, b)).toEqual(dirty(b - a));
  });
});

describe('segmentTcp: IPv6 and UDP examples', () => {
  it('IPv6: 7 bytes at mss 3 -> payload lengths 23, 23, 21 and seq +3', () => {
    const x = tcpFrame({ v6: true, seq: 0xffff_fffe, payload: Buffer.from('abcdefg'), flags: ACK | FIN });
    const out = dirty(400);
    expect(segmentTcp(FrameLayout.of(x), 3, out, 0, 0, lens)).toBe(3);
    // hl = 14 + 40 + 20 = 74; stride 77
    expect([...lens.subarray(0, 3)]).toEqual([77, 77, 75]);
    const s = [0, 1, 2].map((k) => out.subarray(k * 77, k * 77 + lens[k]!));
    expect(s.map((b) => b.readUInt16BE(18))).toEqual([23, 23, 21]);
    expect(s.map((b) => b.readUInt32BE(58))).toEqual([0xffff_fffe, 0x0000_0001, 0x0000_0004]); // seq wraps
    expect(s.map((b) => b[67])).toEqual([0x10, 0x10, 0x11]);
    expect(s.map((b) => b.subarray(74).toString())).toEqual(['abc', 'def', 'g']);
    for (const b of s) expect(l4ChecksumOk(b)).toBe(true);
  });

  it('UDP (USO): 10 bytes at gso_size 4 -> UDP lengths 12, 12, 10, IP IDs +k, checksums', () => {
    const x = udpFrame({ id: 0xfffe, payload: Buffer.from('0123456789'), csum: 'partial' });
    const out = dirty(300);
    expect(segmentUdp(FrameLayout.of(x), 4, 1500, out, 0, 8, lens)).toBe(3);
    // hl = 14 + 20 + 8 = 42; stride = 8 + 42 + 4 = 54
    const s = [0, 1, 2].map((k) => out.subarray(k * 54 + 8, k * 54 + 8 + lens[k]!));
    expect(s.map((b) => b.readUInt16BE(38))).toEqual([12, 12, 10]);
    expect(s.map((b) => b.readUInt16BE(16))).toEqual([32, 32, 30]);
    expect(s.map((b) => b.readUInt16BE(18))).toEqual([0xfffe, 0xffff, 0x0000]);
    expect(s.map((b) => b.subarray(42).toString())).toEqual(['0123', '4567', '89']);
    for (const b of s) expect(ipv4HeaderOk(b) && l4ChecksumOk(b)).toBe(true);
  });

  it('a payload that fits one segment gives one segment with complete checksums', () => {
    const x = tcpFrame({ payload: Buffer.from('hello'), csum: 'partial' });
    const out = dirty(200);
    expect(segmentTcp(FrameLayout.of(x), 1460, out, 0, 50, lens)).toBe(1);
    const s = out.subarray(50, 50 + lens[0]!);
    expect(lens[0]).toBe(x.length);
    expect(l4ChecksumOk(s)).toBe(true);
    expect(out.subarray(0, 50)).toEqual(dirty(50));
  });

  it('works from a window inside a larger buffer into the same buffer (no overlap)', () => {
    const x = tcpFrame({ payload: payloadOf(3000), csum: 'partial' });
    const buf = dirty(20000);
    x.copy(buf, 100);
    const n = segmentTcp(FrameLayout.of(buf, 100, 100 + x.length), 1000, buf, 5000, 8, lens);
    expectTcpSegments(x, 1000, n, buf, 5000, 8, lens);
  });
});

describe('segmentGso', () => {
  const x4 = tcpFrame({ payload: payloadOf(5000), csum: 'partial' });
  const x6 = tcpFrame({ v6: true, payload: payloadOf(5000), csum: 'partial' });

  it('uses gso_size when segments fit the MTU', () => {
    const out = dirty(10000);
    const n = segmentGso(FrameLayout.of(x4), VirtioGso.TCPV4, 1398, 1450, out, 0, 8, lens);
    expectTcpSegments(x4, 1398, n, out, 0, 8, lens);
    expect(n).toBe(4);
  });

  it('cuts smaller segments when gso_size does not fit the MTU: min(gso_size, mtu - 40) for IPv4', () => {
    const out = dirty(10000);
    const n = segmentGso(FrameLayout.of(x4), VirtioGso.TCPV4, 1448, 1450, out, 0, 8, lens);
    expectTcpSegments(x4, 1410, n, out, 0, 8, lens);
    for (let k = 0; k < n; k++) expect(lens[k]! - 14).toBeLessThanOrEqual(1450);
  });

  it('IPv6: mtu - 60, and the ECN bit in gso_type is accepted', () => {
    const out = dirty(10000);
    const n = segmentGso(FrameLayout.of(x6), VirtioGso.TCPV6 | VirtioGso.ECN, 1440, 1450, out, 0, 0, lens);
    expectTcpSegments(x6, 1390, n, out, 0, 0, lens);
  });

  it('UDP_L4 keeps datagram boundaries and refuses datagrams that do not fit', () => {
    const u = udpFrame({ payload: payloadOf(3000), csum: 'partial' });
    const out = dirty(10000);
    const n = segmentGso(FrameLayout.of(u), VirtioGso.UDP_L4, 1000, 1450, out, 0, 8, lens);
    expectUdpSegments(u, 1000, n, out, 0, 8, lens);
    expect(segmentGso(FrameLayout.of(u), VirtioGso.UDP_L4, 1423, 1450, out, 0, 8, lens)).toBe(MtuStatus.DATAGRAM_TOO_BIG);
    expect(segmentGso(FrameLayout.of(u), VirtioGso.UDP_L4, 1422, 1450, out, 0, 8, lens)).toBe(3);
  });

  it.each([
    ['UFO (VIRTIO_NET_HDR_GSO_UDP)', VirtioGso.UDP, MtuStatus.GSO_TYPE_UNSUPPORTED],
    ['NONE', VirtioGso.NONE, MtuStatus.GSO_TYPE_UNSUPPORTED],
    ['an unknown type', 9, MtuStatus.GSO_TYPE_UNSUPPORTED],
    ['TCPV6 on an IPv4 frame', VirtioGso.TCPV6, MtuStatus.GSO_TYPE_MISMATCH],
    ['UDP_L4 on a TCP frame', VirtioGso.UDP_L4, MtuStatus.WRONG_PROTOCOL],
  ])('refuses %s', (_n, t, want) => {
    expect(segmentGso(FrameLayout.of(x4), t, 1000, 1450, dirty(10000), 0, 0, lens)).toBe(want);
  });

  it('refuses gso_size 0 and an MTU with no room for payload', () => {
    expect(segmentGso(FrameLayout.of(x4), VirtioGso.TCPV4, 0, 1450, dirty(10000), 0, 0, lens)).toBe(MtuStatus.BAD_GSO_SIZE);
    expect(segmentGso(FrameLayout.of(x4), VirtioGso.TCPV4, 1000, 40, dirty(10000), 0, 0, lens)).toBe(MtuStatus.BAD_GSO_SIZE);
    expect(segmentGso(FrameLayout.of(x4), VirtioGso.TCPV4, 1000, 41, dirty(1_000_000), 0, 0, new Int32Array(5000))).toBe(5000);
  });
});

describe('segmentTcp: bad input is a status, never a throw or a stray write', () => {
  const x = tcpFrame({ payload: payloadOf(3000), csum: 'partial' });
  const withByte = (at: number, v: number): Buffer => { const c = Buffer.from(x); c[at] = v; return c; };
  const ipv4Frag = Buffer.from(x); ipv4Frag.writeUInt16BE(0x2000, 20);
  const v6ext = tcpFrame({ v6: true, payload: payloadOf(100) }); v6ext[20] = 0; // hop-by-hop options

  it.each([
    ['an empty window', x.subarray(0, 0), MtuStatus.TRUNCATED],
    ['a cut IPv4 header', x.subarray(0, 30), MtuStatus.TRUNCATED],
    ['a cut payload (total length beyond the frame)', x.subarray(0, 2000), MtuStatus.TRUNCATED],
    ['an 802.1Q tag', Buffer.concat([x.subarray(0, 12), hex('81 00 00 05'), x.subarray(12)]), MtuStatus.NOT_IP],
    ['IPv4 version 5', withByte(14, 0x55), MtuStatus.BAD_IP_HEADER],
    ['IHL 4', withByte(14, 0x44), MtuStatus.BAD_IP_HEADER],
    ['a UDP packet', withByte(23, 17), MtuStatus.WRONG_PROTOCOL],
    ['an IPv4 fragment', ipv4Frag, MtuStatus.IP_FRAGMENT],
    ['an IPv6 extension header', v6ext, MtuStatus.IPV6_EXT_HEADER],
    ['TCP data offset 4', withByte(46, 0x40), MtuStatus.BAD_L4_HEADER],
  ])('%s', (_n, f, want) => {
    const out = dirty(8000);
    // Headers that do not parse are refused by the layout (the pipeline drops such frames at
    // ingress); given that layout, the segmenter refuses the frame as not IP.
    const L = new FrameLayout();
    const parsed = L.parse(f, dataViewOf(f), 0, f.length);
    const got = segmentTcp(L, 1000, out, 0, 8, lens);
    expect(parsed === MtuStatus.OK ? got : parsed).toBe(want);
    if (parsed !== MtuStatus.OK) expect(got).toBe(MtuStatus.NOT_IP);
    expect(out).toEqual(dirty(8000));
  });

  it('TCP options beyond the IP packet: TRUNCATED', () => {
    const small = tcpFrame({ payload: Buffer.alloc(0), tcpOptions: Buffer.alloc(0) });
    small[46] = 0xf0; // data offset 15 = 60 bytes, but the packet has 20
    expect(segmentTcp(FrameLayout.of(small), 100, dirty(1000), 0, 0, lens)).toBe(MtuStatus.TRUNCATED);
  });

  it.each([
    ['mss 0', 0, MtuStatus.BAD_GSO_SIZE],
    ['mss above 65535', 70000, MtuStatus.BAD_GSO_SIZE],
  ])('refuses %s', (_n, mss, want) => {
    expect(segmentTcp(FrameLayout.of(x), mss, dirty(8000), 0, 0, lens)).toBe(want);
  });

  it('TOO_MANY_SEGMENTS when lens is short, NO_ROOM when dst is short by one byte', () => {
    expect(segmentTcp(FrameLayout.of(x), 1000, dirty(8000), 0, 0, new Int32Array(2))).toBe(MtuStatus.TOO_MANY_SEGMENTS);
    // 3 segments: (2 * (8 + 54 + 1000)) + 8 + 54 + 1000 = 3186 bytes from dstOff 10
    expect(segmentTcp(FrameLayout.of(x), 1000, dirty(3196), 10, 8, lens)).toBe(3);
    const out = dirty(3195);
    expect(segmentTcp(FrameLayout.of(x), 1000, out, 10, 8, lens)).toBe(MtuStatus.NO_ROOM);
    expect(out).toEqual(dirty(3195));
    expect(segmentTcp(FrameLayout.of(x), 1000, dirty(8000), -1, 8, lens)).toBe(MtuStatus.NO_ROOM);
  });

  it('NO_ROOM when the destination overlaps the source, also through another Buffer over the same memory', () => {
    const buf = dirty(20000);
    x.copy(buf, 1000);
    expect(segmentTcp(FrameLayout.of(buf, 1000, 1000 + x.length), 1000, buf, 2000, 0, lens)).toBe(MtuStatus.NO_ROOM);
    const alias = buf.subarray(500);
    expect(segmentTcp(FrameLayout.of(buf, 1000, 1000 + x.length), 1000, alias, 0, 0, lens)).toBe(MtuStatus.NO_ROOM);
    expect(segmentTcp(FrameLayout.of(buf, 1000, 1000 + x.length), 1000, alias, 4000, 0, lens)).toBe(3);
  });

  it('random and bit-flipped frames never throw and never write outside the destination (fast-check, seed 11)', () => {
    fc.assert(fc.property(fc.uint8Array({ maxLength: 300 }), fc.nat(2000), fc.integer({ min: 1, max: 200 }), fc.nat(), (junk, flipAt, mss, bit) => {
      propertyCases++;
      const f = junk.length > 0 && bit % 2 === 0 ? Buffer.from(junk) : Buffer.from(x.subarray(0, 200 + (flipAt % 2800)));
      if (f.length > 0 && bit % 2 === 1) f[flipAt % f.length]! ^= 1 << (bit % 8);
      const out = Buffer.concat([dirty(16), Buffer.alloc(20000), dirty(16)]);
      const r = segmentTcp(FrameLayout.of(f), mss, out.subarray(16, 20016), 0, 8, lens);
      expect(Number.isInteger(r)).toBe(true);
      expect(out.subarray(0, 16)).toEqual(dirty(16));
      expect(out.subarray(20016)).toEqual(dirty(16));
    }), { seed: 11, numRuns: 1500 });
  });
});

describe('segment properties (fast-check, fixed seeds)', () => {
  it('TCP: every header field right, checksums verify, payloads concatenate to the original (seed 5)', () => {
    fc.assert(fc.property(tcpSuperFrame(), fc.nat(64), fc.nat(31), fc.boolean(), (c, prefix, lead, partial) => {
      propertyCases++;
      const x = c.frame;
      const src = Buffer.concat([dirty(lead), x, dirty(7)]);
      if (!partial) x.writeUInt16BE(0xbeef, x.readUInt16BE(12) === 0x86dd ? 70 : 14 + (x[14]! & 15) * 4 + 16); // any input checksum is ignored
      x.copy(src, lead);
      const out = dirty(prefix + 3 + 200 * (prefix + 134 + c.mss) + 1000);
      const n = segmentTcp(FrameLayout.of(src, lead, lead + x.length), c.mss, out, 3, prefix, lens);
      const segs = expectTcpSegments(x, c.mss, n, out, 3, prefix, lens);
      expectBytes(Buffer.concat(segs.map((s) => s.subarray(x.length - c.payloadLen))), x.subarray(x.length - c.payloadLen), 'concatenated payloads');
      expect(out.subarray(0, 3 + prefix)).toEqual(dirty(3 + prefix));
    }), { seed: 5, numRuns: 250 });
  });

  it('TCP 64 KB super-frames at MSS 1398 (the bench case) (seed 6)', () => {
    fc.assert(fc.property(tcpSuperFrame({ maxPayload: 65000 }).filter((c) => c.payloadLen > 60000), (c) => {
      propertyCases++;
      const out = dirty(200 * 1500);
      const n = segmentTcp(FrameLayout.of(c.frame), 1398, out, 0, 8, lens);
      expectTcpSegments(c.frame, 1398, n, out, 0, 8, lens);
      expect(n).toBeGreaterThanOrEqual(43);
    }), { seed: 6, numRuns: 12 });
  });

  it('UDP: every datagram right (seed 17)', () => {
    fc.assert(fc.property(udpSuperFrame(), fc.nat(64), (c, prefix) => {
      propertyCases++;
      const out = dirty(prefix + 200 * (prefix + 110 + c.gsoSize) + 100);
      const n = segmentUdp(FrameLayout.of(c.frame), c.gsoSize, 0xffff, out, 0, prefix, lens);
      expectUdpSegments(c.frame, c.gsoSize, n, out, 0, prefix, lens);
    }), { seed: 17, numRuns: 200 });
  });
});

describe('segmentGsoHeaders: the same segments without copying the payload', () => {
  const lens2 = new Int32Array(256);
  it('headers k followed by payload k (where it lies in the source) is segmentGso\'s segment k, byte for byte (fast-check, seed 17)', () => {
    fc.assert(fc.property(tcpSuperFrame({ maxPayload: 30000 }), fc.nat(16), (c, prefix) => {
      const x = c.frame, L = FrameLayout.of(x);
      const type = c.spec.v6 ? VirtioGso.TCPV6 : VirtioGso.TCPV4;
      const full = dirty(prefix + 200 * (prefix + 134 + c.mss) + 100);
      const n = segmentGso(L, type, c.mss, 65535, full, 0, prefix, lens);
      const hdrs = dirty(200 * (prefix + 134) + 100);
      const m = segmentGsoHeaders(L, type, c.mss, 65535, hdrs, 0, prefix, lens2);
      expect(m).toBe(n);
      if (n < 0) return;
      const hl = L.l4Off + L.l4HdrLen - L.start, seg = n > 1 ? lens[0]! - hl : c.payloadLen;
      const stride = n > 1 ? prefix + lens[0]! : 0;
      for (let k = 0; k < n; k++) {
        expect(lens2[k]).toBe(lens[k]);
        const h = hdrs.subarray(k * (prefix + hl) + prefix, k * (prefix + hl) + prefix + hl);
        const p = x.subarray(L.l4Off + L.l4HdrLen + k * seg, L.l4Off + L.l4HdrLen + k * seg + lens[k]! - hl);
        expectBytes(Buffer.concat([h, p]), full.subarray(k * stride + prefix, k * stride + prefix + lens[k]!), `segment ${k}`);
      }
      // Nothing written past the last header, or into any segment's prefix.
      expect(hdrs.subarray(n * (prefix + hl))).toEqual(dirty(hdrs.length).subarray(n * (prefix + hl)));
      for (let k = 0; k < n; k++) expect(hdrs.subarray(k * (prefix + hl), k * (prefix + hl) + prefix)).toEqual(dirty(hdrs.length).subarray(k * (prefix + hl), k * (prefix + hl) + prefix));
    }), { seed: 17, numRuns: 200 });
  });

  it('is for TCP only: a UDP super-frame is GSO_TYPE_UNSUPPORTED, and nothing is written', () => {
    const u = udpFrame({ payload: payloadOf(3000) });
    const out = dirty(4000);
    expect(segmentGsoHeaders(FrameLayout.of(u), VirtioGso.UDP_L4, 1000, 1500, out, 0, 8, lens2)).toBe(MtuStatus.GSO_TYPE_UNSUPPORTED);
    expect(out).toEqual(dirty(4000));
  });
});
