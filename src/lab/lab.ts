/**
 * `flatnet lab up` and `flatnet lab down`: build the topology of topology.ts in network
 * namespaces and remove it again.
 *
 * Safety: everything happens inside namespaces named `fl-NAME-*` that `up` creates; nothing is
 * added to the namespace the command runs in (no address, route or firewall rule), and the only
 * addresses used are 198.51.100.0/24 (underlay) and 10.244.0.0/16 (pods), inside those
 * namespaces. `down` removes every `fl-NAME-*` namespace (killing what runs in it), the daemons
 * recorded in the state, and the state directory; it needs no state to do so, so it also
 * cleans up after an `up` that crashed half-way, and it is idempotent.
 */

import { existsSync, mkdirSync, rmSync } from 'node:fs';
import { FlatnetError } from '../errors.js';
import { addNs, inNs, ipNs, isRunning, listNamespaces, nsPids, run, sleep } from './exec.js';
import { isOurDaemon, spawnDaemon, stopDaemon, waitReady, writeNodeConfig } from './flatnet-node.js';
import { programKernelNode } from './kernel-node.js';
import { addPodViaCni, podsViaCni } from './cni-pods.js';
import { applyLabManifest, startLabAgents, startLabEtcd } from './etcd-lab.js';
import {
  flatnetNodes, kernelNodes, labDir, labPrefix, planLab, readState, resolveLabOptions, UNDERLAY_MTU, writeState,
  type LabNode, type LabOptions, type LabPod, type LabState,
} from './topology.js';

export type Progress = (line: string) => void;

/** The lab's namespaces that exist right now. */
export function labNamespaces(name: string): string[] {
  const prefix = labPrefix(name);
  return listNamespaces().filter((n) => n.startsWith(prefix));
}

/**
 * labUp builds a lab and starts its daemons; returns its state (also saved in DIR/lab.json).
 * Refuses (ERR_LAB_EXISTS) when a lab of that name exists, even half-built. On failure it
 * removes what it made and rethrows.
 */
export async function labUp(input: Partial<LabOptions> = {}, progress: Progress = () => {}): Promise<LabState> {
  const options = resolveLabOptions(input);
  const name = options.name;
  const leftovers = labNamespaces(name);
  if (existsSync(labDir(name)) || leftovers.length > 0) {
    throw new FlatnetError('ERR_LAB_EXISTS', `lab ${name} already exists (${existsSync(labDir(name)) ? labDir(name) : `namespaces ${leftovers.join(', ')}`}); run \`flatnet lab down --name ${name}\` first`);
  }
  const plan = planLab(options);
  const state: LabState = { version: 1, ...plan, phase: 'creating', daemons: {} };
  mkdirSync(plan.dir, { recursive: true });
  writeState(state);
  try {
    await build(state, progress);
  } catch (e) {
    progress(`lab ${name}: up failed (${(e as Error).message.split('\n')[0]}); removing what was made`);
    await labDown(name);
    throw e;
  }
  state.phase = 'up';
  writeState(state);
  return state;
}

async function build(state: LabState, progress: Progress): Promise<void> {
  const o = state.options;
  const ul = state.underlayNs;
  const fl = flatnetNodes(state), kn = kernelNodes(state);
  const pods = state.nodes.reduce((k, n) => k + n.pods.length, 0);
  progress(`lab ${state.name}: ${o.mode.toUpperCase()} mode, ${state.nodes.length} nodes (${fl.length} flatnet, ${kn.length} kernel vxlan), ${o.manifest === null ? `${o.pods} pods each` : `${pods} pods from ${o.manifest.source}`}, VNI ${o.vni}, UDP port ${o.port}`);

  // The underlay: one bridge in its own namespace.
  addNs(ul);
  ipNs(ul, 'link', 'add', state.underlayBridge, 'type', 'bridge', 'mcast_snooping', '0');
  ipNs(ul, 'link', 'set', state.underlayBridge, 'up');
  if (o.etcd > 0) await startLabEtcd(state, progress);
  applyLabManifest(state, progress);

  for (const node of state.nodes) {
    addNode(state, node);
    if (!podsViaCni(o, node.kind)) for (const pod of node.pods) addPod(state, node, pod);
  }
  for (const node of kn) programKernelNode(state, node);
  progress(`  namespaces: ${state.prefix}* (${1 + state.nodes.length + pods}), underlay bridge ${state.underlayBridge} in ${ul}`);

  for (const node of fl) writeNodeConfig(state, node);
  for (const node of fl) {
    state.daemons[node.name] = spawnDaemon(node);
    writeState(state);
  }
  await Promise.all(fl.map((node) => waitReady(node, state.daemons[node.name]!.pid)));
  progress(`  flatnet daemons up: ${fl.map((n) => `${n.name} (pid ${state.daemons[n.name]!.pid})`).join(', ') || 'none'}`);
  const viaCni = fl.filter((n) => podsViaCni(o, n.kind));
  for (const node of viaCni) {
    const made = node.pods.map((pod) => {
      addNs(pod.ns);
      const { ip, mac } = addPodViaCni(state, node, pod);
      return pod.ip === '' ? { ...pod, ip, mac } : pod;
    });
    // A manifest's pods get their addresses from the node's IPAM: the state records them.
    (node as { pods: readonly LabPod[] }).pods = made;
    writeState(state);
  }
  if (viaCni.length > 0) progress(`  pods of ${viaCni.map((n) => n.name).join(', ')} made by the CNI plugin (flatnet-cni ADD)`);
  if (o.etcd > 0) await startLabAgents(state, progress);
}

