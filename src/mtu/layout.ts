/**
 * Where the headers of an Ethernet frame carrying IPv4 or IPv6 sit: one parse shared by the
 * segmenter, the coalescer, MSS clamping, checksum offload and the oversize decision.
 *
 *   [start | Ethernet 14 | IPv4 (IHL*4) or IPv6 (40) | TCP (doff*4) or UDP (8) | payload | pad ]
 *           ^ l3Off                      ^ l4Off                             ^ ipEnd        ^ end
 *
 * Untagged frames only: pod and host ports drop 802.1Q frames before any of this runs. IPv6
 * extension headers are not walked (the transport must follow the fixed header).
 *
 * How the switch uses this: it does not need to; the functions of src/mtu take (buf, start,
 * end) and parse with a module-level FrameLayout of their own.
 */

import { EtherType, IpProto } from '../wire/consts.js';
import { ETH_HEADER_LEN } from '../wire/ethernet.js';
import { ipv4Validate } from '../wire/ipv4.js';
import { Drop } from '../wire/drop.js';
import { IPV6_HEADER_LEN, Ipv6Check, ipv6Validate } from '../wire/ipv6.js';
import { MtuStatus } from './status.js';

/** IPv6 extension header numbers (RFC 8200 §4 and the IANA list), for a clearer status. */
function isIpv6Extension(nh: number): boolean {
  return nh === 0 || nh === 43 || nh === 44 || nh === 50 || nh === 51 || nh === 60 || nh === 135 || nh === 139
    || nh === 140 || nh === 253 || nh === 254;
}

/** A flyweight: parse() overwrites every field. */
export class FrameLayout {
  /** 4 or 6 after a successful parseIp(). */
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
  /** TCP: data offset * 4; UDP: 8. Set by parseL4(). */
  l4HdrLen = 0;

  /**
   * parseIp reads the Ethernet and IP headers of dv[start, end). Returns OK, after which
   * l3Off <= l4Off <= ipEnd <= end; or TRUNCATED, NOT_IP, BAD_IP_HEADER. Reads only inside
   * [start, end); mutates only this object.
   */
  parseIp(dv: DataView, start: number, end: number): MtuStatus {
    if (end - start < ETH_HEADER_LEN) return MtuStatus.TRUNCATED;
    const type = dv.getUint16(start + 12);
    const l3 = start + ETH_HEADER_LEN;
    this.l3Off = l3;
    if (type === EtherType.IPV4) {
      const d = ipv4Validate(dv, l3, end);
      if (d !== Drop.NONE) return d === Drop.IPV4_TRUNCATED ? MtuStatus.TRUNCATED : MtuStatus.BAD_IP_HEADER;
      const hl = (dv.getUint8(l3) & 0x0f) << 2;
      this.ipVersion = 4;
      this.ipHdrLen = hl;
      this.l4Off = l3 + hl;
      this.ipEnd = l3 + dv.getUint16(l3 + 2);
      this.proto = dv.getUint8(l3 + 9);
      this.flagsFrag = dv.getUint16(l3 + 6);
      return MtuStatus.OK;
    }
    if (type === EtherType.IPV6) {
      const c = ipv6Validate(dv, l3, end);
      if (c !== Ipv6Check.OK) return c === Ipv6Check.TRUNCATED ? MtuStatus.TRUNCATED : MtuStatus.BAD_IP_HEADER;
      this.ipVersion = 6;
      this.ipHdrLen = IPV6_HEADER_LEN;
      this.l4Off = l3 + IPV6_HEADER_LEN;
      this.ipEnd = l3 + IPV6_HEADER_LEN + dv.getUint16(l3 + 4);
      this.proto = dv.getUint8(l3 + 6);
      this.flagsFrag = 0;
      return MtuStatus.OK;
    }
    return MtuStatus.NOT_IP;
  }

  /**
   * parseL4 checks, after parseIp(), that the packet is an unfragmented `proto` (TCP or UDP)
   * packet whose transport header lies inside the IP packet, and sets l4HdrLen. Returns OK, or
   * WRONG_PROTOCOL, IPV6_EXT_HEADER, IP_FRAGMENT, TRUNCATED, BAD_L4_HEADER.
   */
  parseL4(dv: DataView, proto: number): MtuStatus {
    if (this.proto !== proto) {
      return this.ipVersion === 6 && isIpv6Extension(this.proto) ? MtuStatus.IPV6_EXT_HEADER : MtuStatus.WRONG_PROTOCOL;
    }
    if ((this.flagsFrag & 0x3fff) !== 0) return MtuStatus.IP_FRAGMENT; // MF or a fragment offset
    const l4 = this.l4Off, room = this.ipEnd - l4;
    if (proto === IpProto.TCP) {
      if (room < 20) return MtuStatus.TRUNCATED;
      const hl = (dv.getUint8(l4 + 12) >>> 4) << 2;
      if (hl < 20) return MtuStatus.BAD_L4_HEADER;
      if (hl > room) return MtuStatus.TRUNCATED;
      this.l4HdrLen = hl;
      return MtuStatus.OK;
    }
    if (proto === IpProto.UDP) {
      if (room < 8) return MtuStatus.TRUNCATED;
      this.l4HdrLen = 8;
      return MtuStatus.OK;
    }
    return MtuStatus.WRONG_PROTOCOL;
  }

  /** parse = parseIp + parseL4(proto). */
  parse(dv: DataView, start: number, end: number, proto: number): MtuStatus {
    const s = this.parseIp(dv, start, end);
    return s !== MtuStatus.OK ? s : this.parseL4(dv, proto);
  }

  /**
   * pseudoSum: the unfolded pseudo-header sum (addresses, protocol, `l4Len`) of the parsed
   * packet, IPv4 (RFC 9293 §3.1) or IPv6 (RFC 8200 §8.1). Requires parseIp() OK.
   */
  pseudoSum(dv: DataView, l4Len: number): number {
    return pseudoSumAt(dv, this.l3Off, this.ipVersion, this.proto, l4Len);
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
