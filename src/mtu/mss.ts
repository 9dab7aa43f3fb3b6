/**
 * TCP MSS clamping of SYN and SYN-ACK segments crossing the switch, as iptables'
 * `-p tcp --tcp-flags SYN,RST SYN -j TCPMSS --clamp-mss-to-pmtu` does (net/netfilter/
 * xt_TCPMSS.c, tcpmss_mangle_packet), so that both ends of a connection pick segments that fit
 * the pod MTU even when PMTU discovery is blocked.
 *
 * Followed as xt_TCPMSS does it:
 *   - only segments with SYN set and RST clear (the rule's usual match);
 *   - the limit is mtu - 40 for IPv4 and mtu - 60 for IPv6 (IP + TCP headers without options);
 *   - an MSS option (kind 2, length 4) above the limit is lowered to it; one at or below is left
 *     alone (TCPMSS only ever lowers); the TCP checksum is patched incrementally (RFC 1624), as
 *     inet_proto_csum_replace2 does, also when the option sits at an odd offset.
 * Difference: when a SYN has no MSS option, TCPMSS inserts one (4 more bytes, data offset and
 * IP length adjusted) carrying min(limit, 536) for IPv4 or min(limit, 1220) for IPv6, because
 * the peer assumes those defaults (RFC 879, RFC 8200 §8.3 via RFC 9293 §3.7.1). flatnet adds
 * nothing: growing a frame in place is not possible in a slot without tailroom guarantees, and
 * the defaults the peer assumes already fit any pod MTU the configuration accepts (>= 576 for
 * IPv4: 536 + 40 = 576; IPv6 needs a pod MTU >= 1280 anyway: 1220 + 60 = 1280), so the
 * inserted option could never lower anything. Also, IPv4 fragments are all skipped (TCPMSS
 * skips those with a non-zero offset; a SYN with MF set does not occur in practice).
 *
 * How the pipeline uses this: when clamping is enabled, the egress stage calls clampMss(layout,
 * podMtu) on every frame it forwards (non-GSO; GSO frames never carry SYN), with the layout the
 * ingress stage parsed. A negative result is a malformed SYN: it is forwarded untouched (the
 * switch does not judge TCP headers).
 */

import { IpProto } from '../wire/consts.js';
import { TcpFlag, TcpView } from '../wire/tcp.js';
import type { FrameLayout } from './layout.js';
import { MtuStatus } from './status.js';

export const MssClamp = {
  /** Not a TCP SYN (or an IPv4 non-first fragment), no MSS option, or the MSS already fits. */
  UNTOUCHED: 0,
  /** The MSS option was lowered and the checksum patched. */
  CLAMPED: 1,
} as const;
export type MssClamp = (typeof MssClamp)[keyof typeof MssClamp];

/** IP + TCP header bytes without options, by IP version (xt_TCPMSS's minlen). */
export const MSS_OVERHEAD_IPV4 = 40;
export const MSS_OVERHEAD_IPV6 = 60;

const tcp = new TcpView();

/**
 * clampMss lowers the MSS option of the TCP SYN in the frame `L` was parsed over to mtu - 40
 * (IPv4) or mtu - 60 (IPv6). Returns CLAMPED, UNTOUCHED, or a negative MtuStatus (TRUNCATED,
 * BAD_L4_HEADER) for a TCP packet shorter than 20 bytes or a SYN whose header does not fit its
 * packet. Frames that are not IPv4/IPv6 TCP are UNTOUCHED, whatever their state. Mutates at
 * most the option value and the TCP checksum; reads only inside the frame; allocates nothing.
 */
export function clampMss(L: FrameLayout, mtu: number): number {
  if (L.ipVersion === 0 || L.proto !== IpProto.TCP) return MssClamp.UNTOUCHED;
  if ((L.flagsFrag & 0x3fff) !== 0) return MssClamp.UNTOUCHED; // a fragment: see the module doc
  const l4 = L.l4Off;
  if (L.ipEnd - l4 < 20) return MtuStatus.TRUNCATED; // not even a fixed TCP header: no flags to judge
  const flags = L.dv.getUint8(l4 + 13);
  if ((flags & (TcpFlag.SYN | TcpFlag.RST)) !== TcpFlag.SYN) return MssClamp.UNTOUCHED;
  const s = L.l4();
  if (s !== MtuStatus.OK) return s;
  const limit = mtu - (L.ipVersion === 4 ? MSS_OVERHEAD_IPV4 : MSS_OVERHEAD_IPV6);
  const v = tcp.reset(L.buf, l4, L.ipEnd);
  const mss = v.mss();
  if (mss < 0 || mss <= limit || limit < 1) return MssClamp.UNTOUCHED;
  v.setMss(limit);
  return MssClamp.CLAMPED;
}
