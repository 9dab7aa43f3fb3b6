/**
 * Sending into the overlay (part of the egress stage's act): the outer headers written in front
 * of the frame in place, or the frame first cut into pieces that fit the underlay.
 *
 *   ENCAP            EncapTemplate.encap in front of the frame; queued on the overlay port
 *   ENCAP_SEGMENTS   a super-frame segmented into the work area, 50 bytes of room before each
 *                    segment, each encapsulated and queued (one datagram each)
 *   ENCAP_TRAIN      the same with 8 bytes of room: a VXLAN header in front of each segment,
 *                    the train queued as UDP_SEGMENT sends of at most 64 segments / 65,507 bytes;
 *                    a TCP super-frame, where the overlay port takes trains in pieces and the
 *                    work area shares the frame's arena, without copying its payload: only the
 *                    VXLAN and inner headers go to the work area, and the kernel's UDP socket
 *                    gathers each datagram from its header and its payload in place (scatter)
 *   ENCAP_FRAGMENTS  the inner IPv4 packet fragmented into the work area, each fragment
 *                    encapsulated and queued
 *   ENCAP_OFFLOAD    a TCP super-frame encapsulated whole in place and queued on the tunnel TAP
 *                    with a UDP-tunnel virtio-net header: the kernel segments it
 * The egress stage decided the plan and the piece count with the same functions these call
 * (gsoPlan, fragmentPlan), so the only new way to fail here is a full work area: no_buffer.
 */

import { fragmentIpv4 } from '../mtu/fragment.js';
import type { Vtep } from '../fib/vtep.js';
import { segmentGso, segmentGsoHeaders } from '../offload/segment.js';
import { dvPutU48 } from '../wire/bytes.js';
import { IpProto } from '../wire/consts.js';
import { updateChecksum16 } from '../wire/checksum.js';
import { OUTER_IP_OFF, OUTER_UDP_OFF, VXLAN_HEADROOM, VXLAN_OFF } from '../wire/encap.js';
import { VIRTIO_NET_HDR_INNER_NH, VIRTIO_NET_HDR_OUTER_TH, VIRTIO_NET_HDR_TNL_LEN, VirtioGso, VirtioNetFlag } from '../wire/virtio-net-hdr.js';
import { VXLAN_HEADER_LEN, VxlanView } from '../wire/vxlan.js';
import type { FrameContext } from './context.js';
import { Drop, dropForStatus } from './drop.js';
import type { SwitchState } from './state.js';
import { Framing, type SwitchPort } from './switch-port.js';
import type { Transmit } from './transmit.js';

/** The most segments or fragments one frame may become (the length array's size). */
export const MAX_PIECES = 128;
/** Largest UDP payload of one UDP_SEGMENT send (65535 - 20 - 8), and the kernel's segment cap. */
const UDP_GSO_MAX_BYTES = 65507;
const UDP_GSO_MAX_SEGS = 64;
/** The longest header a scatter train's entry can describe (its FLAGS byte). */
const MAX_SCATTER_HDR = 255;

export class Tunnel {
  private readonly st: SwitchState;
  private readonly tx: Transmit;
  private readonly vx = new VxlanView();
  readonly lens = new Int32Array(MAX_PIECES);

  constructor(st: SwitchState, tx: Transmit) {
    this.st = st;
    this.tx = tx;
  }

  /** encapOne writes the outer headers in front of [s, e) (room required) and queues the frame. */
  encapOne(ov: SwitchPort, vtep: Vtep, b: Buffer, s: number, e: number): void {
    const o = vtep.template.encap(b, s, e);
    const from = ov.txFraming === Framing.UDP ? o + VXLAN_OFF : ov.txFraming === Framing.IP ? o + OUTER_IP_OFF : o;
    this.tx.stage(ov, b, from, e, vtep.underlayIp, vtep.port, 0);
    vtep.txPackets++;
    vtep.txBytes += e - s;
    this.st.stats.encapsulated++;
  }

