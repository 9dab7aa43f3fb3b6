/**
 * Software segmentation (TSO/GSO, and UDP GSO "USO") of one super-frame: an Ethernet frame
 * carrying IPv4 or IPv6 + TCP (or UDP) whose payload is longer than one segment may carry.
 * Each segment is a complete, ordinary frame a kernel peer accepts: its own headers, lengths and
 * full checksums, as the kernel's tcp_gso_segment/inet_gso_segment/ipv6_gso_segment and
 * __udp_gso_segment produce them:
 *
 *   - IPv4: total length, identification = first ID + k (no FIXEDID: virtio input is never
 *     SKB_GSO_TCP_FIXEDID), header checksum; IPv6: payload length. Everything else, DF and
 *     IPv4 options included, is copied from the super-frame.
 *   - TCP: seq = first seq + k * mss; FIN and PSH only on the last segment, CWR only on the
 *     first (tcp_gso_segment clears th->fin/psh on all but the last and th->cwr on all but the
 *     first); every other field, options included, copied; full checksum over pseudo-header,
 *     header and payload.
 *   - UDP: length and full checksum per datagram (a computed 0 is sent as 0xffff).
 * Input checksum fields are ignored (a GSO frame read from virtio holds only the pseudo-header
 * sum there), as are the virtio header's hdr_len and csum_start: the headers are parsed here.
 *
 * Output layout: segment k is written at dst[dstOff + k * stride + prefix, ... + lens[k]), where
 * `prefix` is room the caller keeps in front of every segment for its own headers, and
 *
 *   stride = prefix + headers + segment payload size
 *
 * so every segment but the last has the same total length (what UDP_SEGMENT requires):
 *
 *   dst: [prefix|seg 0 ........][prefix|seg 1 ........] ... [prefix|last ....]
 *        ^ dstOff               ^ dstOff + stride
 *
 * Nothing is allocated when dst shares the source's ArrayBuffer (copy.ts; otherwise Buffer#copy
 * makes a small view object per segment); the source frame is only read; dst must not overlap
 * it. Results are a
 * segment count, or a negative MtuStatus (nothing usable written) that the caller counts as one
 * drop.
 *
 * How the pipeline uses this: for a frame read from a pod/host port with a virtio header whose
 * gso_type is not NONE, the egress stage decides with gsoPlan(layout, gsoType, gsoSize, mtu, max)
 * and acts with segmentGso(layout, gsoType, gsoSize, mtu, work, off, prefix, lens). With the kernel UDP socket and UDP_SEGMENT it uses prefix 8 and
 * writes one VXLAN header at dst[off + k * stride, +8) per segment, then sends the contiguous
 * range with GSO_SIZE = stride (split into messages of at most 64 datagrams and 65,507 bytes:
 * any range of consecutive segments is itself a valid train); without GSO it uses prefix 50
 * and EncapTemplate.encap(dst, segStart, segEnd) per segment, one datagram each. stride is
 * prefix + lens[0] whenever the count is 2 or more.
 */

import { dataViewOf } from '../wire/bytes.js';
import { IpProto } from '../wire/consts.js';
import { TcpFlag } from '../wire/tcp.js';
import { VirtioGso } from '../wire/virtio-net-hdr.js';
import { copyBytes } from '../buf/copy.js';
import type { FrameLayout } from '../mtu/layout.js';
import { MtuStatus } from '../mtu/status.js';
import { sumFolded } from './sum.js';

/** The largest prefix a caller may ask for (an outer Ethernet + IPv6 + UDP + VXLAN is 70). */
export const MAX_SEGMENT_PREFIX = 256;

