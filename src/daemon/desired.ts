/**
 * The desired state of one node: what the daemon should make true, whoever asked for it.
 *
 *   node      identity and network (name, VNI, port, mode, CIDRs, gateway, VTEP, underlay,
 *             MTUs, options): from the config file only, fixed while the daemon runs (a reload
 *             may change the log level, anything else needs a restart: see restartFields)
 *   sections  named entries, one map per kind: peers and pods today. Policies, services and
 *             subnet leases will be further sections with the same contract (a key, an
 *             equality, a relation between two entries in validate.ts, a step in the reconciler).
 *
 * Values are compiled (uint32 addresses, 48-bit MACs, Cidr objects) and validated: a
 * DesiredState is only ever built from checked parts (validate.ts, producers.ts). Plain data,
 * compared by value; nothing here touches the switch.
 */

import type { Cidr } from '../fib/cidr.js';
import { formatIpv4, formatMac } from '../wire/addr.js';
import type { DfPolicy } from '../wire/encap.js';

export interface PeerSpec {
  readonly name: string;
  readonly underlayIp: number;
  readonly podCidr: Cidr;
  readonly vtepMac: number;
}

export interface PodSpec {
  readonly name: string;
  /** The veth's host end, in the daemon's namespace. */
  readonly interface: string;
  readonly ip: number;
  readonly mac: number;
  /**
   * The pod's identity when the CNI plugin attached it (from CNI_ARGS K8S_POD_NAMESPACE,
   * K8S_POD_NAME, K8S_POD_UID; null where the runtime did not pass one) and the CNI attachment
   * key (CNI_CONTAINERID, CNI_IFNAME). Absent for pods from the config file or `pod attach`.
   */
  readonly k8s?: PodK8s;
}

export interface PodK8s {
  readonly namespace: string | null;
  readonly name: string | null;
  readonly uid: string | null;
  readonly containerId: string;
  readonly ifname: string;
}

/** The node section: everything about this node that is not a named entry. */
export interface NodeSpec {
  readonly node: string;
  readonly vni: number;
  readonly port: number;
  readonly mode: 'l3' | 'l2';
  readonly underlay: { readonly interface: string; readonly address: number; readonly mtu: number | null };
  readonly podCidr: Cidr;
  readonly clusterCidr: Cidr;
  readonly gateway: number;
  /** flannel's VTEP address: the pod CIDR's network address (10.244.N.0/32). */
  readonly vtepIp: number;
  readonly vtepMac: number | null;
  readonly stateDir: string;
  readonly udpChecksum: boolean;
  readonly df: DfPolicy;
  readonly ttl: number;
  readonly srcPortRange: readonly [number, number];
  readonly strict: boolean;
  readonly gbp: boolean;
  readonly checkPeerSource: boolean;
  readonly checkInnerSource: boolean;
  readonly host: { readonly interface: string; readonly mac: number | null };
  readonly podMtu: number | null;
  readonly offloads: boolean;
  readonly mssClamp: boolean;
  /** TCP super-frames through the tunnel TAP (host.ts openTunnelTap) where the kernel offers UDP-tunnel GSO. */
  readonly tunnelOffload: 'auto' | 'off';
  /** Port backend (validate.ts IO_BACKENDS): 'af_xdp', 'packet' or 'auto'. */
  readonly io: 'auto' | 'af_xdp' | 'packet';
  /** The pods' port backend (validate.ts: `podIo`, default `io`). */
  readonly podIo: 'auto' | 'af_xdp' | 'packet';
  readonly controlSocket: string;
  readonly metrics: { readonly host: string; readonly port: number } | null;
  readonly logLevel: string;
  readonly fdbLimit: number;
  readonly fdbAgeingMs: number;
  /** `control.etcd`: the subnet is leased and peers are learned from etcd; null for a static node. */
  readonly control: { readonly endpoints: readonly string[]; readonly prefix: string; readonly leaseTtlSeconds: number } | null;
}

/** The entry type of each section, by section name. */
export interface SectionEntries {
  readonly peers: PeerSpec;
  readonly pods: PodSpec;
}
export type SectionName = keyof SectionEntries;
export const SECTION_NAMES: readonly SectionName[] = ['peers', 'pods'];

