/**
 * What the visualizer's JSON API answers, as plain types shared by the server (src/ui/*.ts) and
 * the page (src/ui/web/*.ts, which imports them as types only). Every value comes from a
 * daemon's control socket, the lab's state file, the etcd store or a real trace.
 */

/** A pod as a node's daemon reports it (`show ports` joined with `show ipam`), or as the lab planned it on a kernel node. */
export interface PodInfo {
  readonly name: string;
  /** The Kubernetes namespace the CNI plugin recorded, or null (pods wired from the config file, kernel nodes). */
  readonly namespace: string | null;
  readonly ip: string;
  readonly mac: string | null;
  /** The veth's host end in the node's namespace. */
  readonly hostIf: string | null;
  readonly mtu: number | null;
  /** The daemon's port counters (null on kernel nodes). */
  readonly rxPackets: number | null;
  readonly txPackets: number | null;
  readonly rxBytes: number | null;
  readonly txBytes: number | null;
  /** Frames the kernel dropped at this pod's socket or interface. */
  readonly kernelDrops: number | null;
  /** Where the data came from: 'daemon' or 'lab' (the lab's plan, for kernel nodes). */
  readonly source: 'daemon' | 'lab';
}

/** A drop reason and its count on one node. */
export interface DropCount { readonly reason: string; readonly count: number; readonly help: string; readonly stage: string; readonly perSecond: number }

export interface NodeInfo {
  readonly name: string;
  readonly kind: 'flatnet' | 'kernel';
  /** Reachable now: the daemon answered (flatnet), or the agent runs / the lease is held (kernel). */
  readonly up: boolean;
  /** Why it is shown down, or null. */
  readonly error: string | null;
  readonly underlayIp: string | null;
  readonly underlayMac: string | null;
  readonly vtepIp: string | null;
  readonly vtepMac: string | null;
  readonly podCidr: string | null;
  readonly underlayMtu: number | null;
  readonly podMtu: number | null;
  readonly vni: number | null;
  readonly port: number | null;
  readonly mode: string | null;
  /** The host TAP (flatnet nodes) or the kernel's vxlan device and pods' bridge (kernel nodes). */
  readonly host: { readonly name: string; readonly mac: string | null; readonly rxPackets: number | null; readonly txPackets: number | null } | null;
  readonly vxlanDev: string | null;
  readonly socket: string | null;
  readonly pods: readonly PodInfo[];
  /** The switch's counters (`show counters`), null for kernel nodes and nodes that are down. */
  readonly counters: Readonly<Record<string, number>> | null;
  readonly drops: readonly DropCount[];
  /** Drops per second summed over reasons, since the last poll. */
  readonly dropRate: number;
  /** The etcd lease this node holds, when the store is read. */
  readonly lease: LeaseInfo | null;
}

export interface LeaseInfo { readonly subnet: string; readonly node: string; readonly underlay: string; readonly vtepMac: string; readonly kind: string }

/** A VXLAN tunnel between two VTEPs, with each direction's rate as the flatnet end(s) count it. */
export interface TunnelInfo {
  /** The two node names, sorted. */
  readonly a: string;
  readonly b: string;
  readonly aUnderlay: string;
  readonly bUnderlay: string;
  readonly vni: number;
  readonly port: number;
  /** a -> b and b -> a: packets and bits per second, and the totals; null where no flatnet end counts it. */
  readonly ab: TunnelRate | null;
  readonly ba: TunnelRate | null;
}

export interface TunnelRate { readonly pps: number; readonly bps: number; readonly packets: number; readonly bytes: number; readonly countedBy: string }

export interface ClusterSnapshot {
  /** Milliseconds since the epoch when this poll finished. */
  readonly at: number;
  /** What the server reads: `lab NAME`, sockets, etcd endpoints. */
  readonly source: string;
  /** Lab mode: whether the lab's state file exists (false after `lab down`). */
  readonly labPresent: boolean | null;
  readonly nodes: readonly NodeInfo[];
  readonly tunnels: readonly TunnelInfo[];
  /** The etcd store: its leases, or why it could not be read; null when no store is configured. */
  readonly store: { readonly ok: boolean; readonly error: string | null; readonly revision: number | null; readonly leases: readonly LeaseInfo[] } | null;
}

/** One field of a header in the encapsulation view. */
export interface FieldInfo {
  readonly name: string;
  readonly value: string;
  /** Byte offset in the whole frame, and length in bytes (bit fields: the bytes that hold them). */
  readonly offset: number;
  readonly length: number;
  readonly note: string | null;
}

export interface HeaderInfo {
  /** 'outer-eth', 'outer-ipv4', 'outer-udp', 'vxlan', 'inner-eth', 'inner-ipv4', 'inner-l4', 'payload'. */
  readonly layer: string;
  readonly title: string;
  readonly offset: number;
  readonly length: number;
  /** Part of the 50 bytes of VXLAN overhead. */
  readonly overhead: boolean;
  readonly fields: readonly FieldInfo[];
}

export interface EncapView {
  readonly from: string;
  readonly to: string;
  readonly node: string;
  /** The flow description given to the trace. */
  readonly flow: string;
  readonly outcome: string;
  readonly frame: { readonly hex: string; readonly length: number; readonly to: string | null; readonly kind: string } | null;
  readonly headers: readonly HeaderInfo[];
  readonly overhead: number;
  readonly notes: readonly string[];
  readonly mtu: MtuView;
  /** The trace itself, for the steps. */
  readonly trace: unknown;
}

export interface MtuView {
  readonly underlayMtu: number;
  readonly overhead: number;
  readonly podMtu: number;
  /** A DF packet of the underlay MTU, traced for real: its outcome, drop reason and what leaves. */
  readonly probe: { readonly flow: string; readonly outcome: string; readonly drop: string | null; readonly verdict: string; readonly reply: string | null; readonly trace: unknown };
}

/** One hop of the packet-path view. */
export interface PathHop {
  /** 'pod', 'veth', 'stage', 'vtep', 'underlay', 'kernel'. */
  readonly kind: string;
  readonly node: string | null;
  readonly label: string;
  readonly detail: string;
  readonly verdict: string | null;
  readonly ok: boolean;
}

export interface PathView {
  readonly flow: string;
  readonly from: string;
  readonly to: string;
  readonly outcome: string;
  readonly drop: { readonly reason: string; readonly help: string; readonly node: string; readonly stage: string } | null;
  readonly hops: readonly PathHop[];
  readonly traces: readonly { readonly node: string; readonly in: string; readonly trace: unknown }[];
}

export interface StageInfo {
  readonly stage: string;
  readonly summary: string;
  /** The counters this stage owns (name, value, per second). */
  readonly counters: readonly { readonly name: string; readonly value: number; readonly perSecond: number }[];
  readonly drops: readonly DropCount[];
}

export interface PipelineView {
  readonly node: string;
  readonly up: boolean;
  readonly error: string | null;
  readonly stages: readonly StageInfo[];
  readonly ports: readonly { readonly name: string; readonly role: string; readonly backend: string; readonly rxPackets: number; readonly txPackets: number; readonly rxPps: number; readonly txPps: number; readonly rxErrors: number; readonly txErrors: number; readonly txDropped: number; readonly kernelDrops: number }[];
}
