import fc from 'fast-check';
import { FrameLayout } from '../../src/mtu/layout.js';
import { dataViewOf } from '../../src/wire/bytes.js';
import { describe, expect, it } from 'vitest';
import { TCP_CSUM_OFFSET, UDP_CSUM_OFFSET, completeChecksum, prepareChecksumPartial } from '../../src/offload/checksum.js';
import { MtuStatus } from '../../src/mtu/status.js';
import { VIRTIO_NET_HDR_LEN, VIRTIO_NET_HDR_MRG_LEN, VirtioGso, VirtioNetFlag, VirtioNetHdrView } from '../../src/wire/virtio-net-hdr.js';
import { dirty, hex } from '../support/hex.js';
import { ipv4HeaderOk, l4ChecksumOk, partialSumRef, payloadOf, tcpFrame, udpFrame } from '../support/l4-frames.js';
import { checksumRef, onesSumRef } from '../support/refs.js';

// scapy: Ether(src="0e:00:0a:f4:01:01", dst="0e:00:0a:f4:02:02")/IP(src="10.244.1.1", dst="10.244.2.3",
//        id=0x1234, flags="DF", ttl=64)/TCP(sport=40000, dport=5201, seq=0x01020304, ack=0x0a0b0c0d,
//        flags="PA", window=502)/b"hello, world"          (TCP checksum 0x89e3 at offset 50)
const TCP4 = hex(`
  0e 00 0a f4 02 02 0e 00 0a f4 01 01 08 00
  45 00 00 34 12 34 40 00 40 06 0f a5 0a f4 01 01 0a f4 02 03
  9c 40 14 51 01 02 03 04 0a 0b 0c 0d 50 18 01 f6 89 e3 00 00
  68 65 6c 6c 6f 2c 20 77 6f 72 6c 64
`);
// The same with UDP(sport=40000, dport=443)/b"hello, world!" (UDP checksum 0xe790 at offset 40)
const UDP4 = hex(`
  0e 00 0a f4 02 02 0e 00 0a f4 01 01 08 00
  45 00 00 29 12 34 40 00 40 11 0f a5 0a f4 01 01 0a f4 02 03
  9c 40 01 bb 00 15 e7 90
  68 65 6c 6c 6f 2c 20 77 6f 72 6c 64 21
`);
// Pseudo-header sums by hand: 0af4 + 0101 + 0af4 + 0203 = 18ec; TCP + 6 + 0x20 (32 bytes) = 1912;
// UDP + 0x11 + 0x15 (21 bytes) = 1912 as well.
const PARTIAL4 = 0x1912;

// IPv6 (scapy, see test/wire/ipv6.test.ts) fd00:10:244:1::1 -> fd00:10:244:2::3, TCP "hi", checksum 0x9214.
// Pseudo-header sum by hand: fd00+10+244+1+1 = ff56, fd00+10+244+2+3 = ff59, +16 (22 bytes) +6 = fecc.
const TCP6 = Buffer.concat([hex('0e 00 0a f4 02 02 0e 00 0a f4 01 01 86 dd'), hex(`
  6b 81 23 45 00 16 06 3f
  fd 00 00 10 02 44 00 01 00 00 00 00 00 00 00 01
  fd 00 00 10 02 44 00 02 00 00 00 00 00 00 00 03
  9c 40 14 51 01 02 03 04 00 00 00 05 50 18 02 00 92 14 00 00 68 69
`)]);

function withWord(b: Buffer, at: number, v: number): Buffer {
  const c = Buffer.from(b);
  c.writeUInt16BE(v, at);
  return c;
}

