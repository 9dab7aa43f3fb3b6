/**
 * Ethernet II header with an optional IEEE 802.1Q (or 802.1ad) tag. No FCS: the kernel strips
 * it on receive and adds it on transmit, and Wireshark decodes VXLAN inner frames without one.
 *
 *   0                   1                   2                   3
 *  +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 *  |                  Destination MAC (6 octets) ...               |
 *  |     ... Destination MAC       |   Source MAC (6 octets) ...   |
 *  |                        ... Source MAC                         |
 *  |    EtherType or TPID 0x8100   |  [ PCP |D|   VLAN ID (12)   ] |
 *  |  [ EtherType after the tag ]  |
 *  +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 */

import { WireError } from '../errors.js';
import { dvPutU48, dvU48 } from './bytes.js';
import { formatMac, parseMac } from './addr.js';
import { EtherType } from './consts.js';
import { View } from './view.js';

const F = { DST: 0, SRC: 6, TYPE: 12, TCI: 14, INNER_TYPE: 16 } as const;
export const ETH_HEADER_LEN = F.TYPE + 2; // 14
export const ETH_VLAN_HEADER_LEN = F.INNER_TYPE + 2; // 18
export const ETH_ADDR_LEN = F.SRC - F.DST; // 6

const isTpid = (t: number): boolean => t === EtherType.VLAN || t === EtherType.QINQ;

/** In-place view of one Ethernet header. reset() re-points it; nothing here allocates. */
export class EthernetView extends View {
  /** After `true`, every accessor stays inside [off, end), including the tag if there is one. */
  checkLen(): boolean {
    const len = this.end - this.off;
    if (len < ETH_HEADER_LEN) return false;
    return !isTpid(this.dv.getUint16(this.off + F.TYPE)) || len >= ETH_VLAN_HEADER_LEN;
  }

  get dst(): number { return dvU48(this.dv, this.off + F.DST); }
  set dst(v: number) { dvPutU48(this.dv, this.off + F.DST, v); }
  get src(): number { return dvU48(this.dv, this.off + F.SRC); }
  set src(v: number) { dvPutU48(this.dv, this.off + F.SRC, v); }
  /** True when the destination is a group (broadcast or multicast) address: the I/G bit. */
  dstIsGroup(): boolean { return (this.dv.getUint8(this.off + F.DST) & 1) !== 0; }
  /** True when the source is a group address or all zeros: never a valid sender. */
  srcIsInvalid(): boolean {
    const dv = this.dv, o = this.off + F.SRC;
    return (dv.getUint8(o) & 1) !== 0 || (dv.getUint16(o) === 0 && dv.getUint32(o + 2) === 0);
  }
  /** The EtherType field at offset 12: the TPID when the frame is tagged. */
  get typeField(): number { return this.dv.getUint16(this.off + F.TYPE); }
  get hasVlan(): boolean { return isTpid(this.dv.getUint16(this.off + F.TYPE)); }
  /** Tag control information (PCP, DEI, VID); only meaningful when hasVlan. */
  get tci(): number { return this.dv.getUint16(this.off + F.TCI); }
  get vid(): number { return this.tci & 0x0fff; }
  /** The payload's EtherType, after the tag if there is one. */
  get etherType(): number {
    const t = this.dv.getUint16(this.off + F.TYPE);
    return isTpid(t) ? this.dv.getUint16(this.off + F.INNER_TYPE) : t;
  }
  set etherType(v: number) { this.dv.setUint16(this.off + (this.hasVlan ? F.INNER_TYPE : F.TYPE), v); }
  get headerLen(): number { return this.hasVlan ? ETH_VLAN_HEADER_LEN : ETH_HEADER_LEN; }
  get payloadOff(): number { return this.off + this.headerLen; }