/**
 * gsoPlan: how many segments segmentGso would make of the super-frame `L` was parsed over
 * (module doc), at most `maxSegments`; or why it cannot, as a negative MtuStatus. `gsoType` is
 * the virtio header's gso_type (the ECN bit is accepted and ignored: CWR is handled per segment
 * anyway), `gsoSize` its gso_size, `mtu` the largest IP packet a segment may be (the pod MTU).
 *   - TCPV4 / TCPV6: the frame must be IPv4 / IPv6 + TCP. Segment payload =
 *     min(gsoSize, mtu - IP header - TCP header): a sender whose MSS is too large for the pod
 *     MTU still gets segments that fit (the kernel would answer frag-needed and drop instead).
 *   - UDP_L4: IPv4 or IPv6 + UDP, datagrams of gsoSize payload bytes; DATAGRAM_TOO_BIG if one
 *     does not fit `mtu` (datagram boundaries belong to the application and are never moved).
 *   - UDP (UFO, IP fragmentation offload), NONE and unknown types: GSO_TYPE_UNSUPPORTED.
 * Reads only the layout; writes nothing. The pipeline's egress stage decides with it.
 */
export function gsoPlan(L: FrameLayout, gsoType: number, gsoSize: number, mtu: number, maxSegments: number): number {
  const seg = segmentSize(L, gsoType, gsoSize, mtu);
  if (seg < 0) return seg;
  const payLen = L.ipEnd - L.l4Off - L.l4HdrLen;
  const n = payLen <= seg ? 1 : Math.ceil(payLen / seg);
  return n > maxSegments ? MtuStatus.TOO_MANY_SEGMENTS : n;
}

/** segmentSize: the payload bytes per segment for gsoPlan's cases, or a negative MtuStatus. */
function segmentSize(L: FrameLayout, gsoType: number, gsoSize: number, mtu: number): number {
  if (L.ipVersion === 0) return MtuStatus.NOT_IP;
  const t = gsoType & ~VirtioGso.ECN;
  if (t === VirtioGso.TCPV4 || t === VirtioGso.TCPV6) {
    const s = L.l4For(IpProto.TCP);
    if (s !== MtuStatus.OK) return s;
    if ((L.ipVersion === 4) !== (t === VirtioGso.TCPV4)) return MtuStatus.GSO_TYPE_MISMATCH;
    const room = mtu - L.ipHdrLen - L.l4HdrLen;
    if (!(gsoSize >= 1 && gsoSize <= 0xffff) || room < 1) return MtuStatus.BAD_GSO_SIZE;
    return gsoSize < room ? gsoSize : room;
  }
  if (t === VirtioGso.UDP_L4) return udpSegmentSize(L, gsoSize, mtu);
  return MtuStatus.GSO_TYPE_UNSUPPORTED;
}

function udpSegmentSize(L: FrameLayout, gsoSize: number, mtu: number): number {
  const s = L.l4For(IpProto.UDP);
  if (s !== MtuStatus.OK) return s;
  if (!(gsoSize >= 1 && gsoSize <= 0xffff)) return MtuStatus.BAD_GSO_SIZE;
  if (L.ipHdrLen + 8 + gsoSize > mtu) return MtuStatus.DATAGRAM_TOO_BIG;
  return gsoSize;
}

/**
 * segmentGso segments the super-frame `L` was parsed over as gsoPlan describes, into dst (module
 * doc, "Output layout"). Returns the segment count (lengths in lens[0..count)), or gsoPlan's
 * reasons (with lens.length as the most segments), or NO_ROOM.
 */
export function segmentGso(L: FrameLayout, gsoType: number, gsoSize: number, mtu: number, dst: Buffer, dstOff: number, prefix: number, lens: Int32Array): number {
  const seg = segmentSize(L, gsoType, gsoSize, mtu);
  if (seg < 0) return seg;
  return L.proto === IpProto.TCP ? splitTcp(L, seg, dst, dstOff, prefix, lens) : splitUdp(L, seg, dst, dstOff, prefix, lens);
}

