/**
 * Where the headers of an Ethernet frame carrying IPv4 or IPv6 sit: parsed once (the pipeline's
 * ingress stage does it for every frame it forwards) and then read by the MTU rules, the
 * offload algorithms and every later stage, none of which parses again.
 *
 *   [start | Ethernet 14 | IPv4 (IHL*4) or IPv6 (40) | TCP (doff*4) or UDP (8) | payload | pad ]
 *           ^ l3Off                      ^ l4Off                             ^ ipEnd        ^ end
 *
 * Untagged frames only: pod and host ports drop 802.1Q frames before any of this runs. IPv6
 * extension headers are not walked (the transport must follow the fixed header).
 *
 * The layout remembers its frame (buf, dv, start, end): functions that take a FrameLayout need
 * nothing else to find the packet. Offsets stay valid while the frame is rewritten in place
 * (TTL, addresses, MACs, checksums); they do not survive a change of the frame's length.
 */

import { EMPTY, EMPTY_DV, dataViewOf } from '../wire/bytes.js';
import { EtherType, IpProto } from '../wire/consts.js';
import { WireDrop } from '../wire/drop.js';
import { ETH_HEADER_LEN } from '../wire/ethernet.js';
import { IPV4_HEADER_LEN, ipv4Validate } from '../wire/ipv4.js';
import { IPV6_HEADER_LEN, Ipv6Check, ipv6Validate } from '../wire/ipv6.js';
import { MtuStatus } from './status.js';

/** IPv6 extension header numbers (RFC 8200 §4 and the IANA list), for a clearer status. */
function isIpv6Extension(nh: number): boolean {
  return nh === 0 || nh === 43 || nh === 44 || nh === 50 || nh === 51 || nh === 60 || nh === 135 || nh === 139
    || nh === 140 || nh === 253 || nh === 254;
}

/** l4s before l4() has parsed the transport header (not an MtuStatus: those are 0 and negative). */
const L4_UNPARSED = 1;

/** A flyweight: parse() overwrites every field. */
export class FrameLayout {
  /** The frame: buf[start, end), dv a DataView over buf's whole ArrayBuffer (dataViewOf). */
  buf: Buffer = EMPTY;
  dv: DataView = EMPTY_DV;
  start = 0;
  end = 0;
  /** 4 or 6 when parse() returned OK; 0 otherwise. */
  ipVersion = 0;
  l3Off = 0;
  /** IPv4: IHL * 4; IPv6: 40. */
  ipHdrLen = 0;
  /** l3Off + ipHdrLen. */
  l4Off = 0;
  /** One past the IP packet: l3Off + total length (IPv4) or + 40 + payload length (IPv6). */
  ipEnd = 0;
  /** IPv4 protocol / IPv6 next header. */
  proto = 0;
  /** IPv4 flags + fragment offset word (0 for IPv6). */
  flagsFrag = 0;
  /** The codec's verdict on an IPv4 header (NONE when valid, or when the frame is not IPv4). */
  ipDrop: WireDrop = WireDrop.NONE;
  /**
   * The transport header's status, L4_UNPARSED until l4() parses it: OK for an unfragmented TCP
   * or UDP packet whose header lies inside it (l4HdrLen and the ports set), else
   * WRONG_PROTOCOL, IPV6_EXT_HEADER, IP_FRAGMENT, TRUNCATED or BAD_L4_HEADER. Read it through
   * l4() or l4For().
   */
  private l4s: number = L4_UNPARSED;
  /** TCP: data offset * 4; UDP: 8; 0 when l4() is not OK. */
  l4HdrLen = 0;
  /** IPv4 source and destination address (uint32); 0 for IPv6 and frames without IP. */
  srcIp = 0;
  dstIp = 0;
  /** TCP/UDP source and destination port when l4() is OK, else 0. */
  srcPort = 0;
  dstPort = 0;

