/**
 * The codec's verdicts on a received frame: why decapsulation or header validation refused it,
 * one named reason each, like the kernel's `enum skb_drop_reason`. They are returned as small
 * integers on the hot path and never thrown.
 *
 * These are the first entries of the pipeline's drop table (src/pipeline/drop.ts), which adds
 * the switch's own reasons after them: one counter table, one help table, one Prometheus label
 * set, but the codec does not know the switch's vocabulary. Values are counter indexes, in the
 * order decapsulation checks them (the kernel's `vxlan_rcv` order): append, never renumber.
 */

export const WireDrop = {
  NONE: 0,
  // outer Ethernet / IPv4 / UDP (full-frame receive: raw sockets, pcap replay, memory ports)
  ETH_TRUNCATED: 1,
  OUTER_NOT_IPV4: 2,
  IPV4_TRUNCATED: 3,
  IPV4_BAD_VERSION: 4,
  IPV4_BAD_IHL: 5,
  IPV4_BAD_TOTAL_LEN: 6,
  IPV4_BAD_CHECKSUM: 7,
  IPV4_FRAGMENT: 8,
  OUTER_NOT_UDP: 9,
  UDP_TRUNCATED: 10,
  UDP_BAD_LEN: 11,
  UDP_BAD_CHECKSUM: 12,
  UDP_PORT_MISMATCH: 13,
  // VXLAN header, then the inner frame
  VXLAN_TRUNCATED: 14,
  VXLAN_NO_I_FLAG: 15,
  VXLAN_RESERVED_SET: 16,
  VXLAN_VNI_UNKNOWN: 17,
  INNER_ETH_TRUNCATED: 18,
  INNER_SRC_MAC_INVALID: 19,
  INNER_SRC_MAC_OURS: 20,
  ECN_CE_NOT_ECT: 21,
} as const;
export type WireDrop = (typeof WireDrop)[keyof typeof WireDrop];

/** The last codec reason; the pipeline's own reasons are numbered after it. */
export const WIRE_DROP_MAX = WireDrop.ECN_CE_NOT_ECT;

/** wireDropName: the counter label of a codec reason ('ipv4_bad_checksum'); `wire_drop_N` for a number that is none. */
export function wireDropName(d: number): string {
  return NAMES[d] ?? `wire_drop_${d}`;
}

const NAMES: readonly string[] = (() => {
  const names: string[] = [];
  for (const [k, v] of Object.entries(WireDrop)) names[v] = k.toLowerCase();
  return names;
})();

/** One line per reason, for `flatnet show counters` and the README. IPv4 reasons apply to an outer or an inner header alike. */
export const WIRE_DROP_HELP: Readonly<Record<Exclude<WireDrop, 0>, string>> = {
  [WireDrop.ETH_TRUNCATED]: 'frame shorter than its Ethernet (and 802.1Q) header',
  [WireDrop.OUTER_NOT_IPV4]: 'outer EtherType is not IPv4',
  [WireDrop.IPV4_TRUNCATED]: 'IPv4 header or total length beyond the end of the frame',
  [WireDrop.IPV4_BAD_VERSION]: 'IPv4 version field is not 4',
  [WireDrop.IPV4_BAD_IHL]: 'IPv4 header length below 20 bytes',
  [WireDrop.IPV4_BAD_TOTAL_LEN]: 'IPv4 total length shorter than its header',
  [WireDrop.IPV4_BAD_CHECKSUM]: 'IPv4 header checksum does not verify',
  [WireDrop.IPV4_FRAGMENT]: 'outer IPv4 fragment (VTEPs do not reassemble the underlay)',
  [WireDrop.OUTER_NOT_UDP]: 'outer IPv4 protocol is not UDP',
  [WireDrop.UDP_TRUNCATED]: 'UDP header beyond the end of the IPv4 payload',
  [WireDrop.UDP_BAD_LEN]: 'UDP length below 8 or beyond the IPv4 payload',
  [WireDrop.UDP_BAD_CHECKSUM]: 'non-zero UDP checksum does not verify',
  [WireDrop.UDP_PORT_MISMATCH]: 'UDP destination port is not the VXLAN port',
  [WireDrop.VXLAN_TRUNCATED]: 'UDP payload shorter than the 8-byte VXLAN header',
  [WireDrop.VXLAN_NO_I_FLAG]: 'VXLAN I flag clear (RFC 7348: the VNI is not valid)',
  [WireDrop.VXLAN_RESERVED_SET]: 'a reserved VXLAN bit is set (strict mode, as Linux)',
  [WireDrop.VXLAN_VNI_UNKNOWN]: 'VNI not configured on this VTEP',
  [WireDrop.INNER_ETH_TRUNCATED]: 'inner frame shorter than an Ethernet header',
  [WireDrop.INNER_SRC_MAC_INVALID]: 'inner source MAC is multicast or zero',
  [WireDrop.INNER_SRC_MAC_OURS]: 'inner source MAC is our own VTEP MAC (a loop)',
  [WireDrop.ECN_CE_NOT_ECT]: 'outer ECN CE over a not-ECT inner packet (RFC 6040 §4.2)',
};
