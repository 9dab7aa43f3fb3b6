/**
 * ICMPv4 (RFC 792; next-hop MTU in "fragmentation needed" from RFC 1191).
 *
 *   0                   1                   2                   3
 *  +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 *  |     Type      |     Code      |          Checksum             |
 *  |  echo: Identifier             |  echo: Sequence Number        |
 *  |  type 3: unused (0)           |  type 3 code 4: Next-Hop MTU  |
 *  |  data: echo payload, or the offending IPv4 header + 8 bytes   |
 *  +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 *
 * The checksum covers the whole ICMP message, with no pseudo-header.
 */

import { WireError } from '../errors.js';
import { dvSum16, finish, fold16 } from './checksum.js';
import { View } from './view.js';

const F = { TYPE: 0, CODE: 1, CHECKSUM: 2, REST: 4 } as const;
export const ICMPV4_HEADER_LEN = F.REST + 4; // 8

export const Icmpv4Type = {
  ECHO_REPLY: 0,
  DEST_UNREACH: 3,
  REDIRECT: 5,
  ECHO_REQUEST: 8,
  TIME_EXCEEDED: 11,
  PARAM_PROBLEM: 12,
} as const;

export const DestUnreachCode = {
  NET: 0,
  HOST: 1,
  PROTOCOL: 2,
  PORT: 3,
  FRAG_NEEDED: 4,
  SOURCE_ROUTE_FAILED: 5,
  ADMIN_PROHIBITED: 13,
} as const;

export const TimeExceededCode = { TTL: 0, REASSEMBLY: 1 } as const;

/** True for the error types that quote an offending datagram (never answered with an error). */
export function isIcmpv4Error(type: number): boolean {
  return type === Icmpv4Type.DEST_UNREACH || type === Icmpv4Type.REDIRECT || type === Icmpv4Type.TIME_EXCEEDED
    || type === Icmpv4Type.PARAM_PROBLEM || type === 4; /* source quench */
}

/** In-place view of one ICMPv4 message spanning [off, end). */
export class Icmpv4View extends View {
  checkLen(): boolean { return this.end - this.off >= ICMPV4_HEADER_LEN; }

  get type(): number { return this.dv.getUint8(this.off + F.TYPE); }
  get code(): number { return this.dv.getUint8(this.off + F.CODE); }
  get checksum(): number { return this.dv.getUint16(this.off + F.CHECKSUM); }
  /** The 4 bytes after the checksum, raw. */
  get rest(): number { return this.dv.getUint32(this.off + F.REST); }
  get ident(): number { return this.dv.getUint16(this.off + F.REST); }
  get seq(): number { return this.dv.getUint16(this.off + F.REST + 2); }
  /** Next-hop MTU of a type 3 code 4 message (0 from pre-RFC 1191 routers). */
  get nextHopMtu(): number { return this.dv.getUint16(this.off + F.REST + 2); }
  get payloadOff(): number { return this.off + ICMPV4_HEADER_LEN; }

  verifyChecksum(): boolean { return fold16(dvSum16(this.dv, this.off, this.end - this.off)) === 0xffff; }

  fillChecksum(): void {
    this.dv.setUint16(this.off + F.CHECKSUM, 0);
    this.dv.setUint16(this.off + F.CHECKSUM, finish(dvSum16(this.dv, this.off, this.end - this.off)));
  }

  /** emitHeader writes type, code and the rest-of-header word with a zero checksum. */
  emitHeader(type: number, code: number, rest: number): number {
    const dv = this.dv, o = this.off;
    dv.setUint8(o + F.TYPE, type);
    dv.setUint8(o + F.CODE, code);
    dv.setUint16(o + F.CHECKSUM, 0);
    dv.setUint32(o + F.REST, rest);
    return ICMPV4_HEADER_LEN;
  }
}

export interface Icmpv4Repr {
  readonly type: number;
  readonly code: number;
  readonly checksum: number;
  /** Echo request/reply. */
  readonly ident?: number;
  readonly seq?: number;
  /** Destination unreachable (type 3): the first 16 bits (0 on the wire), then the next-hop MTU. */
  readonly unused?: number;
  readonly nextHopMtu?: number;
  /** Any other type: the raw rest-of-header word. */
  readonly rest?: number;
}

/** parseIcmpv4Header: cold path; throws ERR_WIRE_TRUNCATED. */
export function parseIcmpv4Header(v: Icmpv4View): Icmpv4Repr {
  if (!v.checkLen()) throw new WireError('ERR_WIRE_TRUNCATED', `icmpv4: ${v.end - v.off} bytes`);
  const base = { type: v.type, code: v.code, checksum: v.checksum };
  switch (v.type) {
    case Icmpv4Type.ECHO_REQUEST:
    case Icmpv4Type.ECHO_REPLY:
      return { ...base, ident: v.ident, seq: v.seq };
    case Icmpv4Type.DEST_UNREACH:
      return { ...base, unused: v.ident, nextHopMtu: v.nextHopMtu };
    default:
      return { ...base, rest: v.rest };
  }
}

export function icmpv4ReprRest(r: Icmpv4Repr): number {
  if (r.ident !== undefined || r.seq !== undefined) return (((r.ident ?? 0) << 16) | (r.seq ?? 0)) >>> 0;
  if (r.nextHopMtu !== undefined || r.unused !== undefined) return (((r.unused ?? 0) << 16) | (r.nextHopMtu ?? 0)) >>> 0;
  return r.rest ?? 0;
}

/** emitIcmpv4Header writes the 8-byte header with `r.checksum` (the caller fills it after the payload). */
export function emitIcmpv4Header(v: Icmpv4View, r: Icmpv4Repr): number {
  v.emitHeader(r.type, r.code, icmpv4ReprRest(r));
  v.dv.setUint16(v.off + F.CHECKSUM, r.checksum);
  return ICMPV4_HEADER_LEN;
}
