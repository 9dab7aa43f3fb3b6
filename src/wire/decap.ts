/**
 * VXLAN decapsulation: validate an encapsulated frame in the order the issue fixes (and, apart
 * from VNI vs reserved bits, the kernel's `ip_rcv_core` + `udp_rcv` + `vxlan_rcv` order), and
 * either return the inner frame's window or exactly one WireDrop reason. Nothing is copied: the
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

import { EMPTY, EMPTY_DV, dataViewOf } from './bytes.js';
import { EtherType, IpProto, UdpPort } from './consts.js';
import { WireDrop } from './drop.js';
import { ecnDecapsulate } from './encap.js';
import { ETH_HEADER_LEN, ETH_VLAN_HEADER_LEN } from './ethernet.js';
import { ECN_MASK, IPV4_HEADER_LEN, Ipv4View, ipv4HeaderChecksumOk, ipv4Validate } from './ipv4.js';
import { dvSum16, fold16 } from './checksum.js';
import { UDP_HEADER_LEN } from './udp.js';
import { VXLAN_FLAG_G, VXLAN_FLAG_I, VXLAN_HEADER_LEN, vxlanReservedZero } from './vxlan.js';

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
  /** WireDrop frames with reserved bits set (Linux). false = RFC 7348 "ignored on receipt". Default true. */
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

/**
 * Validates received frames. One per receive loop; it keeps a DataView of the last buffer.
 *
 * The checks read fields straight through the DataView with the header modules' shared check
 * functions (ipv4Validate, ipv4HeaderChecksumOk, vxlanReservedZero, udpSumOk) rather than
 * through view getters: a chain of ~30 getters exceeds V8's cumulative inlining budget and made
 * decapsulation ~6x slower (bench/wire/codec.bench.ts, decap of a 64-byte frame).
 */
export class Decapsulator {
  readonly port: number;
  readonly strict: boolean;
  readonly gbp: boolean;
  readonly vnis: VniSet | null;
  readonly verifyUdpChecksum: boolean;
  readonly ownMac: number;
  private lastBuf: Buffer = EMPTY;
  private dv: DataView = EMPTY_DV;

  constructor(policy: DecapPolicy = {}) {
    this.port = policy.port ?? UdpPort.VXLAN;
    this.strict = policy.strict ?? true;
    this.gbp = policy.gbp ?? false;
    this.vnis = policy.vnis ?? null;
    this.verifyUdpChecksum = policy.verifyUdpChecksum ?? true;
    this.ownMac = policy.ownMac ?? -1;
  }

  private viewOf(b: Buffer): DataView {
    if (b !== this.lastBuf) {
      this.lastBuf = b;
      this.dv = dataViewOf(b);
    }
    return this.dv;
  }

  /** decapFrame validates a whole outer Ethernet frame at [start, end) of `b`. */
  decapFrame(b: Buffer, start: number, end: number, out: DecapResult): WireDrop {
    const dv = this.viewOf(b);
    // 1. outer Ethernet, one tag allowed
    if (end - start < ETH_HEADER_LEN) return WireDrop.ETH_TRUNCATED;
    let type = dv.getUint16(start + 12);
    let ip = start + ETH_HEADER_LEN;
    if (type === EtherType.VLAN || type === EtherType.QINQ) {
      if (end - start < ETH_VLAN_HEADER_LEN) return WireDrop.ETH_TRUNCATED;
      type = dv.getUint16(start + 16);
      ip = start + ETH_VLAN_HEADER_LEN;
    }
    if (type !== EtherType.IPV4) return WireDrop.OUTER_NOT_IPV4;

    // 2. IPv4
    const bad = ipv4Validate(dv, ip, end);
    if (bad !== WireDrop.NONE) return bad;
    const hl = (dv.getUint8(ip) & 0x0f) << 2;
    if (!ipv4HeaderChecksumOk(dv, ip, hl)) return WireDrop.IPV4_BAD_CHECKSUM;
    if ((dv.getUint16(ip + 6) & 0x3fff) !== 0) return WireDrop.IPV4_FRAGMENT; // MF or an offset
    if (dv.getUint8(ip + 9) !== IpProto.UDP) return WireDrop.OUTER_NOT_UDP;

    // 3. UDP, inside the IPv4 total length (trailing Ethernet padding is not part of it)
    const ipEnd = ip + dv.getUint16(ip + 2);
    const udp = ip + hl;
    if (ipEnd - udp < UDP_HEADER_LEN) return WireDrop.UDP_TRUNCATED;
    const udpLen = dv.getUint16(udp + 4);
    if (udpLen < UDP_HEADER_LEN || udpLen > ipEnd - udp) return WireDrop.UDP_BAD_LEN;
    const src = dv.getUint32(ip + 12), dst = dv.getUint32(ip + 16);
    if (this.verifyUdpChecksum && dv.getUint16(udp + 6) !== 0 && !udpSumOk(dv, udp, udpLen, ip)) return WireDrop.UDP_BAD_CHECKSUM;
    const dport = dv.getUint16(udp + 2);
    if (this.port >= 0 && dport !== this.port) return WireDrop.UDP_PORT_MISMATCH;

    out.outerSrcIp = src;
    out.outerDstIp = dst;
    out.outerTos = dv.getUint8(ip + 1);
    out.outerTtl = dv.getUint8(ip + 8);
    out.srcPort = dv.getUint16(udp);
    out.dstPort = dport;
    return this.decapVxlanDv(dv, udp + UDP_HEADER_LEN, udp + udpLen, out);
  }