/** A section: entries by name, in the order their producers gave them. */
export type Section<K extends SectionName> = ReadonlyMap<string, SectionEntries[K]>;
export type Sections = { readonly [K in SectionName]: Section<K> };

export interface DesiredState {
  readonly node: NodeSpec;
  readonly sections: Sections;
}

/** Fresh, empty, writable sections. */
export const emptySections = (): { [K in SectionName]: Map<string, SectionEntries[K]> } => ({ peers: new Map(), pods: new Map() });

export function samePod(a: PodSpec, b: PodSpec): boolean {
  return a.name === b.name && a.interface === b.interface && a.ip === b.ip && a.mac === b.mac;
}

export function samePeer(a: PeerSpec, b: PeerSpec): boolean {
  return a.name === b.name && a.underlayIp === b.underlayIp && a.vtepMac === b.vtepMac
    && a.podCidr.network === b.podCidr.network && a.podCidr.len === b.podCidr.len;
}

/** sameEntry: value equality for an entry of any section. */
export function sameEntry<K extends SectionName>(section: K, a: SectionEntries[K], b: SectionEntries[K]): boolean {
  return section === 'pods' ? samePod(a as PodSpec, b as PodSpec) : samePeer(a as PeerSpec, b as PeerSpec);
}

/**
 * The node fields as the config file names them, each rendered as a string (for comparing two
 * node sections and for naming what differs). `vtepIp` is derived from podCidr and left out.
 */
export function nodeFields(n: NodeSpec): Record<string, string> {
  const s = (v: unknown): string => (v === null ? 'none' : typeof v === 'object' ? JSON.stringify(v) : String(v));
  const m = (v: number | null): string => (v === null ? 'none' : formatMac(v));
  return {
    'node': n.node, 'vni': s(n.vni), 'port': s(n.port), 'mode': n.mode,
    'underlay.interface': n.underlay.interface, 'underlay.address': formatIpv4(n.underlay.address), 'underlay.mtu': s(n.underlay.mtu),
    'podCidr': n.podCidr.toString(), 'clusterCidr': n.clusterCidr.toString(), 'gateway': formatIpv4(n.gateway),
    'vtepMac': m(n.vtepMac), 'stateDir': n.stateDir, 'udpChecksum': s(n.udpChecksum), 'df': n.df, 'ttl': s(n.ttl),
    'srcPortRange': s(n.srcPortRange), 'strict': s(n.strict), 'gbp': s(n.gbp),
    'checkPeerSource': s(n.checkPeerSource), 'checkInnerSource': s(n.checkInnerSource),
    'host.interface': n.host.interface, 'host.mac': m(n.host.mac), 'podMtu': s(n.podMtu), 'offloads': s(n.offloads),
    'mssClamp': s(n.mssClamp), 'tunnelOffload': n.tunnelOffload, 'io': n.io, 'podIo': n.podIo, 'controlSocket': n.controlSocket, 'metrics': n.metrics === null ? 'none' : `${n.metrics.host}:${n.metrics.port}`, 'log.level': n.logLevel,
    'fdb.limit': s(n.fdbLimit), 'fdb.ageingSeconds': s(n.fdbAgeingMs / 1000), 'control': s(n.control),
  };
}

/** The node fields a running daemon takes from a reload; every other change needs a restart. */
export const LIVE_NODE_FIELDS: ReadonlySet<string> = new Set(['log.level']);

/** changedNodeFields lists the config-file names of the node fields that differ, in file order. */
export function changedNodeFields(a: NodeSpec, b: NodeSpec): string[] {
  const fa = nodeFields(a), fb = nodeFields(b);
  return Object.keys(fa).filter((k) => fa[k] !== fb[k]);
}

/** restartFields: the changed node fields that a reload cannot apply. */
export function restartFields(running: NodeSpec, next: NodeSpec): string[] {
  return changedNodeFields(running, next).filter((f) => !LIVE_NODE_FIELDS.has(f));
}
