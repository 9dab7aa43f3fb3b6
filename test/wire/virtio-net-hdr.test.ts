import { describe, expect, it } from 'vitest';
import {
  VIRTIO_NET_HDR_LEN, VIRTIO_NET_HDR_MRG_LEN, VirtioGso, VirtioNetFlag, VirtioNetHdrView, emitVirtioNetHdr, parseVirtioNetHdr, type VirtioNetHdrRepr,
} from '../../src/wire/virtio-net-hdr.js';
import { dirty, hex } from '../support/hex.js';

// struct virtio_net_hdr (include/uapi/linux/virtio_net.h), little-endian on x86/arm64, for a
// TCPv4 GSO frame needing a checksum: flags NEEDS_CSUM, gso_type TCPV4, hdr_len 66,
// gso_size 1448, csum_start 34, csum_offset 16 (the TCP checksum field).
// 0000  01 01 42 00 a8 05 22 00 10 00                     ..B..."...
const HDR10 = hex('01 | 01 | 42 00 | a8 05 | 22 00 | 10 00');
// struct virtio_net_hdr_mrg_rxbuf: the same and num_buffers 1.
const HDR12 = hex('01 | 01 | 42 00 | a8 05 | 22 00 | 10 00 | 01 00');
const REPR: VirtioNetHdrRepr = { flags: 1, gsoType: 1, hdrLen: 66, gsoSize: 1448, csumStart: 34, csumOffset: 16 };

const view = (b: Buffer, len = b.length): VirtioNetHdrView => new VirtioNetHdrView().reset(b, 0, len);

describe('VirtioNetHdrView', () => {
  it('is 10 bytes, or 12 with num_buffers', () => {
    expect([VIRTIO_NET_HDR_LEN, VIRTIO_NET_HDR_MRG_LEN]).toEqual([10, 12]);
  });

  it.each([
    ['10-byte', HDR10, 1],
    ['12-byte', HDR12, 1],
  ])('deconstructs the %s form', (_name, bytes, numBuffers) => {
    const v = view(bytes);
    expect(v.checkLen()).toBe(true);
    expect([v.flags, v.gsoType, v.hdrLen, v.gsoSize, v.csumStart, v.csumOffset, v.numBuffers]).toEqual([
      VirtioNetFlag.NEEDS_CSUM, VirtioGso.TCPV4, 66, 1448, 34, 16, numBuffers,
    ]);
  });

  it('reads num_buffers from the 12-byte form', () => {
    expect(view(hex('00 00 00 00 00 00 00 00 00 00 | 03 01')).numBuffers).toBe(0x0103);
  });

  it.each([
    ['10-byte', HDR10],
    ['12-byte', HDR12],
  ])('constructs the %s form over a dirty slot', (_name, bytes) => {
    const b = dirty(bytes.length + 1);
    expect(view(b, bytes.length).emit(1, 1, 66, 1448, 34, 16)).toBe(bytes.length);
    expect(b).toEqual(Buffer.concat([bytes, dirty(1)]));
  });

  it('setters write little-endian fields', () => {
    const b = dirty(10);
    const v = view(b);
    v.flags = VirtioNetFlag.DATA_VALID;
    v.gsoType = VirtioGso.UDP_L4 | VirtioGso.ECN;
    v.hdrLen = 0x0102;
    v.gsoSize = 0x0304;
    v.csumStart = 0x0506;
    v.csumOffset = 0x0708;
    expect(b).toEqual(hex('02 85 02 01 04 03 06 05 08 07'));
  });

  it.each([0, 1, 9])('rejects %i bytes', (len) => {
    expect(view(HDR10, len).checkLen()).toBe(false);
  });

  it('treats 11 bytes as the 10-byte form (no num_buffers)', () => {
    const v = view(Buffer.concat([HDR10, hex('ff')]));
    expect(v.numBuffers).toBe(1);
    expect(parseVirtioNetHdr(v)).toEqual(REPR);
  });
});

describe('parseVirtioNetHdr / emitVirtioNetHdr', () => {
  it.each([
    ['10-byte', HDR10, REPR],
    ['12-byte', HDR12, { ...REPR, numBuffers: 1 }],
  ])('parses the %s form', (_name, bytes, repr) => {
    expect(parseVirtioNetHdr(view(bytes))).toEqual(repr);
  });

  it.each([
    ['10-byte', HDR10, REPR],
    ['12-byte', HDR12, { ...REPR, numBuffers: 1 }],
  ])('emits the %s form over a dirty slot', (_name, bytes, repr) => {
    const b = dirty(bytes.length);
    expect(emitVirtioNetHdr(view(b), repr)).toBe(bytes.length);
    expect(b).toEqual(bytes);
  });

  it('round-trips an unknown GSO type and flag bits', () => {
    const bytes = hex('f8 42 00 00 00 00 00 00 00 00 | 07 00');
    const r = parseVirtioNetHdr(view(bytes));
    expect(r).toMatchObject({ flags: 0xf8, gsoType: 0x42, numBuffers: 7 });
    const b = dirty(12);
    emitVirtioNetHdr(view(b), r);
    expect(b).toEqual(bytes);
  });

  it('throws ERR_WIRE_TRUNCATED on 9 bytes', () => {
    expect(() => parseVirtioNetHdr(view(HDR10, 9))).toThrow(expect.objectContaining({ code: 'ERR_WIRE_TRUNCATED' }));
  });
});
