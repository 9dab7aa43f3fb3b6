/**
 * Subnet lease records: what a node writes under PREFIX/subnets/ (flannel's
 * `{"PublicIP", "BackendType", "BackendData": {"VNI", "VtepMAC"}}`), and how a watcher turns
 * every record it sees into peers, rejecting what it must not install.
 *
 *   key    PREFIX/subnets/10.244.3.0-24   (the subnet, flannel's form)
 *   value  {"node":"n3","underlay":"198.51.100.3","vtepMac":"0e:00:0a:f4:03:00","vni":1,"port":4789,"kind":"flatnet"}
 *
 * The store is shared and anyone with access can write to it, so a record is checked before it
 * becomes a peer. A rejected record is never installed; it has a named reason (REJECT_REASONS).
 * Records are considered in creation order (etcd's create_revision, then key): every node sees
 * the same order, so every node keeps the same one of two clashing records, the first.
 */

import { z } from 'zod';
import { Cidr } from '../fib/cidr.js';
import { formatIpv4, formatMac, parseIpv4, parseMac } from '../wire/addr.js';
import type { PeerSpec } from '../daemon/desired.js';
import { subnetOfKey, type Network } from './network.js';

export const recordSchema = z.object({
  node: z.string().regex(/^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$/, 'a node name: letters, digits, "_", "." and "-"'),
  underlay: z.ipv4(),
  vtepMac: z.mac(),
  vni: z.number().int().min(0).max(0xff_ffff),
  port: z.number().int().min(1).max(65535),
  /** Who holds it: a flatnet daemon or a kernel-VXLAN node's agent (informational). */
  kind: z.enum(['flatnet', 'kernel']).default('flatnet'),
}).strict();
export type RecordInput = z.input<typeof recordSchema>;

/** A lease record, compiled. */
export interface SubnetRecord {
  readonly subnet: Cidr;
  readonly node: string;
  readonly underlayIp: number;
  readonly vtepMac: number;
  readonly vni: number;
  readonly port: number;
  readonly kind: 'flatnet' | 'kernel';
}

/** The stored value of a record. */
export function recordValue(r: SubnetRecord): string {
  return JSON.stringify({ node: r.node, underlay: formatIpv4(r.underlayIp), vtepMac: formatMac(r.vtepMac), vni: r.vni, port: r.port, kind: r.kind });
}

/** Why a record was not installed. */
export const REJECT_REASONS = {
  bad_key: 'the key is not PREFIX/subnets/A.B.C.D-LEN',
  malformed_json: 'the value is not JSON',
  bad_record: 'a field is missing or invalid',
  outside_network: 'the subnet is not inside the cluster network',
  wrong_subnet_len: "the subnet's length is not the network's subnetLen",
  overlap: 'the subnet overlaps an earlier record or this node\'s own subnet',
  underlay_claimed: "the underlay address is an earlier record's or this node's",
  duplicate_node: 'the node name holds an earlier record already',
  vni_port_mismatch: "the VNI or UDP port is not the network's",
} as const;
export type RejectReason = keyof typeof REJECT_REASONS;
export const REJECT_REASON_NAMES = Object.keys(REJECT_REASONS) as RejectReason[];

/** One key-value as read from etcd. */
export interface RawRecord {
  readonly key: string;
  readonly value: string;
  /** etcd's create_revision and mod_revision. */
  readonly createRevision: number;
  readonly modRevision: number;
}

export interface Rejection {
  readonly key: string;
  readonly reason: RejectReason;
  readonly detail: string;
  readonly modRevision: number;
}

/** parseRecord checks one record on its own (key, JSON, fields, network); the set is checked by selectPeers. */
export function parseRecord(prefix: string, net: Network, raw: RawRecord): SubnetRecord | Omit<Rejection, 'key' | 'modRevision'> {
  const subnet = subnetOfKey(prefix, raw.key);
  if (subnet === null) return { reason: 'bad_key', detail: raw.key };
  let json: unknown;
  try {
    json = JSON.parse(raw.value);
  } catch (e) {
    return { reason: 'malformed_json', detail: (e as Error).message };
  }
  const r = recordSchema.safeParse(json);
  if (!r.success) {
    const i = r.error.issues[0]!;
    return { reason: 'bad_record', detail: `${i.path.join('.') || '(value)'}: ${i.message}` };
  }
  const underlayIp = parseIpv4(r.data.underlay);
  const vtepMac = parseMac(r.data.vtepMac);
  if (vtepMac === 0 || Math.floor(vtepMac / 2 ** 40) % 2 === 1) return { reason: 'bad_record', detail: `vtepMac: ${r.data.vtepMac} is not a unicast MAC address` };
  if (net.network.contains(underlayIp)) return { reason: 'bad_record', detail: `underlay: ${r.data.underlay} lies inside the cluster network ${net.network}` };
  if (!(net.network.len <= subnet.len && net.network.contains(subnet.network))) return { reason: 'outside_network', detail: `${subnet} is not inside ${net.network}` };
  if (r.data.vni !== net.vni || r.data.port !== net.port) {
    return { reason: 'vni_port_mismatch', detail: `vni ${r.data.vni} port ${r.data.port}; the network has vni ${net.vni} port ${net.port}` };
  }
  return { subnet, node: r.data.node, underlayIp, vtepMac, vni: r.data.vni, port: r.data.port, kind: r.data.kind };
}

