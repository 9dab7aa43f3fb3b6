import { describe, expect, it } from 'vitest';
import { WIRE_DROP_MAX, WireDrop, wireDropName } from '../../src/wire/drop.js';
import {
  ECN_MASK, Ecn, IPV4_FLAG_DF, IPV4_FLAG_MF, IPV4_FLAG_RESERVED, IPV4_HEADER_LEN, IPV4_MAX_HEADER_LEN, Ipv4View, emitIpv4Header, parseIpv4Header,
  type Ipv4Repr,
} from '../../src/wire/ipv4.js';
import { dirty, hex } from '../support/hex.js';
import { checksumRef, prng, randomBytesRef, verifiesRef } from '../support/refs.js';

// Outer IPv4 header of frame 1 of fixtures/kernel/vxlan-4789-noudpcsum.pcap (kernel vxlan):
// 0000  45 00 00 4e 9d aa 00 00 40 11 88 8a c6 33 64 01   E..N....@....3d.
// 0010  c6 33 64 02                                       .3d.
const OUTER = hex('45 00 00 4e | 9d aa 00 00 | 40 11 88 8a | c6 33 64 01 | c6 33 64 02');

// Inner IPv4 header of frame 3 (ICMP echo request, DF):
// 0000  45 00 00 54 11 9f 40 00 40 01 11 20 0a f4 01 01   E..T..@.@.. ....
// 0010  0a f4 01 02                                       ....
const INNER_DF = hex('45 00 00 54 | 11 9f 40 00 | 40 01 11 20 | 0a f4 01 01 | 0a f4 01 02');

// scapy: IP(src="10.244.1.1", dst="10.244.1.2", ttl=1, tos=0xba, id=0x1234, flags="DF",
//           options=[IPOption_Router_Alert()])/UDP(sport=5000, dport=5001)/b"hi"
const WITH_OPTIONS = hex(`
  46 ba 00 22 | 12 34 40 00 | 01 11 b9 ee | 0a f4 01 01 | 0a f4 01 02
  94 04 00 00                                      # Router Alert (RFC 2113)
  13 88 13 89 00 0a 58 75 68 69                    # UDP 5000 -> 5001, "hi"
`);
const WITH_OPTIONS_REPR: Ipv4Repr = {
  ihl: 6, dscp: 46, ecn: Ecn.ECT0, totalLen: 34, ident: 0x1234, reservedFlag: false, df: true, mf: false, fragOffset: 0,
  ttl: 1, protocol: 17, checksum: 0xb9ee, src: '10.244.1.1', dst: '10.244.1.2', options: '94040000',
};

// scapy: IP(src="10.244.1.1", dst="10.244.1.2", id=0xbeef, flags="MF", frag=185, proto=17)/Raw(8 zero bytes)
const FRAGMENT = hex('45 00 00 1c | be ef 20 b9 | 40 11 83 3e | 0a f4 01 01 | 0a f4 01 02 | 00 00 00 00 00 00 00 00');

const view = (b: Buffer, len = b.length): Ipv4View => new Ipv4View().reset(b, 0, len);

/** A copy of `b` with the 16-bit word at `at` replaced and the header checksum recomputed (reference). */
function withWord(b: Buffer, at: number, word: number, refix = true): Buffer {
  const c = Buffer.from(b);
  c.writeUInt16BE(word, at);
  if (refix) {
    const hl = Math.min(((c[0]! & 0x0f) * 4) || 20, c.length);
    c.writeUInt16BE(0, 10);
    c.writeUInt16BE(checksumRef(c.subarray(0, Math.max(hl, 20))), 10);
  }
  return c;
}

