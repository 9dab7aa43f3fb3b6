/**
 * The lab's topology and its state: what `flatnet lab up` builds, computed up front from the
 * options (a pure function, so the addressing is unit-tested), then saved with what was started
 * (daemon pids) in a state directory so that `lab test` and `lab down` work from another process.
 *
 *                       underlay namespace fl-NAME-ul: Linux bridge br0
 *             u1 /                        u2 |                         \ u3
 *   fl-NAME-n1 eth0 198.51.100.1   fl-NAME-n2 eth0 198.51.100.2   fl-NAME-n3 eth0 198.51.100.3
 *   flatnet (TAP flatnet0)         flatnet (TAP flatnet0)         kernel (flannel.1 + cni0)
 *     vp0   vp1                      vp0   vp1                      vp0   vp1
 *   n1p0   n1p1                    n2p0   n2p1                    n3p0   n3p1   pod namespaces
 *   10.244.1.10 .11                10.244.2.10 .11                10.244.3.10 .11
 *
 * Addressing (inside the lab's namespaces only): node N has underlay 198.51.100.N/24 (MTU 1500,
 * MAC 02:00:c6:33:64:NN),
 * pod CIDR 10.244.N.0/24, VTEP address 10.244.N.0/32, gateway 10.244.N.1, VTEP MAC
 * 0e:00:0a:f4:NN:00; pod j of node N is 10.244.N.(10+j) with MAC 02:00:0a:f4:NN:(10+j) (the MAC
 * spells the address) and MTU = underlay MTU - 50. L2 mode puts every pod in one segment,
 * 10.244.0.0/16, without a gateway. Kernel nodes are the last `kernelNodes` nodes.
 */

import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { busyPollSchema } from '../daemon/config.js';
import { FlatnetError } from '../errors.js';
import { VXLAN_OVERHEAD } from '../wire/encap.js';
import { cniHostIf, podsViaCni } from './cni-pods.js';
import { hostIfName } from '../cni/veth.js';
import { checkManifest, manifestPodNetns, type LabManifest } from './manifest.js';

export type LabMode = 'l3' | 'l2';
export type NodeKind = 'flatnet' | 'kernel';

/** Where every lab keeps its state: /run/flatnet/lab-NAME. */
export const LAB_RUN_DIR = '/run/flatnet';
export const UNDERLAY_MTU = 1500;
export const POD_MTU = UNDERLAY_MTU - VXLAN_OVERHEAD;
export const UNDERLAY_PREFIX = '198.51.100';
export const CLUSTER_CIDR = '10.244.0.0/16';
export const MAX_NODES = 50;
export const MAX_PODS = 20;
const NAME_RE = /^[a-z0-9]{1,12}$/;

export interface LabOptions {
  /** Lab name: namespaces are `fl-NAME-*`, state in /run/flatnet/lab-NAME. */
  readonly name: string;
  readonly nodes: number;
  readonly kernelNodes: number;
  readonly pods: number;
  readonly mode: LabMode;
  /** VXLAN UDP port of every node. 8472 (Linux's default) leaves `dstport` off the kernel devices. */
  readonly port: number;
  readonly vni: number;
  /** Outer UDP checksum of each kernel node's vxlan device (`udpcsum`), cycled over them. */
  readonly kernelUdpCsum: readonly boolean[];
  /**
   * TX checksum offload and TSO/GSO on the pods' eth0 (the veth defaults, on). Off makes pods
   * send finished, MTU-sized frames: the per-packet path, for comparisons.
   */
  readonly podOffloads: boolean;
  /**
   * The flatnet nodes' config `offloads` (virtio-net headers on pod and host ports, UDP GSO/GRO on
   * the overlay). Off is the per-packet data plane, for comparisons (pair it with podOffloads off).
   */
  readonly flatnetOffloads: boolean;
  /**
   * TX checksum offload (and so TSO/UDP segmentation) on the nodes' underlay eth0. Off (the
   * default) makes captures show final checksums; on keeps UDP-GSO trains whole to the peer.
   */
  readonly underlayOffloads: boolean;
  /** The flatnet nodes' config `io` (port backend); null leaves it out ($FLATNET_IO, else packet). */
  readonly flatnetIo: 'auto' | 'af_xdp' | 'packet' | null;
  /**
   * The flatnet nodes' config `busyPoll` ("off", "auto", a spin budget in µs, or { us, auto });
   * null leaves it out (the config default, off).
   */
  readonly flatnetBusyPoll: 'off' | 'auto' | number | { readonly us: number; readonly auto?: boolean } | null;
  /** The flatnet nodes' `fdb.limit` (L2 learning); null: the config default. */
  readonly fdbLimit: number | null;
  /** Where flatnet nodes get their VTEP MAC: the config file, or a file in their stateDir. */
  readonly vtepMacSource: 'config' | 'state';
  /**
   * How flatnet nodes' pods are made in L3 mode: 'cni', by the CNI plugin against the running
   * daemon (cni-pods.ts); 'config', veths wired by hand and listed in the node's config file.
   */
  readonly podsVia: 'cni' | 'config';
  /**
   * etcd members (0: none, every node's peers are in its config file). With 1 or more, the lab
   * runs etcd in its own namespace(s) on the underlay and the nodes learn each other only from
   * their subnet leases (src/lab/etcd-lab.ts).
   */
  readonly etcd: number;
  /** The nodes' subnet lease TTL in seconds (etcd labs). */
  readonly leaseTtlSeconds: number;
  /**
   * The lab's pods from a manifest of Namespaces and Pods (manifest.ts) instead of `pods` per
   * node: needs etcd, L3 and pods made by the CNI plugin; null: the planned pods n1p0, n1p1, ...
   */
  readonly manifest: LabManifest | null;
}

