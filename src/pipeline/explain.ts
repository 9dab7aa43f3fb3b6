/**
 * What each stage looked at and matched, in words, for `flatnet trace`. Cold code, run only by
 * a trace after a stage decided: it reads the context (the decision and what the stage stored
 * there: the route, the FDB entry, the learning outcome, the peer) and the forwarding state, and
 * never changes either. Keeping it out of the stages keeps their decide() small (V8 counts the
 * bytecode of never-taken branches against its inlining budget: trace hooks inside the stages
 * cost the data path ~6% of its instructions per frame, bench/replay).
 */

import { Learn } from '../fib/fdb.js';
import { type Route, RouteKind } from '../fib/route-table.js';
import { formatIpv4, formatMac } from '../wire/addr.js';
import { ArpOp, ArpView } from '../wire/arp.js';
import { EtherType, IpProto } from '../wire/consts.js';
import { VXLAN_HEADROOM } from '../wire/encap.js';
import { ETH_HEADER_LEN } from '../wire/ethernet.js';
import { formatVirtioNetHdr, VirtioGso } from '../wire/virtio-net-hdr.js';
import { MtuStatus } from '../mtu/status.js';
import { Plan, Reply, Verdict, type FrameContext } from './context.js';
import { Drop, DROP_NAMES } from './drop.js';
import type { Egress } from './egress.js';
import type { SwitchState } from './state.js';
import { Framing, type SwitchPort } from './switch-port.js';
import type { TraceRecorder } from './trace-recorder.js';

const LEARN_TEXT: Readonly<Record<number, string>> = {
  [Learn.REFRESHED]: 'refreshed', [Learn.NEW]: 'a new entry', [Learn.MOVED]: 'moved here',
  [Learn.STATIC_CONFLICT]: 'refused: a static entry owns the MAC', [Learn.FULL]: 'refused: the table is full',
};

const hex4 = (n: number): string => `0x${n.toString(16).padStart(4, '0')}`;

/** ipText: the IP fields a trace shows. */
export function ipText(c: FrameContext): string {
  if (c.ipVersion !== 4) return `ipv${c.ipVersion}`;
  const proto = c.proto === IpProto.TCP ? 'tcp' : c.proto === IpProto.UDP ? 'udp' : c.proto === IpProto.ICMP ? 'icmp' : `proto ${c.proto}`;
  const ports = c.l4() === MtuStatus.OK ? ` ${c.srcPort} > ${c.dstPort}` : '';
  const df = (c.flagsFrag & 0x4000) !== 0 ? ' DF' : '';
  return `ipv4 ${formatIpv4(c.srcIp)} > ${formatIpv4(c.dstIp)} ${proto}${ports} ttl ${c.dv.getUint8(c.l3Off + 8)} len ${c.ipEnd - c.l3Off}${df}`;
}

/** describeRoute: a route as `ip route` would print it, with the neighbour and FDB entries an L3 peer implies. */
export function describeRoute(st: SwitchState, r: Route): string {
  switch (r.kind) {
    case RouteKind.LOCAL:
      return `${r.cidr} dev ${st.portById(r.port)?.name ?? `port${r.port}`} lladdr ${formatMac(r.mac)} (a pod of this node)`;
    case RouteKind.HOST:
      return `${r.cidr.len === 0 ? 'default' : r.cidr.toString()} dev ${st.host?.name ?? 'host'} (the node's own stack)`;
    case RouteKind.VTEP: {
      const v = r.vtep!;
      const gw = v.podCidr === null ? '-' : formatIpv4(v.podCidr.network);
      return `${r.cidr} via ${gw} dev ${v.name} onlink; neighbour ${gw} lladdr ${formatMac(v.mac)}; fdb ${formatMac(v.mac)} dst ${formatIpv4(v.underlayIp)} port ${v.port} vni ${v.vni}`;
    }
    default:
      return `blackhole ${r.cidr} (an address of a known pod CIDR with no pod)`;
  }
}

function binding(sp: SwitchPort): string {
  return `pod ${sp.name} is bound to ${formatIpv4(sp.ip)} ${formatMac(sp.mac)}`;
}

