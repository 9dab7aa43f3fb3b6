/**
 * Stage 4 (L3 mode), route: forward the IPv4 packet of a frame addressed to the gateway MAC by
 * longest-prefix match on its destination, flannel-style.
 *
 *   header checksum verified (RFC 1812 §5.2.2, as Linux's ip_rcv_core: the TTL and ECN
 *   rewrites are incremental and would carry a bad sum on)
 *   -> the gateway address itself: echo requests are answered (REPLY), the rest dropped
 *   -> LPM: no route or a blackhole (an unused address of a known pod CIDR): no_route
 *   -> TTL <= 1: dropped, ICMP time exceeded back to the sender
 *   -> LOCAL pod: DELIVER to its port; HOST: DELIVER to the host port; VTEP: TUNNEL to the
 *      peer (never from the overlay back into it)
 * Deciding rewrites nothing: the TTL decrement and the new MACs (next hop <- our VTEP MAC) are
 * recorded in the context and applied by the egress stage when the frame leaves, after the MTU
 * rules had the frame as it arrived.
 */

import { RouteKind } from '../fib/route-table.js';
import { Icmpv4Type, TimeExceededCode } from '../wire/icmpv4.js';
import { ipv4HeaderChecksumOk } from '../wire/ipv4.js';
import { Reply, type FrameContext } from './context.js';
import { Drop } from './drop.js';
import { type IcmpReplies, isEchoRequest, mayAnswerWithError } from './icmp.js';
import type { SwitchState } from './state.js';

export class Route {
  private readonly st: SwitchState;
  private readonly icmp: IcmpReplies;

  constructor(st: SwitchState, icmp: IcmpReplies) {
    this.st = st;
    this.icmp = icmp;
  }

  decide(c: FrameContext): void {
    const st = this.st, L = c, dv = c.dv;
    if (!ipv4HeaderChecksumOk(dv, L.l3Off, L.ipHdrLen)) return c.dropWith(Drop.IPV4_BAD_CHECKSUM);
    const dst = c.dstIp;
    if (dst === st.gatewayIp) {
      if (!isEchoRequest(L)) return c.dropWith(Drop.GATEWAY_UNANSWERED);
      return c.replyWith(Reply.ECHO);
    }
    const r = st.routes.lookup(dst);
    c.route = r;
    if (r === null || r.kind === RouteKind.BLACKHOLE) return c.dropWith(Drop.NO_ROUTE);
    if (dv.getUint8(L.l3Off + 8) <= 1) {
      c.dropWith(Drop.TTL_EXCEEDED);
      if (mayAnswerWithError(L)) {
        c.reply = Reply.ICMP_ERROR;
        c.icmpType = Icmpv4Type.TIME_EXCEEDED;
        c.icmpCode = TimeExceededCode.TTL;
        c.icmpRest = 0;
      }
      return;
    }
    switch (r.kind) {
      case RouteKind.LOCAL: {
        const out = st.portById(r.port);
        if (out === null) return c.dropWith(Drop.PORT_DETACHED);
        if (out === c.ingress && !c.natted) return c.dropWith(Drop.HAIRPIN);
        c.routed = true;
        c.l2 = r.l2!;
        return c.deliverTo(out);
      }
      case RouteKind.HOST: {
        const out = st.host;
        if (out === null) return c.dropWith(Drop.NO_EGRESS_PORT);
        if (out === c.ingress && !c.natted) return c.dropWith(Drop.HAIRPIN);
        c.routed = true;
        c.l2 = out.hostAddrs(st.vtepMac);
        return c.deliverTo(out);
      }
      default: {
        if (c.ingress.isOverlay) return c.dropWith(Drop.OVERLAY_LOOP);
        const vtep = r.vtep!;
        c.routed = true;
        c.l2 = r.l2!;
        return c.tunnelTo(vtep);
      }
    }
  }

  /** act sends the replies route decided: the gateway's echo reply, time exceeded. */
  act(c: FrameContext): void {
    if (c.reply === Reply.ECHO) this.icmp.echo(c);
    else if (c.reply === Reply.ICMP_ERROR) this.icmp.error(c);
  }

}