export const DEFAULT_LAB_OPTIONS: LabOptions = {
  name: 'lab',
  nodes: 3,
  kernelNodes: 1,
  pods: 2,
  mode: 'l3',
  port: 4789,
  vni: 1,
  kernelUdpCsum: [true],
  podOffloads: true,
  flatnetOffloads: true,
  underlayOffloads: false,
  flatnetIo: null,
  flatnetBusyPoll: null,
  fdbLimit: null,
  vtepMacSource: 'config',
  podsVia: 'cni',
  etcd: 0,
  leaseTtlSeconds: 60,
  manifest: null,
};

/** resolveLabOptions fills defaults and validates; throws FlatnetError ERR_LAB_OPTIONS. */
export function resolveLabOptions(o: Partial<LabOptions> = {}): LabOptions {
  const r: LabOptions = { ...DEFAULT_LAB_OPTIONS, ...o };
  const bad = (what: string): never => { throw new FlatnetError('ERR_LAB_OPTIONS', what); };
  if (!NAME_RE.test(r.name)) bad(`lab name ${JSON.stringify(r.name)}: 1-12 lowercase letters or digits`);
  if (!Number.isInteger(r.nodes) || r.nodes < 1 || r.nodes > MAX_NODES) bad(`--nodes ${r.nodes}: 1 to ${MAX_NODES}`);
  if (!Number.isInteger(r.kernelNodes) || r.kernelNodes < 0 || r.kernelNodes > r.nodes) {
    bad(`--kernel-nodes ${r.kernelNodes}: 0 to ${r.nodes}`);
  }
  if (!Number.isInteger(r.pods) || r.pods < 1 || r.pods > MAX_PODS) bad(`--pods ${r.pods}: 1 to ${MAX_PODS}`);
  if (r.mode !== 'l3' && r.mode !== 'l2') bad(`--mode ${String(r.mode)}: l3 or l2`);
  if (!Number.isInteger(r.port) || r.port < 1 || r.port > 65535) bad(`--port ${r.port}: a UDP port`);
  if (!Number.isInteger(r.vni) || r.vni < 0 || r.vni > 0xff_ffff) bad(`--vni ${r.vni}: 0 to 16777215`);
  if (r.kernelUdpCsum.length === 0) bad('--kernel-udpcsum: on, off, or a comma-separated list of them');
  if (r.fdbLimit !== null && (!Number.isInteger(r.fdbLimit) || r.fdbLimit < 1)) bad(`fdbLimit ${r.fdbLimit}: a positive integer`);
  if (r.flatnetBusyPoll !== null && !busyPollSchema.safeParse(r.flatnetBusyPoll).success) bad(`--busy-poll ${JSON.stringify(r.flatnetBusyPoll)}: off, auto or a spin budget in microseconds (1 to 10000)`);
  if (r.podsVia !== 'cni' && r.podsVia !== 'config') bad(`--pods-via ${String(r.podsVia)}: cni or config`);
  if (!Number.isInteger(r.etcd) || r.etcd < 0 || r.etcd > 5) bad(`--etcd ${r.etcd}: 0 (static peers) to 5 members`);
  if (!Number.isInteger(r.leaseTtlSeconds) || r.leaseTtlSeconds < 2 || r.leaseTtlSeconds > 86_400) bad(`--lease-ttl ${r.leaseTtlSeconds}: 2 to 86400 seconds`);
  if (r.manifest !== null) {
    // The manifest's Pods are made by the CNI plugin and labelled through the store.
    if (r.etcd < 1) bad(`--etcd ${r.etcd}: a lab from a manifest keeps its Namespaces and Pods in etcd (1 or more members)`);
    if (r.mode !== 'l3') bad(`--mode ${r.mode}: a lab from a manifest is L3 (its pods are made by the CNI plugin)`);
    if (r.podsVia !== 'cni') bad(`--pods-via ${r.podsVia}: a lab from a manifest has its pods made by the CNI plugin`);
    checkManifest(r.manifest, r.nodes, r.kernelNodes);
  }
  return r;
}