describe('Ipv4View', () => {
  it('header lengths are 20 to 60', () => {
    expect([IPV4_HEADER_LEN, IPV4_MAX_HEADER_LEN]).toEqual([20, 60]);
  });

  it('deconstructs the kernel\'s outer header', () => {
    const v = view(OUTER);
    expect(v.checkLen()).toBe(true);
    expect(v.validate()).toBe(WireDrop.IPV4_TRUNCATED); // total length 78 > the 20 bytes we hold
    expect([v.version, v.ihl, v.headerLen, v.tos, v.dscp, v.ecn, v.totalLen, v.ident, v.flagsFrag, v.df, v.mf, v.fragOffset, v.ttl, v.protocol, v.checksum, v.src, v.dst]).toEqual([
      4, 5, 20, 0, 0, 0, 78, 0x9daa, 0, false, false, 0, 64, 17, 0x888a, 0xc633_6401, 0xc633_6402,
    ]);
    expect(v.verifyChecksum()).toBe(true);
  });

  it('deconstructs options, DSCP/ECN and the payload bounds', () => {
    const v = view(WITH_OPTIONS);
    expect(v.validate()).toBe(WireDrop.NONE);
    expect([v.ihl, v.headerLen, v.dscp, v.ecn, v.df, v.ttl, v.payloadOff, v.payloadEnd, v.payloadLen]).toEqual([6, 24, 46, 2, true, 1, 24, 34, 10]);
    expect(v.verifyChecksum()).toBe(true);
  });

  it('deconstructs fragment flags and the offset in bytes', () => {
    const v = view(FRAGMENT);
    expect(v.validate()).toBe(WireDrop.NONE);
    expect([v.flagsFrag, v.df, v.mf, v.fragOffset, v.isFragment()]).toEqual([0x20b9, false, true, 185 * 8, true]);
  });

  it.each([
    ['a whole datagram', 0x0000, false],
    ['DF only', IPV4_FLAG_DF, false],
    ['the reserved flag only', IPV4_FLAG_RESERVED, false],
    ['MF (first fragment)', IPV4_FLAG_MF, true],
    ['offset 8 (last fragment)', 0x0001, true],
    ['DF with an offset', IPV4_FLAG_DF | 0x1fff, true],
  ])('isFragment() for %s', (_name, ff, want) => {
    expect(view(withWord(INNER_DF, 6, ff)).isFragment()).toBe(want);
  });

  it('constructs the kernel\'s outer header over a dirty slot, checksum included', () => {
    const b = dirty(IPV4_HEADER_LEN + 2);
    const n = view(b, IPV4_HEADER_LEN).emit(0xc633_6401, 0xc633_6402, 17, 78, 64, 0, 0x9daa, 0);
    expect(n).toBe(20);
    expect(b.subarray(0, 20)).toEqual(OUTER);
    expect(b.subarray(20)).toEqual(dirty(2));
  });

  it('constructs a DF header (the kernel\'s inner ICMP echo) over a dirty slot', () => {
    const b = dirty(IPV4_HEADER_LEN);
    view(b).emit(0x0af4_0101, 0x0af4_0102, 1, 84, 64, 0, 0x119f, IPV4_FLAG_DF);
    expect(b).toEqual(INNER_DF);
  });

  it('setters write length, identification, checksum and addresses', () => {
    const b = Buffer.from(OUTER);
    const v = view(b);
    v.totalLen = 0x0102;
    v.ident = 0xbeef;
    v.src = 0x0a00_0001;
    v.dst = 0xffff_ffff;
    v.checksum = 0x1234;
    expect(b).toEqual(hex('45 00 01 02 | be ef 00 00 | 40 11 12 34 | 0a 00 00 01 | ff ff ff ff'));
  });
});

