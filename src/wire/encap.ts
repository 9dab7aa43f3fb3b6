/**
 * VXLAN encapsulation: write outer Ethernet + IPv4 + UDP + VXLAN in front of an inner frame
 * that already sits in a slot with at least VXLAN_HEADROOM bytes free before it, without
 * copying the frame (the kernel's `skb_push`, gopacket's `PrependBytes`).
 *
 *   slot: [ .... headroom .... | inner Ethernet frame ............ ]
 *                 ^ start - 50   ^ start                             ^ end
 *   after:[ eth | ipv4 | udp | vxlan | inner Ethernet frame ...... ]
 *
 * An EncapTemplate holds the 50 header bytes for one (remote VTEP, VNI) destination with every
 * per-packet field zeroed and the IPv4 checksum of the fixed part pre-summed. Per packet it
 * copies the template and patches: IPv4 total length, identification, TOS (ECN per RFC 6040,
 * DSCP when inherited), DF when inherited, the header checksum, the UDP source port (a hash of
 * the inner flow), the UDP length, and the UDP checksum when enabled. Nothing is allocated.
 */

import { EMPTY, EMPTY_DV, dataViewOf } from './bytes.js';
import { dvSum16, finish, fold16, pseudoHeaderSum, sum16 } from './checksum.js';
import { EtherType, IpProto, UdpPort } from './consts.js';
import { ETH_HEADER_LEN, EthernetView } from './ethernet.js';
import { ECN_MASK, Ecn, IPV4_FLAG_DF, IPV4_HEADER_LEN, Ipv4View } from './ipv4.js';
import { UDP_HEADER_LEN, UdpView } from './udp.js';
import { VXLAN_HEADER_LEN, VXLAN_VNI_MAX, VxlanView } from './vxlan.js';

/** Byte layout of an encapsulated frame, composed from the header lengths. */
export const OUTER_IP_OFF = ETH_HEADER_LEN; // 14
export const OUTER_UDP_OFF = OUTER_IP_OFF + IPV4_HEADER_LEN; // 34
export const VXLAN_OFF = OUTER_UDP_OFF + UDP_HEADER_LEN; // 42
/** Bytes in front of the inner frame: the kernel's VXLAN_HEADROOM (20 + 8 + 8 + 14) = 50. */
export const VXLAN_HEADROOM = VXLAN_OFF + VXLAN_HEADER_LEN; // 50
/** What the underlay IPv4 packet adds to the inner frame: IPv4 + UDP + VXLAN + inner Ethernet. */
export const VXLAN_OVERHEAD = VXLAN_HEADROOM; // the "MTU tax": pod MTU = underlay MTU - 50
/** Outer IPv4 + UDP + VXLAN only (what is written when the kernel supplies the outer Ethernet). */
export const VXLAN_IP_HEADROOM = VXLAN_HEADROOM - ETH_HEADER_LEN; // 36

export const DfPolicy = { UNSET: 'unset', SET: 'set', INHERIT: 'inherit' } as const;
export type DfPolicy = (typeof DfPolicy)[keyof typeof DfPolicy];

/** Source-port ranges: RFC 7348 §5's dynamic range, and Linux's default ip_local_port_range. */
export const SRC_PORT_RANGE_RFC: readonly [number, number] = [49152, 65535];
export const SRC_PORT_RANGE_LINUX: readonly [number, number] = [32768, 60999];