  /**
   * offload queues the TCP super-frame of `c` whole on the tunnel TAP (Plan.ENCAP_OFFLOAD): the
   * outer headers in front of it as for one frame, addressed to the TAP (the kernel forwards it
   * to the underlay, resolving the next hop, and takes one from the TTL, so it gets one more),
   * and in front of those the 24-byte virtio-net header saying where the outer UDP and the inner
   * IPv4 headers start and how to cut the inner TCP (gso_size, its partial checksum). The outer
   * IPv4 and UDP lengths describe the whole frame; the kernel rewrites them per segment.
   */
  offload(c: FrameContext, vtep: Vtep): void {
    const st = this.st, tap = st.tunnelTap!, b = c.buf, dv = c.dv, s = c.start, e = c.end;
    const o = vtep.template.encap(b, s, e);
    dvPutU48(dv, o, st.tunnelTapMac);
    const ttlProto = dv.getUint16(o + OUTER_IP_OFF + 8);
    dv.setUint16(o + OUTER_IP_OFF + 8, ttlProto + 0x100);
    dv.setUint16(o + OUTER_IP_OFF + 10, updateChecksum16(dv.getUint16(o + OUTER_IP_OFF + 10), ttlProto, ttlProto + 0x100));
    // The inner headers: up to the end of the TCP header (csum_start is where TCP begins).
    const hdr = c.vCsumStart + ((dv.getUint8(s + c.vCsumStart + 12) >> 4) << 2);
    const h = o - VIRTIO_NET_HDR_TNL_LEN;
    for (let i = 0; i < VIRTIO_NET_HDR_TNL_LEN; i += 4) dv.setUint32(h + i, 0);
    dv.setUint8(h, VirtioNetFlag.NEEDS_CSUM);
    dv.setUint8(h + 1, VirtioGso.UDP_TUNNEL_IPV4 | VirtioGso.TCPV4);
    dv.setUint16(h + 2, hdr + VXLAN_HEADROOM, true);
    // The segments must fit the underlay as they do on the software path (gsoPlan's cap).
    const mss = Math.min(c.vGsoSize, st.maxInnerIpLen - (c.l4Off - c.l3Off) - (hdr - c.vCsumStart));
    dv.setUint16(h + 4, mss, true);
    dv.setUint16(h + 6, c.vCsumStart + VXLAN_HEADROOM, true);
    dv.setUint16(h + 8, c.vCsumOff, true);
    dv.setUint16(h + VIRTIO_NET_HDR_OUTER_TH, OUTER_UDP_OFF, true);
    dv.setUint16(h + VIRTIO_NET_HDR_INNER_NH, VXLAN_HEADROOM + c.l3Off - s, true);
    this.tx.stage(tap, b, o, e, vtep.underlayIp, vtep.port, mss);
    const n = c.pieces;
    vtep.txPackets += n;
    // What the segments carry: the inner frame's headers once per segment.
    vtep.txBytes += e - s + (n - 1) * hdr;
    const stats = st.stats;
    stats.encapsulated += n;
    stats.tunnelGsoFrames++;
    stats.tunnelGsoSegments += n;
  }

  /**
   * segments sends the super-frame of `c` (its layout and offload state) to `vtep` as segments
   * that fit the underlay: a UDP-GSO train when `train`, else one encapsulated frame each.
   */
  segments(c: FrameContext, ov: SwitchPort, vtep: Vtep, train: boolean): Drop {
    const tx = this.tx;
    if (train && ov.port.scatter === true && tx.workBuf === c.buf && c.proto === IpProto.TCP && c.l4Off + c.l4HdrLen - c.start + VXLAN_HEADER_LEN <= MAX_SCATTER_HDR) {
      return this.scatterTrain(c, ov, vtep);
    }
    const prefix = train ? VXLAN_HEADER_LEN : VXLAN_HEADROOM;
    const at = tx.workTake(c.end - c.start + MAX_PIECES * (prefix + 128));
    if (at < 0) return Drop.NO_BUFFER;
    const lens = this.lens;
    const w = tx.workBuf;
    const n = segmentGso(c, c.vGso, c.vGsoSize, this.st.maxInnerIpLen, w, at, prefix, lens);
    if (n < 0) return dropForStatus(n);
    const stride = prefix + lens[0]!;
    tx.workNext = at + (n - 1) * stride + prefix + lens[n - 1]!;
    if (!train) {
      for (let k = 0; k < n; k++) {
        const fs = at + k * stride + prefix;
        this.encapOne(ov, vtep, w, fs, fs + lens[k]!);
      }
      return Drop.NONE;
    }
    const vx = this.vx;
    const perSend = Math.min(UDP_GSO_MAX_SEGS, Math.floor(UDP_GSO_MAX_BYTES / stride));
    for (let k = 0; k < n; k++) vx.reset(w, at + k * stride, at + k * stride + VXLAN_HEADER_LEN).emit(vtep.vni);
    for (let k = 0; k < n; k += perSend) {
      const last = Math.min(k + perSend, n) - 1;
      // Every chunk goes as a UDP_SEGMENT send (even a single datagram), so START is its first
      // VXLAN header and GSO_SIZE the datagram size.
      tx.stage(ov, w, at + k * stride, at + last * stride + prefix + lens[last]!, vtep.underlayIp, vtep.port, stride);
    }
    let bytes = 0;
    for (let k = 0; k < n; k++) bytes += lens[k]!;
    this.countSegments(vtep, n, bytes);
    return Drop.NONE;
  }

