/**
 * Stage 6, egress: how a forwarded frame leaves. The forwarding stages decided where (a local
 * port, a peer VTEP, the flood list); this stage decides how, then does it.
 *
 * Decide (pure; a trace runs it):
 *   to a local port    with virtio headers: PASS (its offload state goes along) or, from the
 *                      overlay, GRO; without: SEGMENT a super-frame to the pod MTU, or PLAIN
 *                      (finishing a partial checksum first)
 *   to a peer VTEP     no overlay port: no_egress_port; a super-frame: ENCAP_TRAIN (UDP GSO) or
 *                      ENCAP_SEGMENTS; too big for the underlay: ENCAP_FRAGMENTS without DF,
 *                      else mtu_exceeded (with DF and where the kernel would answer: an ICMP
 *                      fragmentation-needed reply, quoting the frame as it arrived); else ENCAP
 *   flood              each output is planned as above when it is sent
 * Act: the L3 rewrite the route decided (TTL - 1, MACs), MSS clamping, then the plan: outer
 * headers in place, segments and fragments into the work area (tunnel.ts), GRO queues (gro.ts),
 * the transmit queues (transmit.ts). A full work area turns the frame into a no_buffer drop.
 */

import { oversizeAction, OversizeAction } from '../mtu/pmtu.js';
import { fragmentPlan } from '../mtu/fragment.js';
import { clampMss } from '../mtu/mss.js';
import { completeChecksum, csumRangeOk } from '../offload/checksum.js';
import { gsoPlan, segmentGso } from '../offload/segment.js';
import type { Vtep } from '../fib/vtep.js';
import { ETH_HEADER_LEN, putEthAddrs } from '../wire/ethernet.js';
import { ipv4DecrementTtl } from '../wire/ipv4.js';
import { VXLAN_HEADROOM } from '../wire/encap.js';
import { VirtioGso, VirtioNetFlag } from '../wire/virtio-net-hdr.js';
import { Plan, Reply, Verdict, type FrameContext } from './context.js';
import { Drop, dropForStatus } from './drop.js';
import type { Gro } from './gro.js';
import type { IcmpReplies } from './icmp.js';
import type { SwitchState } from './state.js';
import { OFFLOAD_HEADROOM, type SwitchPort } from './switch-port.js';
import { SCRATCH_SLOT_SIZE, type Transmit } from './transmit.js';
import { MAX_PIECES, type Tunnel } from './tunnel.js';

export class Egress {
  private readonly st: SwitchState;
  private readonly tx: Transmit;
  private readonly tunnel: Tunnel;
  private readonly gro: Gro;
  private readonly icmp: IcmpReplies;

  constructor(st: SwitchState, tx: Transmit, tunnel: Tunnel, gro: Gro, icmp: IcmpReplies) {
    this.st = st;
    this.tx = tx;
    this.tunnel = tunnel;
    this.gro = gro;
    this.icmp = icmp;
  }

  // ---------------------------------------------------------------------------------------
  // Decide.

  decide(c: FrameContext): void {
    const v = c.verdict;
    let d: Drop = Drop.NONE;
    if (v === Verdict.TUNNEL) d = this.planTunnel(c);
    else if (v === Verdict.DELIVER) d = this.planLocal(c, c.out!);
    if (d !== Drop.NONE) c.dropWith(d);
  }

  /** planLocal decides how the frame goes to local port `out` (c.plan, c.pieces, c.completeCsum). */
  planLocal(c: FrameContext, out: SwitchPort): Drop {
    c.completeCsum = false;
    // The common case first: a complete frame to a port that takes frames.
    if (out.vnetHdrLen === 0 && c.vGso === VirtioGso.NONE && c.vFlags === 0) {
      c.plan = Plan.PLAIN;
      return Drop.NONE;
    }
    if (out.vnetHdrLen > 0) {
      // From the overlay, complete segments are coalesced; a partial checksum or a super-frame
      // carried whole (ingress-overlay.ts offloadState) passes with its offload state.
      c.plan = c.ingress.isOverlay && c.vFlags === 0 ? Plan.GRO : Plan.PASS;
      return Drop.NONE;
    }
    return this.planPlainRest(c);
  }