export interface EncapOptions {
  /** Outer Ethernet addresses: our underlay NIC and the next hop toward the remote VTEP. */
  readonly srcMac: number;
  readonly dstMac: number;
  /** Outer IPv4 addresses: our VTEP and the remote VTEP. */
  readonly srcIp: number;
  readonly dstIp: number;
  readonly vni: number;
  /** Destination UDP port; default 4789 (IANA). Linux's default is 8472. */
  readonly dstPort?: number;
  /** Outer TTL; default 64 (the kernel's route default). */
  readonly ttl?: number;
  /** Outer DSCP (0-63), or 'inherit' to copy the inner packet's; default 0. */
  readonly dscp?: number | 'inherit';
  /** Outer DF bit; default 'unset' (the kernel's default). */
  readonly df?: DfPolicy;
  /** Compute the outer UDP checksum; default false (RFC 7348 §5: SHOULD be zero). Linux's default is on. */
  readonly udpChecksum?: boolean;
  /** Inclusive UDP source-port range for the flow hash; default 49152-65535. */
  readonly srcPortRange?: readonly [number, number];
}

/**
 * RFC 6040 §4.1 normal-mode encapsulation: the outer ECN field is a copy of the inner one.
 * (Linux's INET_ECN_encapsulate differs only for inner CE, which it sends as outer ECT(0).)
 */
export function ecnEncapsulate(innerEcn: number): number {
  return innerEcn & ECN_MASK;
}

// RFC 6040 §4.2 decapsulation table, indexed [inner * 4 + outer]; -1 means drop.
const ECN_DECAP: readonly number[] = [
  /* inner Not-ECT */ Ecn.NOT_ECT, Ecn.NOT_ECT, Ecn.NOT_ECT, -1,
  /* inner ECT(1)  */ Ecn.ECT1, Ecn.ECT1, Ecn.ECT1, Ecn.CE,
  /* inner ECT(0)  */ Ecn.ECT0, Ecn.ECT1, Ecn.ECT0, Ecn.CE,
  /* inner CE      */ Ecn.CE, Ecn.CE, Ecn.CE, Ecn.CE,
];

/** ecnDecapsulate: the inner ECN after decapsulation (RFC 6040 §4.2), or -1 to drop. */
export function ecnDecapsulate(innerEcn: number, outerEcn: number): number {
  return ECN_DECAP[((innerEcn & ECN_MASK) << 2) | (outerEcn & ECN_MASK)]!;
}

/**
 * flowHash: a 32-bit hash of the inner flow for the UDP source port (the kernel's
 * `udp_flow_src_port` idea): the IPv4 5-tuple when the inner frame carries IPv4 (ports only for
 * TCP/UDP first fragments), else the two MACs and the EtherType. Reads only inside [start, end).
 */
export function flowHash(b: Buffer, start: number, end: number): number {
  return flowHashDv(dataViewOf(b), start, end);
}

/**
 * flowHash16: flowHash folded to 16 bits the way the source port is picked from it
 * (`(h ^ (h << 16)) >>> 16`). A small integer, so unlike the uint32 hash it is never boxed when
 * returned from a call that is not inlined: what classification on the hot path uses.
 */
export function flowHash16(b: Buffer, start: number, end: number): number {
  return flowFold16(dataViewOf(b), start, end);
}

/** flowHashDv: flowHash over a DataView. */
export function flowHashDv(dv: DataView, start: number, end: number): number {
  flowFold16(dv, start, end);
  return lastHash[0]!;
}

/** The full hash of the last flowFold16() call (read by flowHashDv). */
const lastHash = new Uint32Array(1);

/**
 * flowFold16 computes flowHashDv's hash (left in lastHash[0]) and returns it folded the way
 * Linux picks a source port (`hash ^= hash << 16`, then the top 16 bits): 0..65535, a small
 * integer. encap() calls this one: a uint32 hash is a double above 2^30, and V8 boxes a double
 * returned from a call it does not inline (16 heap bytes); in the switch's big pipeline graph
 * that happened in some runs, ~9 bytes per frame (flatnet replay pod-to-remote-udp64.pcap).
 */
