/**
 * What to do with a frame that does not fit the underlay once encapsulated, and the ICMP
 * "fragmentation needed" reply built like the kernel's bridged-tunnel PMTU discovery
 * (net/ipv4/ip_tunnel_core.c, skb_tunnel_check_pmtu -> iptunnel_pmtud_check_icmp ->
 * iptunnel_pmtud_build_icmp, Linux 5.9+; read at a 6.x tree and its later fixes).
 *
 * The decision (oversizeAction), for a non-GSO inner frame and mtu = underlay MTU - 50:
 *   - FITS        frame length - 14 <= mtu (the kernel's skb->len - network offset <= mtu);
 *   - FRAGMENT    IPv4 with DF clear: fragment.ts splits it before encapsulation;
 *   - FRAG_NEEDED IPv4 with DF, and the kernel would answer: buildFragNeeded, then drop;
 *   - DROP        anything else (IPv6, non-IP, DF packets the kernel would not answer).
 * The kernel's conditions for answering (iptunnel_pmtud_check_icmp), followed as they are:
 *   mtu >= 576; the flags/offset word is exactly DF (no MF, no offset, no reserved bit);
 *   destination neither 255.255.255.255 nor multicast; source not 0.0.0.0/8, not 127.0.0.0/8,
 *   not 255.255.255.255, not multicast; not an ICMP error (types 3, 4, 5, 11, 12; an ICMP
 *   packet too short to show its type is not answered either).
 * The reply (iptunnel_pmtud_build_icmp):
 *   Ethernet: destination = the original source MAC, source = the original destination MAC;
 *   IPv4: IHL 5, TOS 0, ID 0, DF, TTL = the original TTL, protocol ICMP, source = the original
 *     destination, destination = the original source (the reply seems to come from the host
 *     the packet was for, as a router on the path would be invisible on a bridge);
 *   ICMP: type 3 code 4, unused 0, next-hop MTU = mtu; the quote is the original IP packet
 *     trimmed to 548 bytes, so the datagram is 576 bytes (always: an oversized packet is longer
 *     than mtu >= 576).
 * Deviations from the kernel: after the reply the kernel still hands a DF packet it did not
 * answer to the underlay (where it may be fragmented or dropped unseen); the issue wants
 * neither, so those are DROP here. IPv6 gets no Packet Too Big (the kernel sends one): DROP,
 * counted. The kernel also skips all of this for packets addressed to the bridge itself
 * (PACKET_HOST): the switch never encapsulates those.
 *
 * How the pipeline uses this: its egress stage decides with oversizeAction(layout, mtu) on the
 * layout the ingress stage parsed. FITS: encapsulate. FRAGMENT: fragmentIpv4 (with `prefix` =
 * the outer header room) and encapsulate each fragment. FRAG_NEEDED: drop the frame as
 * mtu_exceeded and, if the ICMP token bucket allows, buildFragNeeded into a scratch slot and
 * send that back out of the ingress port. DROP: mtu_exceeded.
 */

import { dvU48 } from '../wire/bytes.js';
import { IpProto } from '../wire/consts.js';
import { ETH_HEADER_LEN } from '../wire/ethernet.js';
import { DestUnreachCode, Icmpv4Type, isIcmpv4Error } from '../wire/icmpv4.js';
import { IPV4_FLAG_DF } from '../wire/ipv4.js';
import { ICMP_ERROR_MAX_FRAME_LEN, IcmpErrorIp, emitIcmpv4Error, type IcmpErrorViews } from './icmp-error.js';
import type { FrameLayout } from './layout.js';
import { MtuStatus } from './status.js';

/** The smallest MTU the kernel answers with frag-needed (576, RFC 791's reassembly minimum). */
export const PMTUD_MIN_MTU = 576;

export const OversizeAction = { FITS: 0, FRAGMENT: 1, FRAG_NEEDED: 2, DROP: 3 } as const;
export type OversizeAction = (typeof OversizeAction)[keyof typeof OversizeAction];

/**
 * oversizeAction: see the module doc, for the frame `L` was parsed over (any parse status: a
 * frame that is not valid IPv4 and does not fit is DROP). `mtu` is the largest inner IP packet
 * (underlay MTU - VXLAN_OVERHEAD). Mutates nothing; allocates nothing.
 */
export function oversizeAction(L: FrameLayout, mtu: number): OversizeAction {
  if (L.end - L.start - ETH_HEADER_LEN <= mtu) return OversizeAction.FITS;
  if (L.ipVersion !== 4) return OversizeAction.DROP;
  if ((L.flagsFrag & IPV4_FLAG_DF) === 0) return OversizeAction.FRAGMENT;
  return fragNeededAllowed(L.dv, L.l3Off, L.ipEnd, mtu) ? OversizeAction.FRAG_NEEDED : OversizeAction.DROP;
}

/**
 * fragNeededAllowed: the kernel's iptunnel_pmtud_check_icmp conditions (module doc) for the
 * validated IPv4 packet dv[l3, ipEnd). Reads only inside that range.
 */
export function fragNeededAllowed(dv: DataView, l3: number, ipEnd: number, mtu: number): boolean {
  if (mtu < PMTUD_MIN_MTU || dv.getUint16(l3 + 6) !== IPV4_FLAG_DF) return false;
  const src = dv.getUint32(l3 + 12), dst = dv.getUint32(l3 + 16);
  if (dst === 0xffff_ffff || dst >>> 28 === 0xe) return false;
  if (src >>> 24 === 0 || src >>> 24 === 127 || src === 0xffff_ffff || src >>> 28 === 0xe) return false;
  if (dv.getUint8(l3 + 9) === IpProto.ICMP) {
    const icmp = l3 + ((dv.getUint8(l3) & 0x0f) << 2);
    if (icmp >= ipEnd || isIcmpv4Error(dv.getUint8(icmp))) return false;
  }
  return true;
}

const replyIp = new IcmpErrorIp();

/**
 * buildFragNeeded writes, at out[off, ...), the kernel's frag-needed reply to the Ethernet/IPv4
 * frame `L` was parsed over (module doc) with next-hop MTU `mtu`, and returns its length (590
 * for any packet longer than 576 bytes). It checks nothing the caller decided already
 * (oversizeAction); it needs a parsed IPv4 frame (else NOT_IPV4) and ICMP_ERROR_MAX_FRAME_LEN
 * bytes after `off` (else NO_ROOM), with `out` not overlapping the frame. Mutates only out;
 * allocates nothing; `v` are the caller's reusable views.
 */
export function buildFragNeeded(L: FrameLayout, mtu: number, out: Buffer, off: number, v: IcmpErrorViews): number {
  if (L.ipVersion !== 4) return MtuStatus.NOT_IPV4;
  if (off < 0 || off + ICMP_ERROR_MAX_FRAME_LEN > out.length) return MtuStatus.NO_ROOM;
  const dv = L.dv, start = L.start, l3 = L.l3Off;
  replyIp.set(dv.getUint32(l3 + 16), dv.getUint32(l3 + 12), dv.getUint8(l3 + 8), 0, IPV4_FLAG_DF);
  // The kernel trims the packet after pulling the Ethernet header: any padding is quoted too.
  return emitIcmpv4Error(
    out, off, dvU48(dv, start + 6), dvU48(dv, start), replyIp,
    Icmpv4Type.DEST_UNREACH, DestUnreachCode.FRAG_NEEDED, mtu & 0xffff,
    L.buf, l3, L.end - l3, v,
  );
}

