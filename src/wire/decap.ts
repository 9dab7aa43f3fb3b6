/**
 * VXLAN decapsulation: validate an encapsulated frame in the order the issue fixes (and, apart
 * from VNI vs reserved bits, the kernel's `ip_rcv_core` + `udp_rcv` + `vxlan_rcv` order), and
 * either return the inner frame's window or exactly one Drop reason. Nothing is copied: the
 * inner frame is [innerStart, innerEnd) of the same buffer (the kernel's `skb_pull`).
 *
 * Flow (full frame, as read from a raw socket, a pcap or a memory port):
 *   1. outer Ethernet (one 802.1Q tag allowed), EtherType IPv4
 *   2. IPv4 sanity: length, version, IHL, total length, header checksum, not a fragment, UDP
 *   3. UDP: header inside the IPv4 payload, length, checksum when non-zero, destination port
 *   4. VXLAN: header present, I flag, reserved bits (strict) , VNI configured
 *   5. inner Ethernet: whole header present, source MAC unicast, not our own
 * decapVxlan() starts at step 4, for datagrams already validated by a kernel UDP socket.
 */

import { isMulticastMac } from './addr.js';
import { EtherType, IpProto, UdpPort } from './consts.js';
import { Drop } from './drop.js';
import { ecnDecapsulate } from './encap.js';
import { ETH_HEADER_LEN, EthernetView } from './ethernet.js';
import { ECN_MASK, IPV4_HEADER_LEN, Ipv4View } from './ipv4.js';
import { UDP_HEADER_LEN, UdpView } from './udp.js';
import { VXLAN_HEADER_LEN, VxlanView } from './vxlan.js';

/** A set of VNIs with a fast path for the common single-VNI configuration. */
export class VniSet {
  private readonly one: number;
  private readonly many: Set<number> | null;
  constructor(vnis: Iterable<number>) {
    const list = [...new Set(vnis)];
    this.one = list.length === 1 ? list[0]! : -1;
    this.many = list.length === 1 ? null : new Set(list);
  }
  has(vni: number): boolean {
    return vni === this.one || (this.many !== null && this.many.has(vni));
  }
  values(): number[] {
    return this.many === null ? [this.one] : [...this.many];
  }
}

export interface DecapPolicy {
  /** UDP destination port to accept; -1 accepts any (only checked on full frames). Default 4789. */
  readonly port?: number;
  /** Drop frames with reserved bits set (Linux). false = RFC 7348 "ignored on receipt". Default true. */
  readonly strict?: boolean;
  /** Accept the Group Policy extension's G/D/A bits and group id. Default false. */
  readonly gbp?: boolean;
  /** VNIs this VTEP serves; null accepts any. Default null. */
  readonly vnis?: VniSet | null;
  /** Verify non-zero outer UDP checksums (the kernel's UDP layer does). Default true. */
  readonly verifyUdpChecksum?: boolean;
  /** Our own VTEP MAC: inner frames from it are loops. -1 disables the check. Default -1. */
  readonly ownMac?: number;
}

/** Filled by decapFrame()/decapVxlan() for every accepted packet; one instance per rx loop. */
export class DecapResult {
  outerSrcIp = 0;
  outerDstIp = 0;
  outerTos = 0;
  outerTtl = 0;
  srcPort = 0;
  dstPort = 0;
  vxlanFlags = 0;
  groupPolicyId = 0;
  vni = 0;
  innerStart = 0;
  innerEnd = 0;
}

/** Owns the views it re-points per packet; one per receive loop. */
export class Decapsulator {
  readonly port: number;
  readonly strict: boolean;
  readonly gbp: boolean;
  readonly vnis: VniSet | null;
  readonly verifyUdpChecksum: boolean;
  readonly ownMac: number;
  private readonly eth = new EthernetView();
  private readonly ip = new Ipv4View();
  private readonly udp = new UdpView();
  private readonly vx = new VxlanView();
  private readonly inner = new EthernetView();

  constructor(policy: DecapPolicy = {}) {
    this.port = policy.port ?? UdpPort.VXLAN;
    this.strict = policy.strict ?? true;
    this.gbp = policy.gbp ?? false;
    this.vnis = policy.vnis ?? null;
    this.verifyUdpChecksum = policy.verifyUdpChecksum ?? true;
    this.ownMac = policy.ownMac ?? -1;
  }