/**
 * segmentGsoHeaders is segmentGso for a TCP super-frame without copying its payload: segment k's
 * headers (what segmentGso writes in front of its payload, checksums over the payload where it
 * lies included) go to dst[dstOff + k * (prefix + hl) + prefix, + hl), hl being the frame's
 * Ethernet + IP + TCP header length, and its payload stays in the source at
 * L.l4Off + L.l4HdrLen + k * (lens[0] - hl). Headers k followed by payload k is, byte for byte,
 * segment k of segmentGso. lens[k] is segment k's whole length, as there. For the overlay's
 * scatter trains (src/pipeline/tunnel.ts); TCP only (UDP GSO keeps segmentGso): otherwise
 * GSO_TYPE_UNSUPPORTED.
 */
export function segmentGsoHeaders(L: FrameLayout, gsoType: number, gsoSize: number, mtu: number, dst: Buffer, dstOff: number, prefix: number, lens: Int32Array): number {
  const seg = segmentSize(L, gsoType, gsoSize, mtu);
  if (seg < 0) return seg;
  if (L.proto !== IpProto.TCP) return MtuStatus.GSO_TYPE_UNSUPPORTED;
  return splitTcp(L, seg, dst, dstOff, prefix, lens, true);
}

/**
 * segmentTcp splits the Ethernet/IPv4-or-IPv6/TCP frame `L` was parsed over into segments of at
 * most `mss` payload bytes (see the module doc for what each gets and where it goes). A frame
 * whose payload fits one segment yields one segment (headers and checksums made complete).
 * Returns the count, or NOT_IP / WRONG_PROTOCOL / IPV6_EXT_HEADER / IP_FRAGMENT / TRUNCATED /
 * BAD_L4_HEADER / BAD_GSO_SIZE (mss < 1) / TOO_MANY_SEGMENTS / NO_ROOM.
 */
export function segmentTcp(L: FrameLayout, mss: number, dst: Buffer, dstOff: number, prefix: number, lens: Int32Array): number {
  if (L.ipVersion === 0) return MtuStatus.NOT_IP;
  const s = L.l4For(IpProto.TCP);
  if (s !== MtuStatus.OK) return s;
  if (!(mss >= 1 && mss <= 0xffff)) return MtuStatus.BAD_GSO_SIZE;
  return splitTcp(L, mss, dst, dstOff, prefix, lens);
}

/**
 * segmentUdp splits the Ethernet/IPv4-or-IPv6/UDP frame `L` was parsed over into datagrams of
 * `gsoSize` payload bytes (the last may be shorter), each with its own UDP header (length,
 * checksum) and IP header (length, IPv4 ID + k, checksum). Returns the count or a negative
 * MtuStatus: besides segmentTcp's, DATAGRAM_TOO_BIG when IP header + 8 + gsoSize > mtu.
 */
export function segmentUdp(L: FrameLayout, gsoSize: number, mtu: number, dst: Buffer, dstOff: number, prefix: number, lens: Int32Array): number {
  if (L.ipVersion === 0) return MtuStatus.NOT_IP;
  const seg = udpSegmentSize(L, gsoSize, mtu);
  if (seg < 0) return seg;
  return splitUdp(L, seg, dst, dstOff, prefix, lens);
}

/**
 * checkRoom: the shared preconditions of both splitters. Returns the segment count or a
 * negative MtuStatus. `hl` = header bytes per segment, `payLen` = bytes to split.
 */
