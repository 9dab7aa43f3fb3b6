import { describe, expect, it } from 'vitest';
import { ChecksumStatus, UDP_HEADER_LEN, UdpView, emitUdpHeader, parseUdpHeader, type UdpRepr } from '../../src/wire/udp.js';
import { dirty, hex } from '../support/hex.js';
import { checksumRef, ipRef, onesSumRef, pseudoHeaderRef, verifiesRef } from '../support/refs.js';

const SRC = ipRef('10.244.1.1');
const DST = ipRef('10.244.1.2');

// scapy: IP(src="10.244.1.1", dst="10.244.1.2")/UDP(sport=5000, dport=5001)/b"flatnet"
// 0000  13 88 13 89 00 0f 16 8e 66 6c 61 74 6e 65 74      ........flatnet
const DATAGRAM = hex('13 88 | 13 89 | 00 0f | 16 8e | 66 6c 61 74 6e 65 74');
const DATAGRAM_REPR: UdpRepr = { srcPort: 5000, dstPort: 5001, length: 15, checksum: 0x168e };

// Outer UDP header of frame 1 of fixtures/kernel/vxlan-4789-noudpcsum.pcap: no checksum.
// 0000  99 9a 12 b5 00 3a 00 00                           .....:..
const KERNEL_NO_CSUM = hex('99 9a | 12 b5 | 00 3a | 00 00');

const view = (b: Buffer, len = b.length): UdpView => new UdpView().reset(b, 0, len);

describe('UdpView', () => {
  it('has an 8-byte header', () => {
    expect(UDP_HEADER_LEN).toBe(8);
  });

  it('deconstructs a datagram', () => {
    const v = view(DATAGRAM);
    expect(v.checkLen()).toBe(true);
    expect([v.srcPort, v.dstPort, v.length, v.checksum, v.payloadOff]).toEqual([5000, 5001, 15, 0x168e, 8]);
  });

  it('constructs a header over a dirty slot with a zero checksum', () => {
    const b = dirty(10);
    expect(view(b, 8).emit(0x999a, 4789, 0x3a)).toBe(8);
    expect(b).toEqual(Buffer.concat([KERNEL_NO_CSUM, dirty(2)]));
  });

  it('setters write ports, length and checksum', () => {
    const b = dirty(8);
    const v = view(b);
    v.srcPort = 5000;
    v.dstPort = 5001;
    v.length = 15;
    v.checksum = 0x168e;
    expect(b).toEqual(DATAGRAM.subarray(0, 8));
  });

  it.each([0, 1, 4, 7])('rejects %i bytes', (len) => {
    expect(view(DATAGRAM, len).checkLen()).toBe(false);
  });
});

describe('UDP checksum (IPv4 pseudo-header)', () => {
  it('verifies scapy\'s checksum', () => {
    expect(view(DATAGRAM).verifyChecksum(SRC, DST)).toBe(true);
    expect(view(DATAGRAM).checksumStatus(SRC, DST)).toBe(ChecksumStatus.GOOD);
  });

  it('covers the pseudo-header: other addresses do not verify', () => {
    expect(view(DATAGRAM).verifyChecksum(SRC, ipRef('10.244.1.3'))).toBe(false);
  });

  it('fillChecksum writes scapy\'s value over a dirty checksum', () => {
    const b = Buffer.from(DATAGRAM);
    b.writeUInt16BE(0xa5a5, 6);
    view(b).fillChecksum(SRC, DST);
    expect(b).toEqual(DATAGRAM);
  });

  it('fillChecksum agrees with the reference for every length 8-80', () => {
    for (let n = 0; n <= 72; n++) {
      const b = Buffer.alloc(8 + n);
      for (let i = 0; i < b.length; i++) b[i] = (i * 37 + n) & 0xff;
      b.writeUInt16BE(b.length, 4);
      view(b).fillChecksum(SRC, DST);
      expect(verifiesRef(pseudoHeaderRef(SRC, DST, 17, b.length), b), `payload ${n}`).toBe(true);
    }
  });

  it('covers only `length` bytes: a trailer after the datagram does not matter', () => {
    const b = Buffer.concat([DATAGRAM, hex('de ad')]);
    expect(view(b).verifyChecksum(SRC, DST)).toBe(true);
  });

  it('treats a zero checksum as none', () => {
    const b = Buffer.from(DATAGRAM);
    b.writeUInt16BE(0, 6);
    expect(view(b).verifyChecksum(SRC, DST)).toBe(true);
    expect(view(b).checksumStatus(SRC, DST)).toBe(ChecksumStatus.NONE);
  });

  it('reports a wrong checksum as bad', () => {
    const b = Buffer.from(DATAGRAM);
    b[10]! ^= 1;
    expect(view(b).verifyChecksum(SRC, DST)).toBe(false);
    expect(view(b).checksumStatus(SRC, DST)).toBe(ChecksumStatus.BAD);
  });

  it('sends a computed checksum of 0 as 0xffff (RFC 768), which verifies', () => {
    // Choose the last two payload bytes so that the ones'-complement sum is 0xffff: the
    // checksum then computes to 0, which on the wire would mean "no checksum".
    const b = hex('13 88 13 89 00 0e 00 00 | 66 6c 61 74 00 00');
    const s = onesSumRef(pseudoHeaderRef(SRC, DST, 17, b.length), b);
    b.writeUInt16BE(0xffff - s, 12);
    expect(checksumRef(pseudoHeaderRef(SRC, DST, 17, b.length), b)).toBe(0);
    view(b).fillChecksum(SRC, DST);
    expect(b.readUInt16BE(6)).toBe(0xffff);
    expect(view(b).verifyChecksum(SRC, DST)).toBe(true);
    expect(view(b).checksumStatus(SRC, DST)).toBe(ChecksumStatus.GOOD);
  });
});

describe('parseUdpHeader / emitUdpHeader', () => {
  it('parses a datagram', () => {
    expect(parseUdpHeader(view(DATAGRAM))).toEqual(DATAGRAM_REPR);
  });

  it('emits a header over a dirty slot, with the recorded checksum', () => {
    const b = dirty(9);
    expect(emitUdpHeader(view(b, 8), DATAGRAM_REPR)).toBe(8);
    expect(b).toEqual(Buffer.concat([DATAGRAM.subarray(0, 8), dirty(1)]));
  });

  // The header parser reports lengths as they are; decap (UDP_BAD_LEN) and the dissector
  // (a malformed 'udp' layer) judge them against the IPv4 payload.
  it.each([0, 7, 0xffff])('reports an impossible length %i as is', (len) => {
    const b = Buffer.from(DATAGRAM);
    b.writeUInt16BE(len, 4);
    expect(parseUdpHeader(view(b)).length).toBe(len);
  });

  it('passes unknown ports through', () => {
    const b = hex('00 00 ff ff 00 08 00 00');
    const r = parseUdpHeader(view(b));
    expect(r).toEqual({ srcPort: 0, dstPort: 65535, length: 8, checksum: 0 });
    const out = dirty(8);
    emitUdpHeader(view(out), r);
    expect(out).toEqual(b);
  });

  it('throws ERR_WIRE_TRUNCATED on 7 bytes', () => {
    expect(() => parseUdpHeader(view(DATAGRAM, 7))).toThrow(expect.objectContaining({ code: 'ERR_WIRE_TRUNCATED' }));
  });
});