  /**
   * parse reads the Ethernet and IP headers of buf[start, end); `dv` is buf's DataView. Returns
   * OK, after which l3Off <= l4Off <= ipEnd <= end, or TRUNCATED, NOT_IP, BAD_IP_HEADER (ipDrop
   * names the IPv4 fault). The transport header is parsed when first asked for (l4()): the L3
   * data path never needs it (bench/replay: parsing it for every frame cost ~5% of the
   * pod-to-remote path). Reads only inside [start, end); mutates only this object; allocates
   * nothing.
   */
  parse(buf: Buffer, dv: DataView, start: number, end: number): MtuStatus {
    this.buf = buf;
    this.dv = dv;
    this.start = start;
    this.end = end;
    return this.parseHeaders();
  }

  /**
   * parseHeaders: parse() over the frame the layout already points at (buf, dv, start, end).
   * Every field is written once on each path (this runs for every frame the pipeline forwards).
   */
  parseHeaders(): MtuStatus {
    const start = this.start;
    if (this.end - start < ETH_HEADER_LEN) return this.notIp(WireDrop.NONE, MtuStatus.TRUNCATED);
    const type = this.dv.getUint16(start + 12);
    if (type === EtherType.IPV4) return this.parseIpv4();
    if (type === EtherType.IPV6) return this.parseIpv6();
    return this.notIp(WireDrop.NONE, MtuStatus.NOT_IP);
  }

  /**
   * parseIpv4: parseHeaders for a frame whose EtherType is IPv4 (callers that read the EtherType
   * already call this one: it is small enough for V8 to inline into them).
   */
  parseIpv4(): MtuStatus {
    const dv = this.dv, l3 = this.start + ETH_HEADER_LEN;
    this.l3Off = l3;
    // ipv4Validate's checks, in its order, on the two fields read once here (this runs for
    // every forwarded frame; a call costs more than the checks).
    const avail = this.end - l3;
    if (avail < IPV4_HEADER_LEN) return this.notIp(WireDrop.IPV4_TRUNCATED, MtuStatus.TRUNCATED);
    const vi = dv.getUint8(l3), hl = (vi & 0x0f) << 2, tot = dv.getUint16(l3 + 2);
    if (vi >>> 4 !== 4 || hl < IPV4_HEADER_LEN || tot > avail || tot < hl) {
      const d = ipv4Validate(dv, l3, this.end);
      return this.notIp(d, d === WireDrop.IPV4_TRUNCATED ? MtuStatus.TRUNCATED : MtuStatus.BAD_IP_HEADER);
    }
    this.ipVersion = 4;
    this.ipDrop = WireDrop.NONE;
    this.ipHdrLen = hl;
    this.l4Off = l3 + hl;
    this.ipEnd = l3 + tot;
    this.proto = dv.getUint8(l3 + 9);
    this.flagsFrag = dv.getUint16(l3 + 6);
    this.srcIp = dv.getUint32(l3 + 12);
    this.dstIp = dv.getUint32(l3 + 16);
    this.l4s = L4_UNPARSED;
    return MtuStatus.OK;
  }

  private parseIpv6(): MtuStatus {
    const dv = this.dv, l3 = this.start + ETH_HEADER_LEN;
    this.l3Off = l3;
    const c = ipv6Validate(dv, l3, this.end);
    if (c !== Ipv6Check.OK) return this.notIp(WireDrop.NONE, c === Ipv6Check.TRUNCATED ? MtuStatus.TRUNCATED : MtuStatus.BAD_IP_HEADER);
    this.ipVersion = 6;
    this.ipDrop = WireDrop.NONE;
    this.ipHdrLen = IPV6_HEADER_LEN;
    this.l4Off = l3 + IPV6_HEADER_LEN;
    this.ipEnd = l3 + IPV6_HEADER_LEN + dv.getUint16(l3 + 4);
    this.proto = dv.getUint8(l3 + 6);
    this.flagsFrag = 0;
    this.srcIp = 0;
    this.dstIp = 0;
    this.l4s = L4_UNPARSED;
    return MtuStatus.OK;
  }

  /** notIp records a frame without a (valid) IP packet and returns `status`. */
  private notIp(ipDrop: WireDrop, status: MtuStatus): MtuStatus {
    this.ipVersion = 0;
    this.ipDrop = ipDrop;
    this.l4s = MtuStatus.WRONG_PROTOCOL;
    this.l4HdrLen = 0;
    this.srcIp = 0;
    this.dstIp = 0;
    this.srcPort = 0;
    this.dstPort = 0;
    return status;
  }

