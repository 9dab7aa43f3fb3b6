import { describe, expect, it } from 'vitest';
import { WireError } from '../../src/errors.js';
import { EtherType } from '../../src/wire/consts.js';
import {
  ETH_ADDR_LEN, ETH_HEADER_LEN, ETH_VLAN_HEADER_LEN, EthernetView, emitEthernet, ethernetReprLen, parseEthernet, type EthernetRepr,
} from '../../src/wire/ethernet.js';
import { dirty, hex } from '../support/hex.js';

// Outer Ethernet header of frame 1 of fixtures/kernel/vxlan-4789-noudpcsum.pcap (kernel vxlan):
// 0000  02 00 c6 33 64 02 02 00 c6 33 64 01 08 00         ...3d....3d...
const UNTAGGED = hex('02 00 c6 33 64 02 | 02 00 c6 33 64 01 | 08 00');
const UNTAGGED_REPR: EthernetRepr = { dst: '02:00:c6:33:64:02', src: '02:00:c6:33:64:01', etherType: EtherType.IPV4 };

// scapy: Ether(dst="0e:00:0a:f4:01:01", src="0e:00:0a:f4:01:02")/Dot1Q(prio=5, id=1, vlan=100)/ARP()
// 0000  0e 00 0a f4 01 01 0e 00 0a f4 01 02 81 00 b0 64   ...............d
// 0010  08 06                                             ..
const TAGGED = hex('0e 00 0a f4 01 01 | 0e 00 0a f4 01 02 | 81 00 | b0 64 | 08 06');
const TAGGED_REPR: EthernetRepr = {
  dst: '0e:00:0a:f4:01:01', src: '0e:00:0a:f4:01:02', vlan: { tpid: 0x8100, pcp: 5, dei: true, vid: 100 }, etherType: EtherType.ARP,
};

const view = (b: Buffer, len = b.length): EthernetView => new EthernetView().reset(b, 0, len);

describe('EthernetView', () => {
  it('header lengths are 14 and 18 (with an 802.1Q tag), addresses 6', () => {
    expect([ETH_HEADER_LEN, ETH_VLAN_HEADER_LEN, ETH_ADDR_LEN]).toEqual([14, 18, 6]);
  });

  it('deconstructs an untagged header', () => {
    const v = view(UNTAGGED);
    expect(v.checkLen()).toBe(true);
    expect([v.dst, v.src, v.typeField, v.hasVlan, v.etherType, v.headerLen, v.payloadOff]).toEqual([
      0x0200_c633_6402, 0x0200_c633_6401, 0x0800, false, 0x0800, 14, 14,
    ]);
  });

  it('deconstructs an 802.1Q-tagged header', () => {
    const v = view(TAGGED);
    expect(v.checkLen()).toBe(true);
    expect([v.typeField, v.hasVlan, v.tci, v.vid, v.etherType, v.headerLen, v.payloadOff]).toEqual([
      0x8100, true, 0xb064, 100, 0x0806, 18, 18,
    ]);
  });

  it('constructs an untagged header over a dirty slot', () => {
    const b = dirty(ETH_HEADER_LEN);
    expect(view(b).emit(0x0200_c633_6402, 0x0200_c633_6401, EtherType.IPV4)).toBe(14);
    expect(b).toEqual(UNTAGGED);
  });

  it('constructs a tagged header over a dirty slot', () => {
    const b = dirty(ETH_VLAN_HEADER_LEN);
    expect(view(b).emit(0x0e00_0af4_0101, 0x0e00_0af4_0102, EtherType.ARP, 0xb064)).toBe(18);
    expect(b).toEqual(TAGGED);
  });

  it('writes nothing past the header it emits', () => {
    const b = dirty(20);
    view(b).emit(1, 2, EtherType.IPV4);
    expect(b.subarray(14)).toEqual(dirty(6));
  });

  it('setters write the addresses and the payload EtherType (after the tag when tagged)', () => {
    const b = Buffer.from(TAGGED);
    const v = view(b);
    v.dst = 0xffff_ffff_ffff;
    v.src = 0x0200_0000_0001;
    v.etherType = EtherType.IPV4;
    expect(b).toEqual(hex('ff ff ff ff ff ff | 02 00 00 00 00 01 | 81 00 | b0 64 | 08 00'));
  });

  it.each([0, 1, 6, 12, 13])('rejects an untagged header of %i bytes', (len) => {
    expect(view(UNTAGGED, len).checkLen()).toBe(false);
  });

  // Impossible length: the TPID announces a tag that the window does not hold.
  it.each([14, 15, 16, 17])('rejects a tagged header cut to %i bytes', (len) => {
    expect(view(TAGGED, len).checkLen()).toBe(false);
  });

  it('treats an 802.1ad service tag (0x88a8) as a tag too', () => {
    const b = Buffer.from(TAGGED);
    b.writeUInt16BE(0x88a8, 12);
    const v = view(b);
    expect([v.hasVlan, v.etherType, v.headerLen]).toEqual([true, 0x0806, 18]);
  });

  it('checks the window, not the buffer: a header at an offset', () => {
    const b = Buffer.concat([dirty(5), UNTAGGED, dirty(3)]);
    const v = new EthernetView().reset(b, 5, 5 + 14);
    expect([v.checkLen(), v.dst, v.etherType, v.payloadOff]).toEqual([true, 0x0200_c633_6402, 0x0800, 19]);
    expect(new EthernetView().reset(b, 5, 5 + 13).checkLen()).toBe(false);
  });
});

describe('parseEthernet / emitEthernet', () => {
  it.each([
    ['untagged', UNTAGGED, UNTAGGED_REPR],
    ['tagged', TAGGED, TAGGED_REPR],
  ])('parses an %s header', (_name, bytes, repr) => {
    expect(parseEthernet(view(bytes))).toEqual(repr);
  });

  it.each([
    ['untagged', UNTAGGED, UNTAGGED_REPR],
    ['tagged', TAGGED, TAGGED_REPR],
  ])('emits an %s header over a dirty slot', (_name, bytes, repr) => {
    expect(ethernetReprLen(repr)).toBe(bytes.length);
    const b = dirty(bytes.length);
    expect(emitEthernet(view(b), repr)).toBe(bytes.length);
    expect(b).toEqual(bytes);
  });

  it('round-trips an 802.1ad TPID and the DEI bit', () => {
    const b = hex('01 02 03 04 05 06 | 0a 0b 0c 0d 0e 0f | 88 a8 | 0f ff | 81 00');
    const r = parseEthernet(view(b));
    expect(r.vlan).toEqual({ tpid: 0x88a8, pcp: 0, dei: false, vid: 0xfff });
    const out = dirty(18);
    emitEthernet(view(out), r);
    expect(out).toEqual(b);
  });

  it('passes an unknown EtherType through as a number', () => {
    const b = Buffer.from(UNTAGGED);
    b.writeUInt16BE(0x88b5, 12); // IEEE local experimental
    const r = parseEthernet(view(b));
    expect(r.etherType).toBe(0x88b5);
    const out = dirty(14);
    emitEthernet(view(out), r);
    expect(out).toEqual(b);
  });

  it.each([
    ['an untagged header of 13 bytes', UNTAGGED, 13],
    ['a tagged header of 17 bytes', TAGGED, 17],
  ])('throws ERR_WIRE_TRUNCATED on %s', (_name, bytes, len) => {
    expect(() => parseEthernet(view(bytes, len))).toThrow(expect.objectContaining({ code: 'ERR_WIRE_TRUNCATED' }));
    expect(() => parseEthernet(view(bytes, len))).toThrow(WireError);
  });
});
