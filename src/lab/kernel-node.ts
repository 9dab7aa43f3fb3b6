/**
 * A lab node that runs the Linux kernel's `vxlan` driver instead of flatnet, programmed the way
 * flannel's vxlan backend programs it, so that flatnet is tested against the real thing.
 *
 * L3 (flannel):
 *   ip link add flannel.VNI address VTEP_MAC type vxlan id VNI [dstport PORT] local UNDERLAY_IP
 *       dev eth0 nolearning udpcsum|noudpcsum
 *   ip addr add 10.244.K.0/32 dev flannel.VNI
 *   per remote node M (flatnet or kernel), flannel's triple:
 *     ip route add 10.244.M.0/24 via 10.244.M.0 dev flannel.VNI onlink
 *     ip neigh add 10.244.M.0 lladdr VTEP_MAC_M dev flannel.VNI nud permanent
 *     bridge fdb add VTEP_MAC_M dev flannel.VNI dst 198.51.100.M self permanent
 *   the pods on a bridge cni0 with the gateway 10.244.K.1/24, and ip_forward on.
 * L2: a learning `vxlan0` enslaved to the bridge cni0 with the pods (no addresses), and one
 *   all-zeros FDB entry per remote node (head-end replication of broadcasts and unknown unicast):
 *     bridge fdb append 00:00:00:00:00:00 dev vxlan0 dst 198.51.100.M
 *
 * Port 8472 is Linux's default: the device is then created without `dstport`, as flannel does
 * when no port is configured.
 */

import { run } from './exec.js';
import type { LabNode, LabPlan } from './topology.js';

export const LINUX_DEFAULT_VXLAN_PORT = 8472;

/** One command: the program and its arguments (all `ip -n NS ...` or `bridge -n NS ...`). */
export type Command = readonly [cmd: string, args: readonly string[]];

/** The `ip link add` arguments of a kernel node's vxlan device. */
export function vxlanLinkArgs(plan: LabPlan, node: LabNode): string[] {
  const o = plan.options;
  const args = ['link', 'add', node.vxlanDev!, 'address', node.vtepMac, 'type', 'vxlan', 'id', String(o.vni)];
  if (o.port !== LINUX_DEFAULT_VXLAN_PORT) args.push('dstport', String(o.port));
  args.push('local', node.underlayIp, 'dev', 'eth0');
  // L3 is flannel's static programming (no learning); L2 learns remote MACs like a bridge.
  if (o.mode === 'l3') args.push('nolearning');
  args.push(node.udpCsum ? 'udpcsum' : 'noudpcsum');
  return args;
}

/** kernelNodeCommands lists, in order, every command that programs `node` (pods already plugged in). */
export function kernelNodeCommands(plan: LabPlan, node: LabNode): Command[] {
  const ns = node.ns;
  const dev = node.vxlanDev!;
  const br = node.bridge!;
  const ip = (...a: string[]): Command => ['ip', ['-n', ns, ...a]];
  const bridge = (...a: string[]): Command => ['bridge', ['-n', ns, ...a]];
  // With etcd, `flatnet kernel-agent` programs the remote nodes from their leases (etcd-lab.ts).
  const remotes = plan.options.etcd > 0 ? [] : plan.nodes.filter((n) => n !== node);
  const cmds: Command[] = [ip(...vxlanLinkArgs(plan, node))];
  // No multicast snooping: a snooping bridge joins 224.0.0.106 and sends IGMP reports through
  // its ports (into the overlay) for a second or two after it comes up, which is noise in a lab
  // whose counters the tests read exactly.
  cmds.push(ip('link', 'add', br, 'type', 'bridge', 'mcast_snooping', '0'));
  if (plan.options.mode === 'l3') {
    cmds.push(ip('addr', 'add', `${node.vtepIp}/32`, 'dev', dev));
    cmds.push(ip('link', 'set', dev, 'up'));
    for (const m of remotes) {
      cmds.push(ip('route', 'add', m.podCidr, 'via', m.vtepIp, 'dev', dev, 'onlink'));
      cmds.push(ip('neigh', 'add', m.vtepIp, 'lladdr', m.vtepMac, 'dev', dev, 'nud', 'permanent'));
      cmds.push(bridge('fdb', 'add', m.vtepMac, 'dev', dev, 'dst', m.underlayIp, 'self', 'permanent'));
    }
    cmds.push(ip('addr', 'add', `${node.gateway}/24`, 'dev', br));
  } else {
    cmds.push(ip('link', 'set', dev, 'master', br));
    cmds.push(ip('link', 'set', dev, 'up'));
    for (const m of remotes) cmds.push(bridge('fdb', 'append', '00:00:00:00:00:00', 'dev', dev, 'dst', m.underlayIp));
  }
  cmds.push(ip('link', 'set', br, 'up'));
  for (const p of node.pods) {
    cmds.push(ip('link', 'set', p.hostIf, 'master', br));
    cmds.push(ip('link', 'set', p.hostIf, 'mtu', String(plan.podMtu), 'up'));
  }
  return cmds;
}

/** programKernelNode runs kernelNodeCommands (the namespace, eth0 and pods exist already). */
export function programKernelNode(plan: LabPlan, node: LabNode): void {
  for (const [cmd, args] of kernelNodeCommands(plan, node)) run(cmd, args);
}