  /**
   * planPlainRest: planLocal for a super-frame or a partial checksum to a port without virtio
   * headers (a call: planLocal stays small enough for V8 to inline into Pipeline.run).
   */
  private planPlainRest(c: FrameContext): Drop {
    if (c.vGso !== VirtioGso.NONE) {
      const n = gsoPlan(c, c.vGso, c.vGsoSize, this.st.podMtu, MAX_PIECES);
      if (n < 0) return dropForStatus(n);
      c.plan = Plan.SEGMENT;
      c.pieces = n;
      return Drop.NONE;
    }
    if ((c.vFlags & VirtioNetFlag.NEEDS_CSUM) !== 0) {
      if (!csumRangeOk(c.end - c.start, c.vCsumStart, c.vCsumOff)) return Drop.OFFLOAD_INVALID;
      c.completeCsum = true;
    }
    c.plan = Plan.PLAIN;
    return Drop.NONE;
  }

  /** planTunnel decides how the frame goes into the overlay (to any VTEP: the plan does not depend on which). */
  planTunnel(c: FrameContext): Drop {
    const st = this.st;
    c.completeCsum = false;
    if (st.overlay === null) return Drop.NO_EGRESS_PORT;
    // The common case first: a complete frame that fits.
    if (c.vGso === VirtioGso.NONE && c.vFlags === 0 && c.end - c.start - ETH_HEADER_LEN <= st.maxInnerIpLen) {
      c.plan = Plan.ENCAP;
      return Drop.NONE;
    }
    return this.planTunnelRest(c, st.overlay);
  }

  /** planTunnelRest: planTunnel for super-frames, partial checksums and frames too big for the underlay. */
  private planTunnelRest(c: FrameContext, ov: SwitchPort): Drop {
    const st = this.st;
    if (c.vGso !== VirtioGso.NONE) {
      const n = gsoPlan(c, c.vGso, c.vGsoSize, st.maxInnerIpLen, MAX_PIECES);
      if (n < 0) return dropForStatus(n);
      c.pieces = n;
      if (st.tunnelTap !== null && offloadable(c)) {
        c.plan = Plan.ENCAP_OFFLOAD;
        return Drop.NONE;
      }
      c.plan = ov.gso ? Plan.ENCAP_TRAIN : Plan.ENCAP_SEGMENTS;
      return Drop.NONE;
    }
    if ((c.vFlags & VirtioNetFlag.NEEDS_CSUM) !== 0) {
      if (!csumRangeOk(c.end - c.start, c.vCsumStart, c.vCsumOff)) return Drop.OFFLOAD_INVALID;
      c.completeCsum = true;
    }
    if (c.end - c.start - ETH_HEADER_LEN > st.maxInnerIpLen) {
      const action = oversizeAction(c, st.maxInnerIpLen);
      if (action === OversizeAction.FRAGMENT) {
        const n = fragmentPlan(c, st.maxInnerIpLen, MAX_PIECES);
        if (n < 0) return dropForStatus(n);
        c.plan = Plan.ENCAP_FRAGMENTS;
        c.pieces = n;
        return Drop.NONE;
      }
      // DF: answer the sender (not a peer: the overlay never gets errors about its own frames).
      if (action === OversizeAction.FRAG_NEEDED && !c.ingress.isOverlay) c.reply = Reply.FRAG_NEEDED;
      return Drop.MTU_EXCEEDED;
    }
    c.plan = Plan.ENCAP;
    return Drop.NONE;
  }

  // ---------------------------------------------------------------------------------------
  // Act.