  /** decapFrame validates a whole outer Ethernet frame at [start, end) of `b`. */
  decapFrame(b: Buffer, start: number, end: number, out: DecapResult): Drop {
    const eth = this.eth.reset(b, start, end);
    if (!eth.checkLen()) return Drop.ETH_TRUNCATED;
    if (eth.etherType !== EtherType.IPV4) return Drop.OUTER_NOT_IPV4;

    const ip = this.ip.reset(b, eth.payloadOff, end);
    const bad = ip.validate();
    if (bad !== Drop.NONE) return bad;
    if (!ip.verifyChecksum()) return Drop.IPV4_BAD_CHECKSUM;
    if (ip.isFragment()) return Drop.IPV4_FRAGMENT;
    if (ip.protocol !== IpProto.UDP) return Drop.OUTER_NOT_UDP;

    const ipEnd = ip.payloadEnd; // trailing Ethernet padding is not part of the datagram
    const udp = this.udp.reset(b, ip.payloadOff, ipEnd);
    if (!udp.checkLen()) return Drop.UDP_TRUNCATED;
    const udpLen = udp.length;
    if (udpLen < UDP_HEADER_LEN || udpLen > ipEnd - udp.off) return Drop.UDP_BAD_LEN;
    const src = ip.src, dst = ip.dst;
    if (this.verifyUdpChecksum && !udp.verifyChecksum(src, dst)) return Drop.UDP_BAD_CHECKSUM;
    const dport = udp.dstPort;
    if (this.port >= 0 && dport !== this.port) return Drop.UDP_PORT_MISMATCH;

    out.outerSrcIp = src;
    out.outerDstIp = dst;
    out.outerTos = ip.tos;
    out.outerTtl = ip.ttl;
    out.srcPort = udp.srcPort;
    out.dstPort = dport;
    return this.decapVxlan(b, udp.payloadOff, udp.off + udpLen, out);
  }

  /**
   * decapVxlan validates a VXLAN header and the inner Ethernet header at [start, end) (a UDP
   * payload). The outer fields of `out` are left as the caller set them.
   */
  decapVxlan(b: Buffer, start: number, end: number, out: DecapResult): Drop {
    const vx = this.vx.reset(b, start, end);
    if (!vx.checkLen()) return Drop.VXLAN_TRUNCATED;
    const flags = vx.flags;
    if (!vx.flagI) return Drop.VXLAN_NO_I_FLAG;
    // Linux drops reserved bits (stricter than RFC 7348 §5, "ignored on receipt"): our default.
    if (this.strict && !vx.reservedZero(this.gbp)) return Drop.VXLAN_RESERVED_SET;
    const vni = vx.vni;
    if (this.vnis !== null && !this.vnis.has(vni)) return Drop.VXLAN_VNI_UNKNOWN;

    const innerStart = start + VXLAN_HEADER_LEN;
    const inner = this.inner.reset(b, innerStart, end);
    if (end - innerStart < ETH_HEADER_LEN) return Drop.INNER_ETH_TRUNCATED;
    const smac = inner.src;
    if (smac === 0 || isMulticastMac(smac)) return Drop.INNER_SRC_MAC_INVALID;
    if (smac === this.ownMac) return Drop.INNER_SRC_MAC_OURS;

    out.vxlanFlags = flags;
    out.groupPolicyId = this.gbp && vx.flagG ? vx.groupPolicyId : 0;
    out.vni = vni;
    out.innerStart = innerStart;
    out.innerEnd = end;
    return Drop.NONE;
  }
}

/**
 * applyEcnDecap combines the outer ECN into an inner IPv4 packet (RFC 6040 §4.2), patching the
 * inner checksum when the field changes. Non-IPv4 inner frames are left alone.
 */
export function applyEcnDecap(ip: Ipv4View, b: Buffer, innerStart: number, innerEnd: number, outerTos: number): Drop {
  const outerEcn = outerTos & ECN_MASK;
  if (outerEcn === 0) return Drop.NONE;
  if (innerEnd - innerStart < ETH_HEADER_LEN + IPV4_HEADER_LEN) return Drop.NONE;
  if (((b[innerStart + 12]! << 8) | b[innerStart + 13]!) !== EtherType.IPV4) return Drop.NONE;
  ip.reset(b, innerStart + ETH_HEADER_LEN, innerEnd);
  const innerEcn = ip.ecn;
  const e = ecnDecapsulate(innerEcn, outerEcn);
  if (e < 0) return Drop.ECN_CE_NOT_ECT;
  if (e !== innerEcn) ip.setEcn(e);
  return Drop.NONE;
}