  /** countSegments: `n` segments of `bytes` in all sent toward `vtep` as a train (its and the switch's counters). */
  private countSegments(vtep: Vtep, n: number, bytes: number): void {
    vtep.txPackets += n;
    vtep.txBytes += bytes;
    const stats = this.st.stats;
    stats.encapsulated += n;
    stats.gsoSegments += n;
  }

  /**
   * scatterTrain: ENCAP_TRAIN for a TCP super-frame without copying its payload. Each segment's
   * VXLAN header and inner headers go to the work area, back to back; the payloads stay in the
   * frame, and each UDP_SEGMENT send is queued as a train in pieces (FrameList.pushTrain).
   */
  private scatterTrain(c: FrameContext, ov: SwitchPort, vtep: Vtep): Drop {
    const tx = this.tx;
    const hl = c.l4Off + c.l4HdrLen - c.start, hdr = VXLAN_HEADER_LEN + hl;
    const at = tx.workTake(MAX_PIECES * hdr);
    if (at < 0) return Drop.NO_BUFFER;
    const lens = this.lens, w = tx.workBuf;
    const n = segmentGsoHeaders(c, c.vGso, c.vGsoSize, this.st.maxInnerIpLen, w, at, VXLAN_HEADER_LEN, lens);
    if (n < 0) return dropForStatus(n);
    tx.workNext = at + n * hdr;
    const vx = this.vx;
    for (let k = 0; k < n; k++) vx.reset(w, at + k * hdr, at + k * hdr + VXLAN_HEADER_LEN).emit(vtep.vni);
    const seg = lens[0]! - hl, stride = hdr + seg, pay = c.l4Off + c.l4HdrLen;
    const perSend = Math.min(UDP_GSO_MAX_SEGS, Math.floor(UDP_GSO_MAX_BYTES / stride));
    let bytes = 0;
    for (let k = 0; k < n; k += perSend) {
      const m = Math.min(perSend, n - k);
      let payLen = 0;
      for (let j = k; j < k + m; j++) payLen += lens[j]! - hl;
      tx.stageTrain(ov, w, at + k * hdr, hdr, m, vtep.underlayIp, vtep.port, stride, pay + k * seg, payLen);
      bytes += m * hl + payLen;
    }
    this.countSegments(vtep, n, bytes);
    this.st.stats.gsoSegmentsInPlace += n;
    return Drop.NONE;
  }

  /** fragments fragments the inner IPv4 packet of `c` to fit the underlay and encapsulates each piece. */
  fragments(c: FrameContext, ov: SwitchPort, vtep: Vtep): Drop {
    const tx = this.tx;
    const at = tx.workTake(c.end - c.start + MAX_PIECES * (VXLAN_HEADROOM + 128));
    if (at < 0) return Drop.NO_BUFFER;
    const lens = this.lens;
    const w = tx.workBuf;
    const n = fragmentIpv4(c, this.st.maxInnerIpLen, w, at, VXLAN_HEADROOM, lens);
    if (n < 0) return dropForStatus(n);
    const stride = VXLAN_HEADROOM + lens[0]!;
    tx.workNext = at + (n - 1) * stride + VXLAN_HEADROOM + lens[n - 1]!;
    for (let k = 0; k < n; k++) {
      const fs = at + k * stride + VXLAN_HEADROOM;
      this.encapOne(ov, vtep, w, fs, fs + lens[k]!);
    }
    this.st.stats.fragmented++;
    return Drop.NONE;
  }
}
