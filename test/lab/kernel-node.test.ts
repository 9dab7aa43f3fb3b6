import { describe, expect, it } from 'vitest';
import { kernelNodeCommands, vxlanLinkArgs } from '../../src/lab/kernel-node.js';
import { planLab, resolveLabOptions, type LabOptions } from '../../src/lab/topology.js';

const plan = (o: Partial<LabOptions> = {}) => planLab(resolveLabOptions({ name: 'k', ...o }));
const text = (cmds: ReturnType<typeof kernelNodeCommands>): string[] => cmds.map(([c, a]) => [c, ...a].join(' '));

describe('kernel node programming', () => {
  it('L3: a flannel.1 device, then flannel\'s route + neighbour + FDB triple per remote node, and cni0 with the gateway', () => {
    const p = plan();
    expect(text(kernelNodeCommands(p, p.nodes[2]!))).toEqual([
      'ip -n fl-k-n3 link add flannel.1 address 0e:00:0a:f4:03:00 type vxlan id 1 dstport 4789 local 198.51.100.3 dev eth0 nolearning udpcsum',
      'ip -n fl-k-n3 link add cni0 type bridge mcast_snooping 0',
      'ip -n fl-k-n3 addr add 10.244.3.0/32 dev flannel.1',
      'ip -n fl-k-n3 link set flannel.1 up',
      'ip -n fl-k-n3 route add 10.244.1.0/24 via 10.244.1.0 dev flannel.1 onlink',
      'ip -n fl-k-n3 neigh add 10.244.1.0 lladdr 0e:00:0a:f4:01:00 dev flannel.1 nud permanent',
      'bridge -n fl-k-n3 fdb add 0e:00:0a:f4:01:00 dev flannel.1 dst 198.51.100.1 self permanent',
      'ip -n fl-k-n3 route add 10.244.2.0/24 via 10.244.2.0 dev flannel.1 onlink',
      'ip -n fl-k-n3 neigh add 10.244.2.0 lladdr 0e:00:0a:f4:02:00 dev flannel.1 nud permanent',
      'bridge -n fl-k-n3 fdb add 0e:00:0a:f4:02:00 dev flannel.1 dst 198.51.100.2 self permanent',
      'ip -n fl-k-n3 addr add 10.244.3.1/24 dev cni0',
      'ip -n fl-k-n3 link set cni0 up',
      'ip -n fl-k-n3 link set vp0 master cni0',
      'ip -n fl-k-n3 link set vp0 mtu 1450 up',
      'ip -n fl-k-n3 link set vp1 master cni0',
      'ip -n fl-k-n3 link set vp1 mtu 1450 up',
    ]);
  });

  it('L2: a learning vxlan0 in the bridge and an all-zeros FDB entry per remote node', () => {
    const p = plan({ mode: 'l2', pods: 1 });
    expect(text(kernelNodeCommands(p, p.nodes[2]!))).toEqual([
      'ip -n fl-k-n3 link add vxlan0 address 0e:00:0a:f4:03:00 type vxlan id 1 dstport 4789 local 198.51.100.3 dev eth0 udpcsum',
      'ip -n fl-k-n3 link add cni0 type bridge mcast_snooping 0',
      'ip -n fl-k-n3 link set vxlan0 master cni0',
      'ip -n fl-k-n3 link set vxlan0 up',
      'bridge -n fl-k-n3 fdb append 00:00:00:00:00:00 dev vxlan0 dst 198.51.100.1',
      'bridge -n fl-k-n3 fdb append 00:00:00:00:00:00 dev vxlan0 dst 198.51.100.2',
      'ip -n fl-k-n3 link set cni0 up',
      'ip -n fl-k-n3 link set vp0 master cni0',
      'ip -n fl-k-n3 link set vp0 mtu 1450 up',
    ]);
  });

  it("port 8472 is the kernel's default: no dstport; noudpcsum when configured off; kernel peers too", () => {
    const p = plan({ port: 8472, nodes: 4, kernelNodes: 2, kernelUdpCsum: [false] });
    expect(vxlanLinkArgs(p, p.nodes[3]!).join(' ')).toBe('link add flannel.1 address 0e:00:0a:f4:04:00 type vxlan id 1 local 198.51.100.4 dev eth0 nolearning noudpcsum');
    // n4 programs n3 (the other kernel node) like any remote node.
    expect(text(kernelNodeCommands(p, p.nodes[3]!))).toContain('bridge -n fl-k-n4 fdb add 0e:00:0a:f4:03:00 dev flannel.1 dst 198.51.100.3 self permanent');
  });
});
