/**
 * IPv6 fixed header (RFC 8200 §3). Minimal on purpose: what segmentation, coalescing and MSS
 * clamping of inner IPv6 TCP need. Extension headers are not walked: `nextHeader` is reported
 * as is, and callers that need TCP or UDP right after the fixed header say so themselves.
 *
 *   0                   1                   2                   3
 *  +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 *  |Version| Traffic Class |              Flow Label               |
 *  |        Payload Length         |  Next Header  |   Hop Limit   |
 *  |                  Source Address (128 bits)                    |
 *  |               Destination Address (128 bits)                  |
 *  +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 *
 * The upper-layer checksum covers a 40-byte pseudo-header (RFC 8200 §8.1): both addresses, the
 * upper-layer length as 32 bits, three zero bytes and the next header value. Its ones'-complement
 * sum equals the sum of the address words + length + protocol, which `ipv6PseudoHeaderSum`
 * returns unfolded, like `pseudoHeaderSum` does for IPv4.
 */

import { WireError } from '../errors.js';
import { View } from './view.js';

const F = { VER_TC_FLOW: 0, PAYLOAD_LEN: 4, NEXT_HEADER: 6, HOP_LIMIT: 7, SRC: 8, DST: 24 } as const;
export const IPV6_HEADER_LEN = F.DST + 16; // 40
export const IPV6_ADDR_LEN = 16;
/** The IPv6 minimum link MTU (RFC 8200 §5). */
export const IPV6_MIN_MTU = 1280;

/** Outcome of ipv6Validate. Kept apart from the codec's Drop list: the switch maps it to a reason. */
export const Ipv6Check = {
  OK: 0,
  /** Fewer than 40 bytes, or a payload length beyond the window. */
  TRUNCATED: 1,
  /** Version field is not 6. */
  BAD_VERSION: 2,
} as const;
export type Ipv6Check = (typeof Ipv6Check)[keyof typeof Ipv6Check];

/**
 * ipv6Validate checks the fixed header at dv[off, end): 40 bytes present, version 6, payload
 * length within the window. Trailing bytes after the payload (Ethernet padding) are allowed, as
 * for IPv4. A zero payload length is accepted (a jumbogram's is zero too: callers that need the
 * payload compare nextHeader first).
 */
export function ipv6Validate(dv: DataView, off: number, end: number): Ipv6Check {
  const avail = end - off;
  if (avail < IPV6_HEADER_LEN) return Ipv6Check.TRUNCATED;
  if (dv.getUint8(off) >>> 4 !== 6) return Ipv6Check.BAD_VERSION;
  if (dv.getUint16(off + F.PAYLOAD_LEN) > avail - IPV6_HEADER_LEN) return Ipv6Check.TRUNCATED;
  return Ipv6Check.OK;
}

/**
 * ipv6PseudoHeaderSum: the unfolded ones'-complement sum of the RFC 8200 §8.1 pseudo-header
 * for the header at dv[off, off + 40): source and destination words, `l4Len` and `proto`.
 * Reads only the two addresses.
 */
export function ipv6PseudoHeaderSum(dv: DataView, off: number, proto: number, l4Len: number): number {
  let s = proto + (l4Len >>> 16) + (l4Len & 0xffff);
  for (let i = off + F.SRC, e = off + F.DST + 16; i < e; i += 4) {
    const w = dv.getUint32(i);
    s += (w >>> 16) + (w & 0xffff);
  }
  return s;
}

/** In-place view of one IPv6 fixed header. */
export class Ipv6View extends View {
  /** True when the 40-byte fixed header fits; the payload needs validate(). */
  checkLen(): boolean { return this.end - this.off >= IPV6_HEADER_LEN; }

  /** validate: see ipv6Validate. After OK, payloadOff and payloadEnd lie inside [off, end]. */
  validate(): Ipv6Check { return ipv6Validate(this.dv, this.off, this.end); }

  get version(): number { return this.dv.getUint8(this.off) >>> 4; }
  get trafficClass(): number { return (this.dv.getUint16(this.off) >>> 4) & 0xff; }
  get dscp(): number { return this.trafficClass >>> 2; }
  get ecn(): number { return this.trafficClass & 0x03; }
  get flowLabel(): number { return this.dv.getUint32(this.off) & 0xf_ffff; }
  get payloadLen(): number { return this.dv.getUint16(this.off + F.PAYLOAD_LEN); }
  set payloadLen(v: number) { this.dv.setUint16(this.off + F.PAYLOAD_LEN, v); }
  get nextHeader(): number { return this.dv.getUint8(this.off + F.NEXT_HEADER); }
  get hopLimit(): number { return this.dv.getUint8(this.off + F.HOP_LIMIT); }
  set hopLimit(v: number) { this.dv.setUint8(this.off + F.HOP_LIMIT, v); }
  get srcOff(): number { return this.off + F.SRC; }
  get dstOff(): number { return this.off + F.DST; }
  get payloadOff(): number { return this.off + IPV6_HEADER_LEN; }
  get payloadEnd(): number { return this.off + IPV6_HEADER_LEN + this.payloadLen; }

  /** pseudoHeaderSum: ipv6PseudoHeaderSum for this header. */
  pseudoHeaderSum(proto: number, l4Len: number): number {
    return ipv6PseudoHeaderSum(this.dv, this.off, proto, l4Len);
  }

