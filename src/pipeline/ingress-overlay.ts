/**
 * Stage 1 for the overlay port: accept VXLAN from known peers only, decapsulate it (the codec's
 * strict checks, src/wire/decap.ts), and check the inner frame before anything forwards it.
 *
 *   UDP framing (the daemon's socket: the kernel validated the outer headers; the outer TOS
 *   comes with each datagram, IP_RECVTOS):
 *     source address is a peer (vtep_unknown) -> VXLAN header and inner Ethernet (codec)
 *   Ethernet framing (memory, pcap): the whole outer frame through the codec, then the peer check
 *   -> no 802.1Q inside (vlan_tagged)
 *   L2: the inner frame goes to the bridge (which learns its source behind the peer)
 *   L3: for our VTEP MAC (inner_dst_mac_not_ours / l3_broadcast) -> IPv4 -> header valid ->
 *       inner source inside the sending peer's pod CIDR and not its broadcast address
 *       (inner_src_broadcast) -> RFC 6040 ECN combination -> a partial inner checksum or a TCP
 *       super-frame carried whole (checksum offload on a veth underlay) takes offload state -> routed
 *
 * The inner frame replaces the outer one in the context: start moves forward (the kernel's
 * skb_pull), nothing is copied.
 */

import { dvU48 } from '../wire/bytes.js';
import { EtherType, IpProto } from '../wire/consts.js';
import { ecnDecapsulate } from '../wire/encap.js';
import { ECN_MASK, Ecn, Ipv4View } from '../wire/ipv4.js';
import { VirtioGso, VirtioNetFlag } from '../wire/virtio-net-hdr.js';
import { WireDrop } from '../wire/drop.js';
import { MtuStatus } from '../mtu/status.js';
import type { Vtep } from '../fib/vtep.js';
import type { FrameContext } from './context.js';
import { Drop } from './drop.js';
import type { Ingress } from './ingress.js';
import type { SwitchState } from './state.js';
import { Framing } from './switch-port.js';

export class OverlayIngress {
  private readonly st: SwitchState;
  private readonly ip = new Ipv4View();
  /** The pod/host ingress, for its header parser. Set once by the pipeline. */
  ingress!: Ingress;

  constructor(st: SwitchState) {
    this.st = st;
  }

  decide(c: FrameContext): void {
    const st = this.st, res = c.outer;
    c.decapsulated = false;
    let d: WireDrop;
    let peer: Vtep | undefined;
    if (c.ingress.rxFraming === Framing.UDP) {
      peer = st.peerByIp.get(c.srcAddr);
      if (peer === undefined && st.checkPeerSource) return c.dropWith(Drop.VTEP_UNKNOWN);
      res.outerSrcIp = c.srcAddr;
      res.outerTos = c.srcTos;
      d = st.decap.decapVxlan(c.buf, c.start, c.end, res);
    } else {
      d = st.decap.decapFrame(c.buf, c.start, c.end, res);
      if (d !== WireDrop.NONE) return c.dropWith(d);
      peer = st.peerByIp.get(res.outerSrcIp);
      if (peer === undefined && st.checkPeerSource) return c.dropWith(Drop.VTEP_UNKNOWN);
    }
    c.peer = peer ?? null;
    if (d !== WireDrop.NONE) return c.dropWith(d);
    // The inner frame from here on.
    const dv = c.dv, is = res.innerStart;
    c.start = is;
    c.end = res.innerEnd;
    const type = dv.getUint16(is + 12);
    c.etherType = type;
    c.dstMac = dvU48(dv, is);
    c.srcMac = dvU48(dv, is + 6);
    // RFC 7348 §6.1: decapsulated frames with an inner VLAN tag SHOULD be discarded.
    if (type === EtherType.VLAN || type === EtherType.QINQ) return c.dropWith(Drop.VLAN_TAGGED);
    c.decapsulated = true;
    if (st.l2) {
      if (type === EtherType.IPV4 || type === EtherType.IPV6) {
        if (this.ingress.parseIp(c) && c.ipVersion === 4) this.offloadState(c);
      }
      return; // the bridge learns and forwards
    }
    // L3: the inner frame is for our VTEP MAC and carries IPv4 from the peer's pod CIDR.
    if (c.dstMac !== st.vtepMac) return c.dropWith((dv.getUint8(is) & 1) !== 0 ? Drop.L3_BROADCAST : Drop.INNER_DST_MAC_NOT_OURS);
    if (type !== EtherType.IPV4) return c.dropWith(Drop.ETHERTYPE_UNSUPPORTED);
    if (c.parseIpv4() !== MtuStatus.OK) return c.dropWith(c.ipDrop);
    if (st.checkInnerSource && peer !== undefined && peer.podCidr !== null) {
      // The source the packet came with (the pre-pass may have translated it: a Service's reply).
      const cidr = peer.podCidr, src = c.natted ? c.preNatSrc : c.srcIp;
      if (!cidr.contains(src)) return c.dropWith(Drop.INNER_SRC_NOT_IN_PEER_CIDR);
      // The network address is the peer's VTEP address (its host stack sends from it); the
      // broadcast address is nobody's.
      if (src === cidr.broadcast && cidr.len < 31) return c.dropWith(Drop.INNER_SRC_BROADCAST);
    }
    if ((res.outerTos & ECN_MASK) !== 0 && ecnDecapsulate(dv.getUint8(c.l3Off + 1), res.outerTos) < 0) return c.dropWith(Drop.ECN_CE_NOT_ECT);
    this.offloadState(c);
  }

