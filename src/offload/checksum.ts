/**
 * Checksum offload at the virtio-net boundary (include/uapi/linux/virtio_net.h), both ways.
 *
 * In: a frame read with VIRTIO_NET_HDR_F_NEEDS_CSUM is what Linux calls CHECKSUM_PARTIAL. The
 * 16-bit field at csum_start + csum_offset holds the folded pseudo-header sum (not complemented)
 * and the sender expects whoever transmits the frame to finish the job: sum from csum_start to
 * the end of the frame, field included, and store the complement. completeChecksum does exactly
 * what the kernel's skb_checksum_help() does, including its CSUM_MANGLED_0 rule: a computed 0 is
 * stored as 0xffff for every protocol (for UDP that is required, RFC 768; for TCP the two values
 * are the same number in ones'-complement arithmetic). The bounds are skb_partial_csum_set()'s:
 * csum_start <= length and csum_start + csum_offset <= length - 2.
 *
 * Out: prepareChecksumPartial turns a complete frame into the CHECKSUM_PARTIAL form and writes
 * the virtio-net header that describes it (NEEDS_CSUM, csum_start/csum_offset, and for a
 * super-frame gso_type TCPV4/TCPV6 + gso_size + hdr_len), as wireguard-go's
 * applyTCPCoalesceAccounting does for its coalesced packets. The pseudo-header sum it writes uses
 * the whole transport length, as the kernel's __tcp_v4_send_check / tcp_v6_send_check do for a
 * GSO skb (tcp_gso_segment adjusts it per segment from there).
 *
 * How the pipeline uses this: the ingress stage reads the virtio header of a pod/host frame at
 * [START - 10, START); for gso_type NONE with NEEDS_CSUM leaving through a port without virtio
 * headers (the overlay, or a port that takes complete frames), the egress stage decides with
 * csumRangeOk and acts with completeChecksum(buf, START, END, csumStart, csumOffset) (GSO frames
 * go to segment.ts instead, which computes every checksum itself). The coalescer (coalesce.ts) writes
 * the outgoing form itself; prepareChecksumPartial is the same thing for one frame.
 */

import { dataViewOf } from '../wire/bytes.js';
import { IpProto } from '../wire/consts.js';
import { VirtioGso, VirtioNetFlag, type VirtioNetHdrView } from '../wire/virtio-net-hdr.js';
import type { FrameLayout } from '../mtu/layout.js';
import { MtuStatus } from '../mtu/status.js';
import { sumFolded } from './sum.js';

/** Where the TCP and UDP checksum fields sit in their headers (virtio csum_offset values). */
export const TCP_CSUM_OFFSET = 16;
export const UDP_CSUM_OFFSET = 6;

/**
 * csumRangeOk: whether a partial checksum described by `csumStart` and `csumOffset` (the virtio
 * header's values, relative to the frame's first byte) lies inside a frame of `len` bytes, as
 * skb_partial_csum_set() requires. completeChecksum refuses what this refuses.
 */
export function csumRangeOk(len: number, csumStart: number, csumOffset: number): boolean {
  return csumStart >= 0 && csumOffset >= 0 && csumStart <= len && csumStart + csumOffset <= len - 2;
}

/**
 * completeChecksum finishes the partial checksum of the frame buf[start, end): `csumStart` and
 * `csumOffset` are the virtio header's values, relative to `start` (the first byte of the
 * Ethernet header). Returns OK, or CSUM_OUT_OF_RANGE (nothing written) when the field or the
 * summed range is outside the frame. Mutates only the two checksum bytes; reads only inside
 * [start, end); allocates nothing.
 */
export function completeChecksum(buf: Buffer, start: number, end: number, csumStart: number, csumOffset: number): MtuStatus {
  if (!csumRangeOk(end - start, csumStart, csumOffset)) return MtuStatus.CSUM_OUT_OF_RANGE;
  const dv = dataViewOf(buf);
  const from = start + csumStart;
  const c = ~sumFolded(dv, from, end - from) & 0xffff;
  dv.setUint16(from + csumOffset, c === 0 ? 0xffff : c);
  return MtuStatus.OK;
}