  /**
   * decapVxlan validates a VXLAN header and the inner Ethernet header at [start, end) (a UDP
   * payload). The outer fields of `out` are left as the caller set them.
   */
  decapVxlan(b: Buffer, start: number, end: number, out: DecapResult): WireDrop {
    return this.decapVxlanDv(this.viewOf(b), start, end, out);
  }

  private decapVxlanDv(dv: DataView, start: number, end: number, out: DecapResult): WireDrop {
    // 4. VXLAN: header, I flag, reserved bits, VNI
    if (end - start < VXLAN_HEADER_LEN) return WireDrop.VXLAN_TRUNCATED;
    const flags = dv.getUint8(start);
    if ((flags & VXLAN_FLAG_I) === 0) return WireDrop.VXLAN_NO_I_FLAG;
    // Linux drops reserved bits (stricter than RFC 7348 §5, "ignored on receipt"): our default.
    if (this.strict && !vxlanReservedZero(dv, start, this.gbp)) return WireDrop.VXLAN_RESERVED_SET;
    const vni = dv.getUint32(start + 4) >>> 8;
    if (this.vnis !== null && !this.vnis.has(vni)) return WireDrop.VXLAN_VNI_UNKNOWN;

    // 5. inner Ethernet: a whole header, a unicast non-zero source that is not our own MAC
    const inner = start + VXLAN_HEADER_LEN;
    if (end - inner < ETH_HEADER_LEN) return WireDrop.INNER_ETH_TRUNCATED;
    const smacHi = dv.getUint16(inner + 6), smacLo = dv.getUint32(inner + 8);
    if ((smacHi & 0x0100) !== 0 || (smacHi === 0 && smacLo === 0)) return WireDrop.INNER_SRC_MAC_INVALID;
    if (this.ownMac >= 0 && smacHi * 0x1_0000_0000 + smacLo === this.ownMac) return WireDrop.INNER_SRC_MAC_OURS;

    out.vxlanFlags = flags;
    out.groupPolicyId = this.gbp && (flags & VXLAN_FLAG_G) !== 0 ? dv.getUint16(start + 2) : 0;
    out.vni = vni;
    out.innerStart = inner;
    out.innerEnd = end;
    return WireDrop.NONE;
  }
}

/**
 * udpSumOk: udpChecksumOk for the datagram at `udp` whose IPv4 header is at `ip`, reading the
 * pseudo-header's addresses itself. Handing the outer addresses (above 2^31: doubles in V8) to
 * udpChecksumOk, which V8 does not inline into decapFrame, boxed them: 32 heap bytes per
 * received frame (bench/wire/codec.bench.ts, "decap + verify outer UDP checksum").
 */
function udpSumOk(dv: DataView, udp: number, len: number, ip: number): boolean {
  const ph = dv.getUint16(ip + 12) + dv.getUint16(ip + 14) + dv.getUint16(ip + 16) + dv.getUint16(ip + 18) + IpProto.UDP + len;
  return fold16(dvSum16(dv, udp, len, ph)) === 0xffff;
}

/**
 * applyEcnDecap combines the outer ECN into an inner IPv4 packet (RFC 6040 §4.2), patching the
 * inner checksum when the field changes. Non-IPv4 inner frames are left alone.
 */
export function applyEcnDecap(ip: Ipv4View, b: Buffer, innerStart: number, innerEnd: number, outerTos: number): WireDrop {
  const outerEcn = outerTos & ECN_MASK;
  if (outerEcn === 0) return WireDrop.NONE;
  if (innerEnd - innerStart < ETH_HEADER_LEN + IPV4_HEADER_LEN) return WireDrop.NONE;
  ip.reset(b, innerStart + ETH_HEADER_LEN, innerEnd);
  if (ip.dv.getUint16(innerStart + 12) !== EtherType.IPV4) return WireDrop.NONE;
  const innerEcn = ip.ecn;
  const e = ecnDecapsulate(innerEcn, outerEcn);
  if (e < 0) return WireDrop.ECN_CE_NOT_ECT;
  if (e !== innerEcn) ip.setEcn(e);
  return WireDrop.NONE;
}
