/**
 * The virtio-net header that TAP (IFF_VNET_HDR) and AF_PACKET (PACKET_VNET_HDR) put in front
 * of a frame to describe checksum offload and GSO (include/uapi/linux/virtio_net.h). Fields are
 * in host byte order on these devices (little-endian on x86 and arm64).
 *
 *   0               1               2               3
 *  +---------------+---------------+-------------------------------+
 *  |     flags     |   gso_type    |            hdr_len            |
 *  |           gso_size            |          csum_start           |
 *  |          csum_offset          |  [num_buffers: 12-byte form]  |
 *  +-------------------------------+-------------------------------+
 */

import { WireError } from '../errors.js';
import { View } from './view.js';

const F = { FLAGS: 0, GSO_TYPE: 1, HDR_LEN: 2, GSO_SIZE: 4, CSUM_START: 6, CSUM_OFFSET: 8, NUM_BUFFERS: 10 } as const;
export const VIRTIO_NET_HDR_LEN = F.NUM_BUFFERS; // 10
export const VIRTIO_NET_HDR_MRG_LEN = F.NUM_BUFFERS + 2; // 12

export const VirtioNetFlag = { NEEDS_CSUM: 1, DATA_VALID: 2, RSC_INFO: 4, UDP_TUNNEL_CSUM: 8 } as const;
export const VirtioGso = { NONE: 0, TCPV4: 1, UDP: 3, TCPV6: 4, UDP_L4: 5, UDP_TUNNEL_IPV4: 0x20, UDP_TUNNEL_IPV6: 0x40, ECN: 0x80 } as const;

/**
 * The UDP-tunnel form (virtio_net_hdr_v1_hash_tunnel, TUN_F_UDP_TUNNEL_GSO, Linux 6.17+): the
 * 12-byte header, the hash fields (4 + 2 + 2 bytes, unused here: zero), then where the outer
 * transport header and the inner network header start. gso_type ORs UDP_TUNNEL_IPV4/6 into the
 * inner type; csum_start/csum_offset and gso_size describe the inner packet.
 */
export const VIRTIO_NET_HDR_TNL_LEN = 24;
export const VIRTIO_NET_HDR_OUTER_TH = 20;
export const VIRTIO_NET_HDR_INNER_NH = 22;

/** In-place view of a 10- or 12-byte virtio-net header (the length is end - off). */
export class VirtioNetHdrView extends View {
  checkLen(): boolean { return this.end - this.off >= VIRTIO_NET_HDR_LEN; }

  get flags(): number { return this.dv.getUint8(this.off + F.FLAGS); }
  set flags(v: number) { this.dv.setUint8(this.off + F.FLAGS, v); }
  get gsoType(): number { return this.dv.getUint8(this.off + F.GSO_TYPE); }
  set gsoType(v: number) { this.dv.setUint8(this.off + F.GSO_TYPE, v); }
  get hdrLen(): number { return this.dv.getUint16(this.off + F.HDR_LEN, true); }
  set hdrLen(v: number) { this.dv.setUint16(this.off + F.HDR_LEN, v, true); }
  get gsoSize(): number { return this.dv.getUint16(this.off + F.GSO_SIZE, true); }
  set gsoSize(v: number) { this.dv.setUint16(this.off + F.GSO_SIZE, v, true); }
  get csumStart(): number { return this.dv.getUint16(this.off + F.CSUM_START, true); }
  set csumStart(v: number) { this.dv.setUint16(this.off + F.CSUM_START, v, true); }
  get csumOffset(): number { return this.dv.getUint16(this.off + F.CSUM_OFFSET, true); }
  set csumOffset(v: number) { this.dv.setUint16(this.off + F.CSUM_OFFSET, v, true); }
  get numBuffers(): number { return this.end - this.off >= VIRTIO_NET_HDR_MRG_LEN ? this.dv.getUint16(this.off + F.NUM_BUFFERS, true) : 1; }