export interface LabPod {
  /** `n1p0`: node name + p + index. */
  readonly name: string;
  readonly node: string;
  readonly ns: string;
  /** The veth's host end in the node namespace. */
  readonly hostIf: string;
  /** Manifest pods: empty in the plan, then the address the node's IPAM gave (recorded by `up`). */
  readonly ip: string;
  readonly prefixLen: number;
  readonly mac: string;
  /** L3: the default gateway (10.244.N.1); L2: none. */
  readonly gateway: string | null;
  /**
   * Manifest pods: the Kubernetes namespace and name (`name` is then "NAMESPACE/NAME"). Planned
   * pods are in namespace lab-NAME under their own name.
   */
  readonly k8s?: { readonly namespace: string; readonly name: string };
}

export interface LabNode {
  readonly index: number;
  readonly name: string;
  readonly kind: NodeKind;
  readonly ns: string;
  readonly underlayIp: string;
  /** eth0's MAC: 02:00:c6:33:64:NN (the underlay address in hex). */
  readonly underlayMac: string;
  /** The bridge port in the underlay namespace that leads to this node's eth0. */
  readonly underlayPort: string;
  readonly podCidr: string;
  readonly vtepIp: string;
  readonly gateway: string;
  readonly vtepMac: string;
  /** What this node puts in the outer UDP checksum: computed (true) or zero. */
  readonly udpCsum: boolean;
  /** Kernel nodes: the vxlan device (`flannel.VNI` in L3, `vxlan0` in L2) and the pods' bridge. */
  readonly vxlanDev: string | null;
  readonly bridge: string | null;
  /** Flatnet nodes: config file, control socket. Every node: a log file. */
  readonly config: string | null;
  readonly socket: string | null;
  readonly log: string;
  readonly pods: readonly LabPod[];
}

export interface LabPlan {
  readonly name: string;
  /** Every namespace of this lab starts with it: `fl-NAME-`. */
  readonly prefix: string;
  readonly dir: string;
  readonly stateDir: string;
  readonly options: LabOptions;
  readonly underlayNs: string;
  readonly underlayBridge: string;
  readonly podMtu: number;
  readonly nodes: readonly LabNode[];
}

export interface DaemonRecord {
  readonly pid: number;
  readonly startedAt: string;
  readonly keep: boolean;
}

/** What is on disk in DIR/lab.json. `phase` is 'creating' until `up` finished. */
export interface LabState extends LabPlan {
  readonly version: 1;
  phase: 'creating' | 'up';
  daemons: Record<string, DaemonRecord>;
  /** etcd labs: the members (etcd-lab.ts) and the kernel nodes' agents. */
  etcd?: Record<string, { pid: number; clientUrl: string; ns: string }>;
  agents?: Record<string, DaemonRecord>;
}

export const labPrefix = (name: string): string => `fl-${name}-`;
export const labDir = (name: string): string => join(LAB_RUN_DIR, `lab-${name}`);
export const stateFile = (dir: string): string => join(dir, 'lab.json');

const hex2 = (n: number): string => n.toString(16).padStart(2, '0');
export const vtepMacOf = (index: number): string => `0e:00:0a:f4:${hex2(index)}:00`;
export const podMacOf = (index: number, j: number): string => `02:00:0a:f4:${hex2(index)}:${hex2(10 + j)}`;
export const podIpOf = (index: number, j: number): string => `10.244.${index}.${10 + j}`;
export const underlayIpOf = (index: number): string => `${UNDERLAY_PREFIX}.${index}`;
export const underlayMacOf = (index: number): string => `02:00:c6:33:64:${hex2(index)}`;

