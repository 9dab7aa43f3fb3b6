import { describe, expect, it } from 'vitest';
import { dataViewOf } from '../../src/wire/bytes.js';
import { dvSum16, finish } from '../../src/wire/checksum.js';
import {
  IPV6_HEADER_LEN, Ipv6Check, Ipv6View, emitIpv6Header, formatIpv6, ipv6PseudoHeaderSum, ipv6Validate, parseIpv6, parseIpv6Header,
  type Ipv6Repr,
} from '../../src/wire/ipv6.js';
import { dirty, hex } from '../support/hex.js';
import { onesSumRef, prng } from '../support/refs.js';

// scapy: IPv6(src="fd00:10:244:1::1", dst="fd00:10:244:2::3", tc=0xb8, fl=0x12345, hlim=63)
//        /TCP(sport=40000, dport=5201, seq=0x01020304, ack=5, flags="PA", window=512)/b"hi"
// 0000  6b 81 23 45 00 16 06 3f fd 00 00 10 02 44 00 01   k.#E...?.....D..
// 0010  00 00 00 00 00 00 00 01 fd 00 00 10 02 44 00 02   .............D..
// 0020  00 00 00 00 00 00 00 03 9c 40 14 51 01 02 03 04   .........@.Q....
// 0030  00 00 00 05 50 18 02 00 92 14 00 00 68 69         ....P.......hi
const GOLDEN = hex(`
  6b 81 23 45 | 00 16 06 3f
  fd 00 00 10 02 44 00 01 00 00 00 00 00 00 00 01
  fd 00 00 10 02 44 00 02 00 00 00 00 00 00 00 03
  9c 40 14 51 01 02 03 04 00 00 00 05 50 18 02 00 92 14 00 00 68 69
`);
const GOLDEN_REPR: Ipv6Repr = {
  trafficClass: 0xb8, flowLabel: 0x12345, payloadLen: 22, nextHeader: 6, hopLimit: 63,
  src: 'fd00:10:244:1::1', dst: 'fd00:10:244:2::3',
};

const view = (b: Buffer, len = b.length): Ipv6View => new Ipv6View().reset(b, 0, len);

describe('Ipv6View', () => {
  it('deconstructs scapy\'s header', () => {
    const v = view(GOLDEN);
    expect(v.checkLen()).toBe(true);
    expect(v.validate()).toBe(Ipv6Check.OK);
    expect([v.version, v.trafficClass, v.dscp, v.ecn, v.flowLabel, v.payloadLen, v.nextHeader, v.hopLimit, v.srcOff, v.dstOff, v.payloadOff, v.payloadEnd])
      .toEqual([6, 0xb8, 46, 0, 0x12345, 22, 6, 63, 8, 24, 40, 62]);
  });

  it('constructs the same header over a dirty buffer', () => {
    const b = dirty(IPV6_HEADER_LEN);
    expect(view(b).emit(0xb8, 0x12345, 22, 6, 63, parseIpv6('fd00:10:244:1::1'), parseIpv6('fd00:10:244:2::3'))).toBe(40);
    expect(b).toEqual(GOLDEN.subarray(0, 40));
  });

  it('parses to a Repr and emits it back', () => {
    expect(parseIpv6Header(view(GOLDEN))).toEqual(GOLDEN_REPR);
    const b = dirty(IPV6_HEADER_LEN);
    expect(emitIpv6Header(view(b), GOLDEN_REPR)).toBe(40);
    expect(b).toEqual(GOLDEN.subarray(0, 40));
  });

  it('writes payload length and hop limit in place', () => {
    const b = Buffer.from(GOLDEN);
    const v = view(b);
    v.payloadLen = 0x1234;
    v.hopLimit = 1;
    expect(b.subarray(4, 8)).toEqual(hex('12 34 06 01'));
  });

  it('the pseudo-header sum makes scapy\'s TCP checksum (0x9214)', () => {
    const dv = dataViewOf(GOLDEN);
    expect(finish(dvSum16(dv, 40, 22, ipv6PseudoHeaderSum(dv, 0, 6, 22)))).toBe(0); // the checksum verifies
    const zeroed = Buffer.from(GOLDEN);
    zeroed.writeUInt16BE(0, 56);
    const zdv = dataViewOf(zeroed);
    expect(finish(dvSum16(zdv, 40, 22, ipv6PseudoHeaderSum(zdv, 0, 6, 22)))).toBe(0x9214);
    expect(view(zeroed).pseudoHeaderSum(6, 22)).toBe(ipv6PseudoHeaderSum(zdv, 0, 6, 22));
  });

  it('the pseudo-header sum equals the RFC 8200 §8.1 layout summed byte-wise', () => {
    const rnd = prng(6);
    for (let t = 0; t < 200; t++) {
      const h = Buffer.from(GOLDEN.subarray(0, 40));
      for (let i = 8; i < 40; i++) h[i] = Math.floor(rnd() * 256);
      const len = Math.floor(rnd() * 70000), proto = Math.floor(rnd() * 256);
      const pseudo = Buffer.alloc(40);
      h.copy(pseudo, 0, 8, 40);
      pseudo.writeUInt32BE(len, 32);
      pseudo[39] = proto;
      const s = ipv6PseudoHeaderSum(dataViewOf(h), 0, proto, len);
      expect(finish(s)).toBe(0xffff - onesSumRef(pseudo));
    }
  });

  it.each([
    ['39 bytes', GOLDEN.subarray(0, 39), Ipv6Check.TRUNCATED],
    ['a payload length beyond the window', GOLDEN.subarray(0, 61), Ipv6Check.TRUNCATED],
    ['version 4', Buffer.concat([hex('4b'), GOLDEN.subarray(1)]), Ipv6Check.BAD_VERSION],
    ['version 7', Buffer.concat([hex('7b'), GOLDEN.subarray(1)]), Ipv6Check.BAD_VERSION],
  ])('rejects %s', (_n, b, want) => {
    expect(ipv6Validate(dataViewOf(b), 0, b.length)).toBe(want);
    expect(() => parseIpv6Header(view(b))).toThrow(expect.objectContaining({ code: want === Ipv6Check.TRUNCATED ? 'ERR_WIRE_TRUNCATED' : 'ERR_WIRE_MALFORMED' }));
  });

  it('accepts trailing bytes after the payload (Ethernet padding) and a zero payload length', () => {
    const padded = Buffer.concat([GOLDEN, Buffer.alloc(6)]);
    expect(ipv6Validate(dataViewOf(padded), 0, padded.length)).toBe(Ipv6Check.OK);
    const empty = Buffer.from(GOLDEN.subarray(0, 40));
    empty.writeUInt16BE(0, 4);
    expect(ipv6Validate(dataViewOf(empty), 0, 40)).toBe(Ipv6Check.OK);
  });

  it('validates inside a window of a larger buffer and never reads outside it', () => {
    const b = Buffer.concat([dirty(7), GOLDEN, dirty(5)]);
    expect(ipv6Validate(dataViewOf(b), 7, 7 + GOLDEN.length)).toBe(Ipv6Check.OK);
    expect(ipv6Validate(dataViewOf(b), 7, 7 + GOLDEN.length - 1)).toBe(Ipv6Check.TRUNCATED);
  });
});