  /** emit writes the whole header (10 or 12 bytes, from the view's length). */
  emit(flags: number, gsoType: number, hdrLen: number, gsoSize: number, csumStart: number, csumOffset: number): number {
    const dv = this.dv, o = this.off;
    dv.setUint8(o + F.FLAGS, flags);
    dv.setUint8(o + F.GSO_TYPE, gsoType);
    dv.setUint16(o + F.HDR_LEN, hdrLen, true);
    dv.setUint16(o + F.GSO_SIZE, gsoSize, true);
    dv.setUint16(o + F.CSUM_START, csumStart, true);
    dv.setUint16(o + F.CSUM_OFFSET, csumOffset, true);
    if (this.end - o >= VIRTIO_NET_HDR_MRG_LEN) {
      dv.setUint16(o + F.NUM_BUFFERS, 1, true);
      return VIRTIO_NET_HDR_MRG_LEN;
    }
    return VIRTIO_NET_HDR_LEN;
  }
}

export interface VirtioNetHdrRepr {
  readonly flags: number;
  readonly gsoType: number;
  readonly hdrLen: number;
  readonly gsoSize: number;
  readonly csumStart: number;
  readonly csumOffset: number;
  readonly numBuffers?: number;
}

export function parseVirtioNetHdr(v: VirtioNetHdrView): VirtioNetHdrRepr {
  if (!v.checkLen()) throw new WireError('ERR_WIRE_TRUNCATED', `virtio-net header: ${v.end - v.off} bytes`);
  const base = { flags: v.flags, gsoType: v.gsoType, hdrLen: v.hdrLen, gsoSize: v.gsoSize, csumStart: v.csumStart, csumOffset: v.csumOffset };
  return v.end - v.off >= VIRTIO_NET_HDR_MRG_LEN ? { ...base, numBuffers: v.numBuffers } : base;
}

export function emitVirtioNetHdr(v: VirtioNetHdrView, r: VirtioNetHdrRepr): number {
  const n = v.emit(r.flags, r.gsoType, r.hdrLen, r.gsoSize, r.csumStart, r.csumOffset);
  if (n === VIRTIO_NET_HDR_MRG_LEN) v.dv.setUint16(v.off + F.NUM_BUFFERS, r.numBuffers ?? 1, true);
  return n;
}

const FLAG_NAMES: readonly [number, string][] = [[VirtioNetFlag.NEEDS_CSUM, 'needs-csum'], [VirtioNetFlag.DATA_VALID, 'data-valid'], [VirtioNetFlag.RSC_INFO, 'rsc-info']];
const GSO_NAMES: Readonly<Record<number, string>> = { [VirtioGso.TCPV4]: 'tcpv4', [VirtioGso.UDP]: 'udp', [VirtioGso.TCPV6]: 'tcpv6', [VirtioGso.UDP_L4]: 'udp-l4' };

/** The flag names and GSO type names formatVirtioNetHdr writes (and `flatnet trace --vnet` reads). */
export const VIRTIO_FLAG_NAMES: ReadonlyMap<string, number> = new Map(FLAG_NAMES.map(([v, n]) => [n, v]));
export const VIRTIO_GSO_NAMES: ReadonlyMap<string, number> = new Map([['none', VirtioGso.NONE], ...Object.entries(GSO_NAMES).map(([v, n]) => [n, Number(v)] as const)]);

/**
 * formatVirtioNetHdr writes a header the way `flatnet trace --vnet` takes it, fields that are
 * zero left out: `needs-csum,gso=tcpv4,gso-size=1448,hdr-len=66,csum-start=34,csum-offset=16`;
 * an all-zero header (a complete frame) is `none`. Unknown flag bits and GSO types are numbers.
 * Cold path.
 */
export function formatVirtioNetHdr(r: VirtioNetHdrRepr): string {
  const parts: string[] = [];
  let rest = r.flags;
  for (const [bit, name] of FLAG_NAMES) {
    if ((r.flags & bit) === 0) continue;
    parts.push(name);
    rest &= ~bit;
  }
  if (rest !== 0) parts.push(`flags=0x${rest.toString(16)}`);
  const type = r.gsoType & ~VirtioGso.ECN;
  if (r.gsoType !== VirtioGso.NONE) parts.push(`gso=${GSO_NAMES[type] ?? String(type)}${(r.gsoType & VirtioGso.ECN) !== 0 ? '+ecn' : ''}`);
  for (const [k, v] of [['gso-size', r.gsoSize], ['hdr-len', r.hdrLen], ['csum-start', r.csumStart], ['csum-offset', r.csumOffset]] as const) {
    if (v !== 0) parts.push(`${k}=${v}`);
  }
  return parts.length === 0 ? 'none' : parts.join(',');
}
