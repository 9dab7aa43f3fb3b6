/**
 * Where in the pipeline each drop reason is decided, for the pipeline and cluster views: the
 * stage names are the trace's (STAGE_NAMES, ARCHITECTURE.md's order), and the table follows the
 * groups of src/pipeline/drop.ts. The switch counts drops per reason, not per stage; since every
 * reason is decided in one stage, this table is what puts a count on a stage. A reason missing
 * here (a new one) shows under 'ingress' with its name, and test/ui/stages.test.ts fails until it
 * is placed.
 */

import { Drop, DROP_NAMES } from '../pipeline/drop.js';
import { STAGE_NAMES, type StageName } from '../pipeline/trace.js';

/** What each stage does, one line, as the pipeline view labels it. */
export const STAGE_SUMMARY: Readonly<Record<StageName, string>> = {
  'ingress': 'parse the frame; overlay: check the VXLAN header and the sending VTEP, decapsulate; pods: anti-spoof (source MAC/IP bound to the port), ARP',
  'service-nat': 'ClusterIP -> endpoint (DNAT) for a new connection, reverse for replies (conntrack)',
  'policy-egress': "NetworkPolicy egress of the sending pod (new connections only)",
  'route': 'longest prefix match: local pod, host, or tunnel to the VTEP owning the pod CIDR (L2: the FDB)',
  'bridge': 'L2 mode: FDB lookup, learning and flooding',
  'policy-ingress': 'NetworkPolicy ingress of the receiving pod (new connections only)',
  'egress': 'TTL and MAC rewrite, MTU (fragment, frag-needed), encapsulate for the overlay',
  'transmit': 'batched writes to the ports',
};

const AT: ReadonlyArray<readonly [StageName, readonly number[]]> = [
  ['ingress', [
    Drop.ETH_TRUNCATED, 2, 3, 4, 5, 6, 7, 8, Drop.OUTER_NOT_UDP, Drop.UDP_TRUNCATED, Drop.UDP_BAD_LEN, Drop.UDP_BAD_CHECKSUM, Drop.UDP_PORT_MISMATCH,
    Drop.VXLAN_TRUNCATED, Drop.VXLAN_NO_I_FLAG, Drop.VXLAN_RESERVED_SET, Drop.VXLAN_VNI_UNKNOWN, Drop.INNER_ETH_TRUNCATED, Drop.INNER_SRC_MAC_INVALID,
    Drop.INNER_SRC_MAC_OURS, Drop.ECN_CE_NOT_ECT, Drop.VTEP_UNKNOWN, Drop.INNER_SRC_NOT_IN_PEER_CIDR, Drop.INNER_DST_MAC_NOT_OURS, Drop.INNER_SRC_BROADCAST,
    Drop.VLAN_TAGGED, Drop.SPOOF_SRC_MAC, Drop.SPOOF_SRC_IP, Drop.ARP_SPOOF, Drop.POD_SENT_VXLAN, Drop.ARP_MALFORMED, Drop.ARP_UNANSWERED,
    Drop.ETHERTYPE_UNSUPPORTED, Drop.L3_BROADCAST, Drop.UNKNOWN_DST_MAC, Drop.RX_TRUNCATED, Drop.OFFLOAD_INVALID, Drop.GATEWAY_UNANSWERED,
  ]],
  ['service-nat', [Drop.SERVICE_NO_ENDPOINTS, Drop.SERVICE_NO_LOCAL_ENDPOINTS, Drop.NAT_CLASH, Drop.CONNTRACK_FULL]],
  ['policy-egress', [Drop.POLICY_DENIED_EGRESS]],
  ['route', [Drop.NO_ROUTE, Drop.TTL_EXCEEDED, Drop.OVERLAY_LOOP]],
  ['bridge', [Drop.FDB_FULL, Drop.FDB_STATIC_CONFLICT, Drop.HAIRPIN]],
  ['policy-ingress', [Drop.POLICY_DENIED_INGRESS]],
  ['egress', [Drop.MTU_EXCEEDED, Drop.GSO_UNSUPPORTED, Drop.NO_BUFFER, Drop.TOO_MANY_SEGMENTS, Drop.NO_EGRESS_PORT, Drop.PORT_DETACHED, Drop.IPV4_BAD_OPTIONS]],
  ['transmit', [Drop.TX_BUSY, Drop.TX_ERROR]],
];

const BY_NAME = new Map<string, StageName>();
for (const [stage, reasons] of AT) for (const r of reasons) BY_NAME.set(DROP_NAMES[r]!, stage);

/** stageOfDrop: the stage that decides drop reason `name` (a counter name such as 'spoof_src_ip'). */
export function stageOfDrop(name: string): StageName {
  return BY_NAME.get(name) ?? 'ingress';
}

/** The reasons the table places (for its test: every reason but `none` exactly once). */
export function placedReasons(): string[] {
  return AT.flatMap(([, rs]) => rs.map((r) => DROP_NAMES[r]!));
}

/** The switch counters each stage owns (`show counters` names). */
export const STAGE_COUNTERS: Readonly<Record<StageName, readonly string[]>> = {
  'ingress': ['rx_frames', 'decapsulated', 'arp_replies', 'gro_super_frames', 'gro_segments_merged'],
  'service-nat': [],
  'policy-egress': [],
  'route': [],
  'bridge': ['fdb_entries', 'fdb_moved', 'flood_copies', 'fdb_refused_full', 'fdb_refused_static'],
  'policy-ingress': [],
  'egress': ['encapsulated', 'fragmented', 'frag_needed_sent', 'gso_segments', 'icmp_sent', 'icmp_suppressed'],
  'transmit': ['tx_frames', 'kernel_dropped'],
};

export { STAGE_NAMES };
