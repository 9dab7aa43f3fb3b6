/**
 * IPv4 header (RFC 791). Options are carried, not interpreted: the payload starts at IHL * 4.
 *
 *   0                   1                   2                   3
 *  +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 *  |Version|  IHL  |   DSCP    |ECN|          Total Length         |
 *  |         Identification        |R|D|M|    Fragment Offset      |
 *  |  Time to Live |    Protocol   |         Header Checksum       |
 *  |                       Source Address                          |
 *  |                    Destination Address                        |
 *  |                    Options (IHL > 5)          |    Padding    |
 *  +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 */

import { WireError } from '../errors.js';
import { dvSum16, finish, updateChecksum16 } from './checksum.js';
import { formatIpv4, parseIpv4 } from './addr.js';
import { WireDrop, wireDropName } from './drop.js';
import { View } from './view.js';

const F = { VER_IHL: 0, TOS: 1, LEN: 2, IDENT: 4, FLAGS_FRAG: 6, TTL: 8, PROTO: 9, CHECKSUM: 10, SRC: 12, DST: 16 } as const;
export const IPV4_HEADER_LEN = F.DST + 4; // 20
export const IPV4_MAX_HEADER_LEN = 60;

export const IPV4_FLAG_RESERVED = 0x8000;
export const IPV4_FLAG_DF = 0x4000;
export const IPV4_FLAG_MF = 0x2000;
const FRAG_OFFSET_MASK = 0x1fff;

/** ECN codepoints (RFC 3168), the low two bits of the TOS byte. */
export const Ecn = { NOT_ECT: 0, ECT1: 1, ECT0: 2, CE: 3 } as const;
export const ECN_MASK = 0x03;

/**
 * ipv4Validate checks the header at dv[off, end) in the kernel's `ip_rcv_core` order: fixed
 * header present, version 4, IHL >= 5, total length within the window and not shorter than the
 * header. Trailing bytes beyond the total length (Ethernet padding) are allowed.
 */
export function ipv4Validate(dv: DataView, off: number, end: number): WireDrop {
  const avail = end - off;
  if (avail < IPV4_HEADER_LEN) return WireDrop.IPV4_TRUNCATED;
  const vi = dv.getUint8(off + F.VER_IHL);
  if (vi >>> 4 !== 4) return WireDrop.IPV4_BAD_VERSION;
  const hl = (vi & 0x0f) << 2;
  if (hl < IPV4_HEADER_LEN) return WireDrop.IPV4_BAD_IHL;
  const tot = dv.getUint16(off + F.LEN);
  if (tot > avail || hl > avail) return WireDrop.IPV4_TRUNCATED;
  if (tot < hl) return WireDrop.IPV4_BAD_TOTAL_LEN;
  return WireDrop.NONE;
}

/**
 * ipv4HeaderChecksumOk verifies the header checksum of the `headerLen`-byte header at `off`.
 * Word-wise with a fold per word so every step stays in int32 arithmetic (the hot path calls
 * this once per received frame).
 */
export function ipv4HeaderChecksumOk(dv: DataView, off: number, headerLen: number): boolean {
  let s = 0;
  for (let i = off, e = off + headerLen; i < e; i += 4) {
    const w = dv.getUint32(i);
    s += (w >>> 16) + (w & 0xffff);
  }
  s = (s >>> 16) + (s & 0xffff);
  s += s >>> 16;
  return (s & 0xffff) === 0xffff;
}

/**
 * ipv4DecrementTtl lowers the TTL of the IPv4 header at `off` by one and patches its checksum
 * incrementally (RFC 1624). Requires a validated header with TTL >= 1. The data path calls it on
 * the DataView it already holds (a view's reset() on the hot path cost more than this does).
 */
export function ipv4DecrementTtl(dv: DataView, off: number): void {
  const oldWord = dv.getUint16(off + F.TTL);
  dv.setUint8(off + F.TTL, (oldWord >>> 8) - 1);
  dv.setUint16(off + F.CHECKSUM, updateChecksum16(dv.getUint16(off + F.CHECKSUM), oldWord, oldWord - 0x100));
}

/** In-place view of one IPv4 header. */
export class Ipv4View extends View {
  /** True when the fixed 20-byte header fits; fields beyond it need validate(). */
  checkLen(): boolean { return this.end - this.off >= IPV4_HEADER_LEN; }

