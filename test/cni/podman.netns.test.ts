// podman 4.3 (CNI backend, runc, busybox rootfs) drives flatnet-cni on the nodes of a lab: two
// flatnet nodes and one kernel-VXLAN node, one network per flatnet node (its daemon's socket),
// the plugin installed with --fast for n1's daemon (n1's containers are made by that daemon,
// n2's by the launcher's fallback, the Node plugin).
//   - containers on n1 and n2 ping each other across the overlay and reach the kernel node's pod;
//     the daemon records podman's container ID and name (K8S_POD_NAME)
//   - the daemon restarts; the container keeps its address and its traffic
//   - 20 containers started in parallel get 20 distinct addresses; `podman rm` releases them all
//   - `run --rm` releases its address when the container exits
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { hostIfName } from '../../src/cni/veth.js';
import { spawnDaemon, stopDaemon, waitReady } from '../../src/lab/flatnet-node.js';
import { labDown, labNamespaces, labUp } from '../../src/lab/lab.js';
import { writeState, type LabNode, type LabState } from '../../src/lab/topology.js';
import { ipamOf, links, podPorts } from '../support/cni.js';
import { ensureDist, labSkipReason, uniqueLabName } from '../support/lab.js';
import { Podman, podmanSkipReason } from '../support/podman.js';

const skip = labSkipReason() ?? podmanSkipReason();

describe.skipIf(skip !== null)(`podman on flatnet nodes${skip === null ? '' : ` (skipped: ${skip})`}`, () => {
  const name = uniqueLabName('c');
  let lab: LabState, n1: LabNode, n2: LabNode, n3: LabNode;
  let pm: Podman;

  beforeAll(async () => {
    ensureDist();
    // Hand-wired lab pods: every allocation these tests see is a container's.
    lab = await labUp({ name, nodes: 3, kernelNodes: 1, pods: 1, podsVia: 'config' });
    [n1, n2, n3] = lab.nodes as [LabNode, LabNode, LabNode];
    pm = await Podman.start([{ name: 'cnet1', socket: n1.socket! }, { name: 'cnet2', socket: n2.socket! }]);
  });
  afterAll(async () => {
    await pm?.destroy();
    await labDown(name);
    expect(labNamespaces(name)).toEqual([]);
  });

  const exec = (node: LabNode, ctr: string, ...cmd: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> => pm.run(node.ns, ['exec', ctr, ...cmd]);
  const ipOf = async (node: LabNode, id: string): Promise<string> => {
    const a = (await ipamOf(node.socket!)).allocations.find((x) => x.containerId === id);
    if (a === undefined) throw new Error(`no allocation of ${id} on ${node.name}`);
    return a.ip;
  };
  const ping = async (node: LabNode, ctr: string, ip: string): Promise<boolean> => (await exec(node, ctr, 'ping', '-c', '2', '-W', '3', ip)).code === 0;

  let id1 = '', id2 = '', ip1 = '';

  it('containers on two flatnet nodes ping each other across the overlay and reach the kernel node\'s pod', async () => {
    [id1, id2] = await Promise.all([pm.startContainer(n1.ns, 'ca', 'cnet1'), pm.startContainer(n2.ns, 'cb', 'cnet2')]);
    expect(id1).toMatch(/^[0-9a-f]{64}$/);
    ip1 = await ipOf(n1, id1);
    const ip2 = await ipOf(n2, id2);
    expect([ip1.startsWith('10.244.1.'), ip2.startsWith('10.244.2.')]).toEqual([true, true]);
    expect((await ipamOf(n1.socket!)).allocations).toMatchObject([{ ip: ip1, containerId: id1, ifname: 'eth0', pod: 'ca', k8sName: 'ca', attached: true }]);
    expect(links(n1.ns)).toContain(hostIfName(id1, 'eth0'));
    const inside = await exec(n1, 'ca', 'ip', '-4', '-o', 'addr', 'show', 'eth0');
    expect(inside.stdout).toContain(`inet ${ip1}/24`);
    expect(await ping(n1, 'ca', ip2)).toBe(true);
    expect(await ping(n2, 'cb', ip1)).toBe(true);
    expect(await ping(n1, 'ca', n3.pods[0]!.ip)).toBe(true);
    expect(await ping(n2, 'cb', n3.pods[0]!.ip)).toBe(true);
  });

  it('the daemon restarts and the container keeps its address and its traffic', async () => {
    await stopDaemon(n1, lab.daemons[n1.name]!.pid);
    const d = spawnDaemon(n1);
    lab.daemons[n1.name] = d;
    writeState(lab);
    await waitReady(n1, d.pid);
    expect((await ipamOf(n1.socket!)).allocations).toMatchObject([{ ip: ip1, containerId: id1, pod: 'ca', attached: true }]);
    expect(await podPorts(n1.socket!)).toEqual(['n1p0', 'ca']);
    expect(await ping(n2, 'cb', ip1)).toBe(true);
    expect(await ping(n1, 'ca', n3.pods[0]!.ip)).toBe(true);
  });

  it('gives 20 containers started in parallel 20 distinct addresses, and podman rm releases them', async () => {
    const names = Array.from({ length: 20 }, (_v, i) => `cp${i}`);
    const ids = await Promise.all(names.map((n) => pm.startContainer(n1.ns, n, 'cnet1')));
    const ips = await Promise.all(ids.map((id) => ipOf(n1, id)));
    expect(new Set(ips).size).toBe(20);
    expect(ips).not.toContain(ip1);
    expect((await ipamOf(n1.socket!)).allocations.filter((a) => a.attached)).toHaveLength(21);
    const rm = await pm.run(n1.ns, ['rm', '-f', '-t', '0', ...names]);
    expect(rm.code, rm.stderr).toBe(0);
    expect((await ipamOf(n1.socket!)).allocations.map((a) => a.containerId)).toEqual([id1]);
    expect(links(n1.ns).filter((l) => /^fl[0-9a-f]{11}$/.test(l))).toEqual([hostIfName(id1, 'eth0')]);
    expect(await podPorts(n1.socket!)).toEqual(['n1p0', 'ca']);
  });

  it('run --rm and podman rm release the address when the container goes', async () => {
    const r = await pm.run(n2.ns, ['run', '--rm', '--name', 'cr', '--network', 'cnet2', '--rootfs', pm.rootfs, 'sh', '-c', `ip -4 -o addr show eth0 && ping -c 1 -W 3 ${ip1}`]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/inet 10\.244\.2\.\d+\/24/);
    expect((await ipamOf(n2.socket!)).allocations.map((a) => a.containerId)).toEqual([id2]);
    expect((await pm.run(n2.ns, ['rm', '-f', '-t', '0', 'cb'])).code).toBe(0);
    expect((await ipamOf(n2.socket!)).allocations).toEqual([]);
    expect(links(n2.ns).filter((l) => /^fl[0-9a-f]{11}$/.test(l))).toEqual([]);
    expect(await podPorts(n2.socket!)).toEqual(['n2p0']);
  });
});
