/**
 * A lab whose nodes learn each other only through etcd (`flatnet lab up --etcd N`, N >= 1):
 *   - N etcd members, each in its own namespace `fl-NAME-e<i>` on the underlay bridge at
 *     198.51.100.(240+i), data in the lab directory (etcd.ts); the network config written with
 *     `flatnet cluster init` (VNI, port and mode of the lab);
 *   - flatnet nodes configured with `control.etcd` and neither podCidr nor peers;
 *   - kernel nodes programmed by `flatnet kernel-agent` (their vxlan device and pods' bridge as
 *     before, but no remote node: the agent adds them from the leases).
 * Each node's subnet.env in the state dir is pre-seeded with the lab's plan (10.244.N.0/24), so
 * the leases give the addresses the pods were made with; a node still takes its subnet only
 * through an etcd transaction, and learns every other node only from the watch.
 * `up` returns once every node has every other node programmed.
 */

import { spawn } from 'node:child_process';
import { closeSync, mkdirSync, openSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { request } from '../daemon/control.js';
import { FlatnetError } from '../errors.js';
import { addNs, inNs, ipNs, run, sleep } from './exec.js';
import { etcdIpOf, startEtcdCluster, type EtcdMemberSpec } from './etcd.js';
import { flatnetMain } from './flatnet-node.js';
import { kernelNodes, type LabNode, type LabPlan, type LabState } from './topology.js';

type Progress = (line: string) => void;

export function labEtcdSpecs(plan: LabPlan): EtcdMemberSpec[] {
  return Array.from({ length: plan.options.etcd }, (_, k) => ({ name: `e${k + 1}`, ns: `${plan.prefix}e${k + 1}`, ip: etcdIpOf(k + 1), dir: join(plan.dir, `etcd${k + 1}`) }));
}

export function labEtcdEndpoints(plan: LabPlan): string[] {
  return labEtcdSpecs(plan).map((m) => `http://${m.ip}:2379`);
}

/** The subnet.env a node finds in its state dir: the lab's plan for it. */
export function writeLabSubnetEnv(plan: LabPlan, node: LabNode): void {
  mkdirSync(plan.stateDir, { recursive: true });
  writeFileSync(join(plan.stateDir, `${node.name}.subnet.env`), `FLATNET_SUBNET=${node.podCidr}\n`);
}

/** startLabEtcd: the members' namespaces on the underlay, the cluster, and the network config. */
export async function startLabEtcd(state: LabState, progress: Progress): Promise<void> {
  const specs = labEtcdSpecs(state);
  specs.forEach((m, k) => {
    addNs(m.ns);
    const port = `ue${k + 1}`;
    run('ip', ['link', 'add', port, 'netns', state.underlayNs, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', m.ns]);
    ipNs(state.underlayNs, 'link', 'set', port, 'master', state.underlayBridge, 'up');
    ipNs(m.ns, 'addr', 'add', `${m.ip}/24`, 'dev', 'eth0');
    ipNs(m.ns, 'link', 'set', 'eth0', 'up');
  });
  const members = await startEtcdCluster(specs, { token: `flatnet-lab-${state.name}` });
  state.etcd = Object.fromEntries(members.map((m) => [m.name, { pid: m.pid, clientUrl: m.clientUrl, ns: m.ns }]));
  const o = state.options;
  inNs(specs[0]!.ns, process.execPath, [flatnetMain(), 'cluster', 'init', '--etcd', labEtcdEndpoints(state).join(','), '--vni', String(o.vni), '--port', String(o.port), '--mode', o.mode]);
  if (o.manifest !== null) {
    progress(`  etcd: ${members.length} member(s) ${members.map((m) => `${m.name} ${m.clientUrl} (pid ${m.pid})`).join(', ')}; network config written`);
    return;
  }
  // The namespace the lab's pods are made in (CNI_ARGS K8S_POD_NAMESPACE): the daemons record
  // each pod's IP under it, so that policies and Services can select the lab's pods. (A
  // manifest's pods are in the manifest's namespaces.)
  mkdirSync(state.stateDir, { recursive: true });
  const nsFile = join(state.stateDir, 'namespace.json');
  writeFileSync(nsFile, JSON.stringify({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: labPodNamespace(state.name) } }));
  inNs(specs[0]!.ns, process.execPath, [flatnetMain(), 'apply', '-f', nsFile, '--etcd', labEtcdEndpoints(state).join(',')]);
  progress(`  etcd: ${members.length} member(s) ${members.map((m) => `${m.name} ${m.clientUrl} (pid ${m.pid})`).join(', ')}; network config and namespace ${labPodNamespace(state.name)} written`);
}

/**
 * applyLabManifest writes a manifest lab's Namespaces and Pods (manifest.ts) to the store with
 * `flatnet apply`, before any pod exists: each Pod is bound to its node (spec.nodeName) and its
 * node adds the address when the CNI plugin attaches it.
 */
export function applyLabManifest(state: LabState, progress: Progress): void {
  const m = state.options.manifest;
  if (m === null) return;
  const f = join(state.stateDir, 'manifest.json');
  mkdirSync(state.stateDir, { recursive: true });
  writeFileSync(f, m.objects.map((o) => JSON.stringify(o)).join('\n---\n'));
  inNs(labEtcdSpecs(state)[0]!.ns, process.execPath, [flatnetMain(), 'apply', '-f', f, '--etcd', labEtcdEndpoints(state).join(',')]);
  const nss = m.objects.filter((o) => o.kind === 'Namespace').length;
  progress(`  manifest ${m.source}: ${nss} namespace(s)${m.impliedNamespaces.length > 0 ? ` (${m.impliedNamespaces.join(', ')} implied by its pods)` : ''} and ${m.pods.length} pod(s) applied to etcd`);
}

/** The Kubernetes namespace of a lab's pods (what its CNI calls pass as K8S_POD_NAMESPACE). */
export const labPodNamespace = (lab: string): string => `lab-${lab}`;

/** startLabAgents: a kernel agent per kernel node, then wait until every node has every peer. */
export async function startLabAgents(state: LabState, progress: Progress): Promise<void> {
  state.agents = {};
  for (const node of kernelNodes(state)) {
    writeLabSubnetEnv(state, node);
    const fd = openSync(node.log, 'a');
    try {
      const args = ['netns', 'exec', node.ns, process.execPath, flatnetMain(), 'kernel-agent', '--etcd', labEtcdEndpoints(state).join(','),
        '--node', node.name, '--underlay', node.underlayIp, '--dev', node.vxlanDev!, '--state-dir', state.stateDir, '--lease-ttl', String(state.options.leaseTtlSeconds)];
      const child = spawn('ip', args, { detached: true, stdio: ['ignore', fd, fd] });
      if (child.pid === undefined) throw new FlatnetError('ERR_LAB_DAEMON', `cannot start the kernel agent of ${node.name}`);
      child.unref();
      state.agents[node.name] = { pid: child.pid, startedAt: new Date().toISOString(), keep: false };
    } finally {
      closeSync(fd);
    }
  }
  const t0 = Date.now();
  await waitConverged(state);
  progress(`  every node learned every other from etcd in ${Date.now() - t0} ms${kernelNodes(state).length > 0 ? ` (kernel agents: ${kernelNodes(state).map((n) => `${n.name} pid ${state.agents![n.name]!.pid}`).join(', ')})` : ''}`);
}

/** How many remote nodes `node` has programmed right now. */
export async function programmedPeers(state: LabPlan, node: LabNode): Promise<number> {
  if (node.kind === 'flatnet') {
    try {
      const c = (await request(node.socket!, { cmd: 'control-status' }, 2000)) as { appliedPeers: number };
      return c.appliedPeers;
    } catch {
      return -1;
    }
  }
  if (state.options.mode === 'l3') {
    return ipNs(node.ns, 'route', 'show', 'dev', node.vxlanDev!).split('\n').filter((l) => l.includes(' via ')).length;
  }
  return run('bridge', ['-n', node.ns, 'fdb', 'show', 'dev', node.vxlanDev!]).split('\n').filter((l) => l.startsWith('00:00:00:00:00:00')).length;
}

/** waitConverged: until every node has all the others programmed (ERR_LAB_CONVERGE after `timeoutMs`). */
export async function waitConverged(state: LabPlan, timeoutMs = 30_000, expect = state.nodes.length - 1): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const counts = await Promise.all(state.nodes.map((n) => programmedPeers(state, n)));
    if (counts.every((c) => c === expect)) return;
    if (Date.now() > deadline) {
      throw new FlatnetError('ERR_LAB_CONVERGE', `the nodes did not learn each other from etcd within ${timeoutMs} ms: ${state.nodes.map((n, i) => `${n.name} ${counts[i]}/${expect}`).join(', ')}`);
    }
    await sleep(100);
  }
}


