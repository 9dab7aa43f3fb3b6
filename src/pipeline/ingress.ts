/**
 * Stage 1, ingress: classify the frame, hold the port's sender to its binding, parse its
 * headers once into the context, and take the decisions that need nothing but the frame and
 * the port. Frames from the overlay are decapsulated first (ingress-overlay.ts).
 *
 *   pod   Ethernet header -> no 802.1Q -> source MAC = the pod's (spoof_src_mac) -> ARP to the
 *         responder (arp.ts) -> IPv4 only in L3 (L2 bridges the rest) -> header valid ->
 *         source IP = the pod's (spoof_src_ip) -> not VXLAN to a VTEP address (pod_sent_vxlan) ->
 *         L3: to the gateway MAC: routed (NEXT); to another local pod's MAC: delivered as a
 *         bridge would; anything else dropped
 *   host  the same without the binding checks (the host stack is trusted; its MAC is learned)
 *
 * What is parsed here (context.ts) is what every later stage reads: MACs, EtherType, the IP and
 * transport layout, addresses, ports. The offload state (virtio-net header) was read with the
 * batch (pipeline.ts).
 */

import { dvU48 } from '../wire/bytes.js';
import { EtherType, IpProto } from '../wire/consts.js';
import { ETH_HEADER_LEN } from '../wire/ethernet.js';
import { WireDrop } from '../wire/drop.js';
import { MtuStatus } from '../mtu/status.js';
import type { ArpResponder } from './arp.js';
import { Reply, Verdict, type FrameContext } from './context.js';
import { Drop } from './drop.js';
import type { OverlayIngress } from './ingress-overlay.js';
import type { SwitchState } from './state.js';

export class Ingress {
  private readonly st: SwitchState;
  private readonly arp: ArpResponder;
  private readonly overlay: OverlayIngress;

  constructor(st: SwitchState, arp: ArpResponder, overlay: OverlayIngress) {
    this.st = st;
    this.arp = arp;
    this.overlay = overlay;
  }

  decide(c: FrameContext): void {
    const sp = c.ingress;
    if (sp.isPod) this.fromPod(c);
    else if (sp.isHost) this.fromHost(c);
    else this.overlay.decide(c);
  }

  act(c: FrameContext): void {
    const sp = c.ingress;
    if (sp.isOverlay) this.overlay.act(c);
    // The host stack's MAC: what routed frames for the node get as their destination.
    else if (sp.isHost && c.learnHostMac) sp.mac = c.srcMac;
    if (c.reply === Reply.ARP && c.verdict === Verdict.REPLY) this.arp.act(c);
  }

  /** readEthernet fills the context's L2 fields; false (and the drop decided) for a short or tagged frame. */
  private readEthernet(c: FrameContext): boolean {
    const dv = c.dv, s = c.start;
    if (c.end - s < ETH_HEADER_LEN) { c.dropWith(Drop.ETH_TRUNCATED); return false; }
    const type = dv.getUint16(s + 12);
    c.etherType = type;
    c.dstMac = dvU48(dv, s);
    c.srcMac = dvU48(dv, s + 6);
    if (type === EtherType.VLAN || type === EtherType.QINQ) { c.dropWith(Drop.VLAN_TAGGED); return false; }
    return true;
  }

  private fromPod(c: FrameContext): void {
    const sp = c.ingress, st = this.st;
    if (!this.readEthernet(c)) return;
    if (c.srcMac !== sp.mac) return c.dropWith(Drop.SPOOF_SRC_MAC);
    const type = c.etherType;
    if (type === EtherType.ARP) return this.arp.fromPod(c);
    if (type !== EtherType.IPV4) {
      if (!st.l2) return c.dropWith(Drop.ETHERTYPE_UNSUPPORTED);
      if (type === EtherType.IPV6) this.parseIp(c);
      return; // the bridge forwards it
    }
    if (c.parseIpv4() !== MtuStatus.OK) return c.dropWith(c.ipDrop);
    // natted: the pre-pass translated it, after checking this on the source it came with.
    if (c.srcIp !== sp.ip && !c.natted) return c.dropWith(Drop.SPOOF_SRC_IP);
    if (this.vxlanToVtep(c)) return c.dropWith(Drop.POD_SENT_VXLAN);
    if (!st.l2) this.l3Destination(c);
  }

  private fromHost(c: FrameContext): void {
    const sp = c.ingress, st = this.st;
    c.learnHostMac = false;
    if (!this.readEthernet(c)) return;
    c.learnHostMac = sp.mac !== c.srcMac && (c.dv.getUint8(c.start + 6) & 1) === 0;
    const type = c.etherType;
    if (st.l2) {
      if (type === EtherType.IPV4 || type === EtherType.IPV6) this.parseIp(c);
      return; // the bridge forwards it
    }
    if (type === EtherType.ARP) return this.arp.fromHost(c);
    if (type !== EtherType.IPV4) return c.dropWith(Drop.ETHERTYPE_UNSUPPORTED);
    if (c.parseIpv4() !== MtuStatus.OK) return c.dropWith(c.ipDrop);
    if (c.dstMac === st.vtepMac) return; // routed
    c.dropWith((c.dv.getUint8(c.start) & 1) !== 0 ? Drop.L3_BROADCAST : Drop.UNKNOWN_DST_MAC);
  }

  /**
   * parseIp parses the IP and transport headers into the context (layout, addresses, ports).
   * Returns false for an invalid IPv4 header (c.ipDrop names the fault).
   */
  parseIp(c: FrameContext): boolean {
    c.parseHeaders();
    return c.ipDrop === WireDrop.NONE;
  }

  /**
   * vxlanToVtep: UDP to the VXLAN port of any address a VTEP owns (this node's underlay, VTEP
   * or gateway address, a peer's underlay or VTEP address), also as a first fragment: a pod
   * injecting tunnel traffic. Harmless while the overlay socket listens on the underlay address
   * only; refused anyway, so that no later listener makes it an injection path.
   */
  private vxlanToVtep(c: FrameContext): boolean {
    const st = this.st;
    if (c.proto !== IpProto.UDP || (c.flagsFrag & 0x1fff) !== 0 || c.l4Off + 4 > c.ipEnd) return false;
    if (c.dv.getUint16(c.l4Off + 2) !== st.vxlanPort) return false;
    return st.vtepAddrs.has(c.dstIp);
  }

  /**
   * l3Destination: a pod frame in L3 mode is routed when it is addressed to the gateway (our
   * VTEP MAC); to another local pod's MAC it is delivered directly, as on a bridge.
   */
  private l3Destination(c: FrameContext): void {
    const st = this.st, dmac = c.dstMac;
    if (dmac === st.vtepMac) return; // routed
    const peer = st.podByMac.get(dmac);
    if (peer !== undefined) {
      if (peer === c.ingress) return c.dropWith(Drop.HAIRPIN);
      return c.deliverTo(peer);
    }
    c.dropWith((c.dv.getUint8(c.start) & 1) !== 0 ? Drop.L3_BROADCAST : Drop.UNKNOWN_DST_MAC);
  }

}