function checkRoom(L: FrameLayout, hl: number, payLen: number, seg: number, dst: Buffer, dstOff: number, prefix: number, lens: Int32Array, headersOnly = false): number {
  const n = payLen <= seg ? 1 : Math.ceil(payLen / seg);
  if (n > lens.length) return MtuStatus.TOO_MANY_SEGMENTS;
  if (!(prefix >= 0 && prefix <= MAX_SEGMENT_PREFIX && dstOff >= 0)) return MtuStatus.NO_ROOM;
  const stride = prefix + hl + seg;
  const last = payLen - (n - 1) * seg;
  const total = headersOnly ? n * (prefix + hl) : (n - 1) * stride + prefix + hl + (last > 0 ? last : 0);
  if (dstOff + total > dst.length) return MtuStatus.NO_ROOM;
  const src = L.buf;
  if (dst.buffer === src.buffer) {
    // Overlap is judged on the underlying memory, so two Buffers over one arena count too.
    const a0 = src.byteOffset + L.start, a1 = src.byteOffset + L.end;
    const b0 = dst.byteOffset + dstOff, b1 = b0 + total;
    if (b0 < a1 && a0 < b1) return MtuStatus.NO_ROOM;
  }
  return n;
}

/**
 * copyHeader copies `len` bytes from sdv[from] to ddv[to] in 32-bit words (the headers are
 * 54-134 bytes: a DataView loop beats a Buffer#copy call of that size by ~5x, see the bench).
 */
function copyHeader(sdv: DataView, from: number, ddv: DataView, to: number, len: number): void {
  let i = 0;
  for (; i + 4 <= len; i += 4) ddv.setInt32(to + i, sdv.getInt32(from + i));
  for (; i < len; i++) ddv.setUint8(to + i, sdv.getUint8(from + i));
}

/** ipv4SumBase: IPv4 header sum without total length, identification and checksum. */
function ipv4SumBase(dv: DataView, l3: number, hl: number): number {
  let s = dv.getUint16(l3) + dv.getUint16(l3 + 6) + dv.getUint16(l3 + 8);
  for (let i = l3 + 12, e = l3 + hl; i < e; i += 2) s += dv.getUint16(i);
  return s;
}

/**
 * setSegmentIp writes a segment's IP length: for IPv4 the total length, the identification `id`
 * and the header checksum (from ipv4SumBase's `ipBase`); for IPv6 the payload length.
 */
function setSegmentIp(dv: DataView, ip: number, v4: boolean, iphl: number, l4Len: number, id: number, ipBase: number): void {
  if (!v4) {
    dv.setUint16(ip + 4, l4Len);
    return;
  }
  const tl = iphl + l4Len;
  dv.setUint16(ip + 2, tl);
  dv.setUint16(ip + 4, id);
  let s = ipBase + tl + id;
  s = (s >>> 16) + (s & 0xffff);
  s = (s >>> 16) + (s & 0xffff);
  dv.setUint16(ip + 10, ~s & 0xffff);
}

