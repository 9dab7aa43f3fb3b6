/**
 * Outcomes of the MTU and offload algorithms in src/mtu. Functions that produce frames return a
 * count (>= 0) or one of these negative codes; functions that only check or patch return OK or a
 * negative code. Nothing in src/mtu throws on packet content.
 *
 * How the switch uses this: a negative code means the frame cannot be processed as asked; the
 * switch counts one drop for it (Drop.MTU_EXCEEDED or a reason of its own, keyed by these names)
 * and goes on with the next frame. Values are stable: append, never renumber.
 */

export const MtuStatus = {
  OK: 0,
  /** A header, or the length a header announces, runs past the end of the frame. */
  TRUNCATED: -1,
  /** EtherType is neither IPv4 nor IPv6 (802.1Q-tagged frames included: pod ports drop them). */
  NOT_IP: -2,
  /** IPv4 version/IHL/total length or IPv6 version inconsistent (the codec's validate failed). */
  BAD_IP_HEADER: -3,
  /** IPv4 header checksum does not verify (fragmenting would launder a corrupt header). */
  BAD_IP_CHECKSUM: -4,
  /** The packet is already an IPv4 fragment: it cannot be segmented. */
  IP_FRAGMENT: -5,
  /** IPv6 next header is neither TCP nor UDP (extension headers are not walked). */
  IPV6_EXT_HEADER: -6,
  /** The transport protocol is not the one asked for (e.g. a TCP GSO type on a UDP packet). */
  WRONG_PROTOCOL: -7,
  /** TCP data offset below 5 or beyond the packet; UDP length inconsistent. */
  BAD_L4_HEADER: -8,
  /** A virtio GSO type flatnet does not segment: UFO (VIRTIO_NET_HDR_GSO_UDP) or unknown. */
  GSO_TYPE_UNSUPPORTED: -9,
  /** The GSO type names the other IP version than the frame carries. */
  GSO_TYPE_MISMATCH: -10,
  /** gso_size is 0, or a segment with the mandatory headers cannot fit the MTU. */
  BAD_GSO_SIZE: -11,
  /** More segments or fragments than the caller's length array holds. */
  TOO_MANY_SEGMENTS: -12,
  /** The destination buffer is too small, or the destination range overlaps the source. */
  NO_ROOM: -13,
  /** fragmentIpv4: the packet has DF set (answer with ICMP "fragmentation needed" instead). */
  DF_SET: -14,
  /** The MTU cannot carry the headers plus 8 bytes of data (RFC 791: 68 for IPv4). */
  MTU_TOO_SMALL: -15,
  /** IPv4 options that run past the header or have a length below 2. */
  BAD_IP_OPTIONS: -16,
  /** completeChecksum: csum_start/csum_offset put the checksum field outside the frame. */
  CSUM_OUT_OF_RANGE: -17,
  /** UDP GSO: one datagram of gso_size bytes does not fit the MTU (datagrams cannot be resized). */
  DATAGRAM_TOO_BIG: -18,
  /** Not IPv4 (fragmentation, frag-needed) where only IPv4 is handled. */
  NOT_IPV4: -19,
} as const;
export type MtuStatus = (typeof MtuStatus)[keyof typeof MtuStatus];

/** Counter labels by code: mtuStatusName(MtuStatus.NO_ROOM) === 'no_room'. */
export function mtuStatusName(code: number): string {
  return NAMES.get(code) ?? `mtu_status_${code}`;
}

const NAMES: ReadonlyMap<number, string> = new Map(Object.entries(MtuStatus).map(([k, v]) => [v, k.toLowerCase()]));