describe('completeChecksum', () => {
  it.each([
    ['IPv4 TCP', TCP4, 34, TCP_CSUM_OFFSET, PARTIAL4, 0x89e3],
    ['IPv4 UDP', UDP4, 34, UDP_CSUM_OFFSET, PARTIAL4, 0xe790],
    ['IPv6 TCP', TCP6, 54, TCP_CSUM_OFFSET, 0xfecc, 0x9214],
  ])('finishes %s from the pseudo-header sum to the sender\'s checksum', (_n, golden, cs, co, partial, want) => {
    const b = withWord(golden, cs + co, partial);
    expect(completeChecksum(b, 0, b.length, cs, co)).toBe(MtuStatus.OK);
    expect(b.readUInt16BE(cs + co)).toBe(want);
    expect(b).toEqual(golden);
  });

  it('works on a frame inside a larger buffer, touching only the two checksum bytes', () => {
    const b = Buffer.concat([dirty(10), withWord(TCP4, 50, PARTIAL4), dirty(9)]);
    const before = Buffer.from(b);
    expect(completeChecksum(b, 10, 10 + TCP4.length, 34, 16)).toBe(MtuStatus.OK);
    const diff = [...b.keys()].filter((i) => b[i] !== before[i]);
    expect(diff.every((i) => i === 60 || i === 61)).toBe(true);
    expect(b.subarray(10, 10 + TCP4.length)).toEqual(TCP4);
  });

  it('stores a computed 0 as 0xffff (the kernel\'s CSUM_MANGLED_0), for UDP and TCP alike', () => {
    for (const [frame, at] of [[UDP4, 40], [TCP4, 50]] as const) {
      // Choose the last aligned payload word so that the complete checksum comes out as zero.
      const b = withWord(frame, at, 0);
      const w = 34 + ((b.length - 34 - 2) & ~1);
      b.writeUInt16BE(0, w);
      const l4 = b.subarray(34);
      const pseudo = hex(`0a f4 01 01 0a f4 02 03 00 ${frame === UDP4 ? '11' : '06'} 00 ${l4.length.toString(16).padStart(2, '0')}`);
      b.writeUInt16BE(checksumRef(pseudo, l4), w); // the word that makes the sum all ones
      expect(onesSumRef(pseudo, l4)).toBe(0xffff);
      const partial = withWord(b, at, onesSumRef(pseudo));
      expect(completeChecksum(partial, 0, partial.length, 34, at - 34)).toBe(MtuStatus.OK);
      expect(partial.readUInt16BE(at)).toBe(0xffff);
    }
  });

  it.each([
    ['csum_start past the end', 67, 0],
    ['csum_start at the end (no room for the field)', 66, 0],
    ['the field one byte past the end', 34, 31],
    ['the field ending exactly at the end is fine', 34, 30, true],
    ['csum_start 0, field at the last two bytes', 0, 64, true],
    ['negative values (from a caller bug)', -1, 16],
  ])('bounds: %s', (_n, cs, co, ok = false) => {
    const b = withWord(TCP4, 50, PARTIAL4);
    const before = Buffer.from(b);
    const r = completeChecksum(b, 0, b.length, cs, co);
    expect(r).toBe(ok ? MtuStatus.OK : MtuStatus.CSUM_OUT_OF_RANGE);
    if (!ok) expect(b).toEqual(before);
  });

  it('never throws and never writes outside the window for any csum_start/csum_offset (fast-check, seed 7)', () => {
    fc.assert(fc.property(fc.nat(0xffff), fc.nat(0xffff), fc.nat(66), (cs, co, len) => {
      const b = Buffer.concat([dirty(4), TCP4.subarray(0, len), dirty(4)]);
      const r = completeChecksum(b, 4, 4 + len, cs, co);
      expect(r === MtuStatus.OK || r === MtuStatus.CSUM_OUT_OF_RANGE).toBe(true);
      expect(b.subarray(0, 4)).toEqual(dirty(4));
      expect(b.subarray(4 + len)).toEqual(dirty(4));
    }), { seed: 7, numRuns: 3000 });
  });
});