describe('Ipv4View.validate', () => {
  const PADDED = Buffer.concat([INNER_DF, Buffer.alloc(84 - 20)]);
  it.each([
    ['a valid header and payload', PADDED, PADDED.length, WireDrop.NONE],
    ['trailing Ethernet padding after the total length', Buffer.concat([PADDED, Buffer.alloc(6)]), PADDED.length + 6, WireDrop.NONE],
    ['19 bytes', PADDED, 19, WireDrop.IPV4_TRUNCATED],
    ['0 bytes', PADDED, 0, WireDrop.IPV4_TRUNCATED],
    ['version 6', withWord(PADDED, 0, 0x6500), PADDED.length, WireDrop.IPV4_BAD_VERSION],
    ['version 0', withWord(PADDED, 0, 0x0500), PADDED.length, WireDrop.IPV4_BAD_VERSION],
    ['IHL 4', withWord(PADDED, 0, 0x4400), PADDED.length, WireDrop.IPV4_BAD_IHL],
    ['IHL 0', withWord(PADDED, 0, 0x4000), PADDED.length, WireDrop.IPV4_BAD_IHL],
    ['total length one beyond the window', withWord(PADDED, 2, 85), PADDED.length, WireDrop.IPV4_TRUNCATED],
    ['total length 65535', withWord(PADDED, 2, 0xffff), PADDED.length, WireDrop.IPV4_TRUNCATED],
    ['IHL 15 (60 bytes) in a 24-byte window', withWord(PADDED, 0, 0x4f00), 24, WireDrop.IPV4_TRUNCATED],
    ['total length 19', withWord(PADDED, 2, 19), PADDED.length, WireDrop.IPV4_BAD_TOTAL_LEN],
    ['total length 0', withWord(PADDED, 2, 0), PADDED.length, WireDrop.IPV4_BAD_TOTAL_LEN],
    ['total length 20 under IHL 6', withWord(withWord(PADDED, 0, 0x4600), 2, 20), PADDED.length, WireDrop.IPV4_BAD_TOTAL_LEN],
    // validate() checks lengths only; the checksum is verifyChecksum()'s job
    ['a bad checksum', withWord(PADDED, 10, 0xdead, false), PADDED.length, WireDrop.NONE],
  ])('%s', (_name, bytes, len, want) => {
    expect(view(bytes, len).validate()).toBe(want);
  });

  it('bounds the payload by the total length, not by the window', () => {
    const b = Buffer.concat([PADDED, Buffer.alloc(6, 0xee)]);
    const v = view(b);
    expect([v.validate(), v.payloadOff, v.payloadEnd, v.payloadLen]).toEqual([WireDrop.NONE, 20, 84, 64]);
  });
});

describe('IPv4 header checksum', () => {
  it('verifies the kernel\'s headers', () => {
    for (const b of [OUTER, INNER_DF, WITH_OPTIONS, FRAGMENT]) expect(view(b).verifyChecksum()).toBe(true);
  });

  it('detects every single-bit error in the header (options included)', () => {
    for (let bit = 0; bit < 24 * 8; bit++) {
      const b = Buffer.from(WITH_OPTIONS);
      b[bit >> 3]! ^= 0x80 >> (bit & 7);
      if (bit < 8) continue; // version/IHL bits: the header length itself changes
      expect(view(b).verifyChecksum(), `bit ${bit}`).toBe(false);
    }
  });

  it('fillChecksum writes what the reference computes, over the options too', () => {
    const b = Buffer.from(WITH_OPTIONS);
    b.writeUInt16BE(0xa5a5, 10);
    view(b).fillChecksum();
    expect(b).toEqual(WITH_OPTIONS);
    const ref = Buffer.from(WITH_OPTIONS.subarray(0, 24));
    ref.writeUInt16BE(0, 10);
    expect(b.readUInt16BE(10)).toBe(checksumRef(ref));
  });

  it.each([64, 2, 1, 255])('decrementTtl from %i patches the checksum like a full recompute', (ttl) => {
    const b = withWord(INNER_DF, 8, (ttl << 8) | 1);
    view(b).decrementTtl();
    expect(b[8]).toBe(ttl - 1);
    expect(verifiesRef(b)).toBe(true);
    expect(b).toEqual(withWord(INNER_DF, 8, ((ttl - 1) << 8) | 1));
  });

  it('decrementTtl keeps random headers verifying', () => {
    const rand = prng(64);
    for (let n = 0; n < 2000; n++) {
      const b = randomBytesRef(rand, 20);
      b[0] = 0x45;
      b[8] = 1 + Math.floor(rand() * 255);
      b.writeUInt16BE(0, 10);
      b.writeUInt16BE(checksumRef(b), 10);
      view(b).decrementTtl();
      expect(verifiesRef(b)).toBe(true);
    }
  });

  it.each([
    [Ecn.NOT_ECT, 0xb8],
    [Ecn.ECT1, 0xb9],
    [Ecn.ECT0, 0xba],
    [Ecn.CE, 0xbb],
  ])('setEcn(%i) keeps the DSCP and patches the checksum', (ecn, tos) => {
    const b = Buffer.from(WITH_OPTIONS);
    const v = view(b);
    v.setEcn(ecn);
    expect([v.tos, v.dscp, v.ecn]).toEqual([tos, 46, ecn]);
    expect(verifiesRef(b.subarray(0, 24))).toBe(true);
    expect(b).toEqual(withWord(WITH_OPTIONS, 0, 0x4600 | tos));
  });

  it('ECN_MASK covers the low two TOS bits', () => {
    expect(ECN_MASK).toBe(0x03);
  });
});