  /**
   * offloadState: what a peer's kernel hands a device with checksum offload can reach us as it
   * is. Over a veth underlay with its offloads on (the kernel's VXLAN sends this way, and so does
   * flatnet's tunnel TAP) the inner TCP or UDP checksum is still partial, the folded
   * pseudo-header sum, and a TCP super-frame may arrive whole, longer than any datagram the
   * underlay carries. Such a frame takes the offload state a pod's virtio-net header would have
   * given it: the egress stage then passes it with that header to a port that takes one, or
   * completes the checksum (and segments a super-frame to the pod MTU) for one that does not.
   * A complete checksum that happens to equal the pseudo-header sum (1 in 65,536) is taken as
   * partial too, which is harmless: completing it gives the same value.
   *
   * This runs for every IPv4 frame from a peer, so it is kept small: V8 inlines it into decide
   * only within decide's inlining budget (920 bytecode bytes on Node 20), and when it grew past
   * that, the peer table's `get` was called instead, boxing its uint32 key (16 heap bytes per
   * frame). The pseudo-header sum comes from the parsed addresses (IPv4 only: both callers
   * parsed an IPv4 header) and is folded in two steps (it stays below 2^19); the rare frame whose
   * field matches takes its state in takeOffloadState, a call.
   */
  private offloadState(c: FrameContext): void {
    const l4 = c.l4Off, proto = c.proto, room = c.ipEnd - l4;
    if ((c.flagsFrag & 0x3fff) !== 0) return; // fragments: the checksum covers the whole datagram
    let at: number;
    if (proto === IpProto.TCP && room >= 20) at = 16;
    else if (proto === IpProto.UDP && room >= 8) at = 6;
    else return;
    const field = c.dv.getUint16(l4 + at);
    if (field === 0) return;
    const src = c.srcIp, dst = c.dstIp;
    let ps = (src >>> 16) + (src & 0xffff) + (dst >>> 16) + (dst & 0xffff) + proto + room;
    ps = (ps >>> 16) + (ps & 0xffff);
    if (field === (ps >>> 16) + (ps & 0xffff)) this.takeOffloadState(c, at);
  }

  /** takeOffloadState: the frame's checksum field at l4 + `at` is partial (offloadState); a TCP super-frame is also to be segmented. */
  private takeOffloadState(c: FrameContext, at: number): void {
    const dv = c.dv, l4 = c.l4Off, room = c.ipEnd - l4;
    c.vFlags = VirtioNetFlag.NEEDS_CSUM;
    c.vCsumStart = l4 - c.start;
    c.vCsumOff = at;
    if (c.proto !== IpProto.TCP || c.ipEnd - c.l3Off <= this.st.maxInnerIpLen) return;
    const thl = (dv.getUint8(l4 + 12) >> 4) << 2;
    if (thl < 20 || room < thl) return;
    c.vGso = VirtioGso.TCPV4;
    c.vHdrLen = l4 - c.start + thl;
    c.vGsoSize = this.st.podMtu - (l4 - c.l3Off) - thl;
  }

  /** act counts the frame against its peer and applies the ECN combination (L3). */
  act(c: FrameContext): void {
    if (!c.decapsulated) return;
    const peer = c.peer;
    if (peer !== null) {
      peer.rxPackets++;
      peer.rxBytes += c.end - c.start;
    }
    const st = this.st;
    st.stats.decapsulated++;
    if (c.vFlags !== 0) {
      if (c.vGso !== 0) st.stats.overlaySuperFrames++;
      else st.stats.overlayPartialChecksums++;
    }
    // RFC 6040 §4.2: only an outer CE or ECT(1) can change the inner ECN field (an outer ECT(0),
    // what an ECN-capable TCP flow carries, never does). Testing that first keeps the rewrite a
    // rare call, and this function small enough for V8 to inline into Pipeline.run.
    if ((c.outer.outerTos & Ecn.ECT1) !== 0 && !st.l2) applyEcnDecap(c, this.ip);
  }
}

/**
 * applyEcnDecap: RFC 6040 §4.2 for a decapsulated IPv4 inner packet (L3): the outer ECN
 * combined into the inner, the checksum patched incrementally when the field changes. The
 * ingress stage decided the combination is allowed (ecn_ce_not_ect otherwise). Shared with the
 * trace's output, which shows the frame as the pod gets it.
 */
export function applyEcnDecap(c: FrameContext, ip: Ipv4View): void {
  const outerTos = c.outer.outerTos;
  if ((outerTos & ECN_MASK) === 0 || c.ipVersion !== 4) return;
  const v = ip.reset(c.buf, c.l3Off, c.ipEnd);
  const inner = v.ecn;
  const e = ecnDecapsulate(inner, outerTos);
  if (e >= 0 && e !== inner) v.setEcn(e);
}
