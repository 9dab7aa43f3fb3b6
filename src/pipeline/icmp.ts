/**
 * ICMP messages the switch originates: errors about a packet it cannot forward (time exceeded,
 * fragmentation needed) and echo replies for its gateway address. Errors are built into a
 * scratch slot, quote the offending IPv4 header and the start of its payload (RFC 1812
 * §4.3.2.3, capped like Linux at 576 bytes of IP datagram), are never sent about another ICMP
 * error, a fragment other than the first, or a broadcast/multicast/zero source, and are rate
 * limited by a token bucket.
 *
 * The stages decide that a reply is due (FrameContext.reply); IcmpReplies sends it when they
 * act: only then is a token taken and a counter bumped.
 */

import { buildFragNeeded } from '../mtu/pmtu.js';
import { ICMP_ERROR_MAX_IP_LEN, IcmpErrorIp, emitIcmpv4Error } from '../mtu/icmp-error.js';
import type { FrameLayout } from '../mtu/layout.js';
import { RouteKind } from '../fib/route-table.js';
import { dvPutU48, dvU48 } from '../wire/bytes.js';
import { IpProto } from '../wire/consts.js';
import { EthernetView } from '../wire/ethernet.js';
import { Icmpv4Type, Icmpv4View, isIcmpv4Error } from '../wire/icmpv4.js';
import { Ipv4View } from '../wire/ipv4.js';
import { VXLAN_HEADROOM } from '../wire/encap.js';
import type { FrameContext } from './context.js';
import type { SwitchState } from './state.js';
import type { Transmit } from './transmit.js';
import type { Tunnel } from './tunnel.js';

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
  /** available: the whole tokens a take() at `now` could use (a trace asks; nothing changes). */
  available(now: number): number {
    const t = this.last >= 0 ? Math.min(this.burst, this.tokens + ((now - this.last) * this.ratePerSec) / 1000) : this.tokens;
    return Math.floor(t);
  }
}

/**
 * mayAnswerWithError: RFC 1122 §3.2.2 — no ICMP error about an ICMP error, a non-initial
 * fragment, or a packet from a zero, broadcast or multicast source. `L` is the offending
 * packet's layout (parsed IPv4).
 */
export function mayAnswerWithError(L: FrameLayout): boolean {
  if (L.ipVersion !== 4 || (L.flagsFrag & 0x1fff) !== 0) return false;
  const dv = L.dv, l3 = L.l3Off;
  const src = dv.getUint32(l3 + 12);
  if (src === 0 || src === 0xffff_ffff || src >>> 28 === 0xe) return false;
  if (L.proto === IpProto.ICMP) {
    if (L.ipEnd - L.l4Off < 1) return false;
    if (isIcmpv4Error(dv.getUint8(L.l4Off))) return false;
  }
  return true;
}

/** isEchoRequest: the parsed IPv4 packet is an unfragmented ICMP echo request with a whole header. */
export function isEchoRequest(L: FrameLayout): boolean {
  return L.ipVersion === 4 && L.proto === IpProto.ICMP && (L.flagsFrag & 0x3fff) === 0 && L.ipEnd - L.l4Off >= 8
    && L.dv.getUint8(L.l4Off) === Icmpv4Type.ECHO_REQUEST;
}

/** The IPv4 fields of buildIcmpError's frames, refilled per call (nothing allocated). */
const errIp = new IcmpErrorIp();

/** Views the ICMP builders re-point (owned by the caller, reused). */
export interface IcmpViews { readonly eth: EthernetView; readonly ip: Ipv4View; readonly icmp: Icmpv4View }

/**
 * buildIcmpError writes Ethernet + IPv4 + ICMP into out[off, ...) answering the IPv4 packet of
 * layout `L`: to its source IP and `ethDst`, from `srcIp`/`ethSrc`. `rest` is the 32-bit
 * rest-of-header word. Returns the frame length. `out` must have room for ETH_HEADER_LEN +
 * ICMP_ERROR_MAX_IP_LEN bytes after `off`. The frame is built by emitIcmpv4Error
 * (src/mtu/icmp-error.ts), shared with the tunnel PMTU reply; this picks the values Linux uses
 * for errors a router originates.
 */