/** splitTcp: segment k at dstOff + k * stride (module doc); `headersOnly`: its headers only (segmentGsoHeaders). */
function splitTcp(L: FrameLayout, seg: number, dst: Buffer, dstOff: number, prefix: number, lens: Int32Array, headersOnly = false): number {
  const src = L.buf, sdv = L.dv, start = L.start;
  const l3 = L.l3Off, l4 = L.l4Off, thl = L.l4HdrLen, iphl = L.ipHdrLen;
  const payStart = l4 + thl;
  const payLen = L.ipEnd - payStart;
  const hl = payStart - start;
  const n = checkRoom(L, hl, payLen, seg, dst, dstOff, prefix, lens, headersOnly);
  if (n < 0) return n;
  const ddv = dataViewOf(dst);
  const v4 = L.ipVersion === 4;
  const ipo = l3 - start, tcpo = l4 - start;
  const stride = headersOnly ? prefix + hl : prefix + hl + seg;

  // Per-super-frame constants: what does not change between segments, summed once.
  const seq0 = sdv.getUint32(l4 + 4);
  const fw0 = sdv.getUint16(l4 + 12); // data offset, reserved, AE and the eight flags
  const ident0 = v4 ? sdv.getUint16(l3 + 4) : 0;
  const ipBase = v4 ? ipv4SumBase(sdv, l3, iphl) : 0;
  let thBase = sdv.getUint16(l4) + sdv.getUint16(l4 + 2) + sdv.getUint16(l4 + 8) + sdv.getUint16(l4 + 10)
    + sdv.getUint16(l4 + 14) + sdv.getUint16(l4 + 18);
  for (let i = l4 + 20; i < payStart; i += 2) thBase += sdv.getUint16(i);
  const base = L.pseudoSum(0) + thBase; // + TCP length, seq, flag word, payload per segment
  const notLast = ~(TcpFlag.FIN | TcpFlag.PSH), notFirst = ~TcpFlag.CWR;

  for (let k = 0; k < n; k++) {
    const o = dstOff + k * stride + prefix;
    const pay = k === n - 1 ? payLen - k * seg : seg;
    copyHeader(sdv, start, ddv, o, hl);
    const tcpLen = thl + pay;
    setSegmentIp(ddv, o + ipo, v4, iphl, tcpLen, (ident0 + k) & 0xffff, ipBase);
    const seq = (seq0 + k * seg) >>> 0;
    let fw = fw0;
    if (k !== n - 1) fw &= notLast;
    if (k !== 0) fw &= notFirst;
    ddv.setUint32(o + tcpo + 4, seq);
    ddv.setUint16(o + tcpo + 12, fw);
    let paySum: number;
    if (headersOnly) paySum = sumFolded(sdv, payStart + k * seg, pay);
    else {
      copyBytes(src, payStart + k * seg, dst, o + hl, pay);
      paySum = sumFolded(ddv, o + hl, pay);
    }
    let s = base + tcpLen + (seq >>> 16) + (seq & 0xffff) + fw + paySum;
    s = (s >>> 16) + (s & 0xffff);
    s = (s >>> 16) + (s & 0xffff);
    ddv.setUint16(o + tcpo + 16, ~s & 0xffff);
    lens[k] = hl + pay;
  }
  return n;
}

function splitUdp(L: FrameLayout, seg: number, dst: Buffer, dstOff: number, prefix: number, lens: Int32Array): number {
  const src = L.buf, sdv = L.dv, start = L.start;
  const l3 = L.l3Off, l4 = L.l4Off, iphl = L.ipHdrLen;
  const payStart = l4 + 8;
  const payLen = L.ipEnd - payStart;
  const hl = payStart - start;
  const n = checkRoom(L, hl, payLen, seg, dst, dstOff, prefix, lens);
  if (n < 0) return n;
  const ddv = dataViewOf(dst);
  const v4 = L.ipVersion === 4;
  const ipo = l3 - start, udpo = l4 - start;
  const stride = prefix + hl + seg;
  const ident0 = v4 ? sdv.getUint16(l3 + 4) : 0;
  const ipBase = v4 ? ipv4SumBase(sdv, l3, iphl) : 0;
  const base = L.pseudoSum(0) + sdv.getUint16(l4) + sdv.getUint16(l4 + 2); // + 2 x length + payload

  for (let k = 0; k < n; k++) {
    const o = dstOff + k * stride + prefix;
    const pay = k === n - 1 ? payLen - k * seg : seg;
    copyHeader(sdv, start, ddv, o, hl);
    const udpLen = 8 + pay;
    setSegmentIp(ddv, o + ipo, v4, iphl, udpLen, (ident0 + k) & 0xffff, ipBase);
    ddv.setUint16(o + udpo + 4, udpLen);
    copyBytes(src, payStart + k * seg, dst, o + hl, pay);
    // The length counts twice: once in the pseudo-header, once in the UDP header itself.
    let s = base + udpLen + udpLen + sumFolded(ddv, o + hl, pay);
    s = (s >>> 16) + (s & 0xffff);
    s = (s >>> 16) + (s & 0xffff);
    const c = ~s & 0xffff;
    ddv.setUint16(o + udpo + 6, c === 0 ? 0xffff : c);
    lens[k] = hl + pay;
  }
  return n;
}