  /**
   * validate checks in the kernel's `ip_rcv_core` order: fixed header present, version 4,
   * IHL >= 5, total length within the window and not shorter than the header. Returns
   * WireDrop.NONE, after which headerLen, payloadOff and payloadEnd lie inside [off, end).
   * Trailing bytes beyond the total length (Ethernet padding) are allowed.
   */
  validate(): WireDrop {
    return ipv4Validate(this.dv, this.off, this.end);
  }

  get version(): number { return this.dv.getUint8(this.off + F.VER_IHL) >>> 4; }
  get ihl(): number { return this.dv.getUint8(this.off + F.VER_IHL) & 0x0f; }
  get headerLen(): number { return (this.dv.getUint8(this.off + F.VER_IHL) & 0x0f) << 2; }
  get tos(): number { return this.dv.getUint8(this.off + F.TOS); }
  get dscp(): number { return this.tos >>> 2; }
  get ecn(): number { return this.tos & ECN_MASK; }
  get totalLen(): number { return this.dv.getUint16(this.off + F.LEN); }
  set totalLen(v: number) { this.dv.setUint16(this.off + F.LEN, v); }
  get ident(): number { return this.dv.getUint16(this.off + F.IDENT); }
  set ident(v: number) { this.dv.setUint16(this.off + F.IDENT, v); }
  /** The 16-bit flags + fragment offset word. */
  get flagsFrag(): number { return this.dv.getUint16(this.off + F.FLAGS_FRAG); }
  set flagsFrag(v: number) { this.dv.setUint16(this.off + F.FLAGS_FRAG, v); }
  get df(): boolean { return (this.flagsFrag & IPV4_FLAG_DF) !== 0; }
  get mf(): boolean { return (this.flagsFrag & IPV4_FLAG_MF) !== 0; }
  /** Fragment offset in bytes (the field counts 8-byte units). */
  get fragOffset(): number { return (this.flagsFrag & FRAG_OFFSET_MASK) << 3; }
  isFragment(): boolean { return (this.flagsFrag & (IPV4_FLAG_MF | FRAG_OFFSET_MASK)) !== 0; }
  get ttl(): number { return this.dv.getUint8(this.off + F.TTL); }
  get protocol(): number { return this.dv.getUint8(this.off + F.PROTO); }
  get checksum(): number { return this.dv.getUint16(this.off + F.CHECKSUM); }
  set checksum(v: number) { this.dv.setUint16(this.off + F.CHECKSUM, v); }
  get src(): number { return this.dv.getUint32(this.off + F.SRC); }
  set src(v: number) { this.dv.setUint32(this.off + F.SRC, v); }
  get dst(): number { return this.dv.getUint32(this.off + F.DST); }
  set dst(v: number) { this.dv.setUint32(this.off + F.DST, v); }
  get payloadOff(): number { return this.off + this.headerLen; }
  get payloadEnd(): number { return this.off + this.totalLen; }
  get payloadLen(): number { return this.totalLen - this.headerLen; }

  verifyChecksum(): boolean {
    return ipv4HeaderChecksumOk(this.dv, this.off, this.headerLen);
  }

  fillChecksum(): void {
    this.dv.setUint16(this.off + F.CHECKSUM, 0);
    this.dv.setUint16(this.off + F.CHECKSUM, finish(dvSum16(this.dv, this.off, this.headerLen)));
  }

  /** decrementTtl lowers TTL by one and patches the checksum incrementally (RFC 1624). */
  decrementTtl(): void {
    ipv4DecrementTtl(this.dv, this.off);
  }

  /** setEcn rewrites the ECN bits and patches the checksum incrementally. */
  setEcn(ecn: number): void {
    const dv = this.dv, o = this.off;
    const oldWord = dv.getUint16(o + F.VER_IHL);
    dv.setUint8(o + F.TOS, (dv.getUint8(o + F.TOS) & ~ECN_MASK) | ecn);
    dv.setUint16(o + F.CHECKSUM, updateChecksum16(dv.getUint16(o + F.CHECKSUM), oldWord, dv.getUint16(o + F.VER_IHL)));
  }