  /**
   * l4 returns the transport header's status (see l4s), parsing it (once per frame) the first
   * time: after OK, l4HdrLen, srcPort and dstPort are set. Requires parse() OK or a failed
   * parse (then WRONG_PROTOCOL).
   */
  l4(): MtuStatus {
    const s = this.l4s;
    if (s !== L4_UNPARSED) return s as MtuStatus;
    const r = this.parseL4();
    this.l4s = r;
    if (r === MtuStatus.OK) {
      this.srcPort = this.dv.getUint16(this.l4Off);
      this.dstPort = this.dv.getUint16(this.l4Off + 2);
    } else {
      this.l4HdrLen = 0;
      this.srcPort = 0;
      this.dstPort = 0;
    }
    return r;
  }

  /** parseL4: the transport header of the packet parse() read. */
  private parseL4(): MtuStatus {
    const proto = this.proto;
    if (proto !== IpProto.TCP && proto !== IpProto.UDP) {
      return this.ipVersion === 6 && isIpv6Extension(proto) ? MtuStatus.IPV6_EXT_HEADER : MtuStatus.WRONG_PROTOCOL;
    }
    if ((this.flagsFrag & 0x3fff) !== 0) return MtuStatus.IP_FRAGMENT; // MF or a fragment offset
    const l4 = this.l4Off, room = this.ipEnd - l4;
    if (proto === IpProto.TCP) {
      if (room < 20) return MtuStatus.TRUNCATED;
      const hl = (this.dv.getUint8(l4 + 12) >>> 4) << 2;
      if (hl < 20) return MtuStatus.BAD_L4_HEADER;
      if (hl > room) return MtuStatus.TRUNCATED;
      this.l4HdrLen = hl;
      return MtuStatus.OK;
    }
    if (room < 8) return MtuStatus.TRUNCATED;
    this.l4HdrLen = 8;
    return MtuStatus.OK;
  }

  /**
   * l4For says, after parse() returned OK, whether the packet is an unfragmented `proto` (TCP
   * or UDP) packet with its transport header inside it: OK, or the reason it is not
   * (WRONG_PROTOCOL, IPV6_EXT_HEADER, IP_FRAGMENT, TRUNCATED, BAD_L4_HEADER). Reads nothing.
   */
  l4For(proto: number): MtuStatus {
    if (this.proto !== proto || this.ipVersion === 0) {
      return this.ipVersion === 6 && isIpv6Extension(this.proto) ? MtuStatus.IPV6_EXT_HEADER : MtuStatus.WRONG_PROTOCOL;
    }
    return this.l4();
  }

  /**
   * pseudoSum: the unfolded pseudo-header sum (addresses, protocol, `l4Len`) of the parsed
   * packet, IPv4 (RFC 9293 §3.1) or IPv6 (RFC 8200 §8.1). Requires parse() OK.
   */
  pseudoSum(l4Len: number): number {
    return pseudoSumAt(this.dv, this.l3Off, this.ipVersion, this.proto, l4Len);
  }

  /** FrameLayout.of: a new layout parsed over buf[start, end) (cold path: tools and tests). */
  static of(buf: Buffer, start = 0, end = buf.length): FrameLayout {
    const L = new FrameLayout();
    L.parse(buf, dataViewOf(buf), start, end);
    return L;
  }
}

/** pseudoSumAt: the pseudo-header sum for the IP header at `l3` (version 4 or 6). */
export function pseudoSumAt(dv: DataView, l3: number, ipVersion: number, proto: number, l4Len: number): number {
  let s = proto + l4Len;
  const a = ipVersion === 4 ? l3 + 12 : l3 + 8;
  const e = ipVersion === 4 ? l3 + 20 : l3 + 40;
  for (let i = a; i < e; i += 4) {
    const w = dv.getUint32(i);
    s += (w >>> 16) + (w & 0xffff);
  }
  return s;
}
