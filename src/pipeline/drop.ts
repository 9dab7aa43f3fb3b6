/**
 * The pipeline's drop reasons: exactly one named reason per dropped frame, like the kernel's
 * `enum skb_drop_reason`. The codec's reasons (src/wire/drop.ts) come first with their own
 * numbers; the switch's follow. This is the one table: counters are indexed by it, `flatnet
 * show counters` prints its help, /metrics labels come from its names, and the README's drop
 * table is generated from it. Values are counter indexes: append, never renumber.
 *
 * Every drop site in src/pipeline returns one of these, and each reason means one thing: where
 * two different situations used to share a name they have a reason each (no_buffer,
 * too_many_segments, no_egress_port, port_detached, gateway_unanswered).
 */

import { MtuStatus } from '../mtu/status.js';
import { WIRE_DROP_HELP, WireDrop } from '../wire/drop.js';

export const Drop = {
  ...WireDrop,
  // overlay receive (after the codec accepted the frame)
  VTEP_UNKNOWN: 22,
  INNER_SRC_NOT_IN_PEER_CIDR: 23,
  INNER_DST_MAC_NOT_OURS: 24,
  OVERLAY_LOOP: 25,
  // pod and host ports
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
  // resources and egress
  NO_BUFFER: 47,
  TOO_MANY_SEGMENTS: 48,
  NO_EGRESS_PORT: 49,
  PORT_DETACHED: 50,
  GATEWAY_UNANSWERED: 51,
  IPV4_BAD_OPTIONS: 52,
  // NetworkPolicy and connection tracking
  POLICY_DENIED_INGRESS: 53,
  POLICY_DENIED_EGRESS: 54,
  CONNTRACK_FULL: 55,
  // Services
  SERVICE_NO_ENDPOINTS: 56,
  SERVICE_NO_LOCAL_ENDPOINTS: 57,
  NAT_CLASH: 58,
  // overlay receive, appended
  INNER_SRC_BROADCAST: 59,
} as const;
export type Drop = (typeof Drop)[keyof typeof Drop];

/** Counter labels, indexed by reason: `DROP_NAMES[Drop.VXLAN_NO_I_FLAG] === 'vxlan_no_i_flag'`. */
export const DROP_NAMES: readonly string[] = (() => {
  const names: string[] = [];
  for (const [k, v] of Object.entries(Drop)) names[v] = k.toLowerCase();
  return names;
})();

/** How many counter slots the table needs (NONE included). */
export const DROP_COUNT = DROP_NAMES.length;

/** One line per reason, for `flatnet show counters`, /metrics help and the README. */
export const DROP_HELP: Readonly<Record<Exclude<Drop, 0>, string>> = {
  ...WIRE_DROP_HELP,
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
  [Drop.ARP_UNANSWERED]: 'ARP the responder does not answer: a reply, a gratuitous ARP, or a request for an unknown address',
  [Drop.ETHERTYPE_UNSUPPORTED]: 'EtherType the L3 switch does not route (IPv6, others)',
  [Drop.L3_BROADCAST]: 'L3 mode: non-ARP broadcast or multicast frame',
  [Drop.UNKNOWN_DST_MAC]: 'L3 mode: frame addressed to neither the gateway nor a local pod',
  [Drop.HAIRPIN]: 'frame would leave through the port it arrived on',
  [Drop.NO_ROUTE]: 'no route for the destination IP (or a blackhole route: an unused address of a known pod CIDR)',
  [Drop.TTL_EXCEEDED]: 'TTL expired in transit (ICMP time exceeded sent)',
  [Drop.FDB_FULL]: 'L2 learning refused: FDB at its size limit',
  [Drop.FDB_STATIC_CONFLICT]: 'L2 learning refused: a static entry owns the MAC',
  [Drop.MTU_EXCEEDED]: 'packet does not fit the underlay after encapsulation and cannot be fragmented (DF: ICMP fragmentation-needed sent)',
  [Drop.RX_TRUNCATED]: 'frame longer than the receive slot',
  [Drop.TX_BUSY]: 'egress queue full (EAGAIN/ENOBUFS)',
  [Drop.TX_ERROR]: 'egress write failed',
  [Drop.OFFLOAD_INVALID]: 'virtio-net header inconsistent with its frame (checksum offsets, super-frame headers)',
  [Drop.GSO_UNSUPPORTED]: 'a GSO type flatnet does not segment (UFO, unknown types)',
  [Drop.NO_BUFFER]: 'no room left in the work area for the segments, fragments or copies this frame needs',
  [Drop.TOO_MANY_SEGMENTS]: 'a super-frame or packet would need more segments or fragments than one frame may make (128)',
  [Drop.NO_EGRESS_PORT]: 'the route leads to the overlay or the host port, and none is attached',
  [Drop.PORT_DETACHED]: 'the destination pod port was detached',
  [Drop.GATEWAY_UNANSWERED]: 'packet for the gateway address that is not an ICMP echo request (the gateway answers pings only)',
  [Drop.IPV4_BAD_OPTIONS]: 'IPv4 options that do not parse, in a packet that has to be fragmented',
  [Drop.POLICY_DENIED_INGRESS]: 'a new connection to a pod that its NetworkPolicies isolate for ingress and no rule allows',
  [Drop.POLICY_DENIED_EGRESS]: 'a new connection from a pod that its NetworkPolicies isolate for egress and no rule allows',
  [Drop.CONNTRACK_FULL]: 'a new connection when the connection table is full of established ones (none to early-drop)',
  [Drop.SERVICE_NO_ENDPOINTS]: 'a new connection to a ClusterIP port with no endpoint: rejected with ICMP port unreachable (kube-proxy REJECT)',
  [Drop.SERVICE_NO_LOCAL_ENDPOINTS]: 'a new connection to a Service with internalTrafficPolicy Local and no endpoint on this node',
  [Drop.NAT_CLASH]: "a new Service connection whose translated tuple another connection already holds",
  [Drop.INNER_SRC_BROADCAST]: "inner source IP is the broadcast address of the sending peer's pod CIDR (no host sends from it)",
};

/**
 * dropForStatus: the drop reason of a frame that an MTU or offload algorithm (src/mtu,
 * src/offload) refused with `s` (a negative MtuStatus). One place, so that a status means the
 * same reason wherever it comes from.
 */
export function dropForStatus(s: number): Drop {
  switch (s) {
    case MtuStatus.GSO_TYPE_UNSUPPORTED: return Drop.GSO_UNSUPPORTED;
    case MtuStatus.TOO_MANY_SEGMENTS: return Drop.TOO_MANY_SEGMENTS;
    case MtuStatus.NO_ROOM: return Drop.NO_BUFFER;
    case MtuStatus.BAD_IP_CHECKSUM: return Drop.IPV4_BAD_CHECKSUM;
    case MtuStatus.BAD_IP_OPTIONS: return Drop.IPV4_BAD_OPTIONS;
    // A datagram that cannot be resized, an MTU below what fragments need, DF, or a fragment
    // offset that would overflow: the packet cannot be made to fit.
    case MtuStatus.DATAGRAM_TOO_BIG:
    case MtuStatus.MTU_TOO_SMALL:
    case MtuStatus.DF_SET:
    case MtuStatus.BAD_IP_HEADER:
      return Drop.MTU_EXCEEDED;
    // The virtio header describes something the frame is not (type, headers, sizes, offsets).
    default:
      return Drop.OFFLOAD_INVALID;
  }
}