  /**
   * emit writes the 40-byte header; `src`/`dst` are 16-byte addresses (copied). Cold path: for
   * building test frames and originated messages.
   */
  emit(trafficClass: number, flowLabel: number, payloadLen: number, nextHeader: number, hopLimit: number, src: Uint8Array, dst: Uint8Array): number {
    const dv = this.dv, o = this.off;
    dv.setUint32(o, ((6 << 28) | ((trafficClass & 0xff) << 20) | (flowLabel & 0xf_ffff)) >>> 0);
    dv.setUint16(o + F.PAYLOAD_LEN, payloadLen);
    dv.setUint8(o + F.NEXT_HEADER, nextHeader);
    dv.setUint8(o + F.HOP_LIMIT, hopLimit);
    for (let i = 0; i < IPV6_ADDR_LEN; i++) {
      dv.setUint8(o + F.SRC + i, src[i] ?? 0);
      dv.setUint8(o + F.DST + i, dst[i] ?? 0);
    }
    return IPV6_HEADER_LEN;
  }
}

export interface Ipv6Repr {
  readonly trafficClass: number;
  readonly flowLabel: number;
  readonly payloadLen: number;
  readonly nextHeader: number;
  readonly hopLimit: number;
  /** RFC 5952 text form. */
  readonly src: string;
  readonly dst: string;
}

/** parseIpv6Header: cold path; throws ERR_WIRE_TRUNCATED or ERR_WIRE_MALFORMED. */
export function parseIpv6Header(v: Ipv6View): Ipv6Repr {
  const c = v.validate();
  if (c === Ipv6Check.TRUNCATED) throw new WireError('ERR_WIRE_TRUNCATED', `ipv6: ${v.end - v.off} bytes, payload length ${v.checkLen() ? v.payloadLen : '?'}`);
  if (c !== Ipv6Check.OK) throw new WireError('ERR_WIRE_MALFORMED', `ipv6: version ${v.version}`);
  return {
    trafficClass: v.trafficClass,
    flowLabel: v.flowLabel,
    payloadLen: v.payloadLen,
    nextHeader: v.nextHeader,
    hopLimit: v.hopLimit,
    src: formatIpv6(v.buf.subarray(v.srcOff, v.srcOff + IPV6_ADDR_LEN)),
    dst: formatIpv6(v.buf.subarray(v.dstOff, v.dstOff + IPV6_ADDR_LEN)),
  };
}

/** emitIpv6Header writes `r` at the view's offset and returns 40. */
export function emitIpv6Header(v: Ipv6View, r: Ipv6Repr): number {
  return v.emit(r.trafficClass, r.flowLabel, r.payloadLen, r.nextHeader, r.hopLimit, parseIpv6(r.src), parseIpv6(r.dst));
}

/**
 * formatIpv6: 16 bytes to RFC 5952 text (lower case, leading zeros dropped, the longest run of
 * two or more zero groups, the first on a tie, as "::"). IPv4-mapped forms are not special-cased.
 */
export function formatIpv6(a: Uint8Array): string {
  if (a.length !== IPV6_ADDR_LEN) throw new WireError('ERR_WIRE_BAD_ADDRESS', `an IPv6 address has 16 bytes, not ${a.length}`);
  const g: number[] = [];
  for (let i = 0; i < 16; i += 2) g.push((a[i]! << 8) | a[i + 1]!);
  let bestAt = -1, bestLen = 1;
  for (let i = 0; i < 8;) {
    if (g[i] !== 0) { i++; continue; }
    let j = i;
    while (j < 8 && g[j] === 0) j++;
    if (j - i > bestLen) { bestAt = i; bestLen = j - i; }
    i = j;
  }
  const hexs = g.map((x) => x.toString(16));
  if (bestAt < 0) return hexs.join(':');
  return `${hexs.slice(0, bestAt).join(':')}::${hexs.slice(bestAt + bestLen).join(':')}`;
}

/** parseIpv6: RFC 4291 §2.2 text (forms 1 and 2; no embedded IPv4) to 16 bytes; throws ERR_WIRE_BAD_ADDRESS. */
export function parseIpv6(text: string): Uint8Array {
  const bad = (): WireError => new WireError('ERR_WIRE_BAD_ADDRESS', `not an IPv6 address: ${JSON.stringify(text)}`);
  const t = text.trim();
  const halves = t.split('::');
  if (halves.length > 2) throw bad();
  const groups = (s: string): number[] => {
    if (s === '') return [];
    return s.split(':').map((p) => {
      if (!/^[0-9a-f]{1,4}$/i.test(p)) throw bad();
      return parseInt(p, 16);
    });
  };
  const head = groups(halves[0]!);
  const tail = halves.length === 2 ? groups(halves[1]!) : [];
  const fill = 8 - head.length - tail.length;
  if (halves.length === 2 ? fill < 1 : fill !== 0) throw bad();
  const all = [...head, ...new Array<number>(halves.length === 2 ? fill : 0).fill(0), ...tail];
  const out = new Uint8Array(IPV6_ADDR_LEN);
  all.forEach((x, i) => { out[2 * i] = x >>> 8; out[2 * i + 1] = x & 0xff; });
  return out;
}
