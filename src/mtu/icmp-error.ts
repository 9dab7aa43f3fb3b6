/**
 * Building an ICMPv4 error frame: Ethernet + IPv4 + ICMP header + a quote of the offending
 * datagram, capped so that the IP datagram is at most 576 bytes (RFC 1812 §4.3.2.3; Linux caps
 * the same way). Shared by the switch's own errors (time exceeded, src/pipeline/icmp.ts) and the
 * tunnel PMTU reply (pmtu.ts), which differ only in the values they pass.
 *
 * How the switch uses this: through buildIcmpError (src/pipeline/icmp.ts) and buildFragNeeded
 * (pmtu.ts); it owns the scratch slot the frame is built in and the rate limiting.
 */

import { EtherType, IpProto } from '../wire/consts.js';
import { ETH_HEADER_LEN, type EthernetView } from '../wire/ethernet.js';
import { ICMPV4_HEADER_LEN, type Icmpv4View } from '../wire/icmpv4.js';
import { IPV4_HEADER_LEN, type Ipv4View } from '../wire/ipv4.js';

/** The largest ICMP error datagram (RFC 1812 §4.3.2.3: no more than 576 bytes). */
export const ICMP_ERROR_MAX_IP_LEN = 576;
/** The most bytes of the offending datagram an error quotes: 576 - 20 - 8 = 548. */
export const ICMP_ERROR_MAX_QUOTE = ICMP_ERROR_MAX_IP_LEN - IPV4_HEADER_LEN - ICMPV4_HEADER_LEN;
/** The largest frame emitIcmpv4Error writes: 14 + 576 = 590 bytes. */
export const ICMP_ERROR_MAX_FRAME_LEN = ETH_HEADER_LEN + ICMP_ERROR_MAX_IP_LEN;

/** Views the builder re-points into the output buffer (owned by the caller, reused). */
export interface IcmpErrorViews {
  readonly eth: EthernetView;
  readonly ip: Ipv4View;
  readonly icmp: Icmpv4View;
}

/**
 * The IPv4 header fields an error is sent with: a mutable record the caller keeps and refills
 * per error, so that building one allocates nothing.
 */
export class IcmpErrorIp {
  src = 0;
  dst = 0;
  ttl = 64;
  tos = 0;
  /** The raw flags + fragment offset word (IPV4_FLAG_DF for DF). */
  flagsFrag = 0;

  set(src: number, dst: number, ttl: number, tos: number, flagsFrag: number): this {
    this.src = src;
    this.dst = dst;
    this.ttl = ttl;
    this.tos = tos;
    this.flagsFrag = flagsFrag;
    return this;
  }
}

/**
 * emitIcmpv4Error writes, at out[off, ...), an Ethernet header (ethDst, ethSrc, IPv4), an
 * IPv4 header (ip.*, ID 0, protocol ICMP, checksum), an ICMP header (type, code, `rest` = the
 * 32-bit word after the checksum) and min(quoteLen, 548) bytes of quote[quoteOff, ...), then the
 * ICMP checksum. Returns the frame length. Preconditions: out has that many bytes after `off`
 * (ICMP_ERROR_MAX_FRAME_LEN always suffices) and does not overlap the quoted bytes. Writes
 * every byte of the frame; reads only the quoted range.
 */
export function emitIcmpv4Error(
  out: Buffer, off: number, ethDst: number, ethSrc: number, ip: IcmpErrorIp,
  type: number, code: number, rest: number,
  quote: Buffer, quoteOff: number, quoteLen: number, v: IcmpErrorViews,
): number {
  const q = quoteLen < ICMP_ERROR_MAX_QUOTE ? (quoteLen > 0 ? quoteLen : 0) : ICMP_ERROR_MAX_QUOTE;
  const ipLen = IPV4_HEADER_LEN + ICMPV4_HEADER_LEN + q;
  const frameLen = ETH_HEADER_LEN + ipLen;
  v.eth.reset(out, off, off + frameLen).emit(ethDst, ethSrc, EtherType.IPV4);
  const ipOff = off + ETH_HEADER_LEN;
  const icmpOff = ipOff + IPV4_HEADER_LEN;
  quote.copy(out, icmpOff + ICMPV4_HEADER_LEN, quoteOff, quoteOff + q);
  const icmp = v.icmp.reset(out, icmpOff, off + frameLen);
  icmp.emitHeader(type, code, rest);
  icmp.fillChecksum();
  v.ip.reset(out, ipOff, off + frameLen).emit(ip.src, ip.dst, IpProto.ICMP, ipLen, ip.ttl, ip.tos, 0, ip.flagsFrag);
  return frameLen;
}