  /**
   * emit writes a whole header (untagged when `tci` < 0) and returns its length. Writes every
   * byte: slots are reused, so nothing may be left from the previous packet.
   */
  emit(dst: number, src: number, etherType: number, tci = -1): number {
    const dv = this.dv, o = this.off;
    dvPutU48(dv, o + F.DST, dst);
    dvPutU48(dv, o + F.SRC, src);
    if (tci < 0) {
      dv.setUint16(o + F.TYPE, etherType);
      return ETH_HEADER_LEN;
    }
    dv.setUint16(o + F.TYPE, EtherType.VLAN);
    dv.setUint16(o + F.TCI, tci);
    dv.setUint16(o + F.INNER_TYPE, etherType);
    return ETH_VLAN_HEADER_LEN;
  }
}

export interface VlanRepr {
  readonly tpid: number;
  readonly pcp: number;
  readonly dei: boolean;
  readonly vid: number;
}

export interface EthernetRepr {
  readonly dst: string;
  readonly src: string;
  readonly vlan?: VlanRepr;
  readonly etherType: number;
}

/** parseEthernet: cold path; throws ERR_WIRE_TRUNCATED. */
export function parseEthernet(v: EthernetView): EthernetRepr {
  if (!v.checkLen()) throw new WireError('ERR_WIRE_TRUNCATED', `ethernet: ${v.end - v.off} bytes`);
  const base = { dst: formatMac(v.dst), src: formatMac(v.src) };
  if (!v.hasVlan) return { ...base, etherType: v.etherType };
  const tci = v.tci;
  return {
    ...base,
    vlan: { tpid: v.typeField, pcp: tci >>> 13, dei: (tci & 0x1000) !== 0, vid: tci & 0x0fff },
    etherType: v.etherType,
  };
}

export function ethernetReprLen(r: EthernetRepr): number {
  return r.vlan === undefined ? ETH_HEADER_LEN : ETH_VLAN_HEADER_LEN;
}

/** emitEthernet writes `r` at the view's offset (the view must span ethernetReprLen(r) bytes). */
export function emitEthernet(v: EthernetView, r: EthernetRepr): number {
  if (r.vlan === undefined) return v.emit(parseMac(r.dst), parseMac(r.src), r.etherType);
  const tci = (r.vlan.pcp << 13) | (r.vlan.dei ? 0x1000 : 0) | r.vlan.vid;
  const n = v.emit(parseMac(r.dst), parseMac(r.src), r.etherType, tci);
  v.dv.setUint16(v.off + F.TYPE, r.vlan.tpid);
  return n;
}

/**
 * EthAddrWords: the 12 address bytes of an Ethernet header (destination, then source) as three
 * big-endian int32 words, computed once for a (next hop, our MAC) pair so that rewriting a
 * frame's MACs is three 32-bit stores (the kernel caches the hardware header of a neighbour the
 * same way: hh_cache). Cold path: built when routes are.
 */
export class EthAddrWords {
  readonly w0: number;
  readonly w1: number;
  readonly w2: number;
  readonly dst: number;
  readonly src: number;
  constructor(dst: number, src: number) {
    this.dst = dst;
    this.src = src;
    const b = Buffer.alloc(12);
    const dv = new DataView(b.buffer, b.byteOffset, 12);
    dvPutU48(dv, F.DST, dst);
    dvPutU48(dv, F.SRC, src);
    this.w0 = b.readInt32BE(0);
    this.w1 = b.readInt32BE(4);
    this.w2 = b.readInt32BE(8);
  }
}

/**
 * putEthAddrs writes the addresses `a` at the Ethernet header at `off` (three stores). The
 * `| 0` tells TurboFan the values are int32: without it each store goes through a double
 * (bench/replay, instructions per frame).
 */
export function putEthAddrs(dv: DataView, off: number, a: EthAddrWords): void {
  dv.setInt32(off, a.w0 | 0);
  dv.setInt32(off + 4, a.w1 | 0);
  dv.setInt32(off + 8, a.w2 | 0);
}
