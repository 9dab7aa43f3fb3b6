import { describe, expect, it } from 'vitest';
import { podMacOf } from '../../src/cni/veth.js';
import { FlatnetError } from '../../src/errors.js';
import { cniHostIf } from '../../src/lab/cni-pods.js';
import { allPods, kindLabel, labDir, planLab, podByName, resolveLabOptions, type LabOptions } from '../../src/lab/topology.js';

const plan = (o: Partial<LabOptions> = {}) => planLab(resolveLabOptions(o));

describe('lab options', () => {
  it('defaults to 3 nodes of which 1 kernel, 2 pods, L3, port 4789, VNI 1, kernel udpcsum on, pod offloads off', () => {
    expect(resolveLabOptions()).toEqual({
      name: 'lab', nodes: 3, kernelNodes: 1, pods: 2, mode: 'l3', port: 4789, vni: 1, kernelUdpCsum: [true],
      podOffloads: true, flatnetOffloads: true, underlayOffloads: false, flatnetIo: null, fdbLimit: null, vtepMacSource: 'config', podsVia: 'cni',
      etcd: 0, leaseTtlSeconds: 60,
    });
  });

  it.each([
    [{ name: 'Lab' }, 'lab name'],
    [{ name: 'a-b' }, 'lab name'],
    [{ name: 'x'.repeat(13) }, 'lab name'],
    [{ podsVia: 'kubelet' as 'cni' }, '--pods-via'],
    [{ nodes: 0 }, '--nodes'],
    [{ nodes: 51 }, '--nodes'],
    [{ nodes: 2.5 }, '--nodes'],
    [{ nodes: 3, kernelNodes: 4 }, '--kernel-nodes 4: 0 to 3'],
    [{ kernelNodes: -1 }, '--kernel-nodes'],
    [{ pods: 0 }, '--pods'],
    [{ pods: 21 }, '--pods'],
    [{ mode: 'l4' as 'l3' }, '--mode'],
    [{ port: 0 }, '--port'],
    [{ port: 65536 }, '--port'],
    [{ vni: 1 << 24 }, '--vni'],
    [{ kernelUdpCsum: [] }, '--kernel-udpcsum'],
    [{ fdbLimit: 0 }, 'fdbLimit'],
  ])('rejects %o', (o, msg) => {
    let err: unknown;
    try { resolveLabOptions(o); } catch (e) { err = e; }
    expect(err).toBeInstanceOf(FlatnetError);
    expect((err as FlatnetError).code).toBe('ERR_LAB_OPTIONS');
    expect((err as Error).message).toContain(msg);
  });
});