/** This node, as the selection sees it: its own record is skipped, and nobody may claim its subnet or underlay. */
export interface Self {
  readonly node: string;
  readonly subnet: Cidr | null;
  readonly underlayIp: number;
}

export interface Selection {
  /** Peers to install, in creation order. */
  readonly peers: readonly PeerSpec[];
  /** Every valid record, this node's included, by key (the kernel agent programs from these). */
  readonly records: ReadonlyMap<string, SubnetRecord>;
  readonly rejected: readonly Rejection[];
}

/**
 * selectPeers: every record checked alone and against the records before it (creation order),
 * and against `self`. The result is a function of the records alone, so every node agrees.
 */
export function selectPeers(prefix: string, net: Network, raws: Iterable<RawRecord>, self: Self | null): Selection {
  const sorted = [...raws].sort((a, b) => a.createRevision - b.createRevision || (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
  const accepted: { key: string; rec: SubnetRecord }[] = [];
  // Indexes over the accepted records (every one of them is a /subnetLen), so that checking a
  // record costs O(1) and 5,000 records are selected in milliseconds.
  const bySubnet = new Map<number, SubnetRecord>();
  const byUnderlay = new Map<number, SubnetRecord>();
  const byNode = new Map<string, SubnetRecord>();
  const step = 2 ** (32 - net.subnetLen);
  const overlapping = (c: SubnetRecord['subnet']): SubnetRecord | undefined => {
    if (c.len >= net.subnetLen) return bySubnet.get(c.network - ((c.network - net.network.network) % step));
    for (const a of bySubnet.values()) if (a.subnet.overlaps(c)) return a; // a hostile wider block: rare
    return undefined;
  };
  const rejected: Rejection[] = [];
  const reject = (raw: RawRecord, reason: RejectReason, detail: string): void => {
    rejected.push({ key: raw.key, reason, detail, modRevision: raw.modRevision });
  };
  const accept = (key: string, r: SubnetRecord): void => {
    accepted.push({ key, rec: r });
    bySubnet.set(r.subnet.network, r);
    byUnderlay.set(r.underlayIp, r);
    byNode.set(r.node, r);
  };
  for (const raw of sorted) {
    const r = parseRecord(prefix, net, raw);
    if ('reason' in r) { reject(raw, r.reason, r.detail); continue; }
    const isSelf = self !== null && r.node === self.node;
    if (isSelf && self.subnet !== null && r.subnet.network === self.subnet.network && r.subnet.len === self.subnet.len && !bySubnet.has(r.subnet.network)) {
      accept(raw.key, r);
      continue;
    }
    if (self !== null && self.subnet !== null && r.subnet.overlaps(self.subnet)) { reject(raw, 'overlap', `${r.subnet} overlaps this node's subnet ${self.subnet}`); continue; }
    const over = overlapping(r.subnet);
    if (over !== undefined) { reject(raw, 'overlap', `${r.subnet} overlaps ${over.subnet} of ${over.node}`); continue; }
    if (r.subnet.len !== net.subnetLen) { reject(raw, 'wrong_subnet_len', `${r.subnet} is not a /${net.subnetLen}`); continue; }
    if (isSelf) { reject(raw, 'duplicate_node', `${r.node} is this node, which holds ${self.subnet === null ? 'no subnet yet' : self.subnet.toString()}`); continue; }
    if (self !== null && r.underlayIp === self.underlayIp) { reject(raw, 'underlay_claimed', `${formatIpv4(r.underlayIp)} is this node's underlay address`); continue; }
    const under = byUnderlay.get(r.underlayIp);
    if (under !== undefined) { reject(raw, 'underlay_claimed', `${formatIpv4(r.underlayIp)} belongs to ${under.node} (${under.subnet})`); continue; }
    const dup = byNode.get(r.node);
    if (dup !== undefined) { reject(raw, 'duplicate_node', `${r.node} holds ${dup.subnet} already`); continue; }
    accept(raw.key, r);
  }
  const records = new Map(accepted.map((a) => [a.key, a.rec]));
  const peers = accepted.filter((a) => self === null || a.rec.node !== self.node)
    .map((a): PeerSpec => ({ name: a.rec.node, underlayIp: a.rec.underlayIp, podCidr: a.rec.subnet, vtepMac: a.rec.vtepMac }));
  return { peers, records, rejected };
}
