/**
 * IPv4 fragmentation (RFC 791 §3.2, "An Example Fragmentation Procedure") of an inner frame
 * whose IP packet is larger than the pod MTU and does not carry DF, done before encapsulation
 * so that the underlay never carries an outer fragment (RFC 7348 §4.3).
 *
 * Each fragment gets, as Linux's ip_do_fragment builds them:
 *   - the Ethernet header, copied;
 *   - the IP header, copied, with total length, MF, fragment offset and checksum rewritten.
 *     ID, TOS, TTL, protocol and addresses are unchanged. Data is cut at
 *     floor((mtu - header) / 8) * 8 bytes per fragment (offsets are in 8-byte units); MF is set
 *     on every fragment but the last, and on the last too when the input was itself a non-final
 *     fragment; offsets continue from the input's own offset. The reserved flag is copied.
 *   - options: the first fragment keeps them all; later ones keep those whose copied flag
 *     (bit 7 of the type) is set and have every other option overwritten with NOOP bytes,
 *     exactly Linux's ip_options_fragment() (the header keeps its length, so all fragments but
 *     the last carry the same amount of data). Malformed options are refused (BAD_IP_OPTIONS).
 *
 * Output layout, as segment.ts: fragment k at dst[dstOff + k * stride + prefix, + lens[k]),
 * stride = prefix + 14 + header + data per fragment, so all but the last have equal length.
 *
 * How the pipeline uses this: when oversizeAction() says FRAGMENT, the egress stage decides with
 * fragmentPlan(layout, mtu, max) (a negative status is the frame's one drop reason) and acts with
 * fragmentIpv4(layout, mtu, work, off, 50, lens), then EncapTemplate.encap per fragment.
 */

import { dataViewOf } from '../wire/bytes.js';
import { IPV4_FLAG_DF, IPV4_FLAG_MF } from '../wire/ipv4.js';
import { copyBytes } from '../buf/copy.js';
import type { FrameLayout } from './layout.js';
import { MtuStatus } from './status.js';

/** RFC 791: every host and router must handle 68-byte datagrams unfragmented. */
export const IPV4_MIN_MTU = 68;

const ETH = 14;
const OFFSET_MASK = 0x1fff;
const IPOPT_END = 0;
const IPOPT_NOOP = 1;
const IPOPT_COPIED = 0x80;

/**
 * fragmentPlan: how many fragments fragmentIpv4 would make of the IPv4 packet `L` was parsed
 * over, for `mtu` and at most `maxFragments`; or why it cannot: NOT_IPV4, BAD_IP_CHECKSUM,
 * DF_SET, MTU_TOO_SMALL (mtu < 68 or < header + 8), BAD_IP_OPTIONS, TOO_MANY_SEGMENTS,
 * BAD_IP_HEADER (the last fragment's offset would overflow). A packet that fits is 1. Reads
 * only inside the packet; writes nothing. The pipeline's egress stage decides with it.
 */
export function fragmentPlan(L: FrameLayout, mtu: number, maxFragments: number): number {
  if (L.ipVersion !== 4) return MtuStatus.NOT_IPV4;
  const sdv = L.dv, l3 = L.l3Off, hl = L.ipHdrLen;
  if (!headerChecksumOk(sdv, l3, hl)) return MtuStatus.BAD_IP_CHECKSUM;
  const ff = L.flagsFrag;
  if ((ff & IPV4_FLAG_DF) !== 0) return MtuStatus.DF_SET;
  if (hl > 20 && !optionsWellFormed(sdv, l3 + 20, l3 + hl)) return MtuStatus.BAD_IP_OPTIONS;
  const ipLen = L.ipEnd - l3;
  const data = ipLen - hl;
  if (ipLen <= mtu) return 1;
  if (mtu < IPV4_MIN_MTU || mtu - hl < 8) return MtuStatus.MTU_TOO_SMALL;
  const per = (mtu - hl) & ~7;
  const n = data <= per ? 1 : Math.ceil(data / per);
  if (n > maxFragments) return MtuStatus.TOO_MANY_SEGMENTS;
  if (((((ff & OFFSET_MASK) << 3) + (n - 1) * per) >>> 3) > OFFSET_MASK) return MtuStatus.BAD_IP_HEADER;
  return n;
}

/**
 * fragmentIpv4 fragments the Ethernet/IPv4 frame `L` was parsed over into IP packets of at most
 * `mtu` bytes (see the module doc). A packet that already fits yields one fragment, an
 * unchanged copy of the frame (without Ethernet padding). Returns the fragment count, lengths
 * in lens[0..count), or fragmentPlan's reasons (with lens.length as the most fragments), or
 * NO_ROOM (dst too small or overlapping the source). Reads only inside the frame, writes only
 * dst; allocates nothing.
 */
