/**
 * The systems under test, each a two-node pod network (or a bare veth) built in namespaces of its
 * own, measured, and removed before the next one is built:
 *
 *   veth               two pod namespaces joined by one veth pair (eth0 <-> eth0, MTU 1450,
 *                      10.244.1.10/16 and 10.244.2.10/16): no tunnel at all, the ceiling.
 *   kernel             a lab of 2 kernel nodes (src/lab, flannel-style `flannel.1` + `cni0`,
 *                      udpcsum), 1 pod each: Linux's own VXLAN.
 *   flatnet            a lab of 2 flatnet nodes, 1 pod each, config `offloads: true` (the default:
 *                      virtio-net headers on pod ports and the TAP, UDP GSO/GRO on the overlay),
 *                      pods with the veth defaults (TX checksum offload, TSO/GSO on).
 *   flatnet-nooffload  the same with `offloads: false` in both node configs AND the pods' TX
 *                      checksum offload, TSO and GSO off (`--pod-offloads off`): every frame
 *                      crosses every boundary MTU-sized and finished, one per packet, which is
 *                      the only consistent meaning of "no offloads" (with TSO on in the pod, a
 *                      port without virtio-net headers would be handed 64 KB frames it cannot
 *                      describe; with TX checksum offload on, partial checksums).
 *   flatnet-xdp        `flatnet` with `io: af_xdp`: the overlay on an AF_XDP socket on each node's
 *                      underlay eth0 (XDP program attached natively to the veth), the kernel's
 *                      sockets beside it for UDP-GSO trains; each pod's veth on an AF_XDP socket
 *                      too (the pods keep their default offloads: without TSO once the program
 *                      is on their veth, their partial checksums finished as the socket reads).
 *                      The program runs in the veth driver (native XDP, the daemon's default).
 *   flatnet-xdp-generic the same with FLATNET_XDP_ATTACH=generic (generic XDP).
 *   flatnet-swseg      `flatnet` with `tunnelOffload: off` (FLATNET_TUNNEL_OFFLOAD=off): TCP
 *                      super-frames segmented by the switch and sent as UDP-GSO trains, as before
 *                      the tunnel TAP (`flatnet` hands them to the kernel whole where it can).
 *   ovs                Open vSwitch's userspace (netdev) datapath doing the same VXLAN between the
 *                      same two nodes (ovs.ts): a private ovsdb-server + ovs-vswitchd per node
 *                      namespace, flannel-style L3 in OpenFlow, pods with TX checksum offload off.
 *
 * Every lab node's underlay eth0 keeps the veth defaults here (`underlayOffloads: true`): both
 * kernel VXLAN and flatnet may hand the underlay UDP GSO super-frames, as they would a NIC with
 * UDP segmentation offload. `--underlay-offloads off` gives the `flatnet lab` setting instead
 * (`ethtool -K eth0 tx off`: segmentation and checksums in software at the sending node).
 *
 * Source pod: 10.244.1.10 (n1p0); destination pod: 10.244.2.10 (n2p0). Teardown is labDown(name),
 * which needs no state: it stops recorded daemons, kills everything in `fl-NAME-*` namespaces and
 * deletes them (the veth system uses the same prefix so that the same call removes it).
 */

import { request } from '../../src/daemon/control.js';
import { ipNs, inNs, run } from '../../src/lab/exec.js';
import { spawnDaemon, stopDaemon, waitReady } from '../../src/lab/flatnet-node.js';
import { labDown, labUp } from '../../src/lab/lab.js';
import { labPrefix, POD_MTU, writeState, type LabOptions, type LabState } from '../../src/lab/topology.js';
import { buildOvs } from './ovs.js';
import type { Daemon } from './probe.js';

export const SYSTEM_IDS = ['veth', 'kernel', 'flatnet', 'flatnet-swseg', 'flatnet-nooffload', 'flatnet-xdp', 'flatnet-xdp-generic', 'ovs'] as const;
/** What a run measures without --systems: all but flatnet-xdp-generic (an experiment, on request). */
export const DEFAULT_SYSTEMS: readonly SystemId[] = ['veth', 'kernel', 'flatnet', 'flatnet-swseg', 'flatnet-nooffload', 'flatnet-xdp', 'ovs'];
export type SystemId = (typeof SYSTEM_IDS)[number];

export const SYSTEM_LABELS: Readonly<Record<SystemId, string>> = {
  veth: 'veth (ceiling)',
  kernel: 'kernel VXLAN',
  flatnet: 'flatnet',
  'flatnet-swseg': 'flatnet, software segmentation',
  'flatnet-nooffload': 'flatnet, offloads off',
  'flatnet-xdp': 'flatnet, AF_XDP overlay',
  'flatnet-xdp-generic': 'flatnet, AF_XDP overlay, generic XDP',
  ovs: 'Open vSwitch userspace VXLAN',
};

