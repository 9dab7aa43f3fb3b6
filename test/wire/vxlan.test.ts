import { describe, expect, it } from 'vitest';
import {
  VXLAN_FLAG_G, VXLAN_FLAG_I, VXLAN_GBP_A, VXLAN_GBP_D, VXLAN_HEADER_LEN, VXLAN_VNI_MAX, VxlanView, emitVxlan, parseVxlan, type VxlanRepr,
} from '../../src/wire/vxlan.js';
import { encapVxlanOnly } from '../../src/wire/encap.js';
import { dirty, hex } from '../support/hex.js';

// VXLAN header of every frame of fixtures/kernel/*.pcap (kernel vxlan, VNI 42):
// 0000  08 00 00 00 00 00 2a 00                           ......*.
const KERNEL = hex('08 | 00 00 00 | 00 00 2a | 00');
const KERNEL_REPR: VxlanRepr = { flags: 0x08, i: true, vni: 42, reserved24: 0, reserved8: 0 };

// scapy: VXLAN(flags=0x08, vni=0xabcdef)
const BIG_VNI = hex('08 000000 abcdef 00');

// scapy: VXLAN(flags=0x88, gpflags=0x48, gpid=0x1234, vni=42)   (G and I; D and A; group 0x1234)
// 0000  88 48 12 34 00 00 2a 00                           .H.4..*.
const GBP = hex('88 | 48 | 12 34 | 00 00 2a | 00');
const GBP_REPR: VxlanRepr = {
  flags: 0x88, i: true, vni: 42, reserved24: 0x481234, reserved8: 0, gbp: { dontLearn: true, policyApplied: true, groupPolicyId: 0x1234 },
};

const view = (b: Buffer, len = b.length): VxlanView => new VxlanView().reset(b, 0, len);

/** The 39 reserved bits of RFC 7348 §5 as (byte, mask): all 64 bits but I (byte 0, 0x08) and the VNI (bytes 4-6). */
function reservedBits(): [number, number][] {
  const out: [number, number][] = [];
  for (let byte = 0; byte < 8; byte++) {
    for (let bit = 7; bit >= 0; bit--) {
      const mask = 1 << bit;
      if (byte === 0 && mask === 0x08) continue;
      if (byte >= 4 && byte <= 6) continue;
      out.push([byte, mask]);
    }
  }
  return out;
}

