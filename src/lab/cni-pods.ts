/**
 * The lab's flatnet pods made through the CNI plugin, as a kubelet would make them: the lab
 * creates the pod's namespace (the runtime's job), then runs `flatnet-cni` ADD inside the node's
 * namespace with the node daemon's socket in the network configuration. The pod keeps the lab's
 * planned address (CNI_ARGS IP=, which flatnet's IPAM honours like host-local) and so its
 * planned MAC (the plugin spells the IP in the MAC, as the lab's plan does); its host end is
 * the plugin's hash-named veth, which the plan records (cniHostIf) so that the state is true.
 *
 * A manifest's pod (manifest.ts) is made the same way under its own Kubernetes namespace and name,
 * without IP=: the node's IPAM picks its address, which addPodViaCni returns from the plugin's
 * result so that the lab's state records it. Its container ID is its network namespace's name.
 *
 * Only flatnet nodes in L3 mode: kernel nodes wire their pods to their cni0 bridge themselves,
 * and an L2 lab puts every pod in one /16 segment without a gateway, which is not what the
 * plugin configures (a /24 of the node with a default route). `podsVia: 'config'` keeps the
 * hand-wired veths listed in the node's config file, for tests that edit that list.
 */

import { labPodNamespace } from './etcd-lab.js';
import { spawnSync } from 'node:child_process';
import { FlatnetError } from '../errors.js';
import { pluginMain } from '../cni/install.js';
import { hostIfName } from '../cni/veth.js';
import { inNs } from './exec.js';
import type { LabNode, LabOptions, LabPod, LabState } from './topology.js';

/** The CNI container ID of a lab pod: the lab's namespace prefix and the pod's name. */
export const labContainerId = (prefix: string, podName: string): string => `${prefix}${podName}`;

/** cniHostIf: the host end the plugin makes for a lab pod (eth0 in the pod). */
export const cniHostIf = (prefix: string, podName: string): string => hostIfName(labContainerId(prefix, podName), 'eth0');

/** Whether the pods of a node of this kind come from the CNI plugin. */
export const podsViaCni = (o: Pick<LabOptions, 'podsVia' | 'mode'>, kind: LabNode['kind']): boolean => o.podsVia === 'cni' && o.mode === 'l3' && kind === 'flatnet';

/**
 * addPodViaCni runs the plugin's ADD for `pod` (its namespace must exist) against the daemon of
 * `node` and returns the address and MAC the result gives eth0 (the planned ones for planned
 * pods, IPAM's for a manifest's); throws ERR_LAB_CNI with the plugin's CNI error when it fails.
 */
export function addPodViaCni(state: LabState, node: LabNode, pod: LabPod): { ip: string; mac: string } {
  const conf = JSON.stringify({ cniVersion: '1.0.0', name: `flatnet-lab-${state.name}`, type: 'flatnet', socket: node.socket });
  const k8s = pod.k8s ?? { namespace: labPodNamespace(state.name), name: pod.name };
  const env = [
    'CNI_COMMAND=ADD', `CNI_CONTAINERID=${pod.k8s === undefined ? labContainerId(state.prefix, pod.name) : pod.ns}`, `CNI_NETNS=/run/netns/${pod.ns}`, 'CNI_IFNAME=eth0',
    `CNI_ARGS=IgnoreUnknown=1;K8S_POD_NAMESPACE=${k8s.namespace};K8S_POD_NAME=${k8s.name}${pod.ip === '' ? '' : `;IP=${pod.ip}`}`, 'CNI_PATH=/usr/lib/cni',
  ];
  const r = spawnSync('nsenter', [`--net=/run/netns/${node.ns}`, 'env', ...env, process.execPath, pluginMain()], { input: conf, encoding: 'utf8', timeout: 60_000 });
  if (r.status !== 0) {
    throw new FlatnetError('ERR_LAB_CNI', `flatnet-cni ADD of ${pod.name} on ${node.name} failed: ${(r.stdout || r.stderr || String(r.error)).trim()}`);
  }
  if (!state.options.podOffloads) inNs(pod.ns, 'ethtool', ['-K', 'eth0', 'tx', 'off', 'tso', 'off', 'gso', 'off']);
  return resultAddress(r.stdout, pod.name);
}

/** The pod's address and MAC in an ADD result (CNI 1.0: ips[0].address with its interface's mac). */
function resultAddress(stdout: string, podName: string): { ip: string; mac: string } {
  try {
    const res = JSON.parse(stdout) as { ips?: { address?: string; interface?: number }[]; interfaces?: { mac?: string; sandbox?: string }[] };
    const ip = res.ips?.[0];
    const mac = ip?.interface === undefined ? undefined : res.interfaces?.[ip.interface]?.mac;
    if (ip?.address !== undefined && mac !== undefined) return { ip: ip.address.split('/')[0]!, mac };
  } catch { /* named below */ }
  throw new FlatnetError('ERR_LAB_CNI', `flatnet-cni ADD of ${podName}: no address in its result ${JSON.stringify(stdout.slice(0, 200))}`);
}