  /**
   * emit writes a 20-byte header without options and fills its checksum. `flagsFrag` is the raw
   * flags + offset word (IPV4_FLAG_DF for a whole datagram that must not be fragmented).
   */
  emit(src: number, dst: number, protocol: number, totalLen: number, ttl: number, tos: number, ident: number, flagsFrag: number): number {
    const dv = this.dv, o = this.off;
    dv.setUint8(o + F.VER_IHL, 0x45);
    dv.setUint8(o + F.TOS, tos);
    dv.setUint16(o + F.LEN, totalLen);
    dv.setUint16(o + F.IDENT, ident);
    dv.setUint16(o + F.FLAGS_FRAG, flagsFrag);
    dv.setUint8(o + F.TTL, ttl);
    dv.setUint8(o + F.PROTO, protocol);
    dv.setUint16(o + F.CHECKSUM, 0);
    dv.setUint32(o + F.SRC, src);
    dv.setUint32(o + F.DST, dst);
    dv.setUint16(o + F.CHECKSUM, finish(dvSum16(dv, o, IPV4_HEADER_LEN)));
    return IPV4_HEADER_LEN;
  }
}

export interface Ipv4Repr {
  readonly ihl: number;
  readonly dscp: number;
  readonly ecn: number;
  readonly totalLen: number;
  readonly ident: number;
  readonly reservedFlag: boolean;
  readonly df: boolean;
  readonly mf: boolean;
  /** In bytes (a multiple of 8). */
  readonly fragOffset: number;
  readonly ttl: number;
  readonly protocol: number;
  readonly checksum: number;
  readonly src: string;
  readonly dst: string;
  /** Option bytes as hex (IHL > 5), '' when none. */
  readonly options: string;
}

const WIRE_CODE: Partial<Record<WireDrop, string>> = {
  [WireDrop.IPV4_TRUNCATED]: 'ERR_WIRE_TRUNCATED',
};

/** parseIpv4Header: cold path; throws ERR_WIRE_TRUNCATED or ERR_WIRE_MALFORMED. */
export function parseIpv4Header(v: Ipv4View): Ipv4Repr {
  const d = v.validate();
  if (d !== WireDrop.NONE) throw new WireError(WIRE_CODE[d] ?? 'ERR_WIRE_MALFORMED', `ipv4: ${wireDropName(d)}`);
  const ff = v.flagsFrag;
  return {
    ihl: v.ihl,
    dscp: v.dscp,
    ecn: v.ecn,
    totalLen: v.totalLen,
    ident: v.ident,
    reservedFlag: (ff & IPV4_FLAG_RESERVED) !== 0,
    df: (ff & IPV4_FLAG_DF) !== 0,
    mf: (ff & IPV4_FLAG_MF) !== 0,
    fragOffset: (ff & FRAG_OFFSET_MASK) << 3,
    ttl: v.ttl,
    protocol: v.protocol,
    checksum: v.checksum,
    src: formatIpv4(v.src),
    dst: formatIpv4(v.dst),
    options: v.buf.toString('hex', v.off + IPV4_HEADER_LEN, v.off + v.headerLen),
  };
}

/**
 * emitIpv4Header writes `r` (options included) at the view's offset and returns the header
 * length. With `fillChecksum` the checksum is computed, otherwise `r.checksum` is written as is.
 */
export function emitIpv4Header(v: Ipv4View, r: Ipv4Repr, fillChecksum = false): number {
  const dv = v.dv, o = v.off;
  const opts = Buffer.from(r.options, 'hex');
  const hl = IPV4_HEADER_LEN + opts.length;
  if (hl % 4 !== 0 || hl > IPV4_MAX_HEADER_LEN || r.ihl * 4 !== hl) {
    throw new WireError('ERR_WIRE_MALFORMED', `ipv4: ihl ${r.ihl} does not match ${opts.length} option bytes`);
  }
  const flags = (r.reservedFlag ? IPV4_FLAG_RESERVED : 0) | (r.df ? IPV4_FLAG_DF : 0) | (r.mf ? IPV4_FLAG_MF : 0);
  dv.setUint8(o + F.VER_IHL, 0x40 | r.ihl);
  dv.setUint8(o + F.TOS, (r.dscp << 2) | r.ecn);
  dv.setUint16(o + F.LEN, r.totalLen);
  dv.setUint16(o + F.IDENT, r.ident);
  dv.setUint16(o + F.FLAGS_FRAG, flags | (r.fragOffset >>> 3));
  dv.setUint8(o + F.TTL, r.ttl);
  dv.setUint8(o + F.PROTO, r.protocol);
  dv.setUint16(o + F.CHECKSUM, r.checksum);
  dv.setUint32(o + F.SRC, parseIpv4(r.src));
  dv.setUint32(o + F.DST, parseIpv4(r.dst));
  opts.copy(v.buf, o + IPV4_HEADER_LEN);
  if (fillChecksum) v.fillChecksum();
  return hl;
}