describe('VxlanView', () => {
  it('is 8 bytes with a 24-bit VNI and flag constants from RFC 7348 / the GBP draft', () => {
    expect([VXLAN_HEADER_LEN, VXLAN_VNI_MAX, VXLAN_FLAG_I, VXLAN_FLAG_G, VXLAN_GBP_D, VXLAN_GBP_A]).toEqual([8, 0xffffff, 0x08, 0x80, 0x40, 0x08]);
  });

  it('deconstructs the kernel\'s header', () => {
    const v = view(KERNEL);
    expect(v.checkLen()).toBe(true);
    expect([v.flags, v.flagI, v.flagG, v.reserved24, v.vni, v.reserved8, v.payloadOff, v.reservedZero(false), v.reservedZero(true)]).toEqual([
      0x08, true, false, 0, 42, 0, 8, true, true,
    ]);
  });

  it('deconstructs a 24-bit VNI', () => {
    expect(view(BIG_VNI).vni).toBe(0xabcdef);
  });

  it('deconstructs a GBP header', () => {
    const v = view(GBP);
    expect([v.flagG, v.flagI, v.gbpFlags, v.groupPolicyId, v.vni]).toEqual([true, true, 0x48, 0x1234, 42]);
    expect(v.reservedZero(true)).toBe(true);
    expect(v.reservedZero(false)).toBe(false);
  });

  it('constructs the kernel\'s header over a dirty slot', () => {
    const b = dirty(VXLAN_HEADER_LEN + 1);
    expect(view(b, 8).emit(42)).toBe(8);
    expect(b).toEqual(Buffer.concat([KERNEL, dirty(1)]));
  });

  it('constructs a GBP header over a dirty slot', () => {
    const b = dirty(VXLAN_HEADER_LEN);
    expect(view(b).emitGbp(42, 0x1234, true, true)).toBe(8);
    expect(b).toEqual(GBP);
    view(b).emitGbp(42, 0xffff, false, false);
    expect(b).toEqual(hex('88 00 ff ff 00 00 2a 00'));
  });

  it('the VNI setter writes only the VNI', () => {
    const b = Buffer.from(KERNEL);
    view(b).vni = 0xabcdef;
    expect(b).toEqual(BIG_VNI);
  });

  it.each([0, 1, 7])('rejects a %i-byte header', (len) => {
    expect(view(KERNEL, len).checkLen()).toBe(false);
  });

  it('counts 39 reserved bits, and reservedZero(false) sees each one', () => {
    const bits = reservedBits();
    expect(bits).toHaveLength(39);
    for (const [byte, mask] of bits) {
      const b = Buffer.from(KERNEL);
      b[byte]! |= mask;
      expect(view(b).reservedZero(false), `byte ${byte} mask 0x${mask.toString(16)}`).toBe(false);
    }
  });

  it('with GBP, treats G, D, A and the 16-bit group id as defined (19 bits) and the other 20 as reserved', () => {
    const defined = (byte: number, mask: number): boolean =>
      (byte === 0 && mask === VXLAN_FLAG_G) || (byte === 1 && (mask === VXLAN_GBP_D || mask === VXLAN_GBP_A)) || byte === 2 || byte === 3;
    let reserved = 0;
    for (const [byte, mask] of reservedBits()) {
      const b = Buffer.from(KERNEL);
      b[byte]! |= mask;
      const want = defined(byte, mask);
      if (!want) reserved++;
      expect(view(b).reservedZero(true), `byte ${byte} mask 0x${mask.toString(16)}`).toBe(want);
    }
    expect(reserved).toBe(20);
  });

  it('encapVxlanOnly writes the 8 bytes in front of the payload and returns their offset', () => {
    const b = dirty(20);
    expect(encapVxlanOnly(new VxlanView(), b, 10, 42)).toBe(2);
    expect(b.subarray(2, 10)).toEqual(KERNEL);
    expect(b.subarray(0, 2)).toEqual(dirty(2));
    expect(b.subarray(10)).toEqual(dirty(10));
  });
});

describe('parseVxlan / emitVxlan', () => {
  it.each([
    ['the kernel\'s header', KERNEL, KERNEL_REPR],
    ['a GBP header', GBP, GBP_REPR],
  ])('parses %s', (_name, bytes, repr) => {
    expect(parseVxlan(view(bytes))).toEqual(repr);
  });

  it.each([
    ['the kernel\'s header', KERNEL, KERNEL_REPR],
    ['a GBP header', GBP, GBP_REPR],
  ])('emits %s over a dirty slot', (_name, bytes, repr) => {
    const b = dirty(8);
    expect(emitVxlan(view(b), repr)).toBe(8);
    expect(b).toEqual(bytes);
  });

  it.each([
    ['I clear', '00 00 00 00 00 00 2a 00'],
    ['I and an unknown flag (0x0c, GPE\'s P bit)', '0c 00 00 00 00 00 2a 00'],
    ['every reserved bit set', 'f7 ff ff ff 00 00 2a ff'],
  ])('round-trips unknown or reserved bits: %s', (_name, text) => {
    const bytes = hex(text);
    const r = parseVxlan(view(bytes));
    const b = dirty(8);
    emitVxlan(view(b), r);
    expect(b).toEqual(bytes);
  });

  it('reports a cleared I flag without failing', () => {
    expect(parseVxlan(view(hex('00 00 00 00 00 00 2a 00')))).toMatchObject({ flags: 0, i: false, vni: 42 });
  });

  it('throws ERR_WIRE_TRUNCATED on 7 bytes', () => {
    expect(() => parseVxlan(view(KERNEL, 7))).toThrow(expect.objectContaining({ code: 'ERR_WIRE_TRUNCATED' }));
  });

  it.each([0x100_0000, -1])('refuses to emit VNI %i (ERR_WIRE_MALFORMED)', (vni) => {
    expect(() => emitVxlan(view(dirty(8)), { ...KERNEL_REPR, vni })).toThrow(expect.objectContaining({ code: 'ERR_WIRE_MALFORMED' }));
  });
});
