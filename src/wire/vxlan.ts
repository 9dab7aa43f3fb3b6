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
import { dvPutU24, dvU24 } from './bytes.js';
import { View } from './view.js';

const F = { FLAGS: 0, GBP_FLAGS: 1, GROUP_ID: 2, VNI: 4, RSVD2: 7 } as const;
export const VXLAN_HEADER_LEN = F.RSVD2 + 1; // 8

export const VXLAN_FLAG_I = 0x08; // byte 0: "VNI is valid"
export const VXLAN_FLAG_G = 0x80; // byte 0, GBP: group policy id present
export const VXLAN_GBP_D = 0x40; // byte 1, GBP: don't learn
export const VXLAN_GBP_A = 0x08; // byte 1, GBP: policy applied
export const VXLAN_VNI_MAX = 0xff_ffff;

/**
 * vxlanReservedZero: true when no reserved bit of the header at `off` is set. With `gbp`, the
 * G, D and A bits and the group policy id are defined, not reserved.
 */
export function vxlanReservedZero(dv: DataView, off: number, gbp: boolean): boolean {
  if (dv.getUint8(off + F.RSVD2) !== 0) return false;
  const w0 = dv.getUint32(off);
  return (w0 & (gbp ? GBP_RESERVED_MASK : RFC_RESERVED_MASK)) === 0;
}
// Reserved bits of the first word: all but I (RFC 7348), all but I, G, D, A and the id (GBP).
const RFC_RESERVED_MASK = ~(VXLAN_FLAG_I << 24);
const GBP_RESERVED_MASK = ~(((VXLAN_FLAG_I | VXLAN_FLAG_G) << 24) | ((VXLAN_GBP_D | VXLAN_GBP_A) << 16) | 0xffff);

/** In-place view of one VXLAN header. */
export class VxlanView extends View {
  checkLen(): boolean { return this.end - this.off >= VXLAN_HEADER_LEN; }

  get flags(): number { return this.dv.getUint8(this.off + F.FLAGS); }
  get flagI(): boolean { return (this.flags & VXLAN_FLAG_I) !== 0; }
  get flagG(): boolean { return (this.flags & VXLAN_FLAG_G) !== 0; }
  /** Bytes 1-3 as one number: reserved in RFC 7348, GBP flags + group id with the extension. */
  get reserved24(): number { return dvU24(this.dv, this.off + F.GBP_FLAGS); }
  get gbpFlags(): number { return this.dv.getUint8(this.off + F.GBP_FLAGS); }
  get groupPolicyId(): number { return this.dv.getUint16(this.off + F.GROUP_ID); }
  get vni(): number { return this.dv.getUint32(this.off + F.VNI) >>> 8; }
  set vni(v: number) { dvPutU24(this.dv, this.off + F.VNI, v); }
  get reserved8(): number { return this.dv.getUint8(this.off + F.RSVD2); }
  get payloadOff(): number { return this.off + VXLAN_HEADER_LEN; }

  /**
   * reservedZero: true when no reserved bit is set. With `gbp`, the G, D and A bits and the
   * group policy id are defined, not reserved.
   */
  reservedZero(gbp: boolean): boolean {
    return vxlanReservedZero(this.dv, this.off, gbp);
  }

  /** emit writes all 8 bytes: the I flag, the VNI, and zero everywhere else. */
  emit(vni: number): number {
    const dv = this.dv, o = this.off;
    dv.setUint32(o, VXLAN_FLAG_I << 24);
    dv.setUint32(o + F.VNI, vni << 8);
    return VXLAN_HEADER_LEN;
  }

  /** emitGbp writes a GBP header: G and I flags, D/A bits, the group policy id and the VNI. */
  emitGbp(vni: number, groupPolicyId: number, dontLearn: boolean, policyApplied: boolean): number {
    const dv = this.dv, o = this.off;
    dv.setUint8(o, VXLAN_FLAG_G | VXLAN_FLAG_I);
    dv.setUint8(o + F.GBP_FLAGS, (dontLearn ? VXLAN_GBP_D : 0) | (policyApplied ? VXLAN_GBP_A : 0));
    dv.setUint16(o + F.GROUP_ID, groupPolicyId);
    dv.setUint32(o + F.VNI, vni << 8);
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
  const dv = v.dv, o = v.off;
  dv.setUint8(o, r.flags);
  dvPutU24(dv, o + F.GBP_FLAGS, r.reserved24);
  dvPutU24(dv, o + F.VNI, r.vni);
  dv.setUint8(o + F.RSVD2, r.reserved8);
  return VXLAN_HEADER_LEN;
}