export const SYSTEM_DESCRIPTIONS: Readonly<Record<SystemId, string>> = {
  veth: 'one veth pair between the two pod namespaces, MTU 1450, no tunnel',
  kernel: '2 lab nodes with the kernel vxlan driver programmed like flannel (flannel.1 + cni0 bridge, udpcsum), 1 pod each',
  flatnet: '2 lab nodes running `flatnet vtep` with offloads on (virtio-net headers, UDP GSO/GRO), pods with veth default offloads',
  'flatnet-swseg': '`flatnet` with `tunnelOffload: off`: TCP super-frames segmented by the switch into UDP-GSO trains instead of handed whole to the kernel through the tunnel TAP',
  'flatnet-nooffload': "2 lab nodes running `flatnet vtep` with `offloads: false`, pods' TX checksum/TSO/GSO off (per-packet path end to end)",
  'flatnet-xdp': '`flatnet` with `io: af_xdp`: the overlay on an AF_XDP socket on the underlay veth (native XDP): frames up to 512 bytes through the ring, longer ones and UDP-GSO trains through the kernel socket; the pods\' veths on AF_XDP sockets (no TSO there, partial checksums finished on read)',
  'flatnet-xdp-generic': '`flatnet-xdp` with the program in generic XDP (FLATNET_XDP_ATTACH=generic)',
  ovs: "2 node namespaces each running a private ovsdb-server + ovs-vswitchd (Open vSwitch's userspace netdev datapath; br-int: pod port + vxlan port, flannel-style L3 flows; br-phy: the underlay eth0, carrying the node address), pods' TX checksum offload off (ovs-vswitchd reads the veths with AF_PACKET, no virtio-net header)",
};

export interface Endpoint { readonly ns: string; readonly ip: string }

export interface Sut {
  readonly id: SystemId;
  readonly name: string;
  readonly src: Endpoint;
  readonly dst: Endpoint;
  /** The data-plane daemons watched for CPU and counters: the flatnet daemons, OVS's ovs-vswitchd (empty for veth and kernel). */
  daemons: Daemon[];
  /** What `daemons` are, for the progress lines: 'flatnet', 'ovs-vswitchd', or null when there are none. */
  readonly daemonLabel: string | null;
  /** The overlay socket features each daemon reports (`status`: UDP GSO/GRO in effect, raw IPv4 send). */
  readonly offloads: Readonly<Record<string, unknown>>;
  /** The lab the system was built as (kernel and flatnet systems; null for veth and ovs): its underlay can be captured. */
  readonly lab: LabState | null;
  /** Restart every daemon with `nodeArgs` for node (e.g. --cpu-prof); flatnet systems only. */
  restartDaemons(nodeArgs: readonly string[]): Promise<void>;
  /** SIGTERM every daemon and wait for it to exit (writes --cpu-prof profiles). */
  stopDaemons(): Promise<void>;
  teardown(): Promise<void>;
}

export interface BuildOptions {
  readonly underlayOffloads: boolean;
  readonly progress: (line: string) => void;
}

export async function buildSystem(id: SystemId, name: string, o: BuildOptions): Promise<Sut> {
  if (id === 'veth') return buildVeth(name, o);
  if (id === 'ovs') return ovsSut(name, o);
  const lab: Partial<LabOptions> = { name, nodes: 2, pods: 1, kernelNodes: id === 'kernel' ? 2 : 0, underlayOffloads: o.underlayOffloads };
  if (id === 'flatnet-nooffload') Object.assign(lab, { flatnetOffloads: false, podOffloads: false });
  if (id === 'flatnet-xdp' || id === 'flatnet-xdp-generic') Object.assign(lab, { flatnetIo: 'af_xdp' });
  // The daemons inherit the environment: the attach mode for flatnet-xdp-generic, the tunnel
  // offload's default (`auto`, or off for flatnet-swseg).
  const env: Record<string, string | undefined> = {
    FLATNET_XDP_ATTACH: id === 'flatnet-xdp-generic' ? 'generic' : process.env['FLATNET_XDP_ATTACH'],
    FLATNET_TUNNEL_OFFLOAD: id === 'flatnet-swseg' ? 'off' : process.env['FLATNET_TUNNEL_OFFLOAD'],
  };
  const saved = Object.fromEntries(Object.keys(env).map((k) => [k, process.env[k]]));
  const setEnv = (vars: Record<string, string | undefined>): void => {
    for (const [k, v] of Object.entries(vars)) {
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
    }
  };
  let state: LabState;
  try {
    setEnv(env);
    state = await labUp(lab);
  } finally {
    setEnv(saved);
  }
  try {
    return await labSut(id, state);
  } catch (e) {
    await labDown(name);
    throw e;
  }
}

