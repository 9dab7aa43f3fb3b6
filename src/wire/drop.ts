/**
 * Drop reasons: one named reason per dropped packet, like the kernel's `enum skb_drop_reason`.
 * The data path counts `drops[reason]` in a typed array and never throws on packet content.
 *
 * The codec's reasons come first, in the order decapsulation checks them (the kernel's
 * `vxlan_rcv` order); pipeline reasons follow. Values are counter indexes: append, never renumber.
 */

export const Drop = {
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
export type Drop = (typeof Drop)[keyof typeof Drop];

/** Counter labels, indexed by reason: `drop_names[Drop.VXLAN_NO_I_FLAG] === 'vxlan_no_i_flag'`. */
export const DROP_NAMES: readonly string[] = (() => {
  const names: string[] = [];
  for (const [k, v] of Object.entries(Drop)) names[v] = k.toLowerCase();
  return names;
})();

/** One line per reason, for `flatnet show counters` and the README. */
export const DROP_HELP: Readonly<Record<Exclude<Drop, 0>, string>> = {
  [Drop.ETH_TRUNCATED]: 'frame shorter than its Ethernet (and 802.1Q) header',
  [Drop.OUTER_NOT_IPV4]: 'outer EtherType is not IPv4',
  [Drop.IPV4_TRUNCATED]: 'IPv4 header or total length beyond the end of the frame',
  [Drop.IPV4_BAD_VERSION]: 'IPv4 version field is not 4',
  [Drop.IPV4_BAD_IHL]: 'IPv4 header length below 20 bytes',
  [Drop.IPV4_BAD_TOTAL_LEN]: 'IPv4 total length shorter than its header',
  [Drop.IPV4_BAD_CHECKSUM]: 'IPv4 header checksum does not verify',
  [Drop.IPV4_FRAGMENT]: 'outer IPv4 fragment (VTEPs do not reassemble the underlay)',
  [Drop.OUTER_NOT_UDP]: 'outer IPv4 protocol is not UDP',
  [Drop.UDP_TRUNCATED]: 'UDP header beyond the end of the IPv4 payload',
  [Drop.UDP_BAD_LEN]: 'UDP length below 8 or beyond the IPv4 payload',
  [Drop.UDP_BAD_CHECKSUM]: 'non-zero UDP checksum does not verify',
  [Drop.UDP_PORT_MISMATCH]: 'UDP destination port is not the VXLAN port',
  [Drop.VXLAN_TRUNCATED]: 'UDP payload shorter than the 8-byte VXLAN header',
  [Drop.VXLAN_NO_I_FLAG]: 'VXLAN I flag clear (RFC 7348: the VNI is not valid)',
  [Drop.VXLAN_RESERVED_SET]: 'a reserved VXLAN bit is set (strict mode, as Linux)',
  [Drop.VXLAN_VNI_UNKNOWN]: 'VNI not configured on this VTEP',
  [Drop.INNER_ETH_TRUNCATED]: 'inner frame shorter than an Ethernet header',
  [Drop.INNER_SRC_MAC_INVALID]: 'inner source MAC is multicast or zero',
  [Drop.INNER_SRC_MAC_OURS]: 'inner source MAC is our own VTEP MAC (a loop)',
  [Drop.ECN_CE_NOT_ECT]: 'outer ECN CE over a not-ECT inner packet (RFC 6040 §4.2)',
};
