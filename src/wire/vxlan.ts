/**
 * VXLAN header (RFC 7348 §5), with the Group Policy extension (draft-smith-vxlan-group-policy)
 * as an opt-in.
 *
 *  RFC 7348:
 *   0                   1                   2                   3
 *  +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 *  |R|R|R|R|I|R|R|R|                   Reserved                    |
 *  |                VXLAN Network Identifier (VNI) |   Reserved    |
 *  +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 *  GBP (G: group policy present, D: don't learn, A: policy applied):
 *  |G|R|R|R|I|R|R|R|R|D|R|R|A|R|R|R|        Group Policy ID        |
 *  |                VXLAN Network Identifier (VNI) |   Reserved    |
 *
 * Of the 64 bits, the I flag and the 24-bit VNI carry meaning: the other 39 are reserved. RFC
 * 7348 says they are "ignored on receipt"; Linux drops a packet with any of them set (strict,
 * our default) and newer kernels make the mask configurable. `reservedZero(gbp)` is the test.
 */

import { WireError } from '../errors.js';
import { EMPTY, putU16, putU24, u16, u24, u8 } from './bytes.js';

const F = { FLAGS: 0, GBP_FLAGS: 1, GROUP_ID: 2, VNI: 4, RSVD2: 7 } as const;
export const VXLAN_HEADER_LEN = F.RSVD2 + 1; // 8

export const VXLAN_FLAG_I = 0x08; // byte 0: "VNI is valid"
export const VXLAN_FLAG_G = 0x80; // byte 0, GBP: group policy id present
export const VXLAN_GBP_D = 0x40; // byte 1, GBP: don't learn
export const VXLAN_GBP_A = 0x08; // byte 1, GBP: policy applied
export const VXLAN_VNI_MAX = 0xff_ffff;

/** In-place view of one VXLAN header. */
export class VxlanView {
  buf: Buffer = EMPTY;
  off = 0;
  end = 0;

  reset(buf: Buffer, off: number, end: number): this {
    this.buf = buf;
    this.off = off;
    this.end = end;
    return this;
  }

  checkLen(): boolean { return this.end - this.off >= VXLAN_HEADER_LEN; }

  get flags(): number { return u8(this.buf, this.off + F.FLAGS); }
  get flagI(): boolean { return (this.flags & VXLAN_FLAG_I) !== 0; }
  get flagG(): boolean { return (this.flags & VXLAN_FLAG_G) !== 0; }
  /** Bytes 1-3 as one number: reserved in RFC 7348, GBP flags + group id with the extension. */
  get reserved24(): number { return u24(this.buf, this.off + F.GBP_FLAGS); }
  get gbpFlags(): number { return u8(this.buf, this.off + F.GBP_FLAGS); }
  get groupPolicyId(): number { return u16(this.buf, this.off + F.GROUP_ID); }
  get vni(): number { return u24(this.buf, this.off + F.VNI); }
  set vni(v: number) { putU24(this.buf, this.off + F.VNI, v); }
  get reserved8(): number { return u8(this.buf, this.off + F.RSVD2); }
  get payloadOff(): number { return this.off + VXLAN_HEADER_LEN; }

  /**
   * reservedZero: true when no reserved bit is set. With `gbp`, the G, D and A bits and the
   * group policy id are defined, not reserved.
   */
  reservedZero(gbp: boolean): boolean {
    const b = this.buf, o = this.off;
    if (b[o + F.RSVD2] !== 0) return false;
    if (gbp) {
      return (b[o]! & ~(VXLAN_FLAG_I | VXLAN_FLAG_G)) === 0 && (b[o + 1]! & ~(VXLAN_GBP_D | VXLAN_GBP_A)) === 0;
    }
    return (b[o]! & ~VXLAN_FLAG_I) === 0 && b[o + 1] === 0 && b[o + 2] === 0 && b[o + 3] === 0;
  }

  /** emit writes all 8 bytes: the I flag, the VNI, and zero everywhere else. */
  emit(vni: number): number {
    const b = this.buf, o = this.off;
    b[o] = VXLAN_FLAG_I;
    putU24(b, o + F.GBP_FLAGS, 0);
    putU24(b, o + F.VNI, vni);
    b[o + F.RSVD2] = 0;
    return VXLAN_HEADER_LEN;
  }

  /** emitGbp writes a GBP header: G and I flags, D/A bits, the group policy id and the VNI. */
  emitGbp(vni: number, groupPolicyId: number, dontLearn: boolean, policyApplied: boolean): number {
    const b = this.buf, o = this.off;
    b[o] = VXLAN_FLAG_G | VXLAN_FLAG_I;
    b[o + F.GBP_FLAGS] = (dontLearn ? VXLAN_GBP_D : 0) | (policyApplied ? VXLAN_GBP_A : 0);
    putU16(b, o + F.GROUP_ID, groupPolicyId);
    putU24(b, o + F.VNI, vni);
    b[o + F.RSVD2] = 0;
    return VXLAN_HEADER_LEN;
  }
}

export interface VxlanGbpRepr {
  readonly dontLearn: boolean;
  readonly policyApplied: boolean;
  readonly groupPolicyId: number;
}

/**
 * The header as numbers. `flags`, `reserved24`, `vni` and `reserved8` are the raw fields and
 * are what emitVxlan writes; `i` and `gbp` are their decoded meaning (gbp present when G is set).
 */
export interface VxlanRepr {
  readonly flags: number;
  readonly i: boolean;
  readonly vni: number;
  readonly reserved24: number;
  readonly reserved8: number;
  readonly gbp?: VxlanGbpRepr;
}

export function parseVxlan(v: VxlanView): VxlanRepr {
  if (!v.checkLen()) throw new WireError('ERR_WIRE_TRUNCATED', `vxlan: ${v.end - v.off} bytes`);
  const base = { flags: v.flags, i: v.flagI, vni: v.vni, reserved24: v.reserved24, reserved8: v.reserved8 };
  if (!v.flagG) return base;
  const gf = v.gbpFlags;
  return {
    ...base,
    gbp: { dontLearn: (gf & VXLAN_GBP_D) !== 0, policyApplied: (gf & VXLAN_GBP_A) !== 0, groupPolicyId: v.groupPolicyId },
  };
}

export function emitVxlan(v: VxlanView, r: VxlanRepr): number {
  if (r.vni > VXLAN_VNI_MAX || r.vni < 0) throw new WireError('ERR_WIRE_MALFORMED', `vxlan: VNI ${r.vni} does not fit 24 bits`);
  const b = v.buf, o = v.off;
  b[o] = r.flags;
  putU24(b, o + F.GBP_FLAGS, r.reserved24);
  putU24(b, o + F.VNI, r.vni);
  b[o + F.RSVD2] = r.reserved8;
  return VXLAN_HEADER_LEN;
}