async function labSut(id: SystemId, state: LabState): Promise<Sut> {
  const [n1, n2] = [state.nodes[0]!, state.nodes[1]!];
  const daemonsOf = (): Daemon[] => state.nodes.filter((n) => n.kind === 'flatnet' && state.daemons[n.name] !== undefined)
    .map((n) => ({ node: n.name, pid: state.daemons[n.name]!.pid, socket: n.socket! }));
  const offloads: Record<string, unknown> = {};
  for (const n of state.nodes.filter((x) => x.kind === 'flatnet')) {
    offloads[n.name] = ((await request(n.socket!, { cmd: 'status' }, 2000)) as { overlay?: unknown }).overlay ?? null;
  }
  const sut: Sut = {
    id,
    name: state.name,
    src: { ns: n1.pods[0]!.ns, ip: n1.pods[0]!.ip },
    dst: { ns: n2.pods[0]!.ns, ip: n2.pods[0]!.ip },
    daemons: daemonsOf(),
    daemonLabel: id === 'kernel' ? null : 'flatnet',
    offloads,
    lab: state,
    async stopDaemons() {
      for (const n of state.nodes.filter((x) => x.kind === 'flatnet')) {
        const d = state.daemons[n.name];
        if (d !== undefined) await stopDaemon(n, d.pid, 'SIGTERM', 10_000);
      }
    },
    async restartDaemons(nodeArgs) {
      await sut.stopDaemons();
      const fl = state.nodes.filter((x) => x.kind === 'flatnet');
      for (const n of fl) {
        state.daemons[n.name] = spawnDaemon(n, { nodeArgs });
        writeState(state);
      }
      await Promise.all(fl.map((n) => waitReady(n, state.daemons[n.name]!.pid)));
      sut.daemons = daemonsOf();
    },
    async teardown() {
      await labDown(state.name);
    },
  };
  return sut;
}

const NO_IPV6 = ['net.ipv6.conf.all.disable_ipv6=1', 'net.ipv6.conf.default.disable_ipv6=1'];

async function buildVeth(name: string, o: BuildOptions): Promise<Sut> {
  const prefix = labPrefix(name);
  const a = `${prefix}a`, b = `${prefix}b`;
  const src: Endpoint = { ns: a, ip: '10.244.1.10' }, dst: Endpoint = { ns: b, ip: '10.244.2.10' };
  const teardown = async (): Promise<void> => { await labDown(name); };
  try {
    for (const ns of [a, b]) {
      run('ip', ['netns', 'add', ns]);
      ipNs(ns, 'link', 'set', 'lo', 'up');
      inNs(ns, 'sysctl', ['-qw', ...NO_IPV6]);
    }
    run('ip', ['link', 'add', 'eth0', 'netns', a, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', b]);
    for (const [ns, ip, mac] of [[a, src.ip, '02:00:0a:f4:01:0a'], [b, dst.ip, '02:00:0a:f4:02:0a']] as const) {
      ipNs(ns, 'link', 'set', 'eth0', 'address', mac, 'mtu', String(POD_MTU));
      ipNs(ns, 'addr', 'add', `${ip}/16`, 'dev', 'eth0');
      ipNs(ns, 'link', 'set', 'eth0', 'up');
    }
  } catch (e) {
    o.progress(`veth ${name}: setup failed (${(e as Error).message.split('\n')[0]}); removing it`);
    await teardown();
    throw e;
  }
  return {
    id: 'veth', name, src, dst, daemons: [], daemonLabel: null, offloads: {}, lab: null,
    async restartDaemons() { /* no daemons */ },
    async stopDaemons() { /* no daemons */ },
    teardown,
  };
}

async function ovsSut(name: string, o: BuildOptions): Promise<Sut> {
  const sys = await buildOvs(name, o);
  return {
    id: 'ovs', name, src: sys.src, dst: sys.dst, daemons: sys.daemons, daemonLabel: 'ovs-vswitchd', offloads: sys.offloads, lab: null,
    async restartDaemons() { throw new Error('the ovs system does not restart its daemons (profiling is for flatnet)'); },
    async stopDaemons() { /* its daemons stop at teardown */ },
    teardown: sys.teardown,
  };
}