function flowFold16(dv: DataView, start: number, end: number): number {
  const len = end - start;
  if (len < ETH_HEADER_LEN) {
    lastHash[0] = 0;
    return 0;
  }
  const type = dv.getUint16(start + 12);
  const ip = start + ETH_HEADER_LEN;
  let h: number;
  const vi = len >= ETH_HEADER_LEN + IPV4_HEADER_LEN ? dv.getUint8(ip) : 0;
  if (type === EtherType.IPV4 && vi >>> 4 === 4) {
    // Source and destination rotated apart so that swapped addresses hash differently.
    const dst = dv.getInt32(ip + 16);
    h = dv.getInt32(ip + 12) ^ ((dst << 13) | (dst >>> 19));
    const proto = dv.getUint8(ip + 9);
    const l4 = ip + ((vi & 0x0f) << 2);
    if ((proto === IpProto.TCP || proto === IpProto.UDP) && (dv.getUint16(ip + 6) & 0x1fff) === 0 && l4 + 4 <= end) {
      const ports = dv.getInt32(l4);
      h ^= (ports << 7) | (ports >>> 25);
    }
    h ^= proto << 24;
  } else {
    // Not IPv4: the two MACs and the EtherType (the kernel's fallback hash covers the same).
    const w = dv.getInt32(start + 4);
    h = dv.getInt32(start) ^ ((w << 11) | (w >>> 21)) ^ dv.getInt32(start + 8) ^ type;
  }
  const f = avalanche(h);
  lastHash[0] = f;
  return (f >>> 16) ^ (f & 0xffff);
}

/**
 * avalanche: a 32-bit finalizer ("lowbias32", two multiplies, every input bit affects every
 * output bit). It replaced three murmur3 mixing rounds: the same spread of source ports for a
 * quarter of the work (bench/wire/codec.bench.ts, encap: ~12 ns -> ~3 ns of the hash).
 */
function avalanche(x: number): number {
  x ^= x >>> 16;
  x = Math.imul(x, 0x7feb_352d);
  x ^= x >>> 15;
  x = Math.imul(x, 0x846c_a68b);
  x ^= x >>> 16;
  return x >>> 0;
}

/**
 * srcPortFor maps a 32-bit hash monotonically onto the inclusive range [min, max] by scaling its
 * top 16 bits (multiply-shift, as Linux's udp_flow_src_port).
 */
export function srcPortFor(hash: number, min: number, max: number): number {
  return min + (((hash >>> 16) * (max - min + 1)) >>> 16);
}

/** The per-destination outer header and the counters it keeps (IPv4 identification). */
export class EncapTemplate {
  /** The 50 header bytes with per-packet fields zeroed (for inspection; encap() writes w0..w12). */
  readonly header: Buffer = Buffer.alloc(VXLAN_HEADROOM);
  readonly srcIp: number;
  readonly dstIp: number;
  readonly vni: number;
  readonly dstPort: number;
  readonly udpChecksum: boolean;
  /** The outer TTL. */
  readonly ttl: number;
  readonly srcPortMin: number;
  readonly srcPortMax: number;
  private readonly srcPortSpan: number;
  /** The outer TOS before ECN: the configured DSCP, shifted. */
  private readonly tosBase: number;
  private readonly dscpInherit: boolean;
  private readonly dfInherit: boolean;
  /** Unfolded sum of the fixed IPv4 header words (everything but length, id, TOS and DF). */
  private readonly ipSumBase: number;
  private ident = 0;
  // The header as twelve big-endian 32-bit words and a final 16-bit word, kept as int32 so
  // that V8 holds them unboxed: thirteen DataView stores beat a 50-byte Buffer#set by ~2x
  // (bench/wire/codec.bench.ts). Each is stored as `w | 0`: TurboFan then knows it is an int32
  // and stores it as one; without it the value goes through a double (78 instructions per
  // frame fewer in `flatnet replay`, measured with callgrind).
  private readonly w0: number; private readonly w1: number; private readonly w2: number;
  private readonly w3: number; private readonly w4: number; private readonly w5: number;
  private readonly w6: number; private readonly w7: number; private readonly w8: number;
  private readonly w9: number; private readonly w10: number; private readonly w11: number;
  private readonly w12: number;
  private lastBuf: Buffer = EMPTY;
  private lastDv: DataView = EMPTY_DV;

