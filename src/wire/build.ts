/**
 * Cold-path frame builders: whole Ethernet frames with explicit fields and valid checksums,
 * written with the codec's own header views (and EncapTemplate for VXLAN). `flatnet trace`
 * builds the packet it traces with them (src/trace/packet.ts), and the replay fixture
 * generators (fixtures/gen/frames.ts) build their captures with them.
 *
 * Every builder allocates a new Buffer of exactly the frame's length and writes every byte of
 * it. Not for the data path.
 */

import { ArpOp, ArpView, ARP_LEN } from './arp.js';
import { BROADCAST_MAC } from './addr.js';
import { EtherType, IpProto } from './consts.js';
import { type EncapTemplate, VXLAN_HEADROOM } from './encap.js';
import { ETH_HEADER_LEN, ETH_VLAN_HEADER_LEN, EthernetView } from './ethernet.js';
import { Icmpv4View, ICMPV4_HEADER_LEN } from './icmpv4.js';
import { IPV4_FLAG_DF, IPV4_HEADER_LEN, Ipv4View } from './ipv4.js';
import { TCP_HEADER_LEN, TCP_MAX_HEADER_LEN, TcpView } from './tcp.js';
import { UDP_HEADER_LEN, UdpView } from './udp.js';

/** Ethernet and IPv4 fields of a frame. */
export interface L3Spec {
  readonly srcMac: number;
  readonly dstMac: number;
  readonly src: number;
  readonly dst: number;
  /** Default 64. */
  readonly ttl?: number;
  /** The whole TOS byte (DSCP << 2 | ECN); default 0. */
  readonly tos?: number;
  /** IPv4 identification; default 1. */
  readonly ident?: number;
  /** Default true. */
  readonly df?: boolean;
  /** An 802.1Q tag (TCI) before the EtherType; none by default. */
  readonly vlan?: number;
}

/**
 * ipv4Frame: Ethernet (optionally tagged) + IPv4 headers (checksum filled) for an `l4Len`-byte
 * payload of `proto`, which is left zeroed. Returns the frame and the offsets of the IPv4
 * header and of its payload.
 */
export function ipv4Frame(o: L3Spec, proto: number, l4Len: number): { b: Buffer; ip: number; l4: number } {
  const eth = o.vlan === undefined ? ETH_HEADER_LEN : ETH_VLAN_HEADER_LEN;
  const len = eth + IPV4_HEADER_LEN + l4Len;
  const b = Buffer.alloc(len);
  new EthernetView().reset(b, 0, len).emit(o.dstMac, o.srcMac, EtherType.IPV4, o.vlan ?? -1);
  new Ipv4View().reset(b, eth, len).emit(o.src, o.dst, proto, IPV4_HEADER_LEN + l4Len, o.ttl ?? 64, o.tos ?? 0, o.ident ?? 1, o.df === false ? 0 : IPV4_FLAG_DF);
  return { b, ip: eth, l4: eth + IPV4_HEADER_LEN };
}

/** udpFrame: Ethernet/IPv4/UDP carrying `payload`, UDP checksum computed. */
export function udpFrame(o: L3Spec & { readonly sport: number; readonly dport: number; readonly payload: Buffer }): Buffer {
  const udpLen = UDP_HEADER_LEN + o.payload.length;
  const { b, l4 } = ipv4Frame(o, IpProto.UDP, udpLen);
  o.payload.copy(b, l4 + UDP_HEADER_LEN);
  const u = new UdpView().reset(b, l4, b.length);
  u.emit(o.sport, o.dport, udpLen);
  u.fillChecksum(o.src, o.dst);
  return b;
}

export interface TcpSpec {
  readonly sport: number;
  readonly dport: number;
  readonly seq: number;
  readonly ack: number;
  /** The nine flag bits (TcpFlag). */
  readonly flags: number;
  readonly window: number;
  /** Option bytes, already padded to a multiple of 4 (at most 40); none by default. */
  readonly options?: Buffer;
  readonly payload?: Buffer;
}

/** tcpFrame: Ethernet/IPv4/TCP with `options` and `payload`, TCP checksum computed. */
export function tcpFrame(o: L3Spec & TcpSpec): Buffer {
  const opts = o.options ?? Buffer.alloc(0);
  const payload = o.payload ?? Buffer.alloc(0);
  const hl = TCP_HEADER_LEN + opts.length;
  if (opts.length % 4 !== 0 || hl > TCP_MAX_HEADER_LEN) throw new RangeError(`TCP options of ${opts.length} bytes: not a multiple of 4 up to 40`);
  const { b, l4 } = ipv4Frame(o, IpProto.TCP, hl + payload.length);
  const t = new TcpView().reset(b, l4, b.length);
  t.emit(o.sport, o.dport, o.seq >>> 0, o.ack >>> 0, o.flags, o.window);
  b[l4 + 12] = (hl / 4) << 4 | (b[l4 + 12]! & 0x0f);
  opts.copy(b, l4 + TCP_HEADER_LEN);
  payload.copy(b, l4 + hl);
  t.fillChecksum(o.src, o.dst);
  return b;
}

/**
 * icmpv4Frame: Ethernet/IPv4/ICMP of `type` and `code` whose rest-of-header word is `rest`
 * (echo: identifier << 16 | sequence), carrying `payload`; ICMP checksum computed.
 */
export function icmpv4Frame(o: L3Spec & { readonly type: number; readonly code: number; readonly rest: number; readonly payload: Buffer }): Buffer {
  const { b, l4 } = ipv4Frame(o, IpProto.ICMP, ICMPV4_HEADER_LEN + o.payload.length);
  o.payload.copy(b, l4 + ICMPV4_HEADER_LEN);
  const v = new Icmpv4View().reset(b, l4, b.length);
  v.emitHeader(o.type, o.code, o.rest >>> 0);
  v.fillChecksum();
  return b;
}

/**
 * arpFrame: an Ethernet/ARP request (default) or reply, broadcast unless `dstMac` is given; the
 * sender hardware address defaults to the Ethernet source, the target's to zero.
 */
export function arpFrame(o: {
  readonly srcMac: number; readonly dstMac?: number; readonly oper?: number; readonly sha?: number; readonly spa: number;
  readonly tha?: number; readonly tpa: number; readonly vlan?: number;
}): Buffer {
  const eth = o.vlan === undefined ? ETH_HEADER_LEN : ETH_VLAN_HEADER_LEN;
  const len = eth + ARP_LEN;
  const b = Buffer.alloc(len);
  new EthernetView().reset(b, 0, len).emit(o.dstMac ?? BROADCAST_MAC, o.srcMac, EtherType.ARP, o.vlan ?? -1);
  new ArpView().reset(b, eth, len).emit(o.oper ?? ArpOp.REQUEST, o.sha ?? o.srcMac, o.spa, o.tha ?? 0, o.tpa);
  return b;
}

/**
 * vxlanFrame: the whole outer frame (Ethernet/IPv4/UDP/VXLAN) that `t` writes in front of
 * `inner`, as a capture on the underlay shows it. Advances t's IPv4 identification like any
 * encapsulation. `inner` is copied, not modified.
 */
export function vxlanFrame(t: EncapTemplate, inner: Buffer): Buffer {
  const slot = Buffer.alloc(VXLAN_HEADROOM + inner.length);
  inner.copy(slot, VXLAN_HEADROOM);
  const start = t.encap(slot, VXLAN_HEADROOM, slot.length);
  return slot.subarray(start);
}