export function fragmentIpv4(L: FrameLayout, mtu: number, dst: Buffer, dstOff: number, prefix: number, lens: Int32Array): number {
  const n = fragmentPlan(L, mtu, lens.length);
  if (n < 0) return n;
  const src = L.buf, sdv = L.dv, start = L.start, end = L.end;
  const l3 = L.l3Off, hl = L.ipHdrLen, ff = L.flagsFrag;
  const data = L.ipEnd - l3 - hl;
  const per = n === 1 ? data : (mtu - hl) & ~7;
  const off0 = (ff & OFFSET_MASK) << 3;
  if (!(prefix >= 0 && dstOff >= 0)) return MtuStatus.NO_ROOM;
  const fh = ETH + hl;
  const stride = prefix + fh + per;
  const last = data - (n - 1) * per;
  const total = (n - 1) * stride + prefix + fh + last;
  if (dstOff + total > dst.length) return MtuStatus.NO_ROOM;
  if (dst.buffer === src.buffer) {
    const a0 = src.byteOffset + start, a1 = src.byteOffset + end, b0 = dst.byteOffset + dstOff;
    if (b0 < a1 && a0 < b0 + total) return MtuStatus.NO_ROOM;
  }
  const ddv = dataViewOf(dst);
  const keepFlags = ff & ~(IPV4_FLAG_MF | OFFSET_MASK); // the reserved bit (DF is clear)
  const lastMf = ff & IPV4_FLAG_MF;
  const pay0 = l3 + hl;

  for (let k = 0; k < n; k++) {
    const o = dstOff + k * stride + prefix;
    const len = k === n - 1 ? last : per;
    for (let i = 0; i < fh; i += 2) ddv.setUint16(o + i, sdv.getUint16(start + i)); // 14 + IHL*4: even
    const ol3 = o + ETH;
    if (k > 0 && hl > 20) nopNonCopiedOptions(ddv, ol3 + 20, ol3 + hl);
    ddv.setUint16(ol3 + 2, hl + len);
    const mf = k < n - 1 ? IPV4_FLAG_MF : lastMf;
    ddv.setUint16(ol3 + 6, keepFlags | mf | ((off0 + k * per) >>> 3));
    fillHeaderChecksum(ddv, ol3, hl);
    copyBytes(src, pay0 + k * per, dst, o + fh, len);
    lens[k] = fh + len;
  }
  return n;
}

/**
 * optionsWellFormed: the option list in dv[from, to) parses: END stops, NOOP is one byte, any
 * other option has a length byte >= 2 that stays inside the header.
 */
export function optionsWellFormed(dv: DataView, from: number, to: number): boolean {
  let i = from;
  while (i < to) {
    const t = dv.getUint8(i);
    if (t === IPOPT_END) return true;
    if (t === IPOPT_NOOP) { i++; continue; }
    if (i + 1 >= to) return false;
    const l = dv.getUint8(i + 1);
    if (l < 2 || i + l > to) return false;
    i += l;
  }
  return true;
}

/** nopNonCopiedOptions: Linux's ip_options_fragment on the well-formed options at dv[from, to). */
function nopNonCopiedOptions(dv: DataView, from: number, to: number): void {
  let i = from;
  while (i < to) {
    const t = dv.getUint8(i);
    if (t === IPOPT_END) return;
    if (t === IPOPT_NOOP) { i++; continue; }
    const l = dv.getUint8(i + 1);
    if ((t & IPOPT_COPIED) === 0) for (let k = 0; k < l; k++) dv.setUint8(i + k, IPOPT_NOOP);
    i += l;
  }
}

function headerChecksumOk(dv: DataView, l3: number, hl: number): boolean {
  let s = 0;
  for (let i = l3; i < l3 + hl; i += 2) s += dv.getUint16(i);
  s = (s >>> 16) + (s & 0xffff);
  s = (s >>> 16) + (s & 0xffff);
  return s === 0xffff;
}

function fillHeaderChecksum(dv: DataView, l3: number, hl: number): void {
  dv.setUint16(l3 + 10, 0);
  let s = 0;
  for (let i = l3; i < l3 + hl; i += 2) s += dv.getUint16(i);
  s = (s >>> 16) + (s & 0xffff);
  s = (s >>> 16) + (s & 0xffff);
  dv.setUint16(l3 + 10, ~s & 0xffff);
}