describe('parseIpv4Header / emitIpv4Header', () => {
  it('parses options, DSCP and ECN', () => {
    expect(parseIpv4Header(view(WITH_OPTIONS))).toEqual(WITH_OPTIONS_REPR);
  });

  it('parses a fragment', () => {
    expect(parseIpv4Header(view(FRAGMENT))).toMatchObject({ ihl: 5, mf: true, df: false, reservedFlag: false, fragOffset: 1480, ident: 0xbeef, options: '' });
  });

  it('emits options over a dirty slot, with the recorded checksum', () => {
    const b = dirty(26);
    expect(emitIpv4Header(view(b, 24), WITH_OPTIONS_REPR)).toBe(24);
    expect(b.subarray(0, 24)).toEqual(WITH_OPTIONS.subarray(0, 24));
    expect(b.subarray(24)).toEqual(dirty(2));
  });

  it('emits with a computed checksum when asked', () => {
    const b = dirty(24);
    emitIpv4Header(view(b), { ...WITH_OPTIONS_REPR, checksum: 0x5555 }, true);
    expect(b).toEqual(WITH_OPTIONS.subarray(0, 24));
  });

  it('emits whatever checksum the repr records, also a wrong one', () => {
    const b = dirty(24);
    emitIpv4Header(view(b), { ...WITH_OPTIONS_REPR, checksum: 0xdead });
    expect(b.readUInt16BE(10)).toBe(0xdead);
  });

  it('round-trips the reserved flag and an unknown protocol', () => {
    const src = withWord(withWord(withWord(INNER_DF, 2, 20), 6, IPV4_FLAG_RESERVED | IPV4_FLAG_DF), 8, (64 << 8) | 253);
    const r = parseIpv4Header(view(src));
    expect([r.reservedFlag, r.df, r.protocol]).toEqual([true, true, 253]);
    const b = dirty(20);
    emitIpv4Header(view(b), r);
    expect(b).toEqual(src);
  });

  it.each([
    ['19 bytes', 'ERR_WIRE_TRUNCATED', WITH_OPTIONS, 19],
    ['options cut short', 'ERR_WIRE_TRUNCATED', WITH_OPTIONS, 23],
    ['version 6', 'ERR_WIRE_MALFORMED', withWord(WITH_OPTIONS, 0, 0x66ba), WITH_OPTIONS.length],
    ['IHL 3', 'ERR_WIRE_MALFORMED', withWord(WITH_OPTIONS, 0, 0x43ba), WITH_OPTIONS.length],
    ['total length shorter than the header', 'ERR_WIRE_MALFORMED', withWord(WITH_OPTIONS, 2, 22), WITH_OPTIONS.length],
  ])('throws on %s with %s', (_name, code, bytes, len) => {
    expect(() => parseIpv4Header(view(bytes, len))).toThrow(expect.objectContaining({ code }));
  });

  it.each([
    ['IHL 5 with 4 option bytes', { ...WITH_OPTIONS_REPR, ihl: 5 }],
    ['options not a multiple of 4', { ...WITH_OPTIONS_REPR, options: '940400' }],
    ['more than 40 option bytes', { ...WITH_OPTIONS_REPR, ihl: 16, options: '00'.repeat(44) }],
  ])('refuses to emit %s (ERR_WIRE_MALFORMED)', (_name, r) => {
    expect(() => emitIpv4Header(view(dirty(64)), r)).toThrow(expect.objectContaining({ code: 'ERR_WIRE_MALFORMED' }));
  });
});
