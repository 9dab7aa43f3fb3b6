/**
 * ICMP messages the switch originates: errors about a packet it cannot forward (time exceeded,
 * later fragmentation needed) and echo replies for its gateway address. Errors are built into
 * a scratch slot, quote the offending IPv4 header and the start of its payload (RFC 1812
 * §4.3.2.3, capped like Linux at 576 bytes of IP datagram), are never sent about another ICMP
 * error, a fragment other than the first, or a broadcast/multicast/zero source, and are rate
 * limited by a token bucket.
 */

import { ICMP_ERROR_MAX_IP_LEN, IcmpErrorIp, emitIcmpv4Error } from '../mtu/icmp-error.js';
import { IpProto } from '../wire/consts.js';
import type { EthernetView } from '../wire/ethernet.js';
import { Icmpv4Type, type Icmpv4View, isIcmpv4Error } from '../wire/icmpv4.js';
import type { Ipv4View } from '../wire/ipv4.js';

/** Linux sends ICMP errors with IPTOS_PREC_INTERNETCONTROL. */
export const ICMP_ERROR_TOS = 0xc0;
/** The largest ICMP error datagram (RFC 1812 §4.3.2.3: no more than 576 bytes). */
export { ICMP_ERROR_MAX_IP_LEN };

/** A token bucket: `ratePerSec` sustained, `burst` at once; takes the coarse clock's ms. */
export class TokenBucket {
  private tokens: number;
  private last = -1;
  constructor(readonly ratePerSec: number, readonly burst: number) {
    this.tokens = burst;
  }
  take(now: number): boolean {
    if (this.last >= 0) this.tokens = Math.min(this.burst, this.tokens + ((now - this.last) * this.ratePerSec) / 1000);
    this.last = now;
    if (this.tokens < 1) return false;
    this.tokens -= 1;
    return true;
  }
}

/**
 * mayAnswerWithError: RFC 1122 §3.2.2 — no ICMP error about an ICMP error, a non-initial
 * fragment, or a packet from a zero, broadcast or multicast source. `ip` is the offending
 * packet's header view (validated).
 */
export function mayAnswerWithError(ip: Ipv4View): boolean {
  if (ip.fragOffset !== 0) return false;
  const src = ip.src;
  if (src === 0 || src === 0xffff_ffff || src >>> 28 === 0xe) return false;
  if (ip.protocol === IpProto.ICMP) {
    const p = ip.payloadOff;
    if (ip.payloadEnd - p < 1) return false;
    if (isIcmpv4Error(ip.dv.getUint8(p))) return false;
  }
  return true;
}

/** The IPv4 fields of buildIcmpError's frames, refilled per call (nothing allocated). */
const errIp = new IcmpErrorIp();

/**
 * buildIcmpError writes Ethernet + IPv4 + ICMP into out[off, ...) answering the packet whose
 * IPv4 header view is `orig`: to its source IP and `ethDst`, from `srcIp`/`ethSrc`. `rest` is
 * the 32-bit rest-of-header word (next-hop MTU for frag-needed). Returns the frame length.
 * `out` must have room for ETH_HEADER_LEN + ICMP_ERROR_MAX_IP_LEN bytes after `off`.
 * The frame itself is built by emitIcmpv4Error (src/mtu/icmp-error.ts), shared with the
 * tunnel PMTU reply; this picks the values Linux uses for errors a router originates.
 */
export function buildIcmpError(
  out: Buffer, off: number, ethDst: number, ethSrc: number, srcIp: number,
  type: number, code: number, rest: number, orig: Ipv4View,
  v: { eth: EthernetView; ip: Ipv4View; icmp: Icmpv4View },
): number {
  errIp.set(srcIp, orig.src, 64, ICMP_ERROR_TOS, 0);
  return emitIcmpv4Error(out, off, ethDst, ethSrc, errIp, type, code, rest, orig.buf, orig.off, orig.payloadEnd - orig.off, v);
}

/**
 * echoReplyInPlace turns the ICMP echo request in `ip` (validated, protocol ICMP, type 8) into
 * the reply: addresses swapped, type 0, TTL 64, checksums updated. The Ethernet header is the
 * caller's to rewrite.
 */
export function echoReplyInPlace(ip: Ipv4View, icmp: Icmpv4View): boolean {
  icmp.reset(ip.buf, ip.payloadOff, ip.payloadEnd);
  if (!icmp.checkLen() || icmp.type !== Icmpv4Type.ECHO_REQUEST) return false;
  const dv = icmp.dv, o = icmp.off;
  dv.setUint8(o, Icmpv4Type.ECHO_REPLY);
  dv.setUint8(o + 1, 0);
  icmp.fillChecksum();
  const src = ip.src;
  ip.src = ip.dst;
  ip.dst = src;
  dv.setUint8(ip.off + 8, 64);
  ip.fillChecksum();
  return true;
}
