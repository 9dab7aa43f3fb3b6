/**
 * The ARP responder (part of the ingress stage, L3 mode): no ARP crosses the overlay. The switch
 * answers pods for the gateway, the VTEP address, local pods (their real MAC) and remote pods
 * (proxy ARP: our VTEP MAC), and the host stack for every pod address. Replies are built in
 * place, over the request, and sent back out of the port it came in on.
 *
 * Pod ARP is anti-spoofed first (in L2 mode too): the sender hardware address must be the pod's
 * MAC and the sender protocol address its IP (or 0.0.0.0, an RFC 5227 probe).
 */

import { RouteKind } from '../fib/route-table.js';
import { ArpOp, ArpView, ARP_LEN } from '../wire/arp.js';
import { EtherType } from '../wire/consts.js';
import { ETH_HEADER_LEN, EthernetView } from '../wire/ethernet.js';
import { Reply, type FrameContext } from './context.js';
import { Drop } from './drop.js';
import type { SwitchState } from './state.js';
import type { Transmit } from './transmit.js';

export class ArpResponder {
  private readonly st: SwitchState;
  private readonly tx: Transmit;
  private readonly arp = new ArpView();
  private readonly eth = new EthernetView();

  constructor(st: SwitchState, tx: Transmit) {
    this.st = st;
    this.tx = tx;
  }

  /** fromPod decides about an ARP frame from a pod port: drop, answer (REPLY), or, in L2 mode, bridge it (NEXT). */
  fromPod(c: FrameContext): void {
    const sp = c.ingress, st = this.st;
    const arp = this.arp.reset(c.buf, c.start + ETH_HEADER_LEN, c.end);
    if (!arp.checkLen() || !arp.isEthernetIpv4()) return c.dropWith(Drop.ARP_MALFORMED);
    const spa = arp.spa, tpa = arp.tpa, oper = arp.oper;
    if (arp.sha !== sp.mac || (spa !== sp.ip && spa !== 0)) return c.dropWith(Drop.ARP_SPOOF);
    if (st.l2) return; // the bridge floods or forwards it
    if (oper !== ArpOp.REQUEST || tpa === spa) return c.dropWith(Drop.ARP_UNANSWERED); // a reply, or gratuitous
    let answer = -1;
    if (tpa === st.gatewayIp || tpa === st.vtepIp) answer = st.vtepMac;
    else {
      const r = st.routes.lookup(tpa);
      c.route = r;
      if (r !== null && r.kind === RouteKind.LOCAL) answer = r.port === sp.id ? -1 : r.mac;
      else if (r !== null && r.kind === RouteKind.VTEP) answer = st.vtepMac;
    }
    if (answer < 0) return c.dropWith(Drop.ARP_UNANSWERED);
    this.answer(c, answer);
  }

  /** fromHost decides about an ARP frame from the host port (L3 mode): the switch is the host's router to every pod. */
  fromHost(c: FrameContext): void {
    const st = this.st;
    const arp = this.arp.reset(c.buf, c.start + ETH_HEADER_LEN, c.end);
    if (!arp.checkLen() || !arp.isEthernetIpv4()) return c.dropWith(Drop.ARP_MALFORMED);
    const tpa = arp.tpa;
    if (arp.oper !== ArpOp.REQUEST) return c.dropWith(Drop.ARP_UNANSWERED);
    if (tpa === st.vtepIp || !(st.clusterCidr.contains(tpa) || tpa === st.gatewayIp)) return c.dropWith(Drop.ARP_UNANSWERED);
    const r = tpa === st.gatewayIp ? null : st.routes.lookup(tpa);
    c.route = r;
    if (r !== null && (r.kind === RouteKind.BLACKHOLE || r.kind === RouteKind.HOST)) return c.dropWith(Drop.ARP_UNANSWERED);
    this.answer(c, st.vtepMac);
  }

  private answer(c: FrameContext, mac: number): void {
    c.replyMac = mac;
    c.replyWith(Reply.ARP);
  }

  /** act turns the request into the reply "tpa is-at replyMac" in place and sends it back. */
  act(c: FrameContext): void {
    const len = arpReplyInPlace(c.buf, c.start, c.end, c.replyMac, this.arp, this.eth);
    this.tx.stageLocal(c.ingress, c.buf, c.dv, c.start, c.start + len);
    this.st.stats.arpReplies++;
  }
}

/**
 * arpReplyInPlace turns the (checked) ARP request in the frame buf[start, end) into the reply
 * "tpa is-at mac", addressed to the requester, and returns the reply's length.
 */
export function arpReplyInPlace(buf: Buffer, start: number, end: number, mac: number, arpView: ArpView, ethView: EthernetView): number {
  const arp = arpView.reset(buf, start + ETH_HEADER_LEN, end);
  const sha = arp.sha, spa = arp.spa, tpa = arp.tpa;
  arp.emit(ArpOp.REPLY, mac, tpa, sha, spa);
  ethView.reset(buf, start, start + ETH_HEADER_LEN).emit(sha, mac, EtherType.ARP);
  return ETH_HEADER_LEN + ARP_LEN;
}