describe('planLab', () => {
  it('addresses node N and its pods as the README says; kernel nodes come last', () => {
    const p = plan({ name: 't1' });
    expect(p.prefix).toBe('fl-t1-');
    expect(p.dir).toBe('/run/flatnet/lab-t1');
    expect(labDir('t1')).toBe(p.dir);
    expect(p.underlayNs).toBe('fl-t1-ul');
    expect(p.podMtu).toBe(1450);
    expect(p.nodes.map((n) => [n.name, n.kind, n.ns, n.underlayIp, n.underlayMac, n.underlayPort, n.podCidr, n.vtepIp, n.gateway, n.vtepMac])).toEqual([
      ['n1', 'flatnet', 'fl-t1-n1', '198.51.100.1', '02:00:c6:33:64:01', 'u1', '10.244.1.0/24', '10.244.1.0', '10.244.1.1', '0e:00:0a:f4:01:00'],
      ['n2', 'flatnet', 'fl-t1-n2', '198.51.100.2', '02:00:c6:33:64:02', 'u2', '10.244.2.0/24', '10.244.2.0', '10.244.2.1', '0e:00:0a:f4:02:00'],
      ['n3', 'kernel', 'fl-t1-n3', '198.51.100.3', '02:00:c6:33:64:03', 'u3', '10.244.3.0/24', '10.244.3.0', '10.244.3.1', '0e:00:0a:f4:03:00'],
    ]);
    expect(p.nodes[2]!.pods.map((x) => [x.name, x.ns, x.hostIf, x.ip, x.prefixLen, x.mac, x.gateway])).toEqual([
      ['n3p0', 'fl-t1-n3p0', 'vp0', '10.244.3.10', 24, '02:00:0a:f4:03:0a', '10.244.3.1'],
      ['n3p1', 'fl-t1-n3p1', 'vp1', '10.244.3.11', 24, '02:00:0a:f4:03:0b', '10.244.3.1'],
    ]);
    // flatnet nodes' pods come from the CNI plugin: its hash-named host end, and the MAC it
    // derives from the IP is the one planned.
    expect(p.nodes[0]!.pods.map((x) => [x.name, x.hostIf, x.ip, x.mac])).toEqual([
      ['n1p0', cniHostIf('fl-t1-', 'n1p0'), '10.244.1.10', podMacOf('10.244.1.10')],
      ['n1p1', cniHostIf('fl-t1-', 'n1p1'), '10.244.1.11', podMacOf('10.244.1.11')],
    ]);
    expect(plan({ name: 't1', podsVia: 'config' }).nodes[0]!.pods.map((x) => x.hostIf)).toEqual(['vp0', 'vp1']);
    expect(p.nodes.map((n) => [n.vxlanDev, n.bridge, n.config, n.socket, n.log])).toEqual([
      [null, null, '/run/flatnet/lab-t1/n1.json', '/run/flatnet/lab-t1/n1.sock', '/run/flatnet/lab-t1/n1.log'],
      [null, null, '/run/flatnet/lab-t1/n2.json', '/run/flatnet/lab-t1/n2.sock', '/run/flatnet/lab-t1/n2.log'],
      ['flannel.1', 'cni0', null, null, '/run/flatnet/lab-t1/n3.log'],
    ]);
  });

  it('L2: one /16 segment without gateways, kernel nodes bridge a vxlan0', () => {
    const p = plan({ mode: 'l2', nodes: 2, kernelNodes: 1, pods: 1 });
    expect(allPods(p).map((x) => [x.ip, x.prefixLen, x.gateway])).toEqual([['10.244.1.10', 16, null], ['10.244.2.10', 16, null]]);
    expect(p.nodes[1]!.vxlanDev).toBe('vxlan0');
  });

  it('the kernel device is flannel.VNI in L3', () => {
    expect(plan({ vni: 42 }).nodes[2]!.vxlanDev).toBe('flannel.42');
  });

  it('cycles kernel udpcsum settings over the kernel nodes; flatnet nodes send zero (the config default)', () => {
    const p = plan({ nodes: 5, kernelNodes: 3, kernelUdpCsum: [true, false] });
    expect(p.nodes.map((n) => [n.kind, n.udpCsum])).toEqual([['flatnet', false], ['flatnet', false], ['kernel', true], ['kernel', false], ['kernel', true]]);
    expect(p.nodes.map(kindLabel)).toEqual(['flatnet', 'flatnet', 'kernel(udpcsum)', 'kernel(noudpcsum)', 'kernel(udpcsum)']);
  });

  it('keeps every namespace under the prefix and every interface name within 15 characters', () => {
    const p = plan({ name: 'abcdefghijkl', nodes: 50, kernelNodes: 10, pods: 20 });
    const names = [p.underlayNs, ...p.nodes.map((n) => n.ns), ...allPods(p).map((x) => x.ns)];
    expect(new Set(names).size).toBe(names.length);
    for (const n of names) expect(n.startsWith('fl-abcdefghijkl-')).toBe(true);
    for (const n of p.nodes) {
      for (const ifname of [n.underlayPort, n.vxlanDev ?? '', n.bridge ?? '', ...n.pods.map((x) => x.hostIf)]) expect(ifname.length).toBeLessThanOrEqual(15);
    }
    expect(p.nodes[49]!.underlayIp).toBe('198.51.100.50');
    expect(p.nodes[49]!.vtepMac).toBe('0e:00:0a:f4:32:00');
    expect(podByName(p, 'n50p19').ip).toBe('10.244.50.29');
    expect(podByName(p, 'n50p19').mac).toBe('02:00:0a:f4:32:1d');
  });

  it('podByName names a missing pod in its error', () => {
    expect(() => podByName(plan(), 'n9p9')).toThrow(/no pod n9p9/);
  });
});
