import { describe, expect, it } from 'vitest';
import { ARP_HTYPE_ETHERNET, ARP_LEN, ArpOp, ArpView, emitArp, parseArp, type ArpRepr } from '../../src/wire/arp.js';
import { dirty, hex } from '../support/hex.js';

// Inner ARP request of frame 1 of fixtures/kernel/vxlan-4789-noudpcsum.pcap (kernel vxlan):
// 0040  00 01 08 00 06 04 00 01 0e 00 0a f4 01 01 0a f4   ................
// 0050  01 01 00 00 00 00 00 00 0a f4 01 02               ............
const REQUEST = hex(`
  00 01 | 08 00 | 06 | 04 | 00 01   # Ethernet, IPv4, hlen 6, plen 4, request
  0e 00 0a f4 01 01 | 0a f4 01 01   # sender 0e:00:0a:f4:01:01 10.244.1.1
  00 00 00 00 00 00 | 0a f4 01 02   # target 00:00:00:00:00:00 10.244.1.2
`);
const REQUEST_REPR: ArpRepr = { oper: ArpOp.REQUEST, sha: '0e:00:0a:f4:01:01', spa: '10.244.1.1', tha: '00:00:00:00:00:00', tpa: '10.244.1.2' };

// scapy: ARP(op=2, hwsrc="0e:00:0a:f4:01:02", psrc="10.244.1.2", hwdst="0e:00:0a:f4:01:01", pdst="10.244.1.1")
const REPLY = hex('0001 0800 06 04 0002 0e000af40102 0af40102 0e000af40101 0af40101');
const REPLY_REPR: ArpRepr = { oper: ArpOp.REPLY, sha: '0e:00:0a:f4:01:02', spa: '10.244.1.2', tha: '0e:00:0a:f4:01:01', tpa: '10.244.1.1' };

const view = (b: Buffer, len = b.length): ArpView => new ArpView().reset(b, 0, len);

describe('ArpView', () => {
  it('is 28 bytes for Ethernet/IPv4', () => {
    expect([ARP_LEN, ARP_HTYPE_ETHERNET]).toEqual([28, 1]);
  });

  it('deconstructs a request', () => {
    const v = view(REQUEST);
    expect(v.checkLen()).toBe(true);
    expect(v.isEthernetIpv4()).toBe(true);
    expect([v.htype, v.ptype, v.hlen, v.plen, v.oper, v.sha, v.spa, v.tha, v.tpa]).toEqual([
      1, 0x0800, 6, 4, 1, 0x0e00_0af4_0101, 0x0af4_0101, 0, 0x0af4_0102,
    ]);
  });

  it.each([
    ['request', REQUEST, [ArpOp.REQUEST, 0x0e00_0af4_0101, 0x0af4_0101, 0, 0x0af4_0102]],
    ['reply', REPLY, [ArpOp.REPLY, 0x0e00_0af4_0102, 0x0af4_0102, 0x0e00_0af4_0101, 0x0af4_0101]],
  ] as const)('constructs a %s over a dirty slot', (_name, bytes, [op, sha, spa, tha, tpa]) => {
    const b = dirty(ARP_LEN + 2);
    expect(view(b, ARP_LEN).emit(op, sha, spa, tha, tpa)).toBe(ARP_LEN);
    expect(b.subarray(0, ARP_LEN)).toEqual(bytes);
    expect(b.subarray(ARP_LEN)).toEqual(dirty(2));
  });

  it.each([0, 1, 8, 27])('rejects %i bytes', (len) => {
    expect(view(REQUEST, len).checkLen()).toBe(false);
  });

  it.each([
    ['hardware type 6 (IEEE 802)', 0, 0x0006],
    ['protocol type IPv6', 2, 0x86dd],
    ['hardware length 8', 4, 0x0804],
    ['protocol length 16', 4, 0x0610],
  ])('does not call %s Ethernet/IPv4', (_name, at, word) => {
    const b = Buffer.from(REQUEST);
    b.writeUInt16BE(word, at);
    expect(view(b).isEthernetIpv4()).toBe(false);
  });
});

describe('parseArp / emitArp', () => {
  it.each([
    ['request', REQUEST, REQUEST_REPR],
    ['reply', REPLY, REPLY_REPR],
  ])('parses a %s', (_name, bytes, repr) => {
    expect(parseArp(view(bytes))).toEqual(repr);
  });

  it.each([
    ['request', REQUEST, REQUEST_REPR],
    ['reply', REPLY, REPLY_REPR],
  ])('emits a %s over a dirty slot', (_name, bytes, repr) => {
    const b = dirty(ARP_LEN);
    expect(emitArp(view(b), repr)).toBe(ARP_LEN);
    expect(b).toEqual(bytes);
  });

  it('passes an unknown operation through (RARP reply, 4)', () => {
    const b = Buffer.from(REQUEST);
    b.writeUInt16BE(4, 6);
    const r = parseArp(view(b));
    expect(r.oper).toBe(4);
    const out = dirty(ARP_LEN);
    emitArp(view(out), r);
    expect(out).toEqual(b);
  });

  it('throws ERR_WIRE_TRUNCATED on 27 bytes', () => {
    expect(() => parseArp(view(REQUEST, 27))).toThrow(expect.objectContaining({ code: 'ERR_WIRE_TRUNCATED' }));
  });

  // Impossible lengths: hlen/plen that the 28-byte layout cannot hold.
  it.each([
    ['hardware length 8', 4, 0x0804],
    ['protocol length 16', 4, 0x0610],
    ['hardware type 6', 0, 0x0006],
  ])('throws ERR_WIRE_MALFORMED for %s', (_name, at, word) => {
    const b = Buffer.from(REQUEST);
    b.writeUInt16BE(word, at);
    expect(() => parseArp(view(b))).toThrow(expect.objectContaining({ code: 'ERR_WIRE_MALFORMED' }));
  });
});