/** explainIngress: stage 1, for every ingress role. */
export function explainIngress(st: SwitchState, c: FrameContext, t: TraceRecorder): void {
  const sp = c.ingress;
  if (sp.isOverlay) return explainOverlay(st, c, t);
  if (c.end - c.start < ETH_HEADER_LEN) { t.look(`${c.end - c.start} bytes`); return; }
  t.look(`${formatMac(c.srcMac)} > ${formatMac(c.dstMac)} ethertype ${hex4(c.etherType)}`);
  if (c.verdict === Verdict.DROP && (c.drop === Drop.ETH_TRUNCATED || c.drop === Drop.VLAN_TAGGED)) return;
  if (sp.isPod) {
    if (c.drop === Drop.SPOOF_SRC_MAC && c.verdict === Verdict.DROP) { t.match('binding', `${binding(sp)}: the source MAC is not the pod's`); return; }
  } else if (c.learnHostMac) {
    t.match('host', `the host stack's MAC becomes ${formatMac(c.srcMac)}`);
  }
  if (c.etherType === EtherType.ARP) return explainArp(st, c, t);
  if (c.ipVersion !== 0) t.look(ipText(c));
  if (sp.isPod && c.ipVersion === 4) {
    t.match('binding', c.srcIp === sp.ip ? `${binding(sp)} (source MAC and IP match)` : `${binding(sp)}: the source IP is not the pod's`);
  }
  if (c.verdict === Verdict.DELIVER) t.match('neighbour', `${formatMac(c.dstMac)} is pod ${c.out!.name} on this node: delivered without routing, as a bridge would`);
  else if (c.verdict === Verdict.NEXT && !st.l2) t.match('neighbour', `${formatMac(c.dstMac)} is the gateway (our VTEP MAC): routed`);
  if (c.verdict === Verdict.DROP && c.drop === Drop.POD_SENT_VXLAN) t.match('vtep', `UDP to port ${st.vxlanPort} of ${formatIpv4(c.dstIp)}, an address a VTEP owns`);
}

function explainArp(st: SwitchState, c: FrameContext, t: TraceRecorder): void {
  const arp = new ArpView().reset(c.buf, c.start + ETH_HEADER_LEN, c.end);
  if (!arp.checkLen() || !arp.isEthernetIpv4()) return;
  const tpa = arp.tpa;
  t.look(`arp ${arp.oper === ArpOp.REQUEST ? 'who-has' : `oper ${arp.oper}`} ${formatIpv4(tpa)} tell ${formatIpv4(arp.spa)} (sender MAC ${formatMac(arp.sha)})`);
  const sp = c.ingress;
  if (c.drop === Drop.ARP_SPOOF && c.verdict === Verdict.DROP) { t.match('binding', `${binding(sp)}: the ARP claims another address`); return; }
  if (sp.isPod) t.match('binding', `${binding(sp)} (sender matches)`);
  if (st.l2) return;
  if (tpa === st.gatewayIp || tpa === st.vtepIp) t.match('arp', `${formatIpv4(tpa)} is the ${tpa === st.gatewayIp ? 'pods\' gateway' : 'VTEP'} address: answered with our VTEP MAC`);
  else if (c.route !== null) t.match('route', describeRoute(st, c.route));
  if (c.verdict === Verdict.REPLY) t.match('arp', `reply: ${formatIpv4(tpa)} is-at ${formatMac(c.replyMac)}`);
}

