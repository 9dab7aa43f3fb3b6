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
  // the switch (src/switch): overlay receive
  VTEP_UNKNOWN: 22,
  INNER_SRC_NOT_IN_PEER_CIDR: 23,
  INNER_DST_MAC_NOT_OURS: 24,
  OVERLAY_LOOP: 25,
  // the switch: pod and host ports
  VLAN_TAGGED: 26,
  SPOOF_SRC_MAC: 27,
  SPOOF_SRC_IP: 28,
  ARP_SPOOF: 29,
  POD_SENT_VXLAN: 30,
  ARP_MALFORMED: 31,
  ARP_UNANSWERED: 32,
  ETHERTYPE_UNSUPPORTED: 33,
  L3_BROADCAST: 34,
  UNKNOWN_DST_MAC: 35,
  HAIRPIN: 36,
  // forwarding
  NO_ROUTE: 37,
  TTL_EXCEEDED: 38,
  FDB_FULL: 39,
  FDB_STATIC_CONFLICT: 40,
  MTU_EXCEEDED: 41,
  // ports
  RX_TRUNCATED: 42,
  TX_BUSY: 43,
  TX_ERROR: 44,
  // offloads (virtio-net headers, GSO/GRO)
  OFFLOAD_INVALID: 45,
  GSO_UNSUPPORTED: 46,
} as const;
export type Drop = (typeof Drop)[keyof typeof Drop];

/** The codec's reasons are 1..CODEC_DROP_MAX (decapsulation and ECN); the switch's follow. */
export const CODEC_DROP_MAX: Drop = Drop.ECN_CE_NOT_ECT;

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
  [Drop.VTEP_UNKNOWN]: 'VXLAN from an underlay address that is not a known peer VTEP',
  [Drop.INNER_SRC_NOT_IN_PEER_CIDR]: "inner source IP outside the sending peer's pod CIDR",
  [Drop.INNER_DST_MAC_NOT_OURS]: 'L3 mode: inner destination MAC is not our VTEP MAC',
  [Drop.OVERLAY_LOOP]: 'decapsulated frame would go back into the overlay',
  [Drop.VLAN_TAGGED]: '802.1Q-tagged frame on a pod or host port, or inside VXLAN',
  [Drop.SPOOF_SRC_MAC]: "pod frame whose source MAC is not the pod's",
  [Drop.SPOOF_SRC_IP]: "pod packet whose source IP is not the pod's",
  [Drop.ARP_SPOOF]: 'pod ARP claiming another IP or MAC (incl. gratuitous ARP for a foreign IP)',
  [Drop.POD_SENT_VXLAN]: 'a pod sent VXLAN to a VTEP (tunnel injection)',
  [Drop.ARP_MALFORMED]: 'truncated ARP, or not Ethernet/IPv4 ARP',
  [Drop.ARP_UNANSWERED]: 'ARP request for an address the switch does not answer for',
  [Drop.ETHERTYPE_UNSUPPORTED]: 'EtherType the L3 switch does not route (IPv6, others)',
  [Drop.L3_BROADCAST]: 'L3 mode: non-ARP broadcast or multicast frame',
  [Drop.UNKNOWN_DST_MAC]: 'L3 mode: frame addressed to neither the gateway nor a local pod',
  [Drop.HAIRPIN]: 'frame would leave through the port it arrived on',
  [Drop.NO_ROUTE]: 'no route for the destination IP',
  [Drop.TTL_EXCEEDED]: 'TTL expired in transit (ICMP time exceeded sent)',
  [Drop.FDB_FULL]: 'L2 learning refused: FDB at its size limit',
  [Drop.FDB_STATIC_CONFLICT]: 'L2 learning refused: a static entry owns the MAC',
  [Drop.MTU_EXCEEDED]: 'frame does not fit the underlay after encapsulation',
  [Drop.RX_TRUNCATED]: 'frame longer than the receive slot',
  [Drop.TX_BUSY]: 'egress queue full (EAGAIN/ENOBUFS)',
  [Drop.TX_ERROR]: 'egress write failed',
  [Drop.OFFLOAD_INVALID]: 'virtio-net header inconsistent with its frame (checksum offsets, super-frame headers)',
  [Drop.GSO_UNSUPPORTED]: 'a GSO type flatnet does not segment (UFO) or that cannot fit the MTU',
};
