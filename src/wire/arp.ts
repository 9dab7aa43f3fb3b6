/**
 * ARP for IPv4 over Ethernet (RFC 826).
 *
 *   0                   1                   2                   3
 *  +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 *  |     Hardware type (1)         |     Protocol type (0x0800)    |
 *  |  HLEN (6)     |  PLEN (4)     |          Operation            |
 *  |            Sender hardware address (6) ...                    |
 *  |  ... SHA                      |  Sender protocol address ...  |
 *  |  ... SPA                      |  Target hardware address ...  |
 *  |                           ... THA                             |
 *  |                  Target protocol address                      |
 *  +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 */

import { WireError } from '../errors.js';
import { dvPutU48, dvU48 } from './bytes.js';
import { formatIpv4, formatMac, parseIpv4, parseMac } from './addr.js';
import { EtherType } from './consts.js';
import { View } from './view.js';

const F = { HTYPE: 0, PTYPE: 2, HLEN: 4, PLEN: 5, OPER: 6, SHA: 8, SPA: 14, THA: 18, TPA: 24 } as const;
export const ARP_LEN = F.TPA + 4; // 28

export const ArpOp = { REQUEST: 1, REPLY: 2 } as const;
export const ARP_HTYPE_ETHERNET = 1;

/** In-place view of one ARP packet. */
export class ArpView extends View {
  checkLen(): boolean { return this.end - this.off >= ARP_LEN; }

  /** True for the only form the switch handles: Ethernet hardware, IPv4 protocol addresses. */
  isEthernetIpv4(): boolean {
    return this.htype === ARP_HTYPE_ETHERNET && this.ptype === EtherType.IPV4 && this.hlen === 6 && this.plen === 4;
  }

  get htype(): number { return this.dv.getUint16(this.off + F.HTYPE); }
  get ptype(): number { return this.dv.getUint16(this.off + F.PTYPE); }
  get hlen(): number { return this.dv.getUint8(this.off + F.HLEN); }
  get plen(): number { return this.dv.getUint8(this.off + F.PLEN); }
  get oper(): number { return this.dv.getUint16(this.off + F.OPER); }
  get sha(): number { return dvU48(this.dv, this.off + F.SHA); }
  get spa(): number { return this.dv.getUint32(this.off + F.SPA); }
  get tha(): number { return dvU48(this.dv, this.off + F.THA); }
  get tpa(): number { return this.dv.getUint32(this.off + F.TPA); }

  /** emit writes all 28 bytes of an Ethernet/IPv4 ARP packet. */
  emit(oper: number, sha: number, spa: number, tha: number, tpa: number): number {
    const dv = this.dv, o = this.off;
    dv.setUint16(o + F.HTYPE, ARP_HTYPE_ETHERNET);
    dv.setUint16(o + F.PTYPE, EtherType.IPV4);
    dv.setUint8(o + F.HLEN, 6);
    dv.setUint8(o + F.PLEN, 4);
    dv.setUint16(o + F.OPER, oper);
    dvPutU48(dv, o + F.SHA, sha);
    dv.setUint32(o + F.SPA, spa);
    dvPutU48(dv, o + F.THA, tha);
    dv.setUint32(o + F.TPA, tpa);
    return ARP_LEN;
  }
}

export interface ArpRepr {
  readonly oper: number;
  readonly sha: string;
  readonly spa: string;
  readonly tha: string;
  readonly tpa: string;
}

/** parseArp: cold path; throws ERR_WIRE_TRUNCATED, or ERR_WIRE_MALFORMED for non-Ethernet/IPv4 ARP. */
export function parseArp(v: ArpView): ArpRepr {
  if (!v.checkLen()) throw new WireError('ERR_WIRE_TRUNCATED', `arp: ${v.end - v.off} bytes`);
  if (!v.isEthernetIpv4()) {
    throw new WireError('ERR_WIRE_MALFORMED', `arp: htype ${v.htype} ptype 0x${v.ptype.toString(16)} hlen ${v.hlen} plen ${v.plen}`);
  }
  return {
    oper: v.oper,
    sha: formatMac(v.sha),
    spa: formatIpv4(v.spa),
    tha: formatMac(v.tha),
    tpa: formatIpv4(v.tpa),
  };
}

export function emitArp(v: ArpView, r: ArpRepr): number {
  return v.emit(r.oper, parseMac(r.sha), parseIpv4(r.spa), parseMac(r.tha), parseIpv4(r.tpa));
}