describe('IPv6 text forms', () => {
  it.each([
    ['fd00:10:244:1::1', 'fd00001002440001' + '0000000000000001'],
    ['::', '0'.repeat(32)],
    ['::1', '0'.repeat(31) + '1'],
    ['fe80::', 'fe80' + '0'.repeat(28)],
    ['2001:db8::1:0:0:1', '20010db8000000000001000000000001'], // RFC 5952 §4.2.3: the first of two equal runs
    ['2001:db8:0:1:1:1:1:1', '20010db8000000010001000100010001'], // §4.2.2: a single zero group is not "::"
    ['2001:db8:aaaa:bbbb:cccc:dddd:eeee:1', '20010db8aaaabbbbccccddddeeee0001'],
  ])('formats and parses %s', (text, bytes) => {
    const b = Buffer.from(bytes, 'hex');
    expect(formatIpv6(b)).toBe(text);
    expect(Buffer.from(parseIpv6(text))).toEqual(b);
  });

  it('formats like the WHATWG URL parser (an independent RFC 5952 implementation) for random addresses', () => {
    const rnd = prng(5952);
    for (let t = 0; t < 2000; t++) {
      const b = Buffer.alloc(16);
      for (let i = 0; i < 16; i += 2) {
        const r = rnd();
        const g = r < 0.5 ? 0 : Math.floor(rnd() * 0x10000); // many zero groups, so runs occur
        b.writeUInt16BE(g, i);
      }
      const want = new URL(`http://[${b.toString('hex').replace(/(.{4})(?!$)/g, '$1:')}]/`).hostname.slice(1, -1);
      expect(formatIpv6(b)).toBe(want);
      expect(Buffer.from(parseIpv6(want))).toEqual(b);
    }
  });

  it.each(['', ':::', '1::2::3', '1:2:3:4:5:6:7', '1:2:3:4:5:6:7:8:9', '12345::', 'g::1', '1:2:3:4:5:6:7::8'])('rejects %j', (t) => {
    expect(() => parseIpv6(t)).toThrow(expect.objectContaining({ code: 'ERR_WIRE_BAD_ADDRESS' }));
  });

  it('rejects an address that is not 16 bytes', () => {
    expect(() => formatIpv6(new Uint8Array(4))).toThrow(expect.objectContaining({ code: 'ERR_WIRE_BAD_ADDRESS' }));
  });
});