  act(c: FrameContext): void {
    const v = c.verdict, st = this.st;
    if (v === Verdict.DROP) {
      if (c.reply === Reply.FRAG_NEEDED) this.icmp.fragNeeded(c);
      return;
    }
    if (c.routed) applyRoutedRewrite(c);
    if (st.mssClamp && c.ipVersion !== 0) clampMss(c, st.podMtu);
    if (v === Verdict.FLOOD) return this.flood(c);
    // The common cases first: one frame, as it is or with outer headers in front of it.
    if (!c.completeCsum) {
      if (c.plan === Plan.ENCAP) return this.tunnel.encapOne(st.overlay!, c.vtep!, c.buf, c.start, c.end);
      if (c.plan === Plan.PLAIN) return this.tx.stage(c.out!, c.buf, c.start, c.end, 0, 0, 0);
    }
    const d = v === Verdict.TUNNEL ? this.sendTunnel(c, c.vtep!, c.buf, c.start, c.end) : this.sendLocal(c, c.out!);
    if (d !== Drop.NONE) c.dropWith(d);
  }

  /** sendLocal sends the frame to local port `out` as c.plan says. */
  private sendLocal(c: FrameContext, out: SwitchPort): Drop {
    const tx = this.tx;
    const b = c.buf, s = c.start, e = c.end;
    switch (c.plan) {
      case Plan.PASS:
        tx.stageWithOffload(c, out, b, c.dv, s, e);
        return Drop.NONE;
      case Plan.GRO:
        this.gro.queue(out, b, s, e);
        return Drop.NONE;
      case Plan.SEGMENT: {
        const at = tx.workTake(e - s + MAX_PIECES * 128);
        if (at < 0) return Drop.NO_BUFFER;
        const lens = this.tunnel.lens, w = tx.workBuf;
        const n = segmentGso(c, c.vGso, c.vGsoSize, this.st.podMtu, w, at, 0, lens);
        if (n < 0) return dropForStatus(n);
        let fs = at;
        for (let k = 0; k < n; k++) {
          tx.stage(out, w, fs, fs + lens[k]!, 0, 0, 0);
          fs += lens[k]!;
        }
        tx.workNext = fs;
        return Drop.NONE;
      }
      default:
        if (c.completeCsum) this.finishChecksum(c);
        tx.stage(out, b, s, e, 0, 0, 0);
        return Drop.NONE;
    }
  }

  /** sendTunnel sends [s, e) (the frame, or a copy of it) to `vtep` as c.plan says. */
  private sendTunnel(c: FrameContext, vtep: Vtep, b: Buffer, s: number, e: number): Drop {
    const ov = this.st.overlay!;
    if (c.completeCsum) this.finishChecksum(c);
    switch (c.plan) {
      case Plan.ENCAP:
        this.tunnel.encapOne(ov, vtep, b, s, e);
        return Drop.NONE;
      case Plan.ENCAP_OFFLOAD:
        this.tunnel.offload(c, vtep);
        return Drop.NONE;
      case Plan.ENCAP_TRAIN:
        return this.tunnel.segments(c, ov, vtep, true);
      case Plan.ENCAP_SEGMENTS:
        return this.tunnel.segments(c, ov, vtep, false);
      default:
        return this.tunnel.fragments(c, ov, vtep);
    }
  }

  /** finishChecksum completes the frame's partial checksum (range checked by the plan) once. */
  private finishChecksum(c: FrameContext): void {
    completeChecksum(c.buf, c.start, c.end, c.vCsumStart, c.vCsumOff);
    c.vFlags &= ~VirtioNetFlag.NEEDS_CSUM;
    c.completeCsum = false;
  }

