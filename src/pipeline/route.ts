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
import { formatIpv4, formatMac } from '../wire/addr.js';
import { Icmpv4Type, TimeExceededCode } from '../wire/icmpv4.js';
import { ipv4HeaderChecksumOk } from '../wire/ipv4.js';
import { Reply, Verdict, type FrameContext } from './context.js';
import { Drop } from './drop.js';
import { type IcmpReplies, isEchoRequest, mayAnswerWithError } from './icmp.js';
import type { SwitchState } from './state.js';
import { PortRole } from './switch-port.js';

export class Route {
  private readonly st: SwitchState;
  private readonly icmp: IcmpReplies;

  constructor(st: SwitchState, icmp: IcmpReplies) {
    this.st = st;
    this.icmp = icmp;
  }

  decide(c: FrameContext): void {
    const st = this.st, L = c, dv = c.dv, t = c.trace;
    if (!ipv4HeaderChecksumOk(dv, L.l3Off, L.ipHdrLen)) return c.dropWith(Drop.IPV4_BAD_CHECKSUM);
    const dst = c.dstIp;
    if (t !== null) t.look(`destination ${formatIpv4(dst)}, ttl ${dv.getUint8(L.l3Off + 8)}`);
    if (dst === st.gatewayIp) {
      if (t !== null) t.match('gateway', `${formatIpv4(dst)} is the pods' gateway: it answers ICMP echo requests only`);
      if (!isEchoRequest(L)) return c.dropWith(Drop.GATEWAY_UNANSWERED);
      c.verdict = Verdict.REPLY;
      c.reply = Reply.ECHO;
      return;
    }
    const r = st.routes.lookup(dst);
    c.route = r;
    if (t !== null) t.match('route', r === null ? `no route to ${formatIpv4(dst)}` : this.describe(r));
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
        if (out === c.ingress) return c.dropWith(Drop.HAIRPIN);
        c.routed = true;
        c.nextHopMac = r.mac;
        return c.deliverTo(out);
      }
      case RouteKind.HOST: {
        const out = st.host;
        if (out === null) return c.dropWith(Drop.NO_EGRESS_PORT);
        if (out === c.ingress) return c.dropWith(Drop.HAIRPIN);
        c.routed = true;
        c.nextHopMac = out.mac;
        return c.deliverTo(out);
      }
      default: {
        if (c.ingress.role === PortRole.OVERLAY) return c.dropWith(Drop.OVERLAY_LOOP);
        const vtep = r.vtep!;
        c.routed = true;
        c.nextHopMac = vtep.mac;
        return c.tunnelTo(vtep);
      }
    }
  }

  /** act sends the replies route decided: the gateway's echo reply, time exceeded. */
  act(c: FrameContext): void {
    if (c.reply === Reply.ECHO) this.icmp.echo(c);
    else if (c.reply === Reply.ICMP_ERROR) this.icmp.error(c);
  }

  /** describe: a route as `ip route` would print it, with the neighbour and FDB entries an L3 peer implies. */
  private describe(r: NonNullable<FrameContext['route']>): string {
    const st = this.st;
    switch (r.kind) {
      case RouteKind.LOCAL: {
        const p = st.portById(r.port);
        return `${r.cidr} dev ${p?.name ?? `port${r.port}`} lladdr ${formatMac(r.mac)} (local pod)`;
      }
      case RouteKind.HOST:
        return `${r.cidr.len === 0 ? 'default' : r.cidr.toString()} dev ${st.host?.name ?? 'host'} (the node's own stack)`;
      case RouteKind.VTEP: {
        const v = r.vtep!;
        const via = v.podCidr === null ? '' : ` via ${formatIpv4(v.podCidr.network)} onlink`;
        return `${r.cidr}${via} dev ${v.name}; neighbour ${v.podCidr === null ? '-' : formatIpv4(v.podCidr.network)} lladdr ${formatMac(v.mac)}; fdb ${formatMac(v.mac)} dst ${formatIpv4(v.underlayIp)} port ${v.port} vni ${v.vni}`;
      }
      default:
        return `blackhole ${r.cidr}`;
    }
  }
}