/** A node namespace with eth0 on the underlay bridge. */
function addNode(state: LabState, node: LabNode): void {
  addNs(node.ns, node.kind === 'kernel' ? ['net.ipv4.ip_forward=1'] : []);
  run('ip', ['link', 'add', node.underlayPort, 'netns', state.underlayNs, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', node.ns]);
  ipNs(state.underlayNs, 'link', 'set', node.underlayPort, 'master', state.underlayBridge, 'up');
  ipNs(node.ns, 'link', 'set', 'eth0', 'address', node.underlayMac, 'mtu', String(UNDERLAY_MTU));
  ipNs(node.ns, 'addr', 'add', `${node.underlayIp}/24`, 'dev', 'eth0');
  // A veth leaves a locally sent UDP checksum "partial" (to be filled in by a NIC that does not
  // exist); computing it in software puts on the underlay the bytes a real NIC would send, so
  // the capture check sees final checksums. That also turns off TSO and UDP segmentation on
  // eth0 (they need checksum offload), so every UDP-GSO train is cut into datagrams before the
  // wire: `--underlay-offloads on` keeps the veth defaults, for throughput (captures then show
  // partial checksums).
  if (!state.options.underlayOffloads) inNs(node.ns, 'ethtool', ['-K', 'eth0', 'tx', 'off']);
  ipNs(node.ns, 'link', 'set', 'eth0', 'up');
}

/** A pod namespace: eth0 (MTU = underlay - 50, its MAC and address), the veth's host end in the node. */
function addPod(state: LabState, node: LabNode, pod: LabPod): void {
  addNs(pod.ns);
  run('ip', ['link', 'add', pod.hostIf, 'netns', node.ns, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', pod.ns]);
  ipNs(pod.ns, 'link', 'set', 'eth0', 'address', pod.mac, 'mtu', String(state.podMtu));
  ipNs(pod.ns, 'addr', 'add', `${pod.ip}/${pod.prefixLen}`, 'dev', 'eth0');
  if (!state.options.podOffloads) {
    // --pod-offloads off: pods send finished, MTU-sized frames (the per-packet path).
    inNs(pod.ns, 'ethtool', ['-K', 'eth0', 'tx', 'off', 'tso', 'off', 'gso', 'off']);
  }
  ipNs(pod.ns, 'link', 'set', 'eth0', 'up');
  if (pod.gateway !== null) ipNs(pod.ns, 'route', 'add', 'default', 'via', pod.gateway);
  ipNs(node.ns, 'link', 'set', pod.hostIf, 'mtu', String(state.podMtu));
}

export interface DownSummary {
  readonly daemons: number;
  readonly namespaces: number;
  readonly stateRemoved: boolean;
}

/**
 * labDown removes lab `name`: its daemons (SIGTERM, SIGKILL after 5 s), every `fl-NAME-*`
 * namespace and whatever still runs in it, and its state directory. Works without (or with a
 * broken) state; removing nothing is not an error.
 */
export async function labDown(name: string, progress: Progress = () => {}): Promise<DownSummary> {
  resolveLabOptions({ name }); // validates the name: it becomes part of a path and of namespace names
  let state: LabState | null = null;
  try {
    state = readState(name);
  } catch (e) {
    progress(`lab ${name}: ${(e as Error).message}; removing by name`);
  }
  let daemons = 0;
  if (state !== null) {
    const stops = Object.entries(state.daemons).map(async ([nodeName, d]) => {
      const node = state.nodes.find((n) => n.name === nodeName);
      if (node === undefined || !isOurDaemon(node, d.pid)) return;
      await stopDaemon(node, d.pid, 'SIGTERM', 5000);
      daemons++;
    });
    await Promise.all(stops);
  }
  const namespaces = labNamespaces(name);
  // Anything still running in the lab's namespaces (daemons of a lost state, iperf3, captures).
  for (const ns of namespaces) {
    for (const pid of nsPids(ns)) {
      try { process.kill(pid, 'SIGKILL'); } catch { /* gone */ }
    }
  }
  for (const ns of namespaces) {
    for (let i = 0; i < 50 && nsPids(ns).some(isRunning); i++) await sleep(20);
    run('ip', ['netns', 'del', ns]);
  }
  const dir = labDir(name);
  const stateRemoved = existsSync(dir);
  rmSync(dir, { recursive: true, force: true });
  if (daemons + namespaces.length > 0 || stateRemoved) {
    progress(`lab ${name}: stopped ${daemons} daemon(s), removed ${namespaces.length} namespace(s)${stateRemoved ? ` and ${dir}` : ''}`);
  } else {
    progress(`lab ${name}: nothing to remove`);
  }
  return { daemons, namespaces: namespaces.length, stateRemoved };
}