  constructor(o: EncapOptions) {
    if (!Number.isInteger(o.vni) || o.vni < 0 || o.vni > VXLAN_VNI_MAX) throw new RangeError(`VNI ${o.vni} does not fit 24 bits`);
    const [min, max] = o.srcPortRange ?? SRC_PORT_RANGE_RFC;
    if (!(Number.isInteger(min) && Number.isInteger(max) && min >= 1 && max <= 65535 && min <= max)) {
      throw new RangeError(`bad source port range ${min}-${max}`);
    }
    // Both end up in one header byte each; out of range they would be truncated on the wire
    // (and a DSCP above 63 would also break the pre-summed header checksum).
    const ttl = o.ttl ?? 64;
    if (!Number.isInteger(ttl) || ttl < 0 || ttl > 255) throw new RangeError(`TTL ${ttl} does not fit 8 bits`);
    if (typeof o.dscp === 'number' && (!Number.isInteger(o.dscp) || o.dscp < 0 || o.dscp > 63)) {
      throw new RangeError(`DSCP ${o.dscp} does not fit 6 bits`);
    }
    this.srcIp = o.srcIp >>> 0;
    this.dstIp = o.dstIp >>> 0;
    this.vni = o.vni;
    this.dstPort = o.dstPort ?? UdpPort.VXLAN;
    this.udpChecksum = o.udpChecksum ?? false;
    this.ttl = ttl;
    this.srcPortMin = min;
    this.srcPortMax = max;
    this.srcPortSpan = max - min + 1;
    this.dscpInherit = o.dscp === 'inherit';
    this.dfInherit = o.df === DfPolicy.INHERIT;
    this.tosBase = (typeof o.dscp === 'number' ? o.dscp : 0) << 2;
    const h = this.header;
    new EthernetView().reset(h, 0, VXLAN_HEADROOM).emit(o.dstMac, o.srcMac, EtherType.IPV4);
    const ipv4 = new Ipv4View().reset(h, OUTER_IP_OFF, VXLAN_HEADROOM);
    ipv4.emit(this.srcIp, this.dstIp, IpProto.UDP, 0, ttl, 0, 0, o.df === DfPolicy.SET ? IPV4_FLAG_DF : 0);
    ipv4.checksum = 0;
    this.ipSumBase = fold16(sum16(h, OUTER_IP_OFF, IPV4_HEADER_LEN)); // folded: encap() adds to it with 32-bit folds
    new UdpView().reset(h, OUTER_UDP_OFF, VXLAN_HEADROOM).emit(0, this.dstPort, 0);
    new VxlanView().reset(h, VXLAN_OFF, VXLAN_HEADROOM).emit(o.vni);
    const w = (i: number): number => h.readInt32BE(i * 4);
    this.w0 = w(0); this.w1 = w(1); this.w2 = w(2); this.w3 = w(3); this.w4 = w(4); this.w5 = w(5);
    this.w6 = w(6); this.w7 = w(7); this.w8 = w(8); this.w9 = w(9); this.w10 = w(10); this.w11 = w(11);
    this.w12 = h.readUInt16BE(48);
  }