function explainOverlay(st: SwitchState, c: FrameContext, t: TraceRecorder): void {
  const res = c.outer;
  if (c.ingress.rxFraming === Framing.UDP) t.look(`VXLAN datagram from ${formatIpv4(c.srcAddr)}`);
  else if (c.drop !== Drop.VTEP_UNKNOWN && (c.decapsulated || c.drop > Drop.ECN_CE_NOT_ECT)) {
    t.look(`outer ${formatIpv4(res.outerSrcIp)}:${res.srcPort} > ${formatIpv4(res.outerDstIp)}:${res.dstPort} ttl ${res.outerTtl} tos 0x${res.outerTos.toString(16)}`);
  }
  if (c.verdict === Verdict.DROP && c.drop === Drop.VTEP_UNKNOWN) { t.match('peer', 'the source is not a known peer VTEP'); return; }
  const peer = c.peer;
  if (peer !== null) t.match('peer', `${peer.toString()} pod CIDR ${peer.podCidr?.toString() ?? '-'}`);
  else if (!st.checkPeerSource) t.match('peer', 'not a known peer (peer source checks are off)');
  if (!c.decapsulated && c.verdict === Verdict.DROP && c.drop !== Drop.VLAN_TAGGED) return; // the codec refused it
  t.look(`vxlan flags 0x${res.vxlanFlags.toString(16).padStart(2, '0')} vni ${res.vni}; inner ${formatMac(c.srcMac)} > ${formatMac(c.dstMac)} ethertype ${hex4(c.etherType)}`);
  if (c.ipVersion !== 0) t.look(ipText(c));
  if (c.verdict === Verdict.DROP && c.drop === Drop.INNER_SRC_NOT_IN_PEER_CIDR) t.match('peer', `${formatIpv4(c.srcIp)} is outside ${peer?.podCidr?.toString() ?? '-'}`);
  if (c.verdict === Verdict.DROP && c.drop === Drop.INNER_SRC_BROADCAST) t.match('peer', `${formatIpv4(c.srcIp)} is the broadcast address of ${peer?.podCidr?.toString() ?? '-'}`);
}

/** explainRoute: stage 4, L3. */
export function explainRoute(st: SwitchState, c: FrameContext, t: TraceRecorder): void {
  t.look(`destination ${formatIpv4(c.dstIp)}, ttl ${c.dv.getUint8(c.l3Off + 8)}`);
  if (c.dstIp === st.gatewayIp) { t.match('gateway', `${formatIpv4(c.dstIp)} is the pods' gateway: it answers ICMP echo requests only`); return; }
  if (c.verdict === Verdict.DROP && c.drop === Drop.IPV4_BAD_CHECKSUM) return;
  t.match('route', c.route === null ? `no route to ${formatIpv4(c.dstIp)}` : describeRoute(st, c.route));
  if (c.verdict === Verdict.DROP && c.drop === Drop.TTL_EXCEEDED) t.match('ttl', `TTL ${c.dv.getUint8(c.l3Off + 8)} would reach 0: ICMP time exceeded to the sender${c.reply === Reply.NONE ? ' (not for this packet: RFC 1122)' : ''}`);
}

/** explainBridge: stage 4, L2. */
export function explainBridge(st: SwitchState, c: FrameContext, t: TraceRecorder): void {
  const sp = c.ingress;
  if (c.learn >= 0) {
    const behind = sp.isOverlay ? `VTEP ${c.peer?.name ?? formatIpv4(c.outer.outerSrcIp)}` : sp.name;
    t.match('fdb', `learn ${formatMac(c.srcMac)} behind ${behind}: ${LEARN_TEXT[c.learn] ?? c.learn}`);
  }
  if (c.verdict === Verdict.FLOOD) {
    t.match('fdb', (c.dv.getUint8(c.start) & 1) !== 0 ? `${formatMac(c.dstMac)} is broadcast/multicast: flood` : `${formatMac(c.dstMac)} is unknown: flood`);
  }
  const e = c.fdbEntry;
  if (e !== null) {
    const where = e.vtep !== null ? `dst ${formatIpv4(e.vtep.underlayIp)} (VTEP ${e.vtep.name})` : `dev ${st.portById(e.port)?.name ?? `port${e.port}`}`;
    t.match('fdb', `${formatMac(e.mac)} ${where} ${e.kind === 'static' ? 'permanent' : 'learned'}`);
  }
}