/**
 * prepareChecksumPartial rewrites the complete Ethernet/IPv4-or-IPv6/TCP-or-UDP frame `L` was
 * parsed over for a virtio-net write with checksum offload, and fills `hdr` (a view over the
 * 10- or 12-byte header, e.g. at [start - 10, start)):
 *   - the L4 checksum field := the folded pseudo-header sum over the whole transport length;
 *   - IPv4 header checksum recomputed (lengths may have been rewritten by the caller);
 *   - hdr: flags NEEDS_CSUM, csum_start = L4 offset from `start`, csum_offset 16 (TCP) / 6 (UDP),
 *     and, when `gsoSize` > 0 and the TCP payload is longer than it, gso_type TCPV4/TCPV6,
 *     gso_size, hdr_len = headers up to the end of the TCP header; otherwise gso_type NONE.
 * UDP super-frames (UDP_L4) are not produced: gsoSize must be 0 for UDP (else WRONG_PROTOCOL).
 * Returns OK or a negative MtuStatus (nothing written then). Allocates nothing.
 */
export function prepareChecksumPartial(L: FrameLayout, gsoSize: number, hdr: VirtioNetHdrView): MtuStatus {
  if (L.ipVersion === 0) return MtuStatus.NOT_IP;
  const dv = L.dv, start = L.start;
  const proto = L.proto;
  if (proto !== IpProto.TCP && proto !== IpProto.UDP) return L.ipVersion === 6 ? MtuStatus.IPV6_EXT_HEADER : MtuStatus.WRONG_PROTOCOL;
  const s = L.l4();
  if (s !== MtuStatus.OK) return s;
  if (proto === IpProto.UDP && gsoSize > 0) return MtuStatus.WRONG_PROTOCOL;
  if (!hdr.checkLen()) return MtuStatus.NO_ROOM;
  const l4 = L.l4Off, l4Len = L.ipEnd - l4;
  const csumOff = proto === IpProto.TCP ? TCP_CSUM_OFFSET : UDP_CSUM_OFFSET;
  if (L.ipVersion === 4) refillIpv4HeaderChecksum(dv, L.l3Off, L.ipHdrLen);
  const ps = L.pseudoSum(l4Len);
  dv.setUint16(l4 + csumOff, foldSmall(ps));
  const payload = l4Len - L.l4HdrLen;
  const gso = gsoSize > 0 && payload > gsoSize;
  hdr.emit(
    VirtioNetFlag.NEEDS_CSUM,
    gso ? (L.ipVersion === 4 ? VirtioGso.TCPV4 : VirtioGso.TCPV6) : VirtioGso.NONE,
    gso ? l4 + L.l4HdrLen - start : 0,
    gso ? gsoSize : 0,
    l4 - start,
    csumOff,
  );
  return MtuStatus.OK;
}

/** refillIpv4HeaderChecksum recomputes the header checksum of the `hl`-byte IPv4 header at `l3`. */
export function refillIpv4HeaderChecksum(dv: DataView, l3: number, hl: number): void {
  dv.setUint16(l3 + 10, 0);
  let s = 0;
  for (let i = l3, e = l3 + hl; i < e; i += 4) {
    const w = dv.getUint32(i);
    s += (w >>> 16) + (w & 0xffff);
  }
  s = (s >>> 16) + (s & 0xffff);
  s = (s >>> 16) + (s & 0xffff);
  dv.setUint16(l3 + 10, ~s & 0xffff);
}

/** foldSmall folds a sum below 2^32 to 16 bits (int32 arithmetic only). */
export function foldSmall(s: number): number {
  s = (s >>> 16) + (s & 0xffff);
  return (s >>> 16) + (s & 0xffff);
}