  /**
   * flood sends a BUM frame to every local port but the ingress and, unless it came from the
   * overlay, once to each VTEP of the flood list (head-end replication). The first VTEP gets
   * the frame in place; the others get copies in scratch slots. A failed output is counted
   * under its reason; the others still go.
   */
  private flood(c: FrameContext): void {
    const st = this.st, stats = st.stats, ports = st.ports;
    let localVnet = false;
    for (let i = 0; i < ports.length; i++) {
      const sp = ports[i];
      if (sp === null || sp === undefined || sp === c.ingress || sp.isOverlay) continue;
      let d = this.planLocal(c, sp);
      if (d === Drop.NONE) d = this.sendLocal(c, sp);
      if (d !== Drop.NONE) stats.drop(d);
      if (sp.vnetHdrLen > 0) localVnet = true;
    }
    if (c.ingress.isOverlay) return; // never flooded back into the overlay
    const list = st.fdb.floodList;
    if (list.length === 0) return;
    const d = this.planTunnel(c);
    if (d !== Drop.NONE) {
      for (let i = 0; i < list.length; i++) stats.drop(d);
      if (c.reply === Reply.FRAG_NEEDED) this.icmp.fragNeeded(c);
      return;
    }
    // Segments and fragments are cut from the original without touching it: no copies needed.
    if (c.plan !== Plan.ENCAP) {
      for (let i = 0; i < list.length; i++) {
        const r = this.sendTunnel(c, list[i]!, c.buf, c.start, c.end);
        if (r !== Drop.NONE) stats.drop(r);
      }
      return;
    }
    // The first VTEP takes the frame in place (its outer header goes in front of it), unless a
    // local copy's virtio header already sits there; every other VTEP gets a copy.
    if (c.completeCsum) this.finishChecksum(c);
    const tx = this.tx, len = c.end - c.start;
    const inPlace = localVnet ? 0 : 1;
    for (let i = inPlace; i < list.length; i++) {
      if (len > SCRATCH_SLOT_SIZE - VXLAN_HEADROOM) { stats.drop(Drop.NO_BUFFER); continue; }
      const base = tx.scratchSlot() + VXLAN_HEADROOM;
      c.buf.copy(tx.scratch.arena, base, c.start, c.end);
      stats.floodCopies++;
      this.tunnel.encapOne(st.overlay!, list[i]!, tx.scratch.arena, base, base + len);
    }
    if (inPlace === 1) this.tunnel.encapOne(st.overlay!, list[0]!, c.buf, c.start, c.end);
  }


}

/**
 * applyRoutedRewrite: what routing does to a frame as it leaves (decided by the route stage):
 * TTL - 1 with an incremental checksum update, and the next hop's MAC and ours (c.l2).
 */
export function applyRoutedRewrite(c: FrameContext): void {
  const dv = c.dv;
  ipv4DecrementTtl(dv, c.l3Off);
  putEthAddrs(dv, c.start, c.l2);
}

/**
 * offloadable: a super-frame the tunnel TAP takes whole (Plan.ENCAP_OFFLOAD): IPv4 TCP with its
 * partial checksum (what TSO hands over), read with room for the tunnel headers in front, small
 * enough for the outer IPv4 length field, to one VTEP (not flooded), without outer UDP checksums
 * (the kernel would compute one per segment: TUN_F_UDP_TUNNEL_GSO_CSUM, not used) and with a TTL
 * the kernel's forwarding can take one from. (With ECN in the GSO type the TAP would want
 * TUN_F_TSO_ECN as well: such frames keep the software path.)
 */
function offloadable(c: FrameContext): boolean {
  // Unicast only: a flooded frame goes to several VTEPs from one buffer (segments are cut from it).
  if (c.verdict !== Verdict.TUNNEL || c.vtep === null) return false;
  const v = c.vtep.template;
  return c.vGso === VirtioGso.TCPV4 && (c.vFlags & VirtioNetFlag.NEEDS_CSUM) !== 0 &&
    c.ingress.headroom >= OFFLOAD_HEADROOM && c.end - c.start + VXLAN_HEADROOM - ETH_HEADER_LEN <= 0xffff &&
    !v.udpChecksum && v.ttl < 255;
}