/** explainEgress: stage 6: how the frame would leave (for a flood, each output). */
export function explainEgress(st: SwitchState, egress: Egress, c: FrameContext, t: TraceRecorder): void {
  const len = c.end - c.start;
  t.look(`${len}-byte frame, inner IP packet ${len - ETH_HEADER_LEN} bytes; the underlay MTU ${st.maxInnerIpLen + VXLAN_HEADROOM} leaves ${st.maxInnerIpLen} for it; pod MTU ${st.podMtu}`);
  if (c.vGso !== VirtioGso.NONE || c.vFlags !== 0) {
    t.match('virtio', `${formatVirtioNetHdr({ flags: c.vFlags, gsoType: c.vGso, hdrLen: c.vHdrLen, gsoSize: c.vGsoSize, csumStart: c.vCsumStart, csumOffset: c.vCsumOff })}`);
  }
  if (c.verdict === Verdict.FLOOD) {
    for (const sp of st.ports) {
      if (sp === null || sp === c.ingress || sp.isOverlay) continue;
      const d = egress.planLocal(c, sp);
      t.match('flood', `to ${sp.role} port ${sp.name}: ${d === Drop.NONE ? planText(c) : `drop ${DROP_NAMES[d]}`}`);
    }
    if (!c.ingress.isOverlay) {
      for (const v of st.fdb.floodList) {
        const d = egress.planTunnel(c);
        t.match('flood', `to VTEP ${v.toString()}: ${d === Drop.NONE ? planText(c) : `drop ${DROP_NAMES[d]}`}`);
      }
    }
    return;
  }
  if (c.verdict === Verdict.DROP && c.reply === Reply.FRAG_NEEDED) {
    t.match('mtu', `DF set and ${len - ETH_HEADER_LEN} > ${st.maxInnerIpLen}: ICMP fragmentation needed (next-hop MTU ${st.maxInnerIpLen}) to the sender, quoting the packet as it arrived`);
  } else if (c.verdict === Verdict.DROP && c.drop === Drop.MTU_EXCEEDED) {
    t.match('mtu', `${len - ETH_HEADER_LEN} > ${st.maxInnerIpLen} and the packet cannot be fragmented (or is not IPv4)`);
  } else if (c.plan === Plan.ENCAP_FRAGMENTS) {
    t.match('mtu', `DF clear and ${len - ETH_HEADER_LEN} > ${st.maxInnerIpLen}: the inner packet is fragmented before encapsulation`);
  } else if (c.verdict === Verdict.TUNNEL && c.vGso === VirtioGso.NONE) {
    t.match('mtu', `${len - ETH_HEADER_LEN} + ${VXLAN_HEADROOM} = ${len - ETH_HEADER_LEN + VXLAN_HEADROOM} <= underlay MTU ${st.maxInnerIpLen + VXLAN_HEADROOM}`);
  }
  if (c.routed && c.verdict !== Verdict.DROP) {
    const ttl = c.dv.getUint8(c.l3Off + 8);
    t.match('rewrite', `TTL ${ttl} -> ${ttl - 1}; MACs ${formatMac(c.l2.src)} > ${formatMac(c.l2.dst)}`);
  }
  if (st.mssClamp && c.verdict !== Verdict.DROP) t.match('mss', `TCP SYNs clamped to MSS ${st.podMtu - 40}`);
}

/** planText: how an output is sent, as a trace line says it. */
export function planText(c: FrameContext): string {
  const csum = c.completeCsum ? ', partial checksum completed first' : '';
  switch (c.plan) {
    case Plan.PLAIN: return `deliver${csum}`;
    case Plan.PASS: return 'deliver with its virtio-net header (offloads pass through)';
    case Plan.GRO: return 'queue for TCP coalescing (GRO) at the end of the batch';
    case Plan.SEGMENT: return `segment into ${c.pieces} frames of at most the pod MTU`;
    case Plan.ENCAP: return `encapsulate${csum}`;
    case Plan.ENCAP_SEGMENTS: return `segment into ${c.pieces}, encapsulate each`;
    case Plan.ENCAP_TRAIN: return `segment into ${c.pieces}, send as UDP-GSO trains of VXLAN datagrams`;
    case Plan.ENCAP_FRAGMENTS: return `fragment into ${c.pieces}, encapsulate each${csum}`;
    case Plan.ENCAP_OFFLOAD: return `encapsulate whole, hand to the kernel through the tunnel TAP (UDP-tunnel GSO): ${c.pieces} segments`;
    default: return 'none';
  }
}