/** planLab computes the whole topology from resolved options (no side effects). */
export function planLab(options: LabOptions): LabPlan {
  const prefix = labPrefix(options.name);
  const dir = labDir(options.name);
  const firstKernel = options.nodes - options.kernelNodes + 1;
  const nodes: LabNode[] = [];
  let k = 0;
  for (let i = 1; i <= options.nodes; i++) {
    const name = `n${i}`;
    const kind: NodeKind = i >= firstKernel ? 'kernel' : 'flatnet';
    const ns = `${prefix}${name}`;
    const pods: LabPod[] = [];
    for (const mp of options.manifest?.pods.filter((p) => p.nodeIndex === i) ?? []) {
      const netns = manifestPodNetns(prefix, mp);
      pods.push({
        name: `${mp.namespace}/${mp.name}`, node: name, ns: netns, hostIf: hostIfName(netns, 'eth0'),
        ip: '', prefixLen: 24, mac: '', gateway: `10.244.${i}.1`, k8s: { namespace: mp.namespace, name: mp.name },
      });
    }
    for (let j = 0; j < (options.manifest === null ? options.pods : 0); j++) {
      pods.push({
        name: `${name}p${j}`,
        node: name,
        ns: `${prefix}${name}p${j}`,
        hostIf: podsViaCni(options, kind) ? cniHostIf(prefix, `${name}p${j}`) : `vp${j}`,
        ip: podIpOf(i, j),
        prefixLen: options.mode === 'l3' ? 24 : 16,
        mac: podMacOf(i, j),
        gateway: options.mode === 'l3' ? `10.244.${i}.1` : null,
      });
    }
    const udpCsum = kind === 'kernel' ? options.kernelUdpCsum[k++ % options.kernelUdpCsum.length]! : false;
    nodes.push({
      index: i,
      name,
      kind,
      ns,
      underlayIp: underlayIpOf(i),
      underlayMac: underlayMacOf(i),
      underlayPort: `u${i}`,
      podCidr: `10.244.${i}.0/24`,
      vtepIp: `10.244.${i}.0`,
      gateway: `10.244.${i}.1`,
      vtepMac: vtepMacOf(i),
      udpCsum,
      vxlanDev: kind === 'kernel' ? (options.mode === 'l3' ? `flannel.${options.vni}` : 'vxlan0') : null,
      bridge: kind === 'kernel' ? 'cni0' : null,
      config: kind === 'flatnet' ? join(dir, `${name}.json`) : null,
      socket: kind === 'flatnet' ? join(dir, `${name}.sock`) : null,
      log: join(dir, `${name}.log`),
      pods,
    });
  }
  return {
    name: options.name,
    prefix,
    dir,
    stateDir: join(dir, 'state'),
    options,
    underlayNs: `${prefix}ul`,
    underlayBridge: 'br0',
    podMtu: POD_MTU,
    nodes,
  };
}

export const flatnetNodes = (p: LabPlan): LabNode[] => p.nodes.filter((n) => n.kind === 'flatnet');
export const kernelNodes = (p: LabPlan): LabNode[] => p.nodes.filter((n) => n.kind === 'kernel');
export const allPods = (p: LabPlan): LabPod[] => p.nodes.flatMap((n) => n.pods);

export function nodeByName(p: LabPlan, name: string): LabNode {
  const n = p.nodes.find((x) => x.name === name);
  if (n === undefined) throw new FlatnetError('ERR_LAB_NOT_FOUND', `lab ${p.name} has no node ${name}`);
  return n;
}

export function podByName(p: LabPlan, name: string): LabPod {
  const pod = allPods(p).find((x) => x.name === name);
  if (pod === undefined) throw new FlatnetError('ERR_LAB_NOT_FOUND', `lab ${p.name} has no pod ${name}`);
  return pod;
}

/** A node's label in tables: "flatnet", or "kernel" with its checksum setting. */
export function kindLabel(n: LabNode): string {
  return n.kind === 'flatnet' ? 'flatnet' : `kernel(${n.udpCsum ? 'udpcsum' : 'noudpcsum'})`;
}

/** writeState saves the state atomically (write + rename). */
export function writeState(s: LabState): void {
  mkdirSync(s.dir, { recursive: true });
  const f = stateFile(s.dir);
  writeFileSync(`${f}.tmp`, `${JSON.stringify(s, null, 2)}\n`);
  renameSync(`${f}.tmp`, f);
}

/** readState loads a lab's state; null when there is none. Throws ERR_LAB_STATE when unreadable. */
export function readState(name: string): LabState | null {
  const f = stateFile(labDir(name));
  if (!existsSync(f)) return null;
  try {
    const s = JSON.parse(readFileSync(f, 'utf8')) as LabState;
    if (s.version !== 1 || s.name !== name) throw new Error(`version ${String(s.version)}, name ${String(s.name)}`);
    return s;
  } catch (e) {
    throw new FlatnetError('ERR_LAB_STATE', `${f} is unreadable (${(e as Error).message}); \`flatnet lab down --name ${name}\` still removes the lab`, { cause: e });
  }
}

/** loadLab is readState for commands that need a running lab. */
export function loadLab(name: string): LabState {
  const s = readState(name);
  if (s === null) throw new FlatnetError('ERR_LAB_NOT_FOUND', `no lab named ${name} (no ${stateFile(labDir(name))}); start one with \`flatnet lab up --name ${name}\``);
  if (s.phase !== 'up') throw new FlatnetError('ERR_LAB_INCOMPLETE', `lab ${name} did not finish coming up; run \`flatnet lab down --name ${name}\` and try again`);
  return s;
}