describe('prepareChecksumPartial', () => {
  const hdrAt = (b: Buffer, len: number = VIRTIO_NET_HDR_LEN): VirtioNetHdrView => new VirtioNetHdrView().reset(b, 0, len);

  it('IPv4 TCP without GSO: pseudo-header sum in the field, header {NEEDS_CSUM, NONE, 0, 0, 34, 16}', () => {
    const b = Buffer.concat([dirty(10), TCP4]);
    expect(prepareChecksumPartial(FrameLayout.of(b, 10, b.length), 0, hdrAt(b))).toBe(MtuStatus.OK);
    expect(b.subarray(0, 10)).toEqual(hex('01 00 0000 0000 2200 1000'));
    expect(b.readUInt16BE(10 + 50)).toBe(PARTIAL4);
    expect(b.subarray(10)).toEqual(withWord(TCP4, 50, PARTIAL4));
  });

  it('IPv4 TCP as a super-frame: gso_type TCPV4, hdr_len 54, gso_size', () => {
    const f = tcpFrame({ payload: payloadOf(3000), flags: 0x18 });
    const b = Buffer.concat([dirty(12), f]);
    expect(prepareChecksumPartial(FrameLayout.of(b, 12, b.length), 1398, hdrAt(b, VIRTIO_NET_HDR_MRG_LEN))).toBe(MtuStatus.OK);
    // flags 1, gso TCPV4, hdr_len 54, gso_size 1398 (0x0576), csum_start 34, csum_offset 16, num_buffers 1
    expect(b.subarray(0, 12)).toEqual(hex('01 01 3600 7605 2200 1000 0100'));
    expect(b.readUInt16BE(12 + 50)).toBe(partialSumRef(f));
  });

  it('IPv6 TCP super-frame: TCPV6, csum_start 54', () => {
    const f = tcpFrame({ v6: true, payload: payloadOf(2000), tcpOptions: hex('01 01 08 0a 00 00 00 01 00 00 00 02') });
    const b = Buffer.concat([dirty(10), f]);
    expect(prepareChecksumPartial(FrameLayout.of(b, 10, b.length), 1000, hdrAt(b))).toBe(MtuStatus.OK);
    // flags 1, TCPV6 (4), hdr_len 14 + 40 + 32 = 86, gso_size 1000, csum_start 54, csum_offset 16
    expect(b.subarray(0, 10)).toEqual(hex('01 04 5600 e803 3600 1000'));
  });

  it('UDP: NEEDS_CSUM with csum_offset 6, never GSO', () => {
    const b = Buffer.concat([dirty(10), UDP4]);
    expect(prepareChecksumPartial(FrameLayout.of(b, 10, b.length), 0, hdrAt(b))).toBe(MtuStatus.OK);
    expect(b.subarray(0, 10)).toEqual(hex('01 00 0000 0000 2200 0600'));
    expect(b.readUInt16BE(10 + 40)).toBe(PARTIAL4);
    const c = Buffer.concat([dirty(10), UDP4]);
    expect(prepareChecksumPartial(FrameLayout.of(c, 10, c.length), 1000, hdrAt(c))).toBe(MtuStatus.WRONG_PROTOCOL);
  });

  it('recomputes a stale IPv4 header checksum (lengths rewritten by the caller)', () => {
    const b = Buffer.concat([dirty(10), TCP4]);
    b.writeUInt16BE(0xdead, 10 + 24);
    expect(prepareChecksumPartial(FrameLayout.of(b, 10, b.length), 0, hdrAt(b))).toBe(MtuStatus.OK);
    expect(b.readUInt16BE(10 + 24)).toBe(0x0fa5);
  });

  it('round trip: prepare, then complete, gives the full checksum back (IPv4/IPv6, TCP/UDP)', () => {
    const rnd = [3, 100, 1, 999, 1460];
    for (const len of rnd) {
      for (const f of [tcpFrame({ payload: payloadOf(len, len) }), tcpFrame({ v6: true, payload: payloadOf(len, len) }),
        udpFrame({ payload: payloadOf(len, len) }), udpFrame({ v6: true, payload: payloadOf(len, len) })]) {
        const b = Buffer.concat([dirty(10), f]);
        expect(prepareChecksumPartial(FrameLayout.of(b, 10, b.length), 0, hdrAt(b))).toBe(MtuStatus.OK);
        const h = hdrAt(b);
        expect(h.flags).toBe(VirtioNetFlag.NEEDS_CSUM);
        expect(h.gsoType).toBe(VirtioGso.NONE);
        expect(completeChecksum(b, 10, b.length, h.csumStart, h.csumOffset)).toBe(MtuStatus.OK);
        expect(b.subarray(10)).toEqual(f);
        expect(l4ChecksumOk(f) && (f.readUInt16BE(12) !== 0x0800 || ipv4HeaderOk(f))).toBe(true);
      }
    }
  });

  it.each([
    ['a truncated frame', TCP4.subarray(0, 40), MtuStatus.TRUNCATED],
    ['ARP', Buffer.concat([TCP4.subarray(0, 12), hex('08 06'), Buffer.alloc(28)]), MtuStatus.NOT_IP],
    ['ICMP', withWord(TCP4, 22, 0x4001), MtuStatus.WRONG_PROTOCOL],
    ['a fragment', withWord(TCP4, 20, 0x2000), MtuStatus.IP_FRAGMENT],
  ])('refuses %s and writes nothing', (_n, f, want) => {
    const b = Buffer.concat([dirty(10), f]);
    const before = Buffer.from(b);
    // A frame whose headers do not parse is refused by the layout, then as not IP.
    const L = new FrameLayout();
    const parsed = L.parse(b, dataViewOf(b), 10, b.length);
    const got = prepareChecksumPartial(L, 0, hdrAt(b));
    expect(parsed === MtuStatus.OK ? got : parsed).toBe(want);
    if (parsed !== MtuStatus.OK) expect(got).toBe(MtuStatus.NOT_IP);
    expect(b).toEqual(before);
  });
});