export function buildIcmpError(out: Buffer, off: number, ethDst: number, ethSrc: number, srcIp: number, type: number, code: number, rest: number, L: FrameLayout, v: IcmpViews): number {
  errIp.set(srcIp, L.dv.getUint32(L.l3Off + 12), 64, ICMP_ERROR_TOS, 0);
  return emitIcmpv4Error(out, off, ethDst, ethSrc, errIp, type, code, rest, L.buf, L.l3Off, L.ipEnd - L.l3Off, v);
}

/**
 * echoReplyInPlace turns the ICMP echo request of layout `L` (isEchoRequest) into the reply:
 * addresses swapped, type 0, TTL 64, checksums updated. The Ethernet header is the caller's.
 */
export function echoReplyInPlace(L: FrameLayout, v: IcmpViews): void {
  const ip = v.ip.reset(L.buf, L.l3Off, L.ipEnd);
  const icmp = v.icmp.reset(L.buf, L.l4Off, L.ipEnd);
  const dv = icmp.dv, o = icmp.off;
  dv.setUint8(o, Icmpv4Type.ECHO_REPLY);
  dv.setUint8(o + 1, 0);
  icmp.fillChecksum();
  const src = ip.src;
  ip.src = ip.dst;
  ip.dst = src;
  dv.setUint8(ip.off + 8, 64);
  ip.fillChecksum();
}

/** IcmpReplies sends the replies the stages decided (act only). */
export class IcmpReplies {
  private readonly st: SwitchState;
  private readonly tx: Transmit;
  private readonly tunnel: Tunnel;
  private readonly views: IcmpViews = { eth: new EthernetView(), ip: new Ipv4View(), icmp: new Icmpv4View() };

  constructor(st: SwitchState, tx: Transmit, tunnel: Tunnel) {
    this.st = st;
    this.tx = tx;
    this.tunnel = tunnel;
  }

  /** echo answers the echo request in place and sends it back out of the ingress port. */
  echo(c: FrameContext): void {
    echoReplyInPlace(c, this.views);
    const dv = c.dv, s = c.start;
    dvPutU48(dv, s, dvU48(dv, s + 6));
    dvPutU48(dv, s + 6, this.st.vtepMac);
    this.tx.stageLocal(c.ingress, c.buf, dv, s, c.ipEnd);
    this.st.stats.icmpSent++;
  }

  /**
   * error sends the ICMP error c.icmpType/Code/Rest about the frame back to its sender, rate
   * limited: out of the ingress port, or back through the tunnel to the sender's node when the
   * frame came from the overlay.
   */
  error(c: FrameContext): void {
    const st = this.st;
    if (!st.icmpBucket.take(st.clock.now)) { st.stats.icmpSuppressed++; return; }
    const tx = this.tx, sb = tx.scratch.arena, sdv = tx.scratchDv;
    const base = tx.scratchSlot() + VXLAN_HEADROOM;
    const fromOverlay = c.ingress.isOverlay;
    const src = c.ingress.isPod ? st.gatewayIp : st.vtepIp;
    // The error goes back to the frame's sender: its source MAC (a pod, the host, or a peer VTEP).
    const len = buildIcmpError(sb, base, c.srcMac, st.vtepMac, src, c.icmpType, c.icmpCode, c.icmpRest, c, this.views);
    st.stats.icmpSent++;
    if (!fromOverlay) {
      tx.stageLocal(c.ingress, sb, sdv, base, base + len);
      return;
    }
    // Back through the tunnel to the sender's node: routed by the error's destination.
    const r = st.routes.lookup(c.srcIp);
    if (r !== null && r.kind === RouteKind.VTEP && st.overlay !== null) {
      dvPutU48(sdv, base, r.vtep!.mac);
      this.tunnel.encapOne(st.overlay, r.vtep!, sb, base, base + len);
    }
  }

  /** fragNeeded sends the kernel's tunnel PMTU reply about a DF frame too big for the underlay. */
  fragNeeded(c: FrameContext): void {
    const st = this.st;
    if (!st.icmpBucket.take(st.clock.now)) { st.stats.icmpSuppressed++; return; }
    const tx = this.tx;
    const base = tx.scratchSlot() + VXLAN_HEADROOM;
    const len = buildFragNeeded(c, st.maxInnerIpLen, tx.scratch.arena, base, this.views);
    if (len <= 0) return;
    st.stats.icmpSent++;
    st.stats.fragNeededSent++;
    tx.stageLocal(c.ingress, tx.scratch.arena, tx.scratchDv, base, base + len);
  }
}