  /**
   * encap writes the outer headers in front of the inner frame at [start, end) of `b` and
   * returns the outer frame's start (start - VXLAN_HEADROOM). Requires start >= VXLAN_HEADROOM
   * and an inner frame of at least 14 bytes; reads the inner headers only inside [start, end).
   */
  encap(b: Buffer, start: number, end: number): number {
    if (b !== this.lastBuf) {
      this.lastBuf = b;
      this.lastDv = dataViewOf(b);
    }
    const dv = this.lastDv;
    const o = start - VXLAN_HEADROOM;
    dv.setInt32(o, this.w0 | 0); dv.setInt32(o + 4, this.w1 | 0); dv.setInt32(o + 8, this.w2 | 0);
    dv.setInt32(o + 12, this.w3 | 0); dv.setInt32(o + 16, this.w4 | 0); dv.setInt32(o + 20, this.w5 | 0);
    dv.setInt32(o + 24, this.w6 | 0); dv.setInt32(o + 28, this.w7 | 0); dv.setInt32(o + 32, this.w8 | 0);
    dv.setInt32(o + 36, this.w9 | 0); dv.setInt32(o + 40, this.w10 | 0); dv.setInt32(o + 44, this.w11 | 0);
    dv.setUint16(o + 48, this.w12 | 0);
    const innerLen = end - start;
    const ipLen = innerLen + VXLAN_IP_HEADROOM;
    // Inner IPv4 fields the outer header inherits: ECN always (RFC 6040), DSCP and DF by policy.
    let tos = this.tosBase;
    let df = 0;
    if (innerLen >= ETH_HEADER_LEN + IPV4_HEADER_LEN && dv.getUint16(start + 12) === EtherType.IPV4) {
      const innerTos = dv.getUint8(start + ETH_HEADER_LEN + 1);
      tos = (this.dscpInherit ? innerTos & ~ECN_MASK : tos) | ecnEncapsulate(innerTos);
      if (this.dfInherit) df = dv.getUint16(start + ETH_HEADER_LEN + 6) & IPV4_FLAG_DF;
    }
    const ident = this.ident;
    this.ident = (ident + 1) & 0xffff;
    const ip = o + OUTER_IP_OFF;
    dv.setUint8(ip + 1, tos);
    dv.setUint16(ip + 2, ipLen);
    dv.setUint16(ip + 4, ident);
    if (df !== 0) dv.setUint16(ip + 6, dv.getUint16(ip + 6) | df);
    let s = this.ipSumBase + tos + ipLen + ident + df;
    s = (s >>> 16) + (s & 0xffff);
    s = (s >>> 16) + (s & 0xffff);
    dv.setUint16(ip + 10, ~s & 0xffff);
    const udp = o + OUTER_UDP_OFF;
    // Linux folds the low half into the high half first (`hash ^= hash << 16`): only the top 16
    // bits pick the port.
    // srcPortFor(hash ^ (hash << 16), min, max), from the folded 16 bits (see flowFold16).
    dv.setUint16(udp, this.srcPortMin + ((flowFold16(dv, start, end) * this.srcPortSpan) >>> 16));
    const udpLen = innerLen + UDP_HEADER_LEN + VXLAN_HEADER_LEN;
    dv.setUint16(udp + 4, udpLen);
    if (this.udpChecksum) {
      const c = finish(dvSum16(dv, udp, udpLen, pseudoHeaderSum(this.srcIp, this.dstIp, IpProto.UDP, udpLen)));
      dv.setUint16(udp + 6, c === 0 ? 0xffff : c);
    }
    return o;
  }

  /**
   * encapPreview: encap() without advancing the IPv4 identification, so that the next real
   * frame gets the ID it would have got anyway (what `flatnet trace` shows must not change
   * what the data path sends). `ahead`: how many datagrams this one follows in its train (the
   * k-th segment or fragment of one frame gets the ID k further on).
   */
  encapPreview(b: Buffer, start: number, end: number, ahead = 0): number {
    const ident = this.ident;
    this.ident = (ident + ahead) & 0xffff;
    const o = this.encap(b, start, end);
    this.ident = ident;
    return o;
  }
}

/**
 * encapVxlanOnly writes just the 8-byte VXLAN header in front of [start, ...) and returns its
 * offset: the form sent through a kernel UDP socket, which adds the outer IPv4 and UDP itself.
 */
export function encapVxlanOnly(v: VxlanView, b: Buffer, start: number, vni: number): number {
  const o = start - VXLAN_HEADER_LEN;
  v.reset(b, o, start).emit(vni);
  return o;
}
