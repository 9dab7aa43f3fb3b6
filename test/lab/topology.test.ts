import { describe, expect, it } from 'vitest';
import { podMacOf } from '../../src/cni/veth.js';
import { FlatnetError } from '../../src/errors.js';
import { cniHostIf } from '../../src/lab/cni-pods.js';
import { allPods, kindLabel, labDir, planLab, podByName, resolveLabOptions, type LabOptions } from '../../src/lab/topology.js';
import { hostIfName } from '../../src/cni/veth.js';
import { ConfigError } from '../../src/errors.js';
import { loadManifest, ManifestError, parseManifest } from '../../src/lab/manifest.js';
import { REPO_ROOT } from '../support/lab.js';

const plan = (o: Partial<LabOptions> = {}) => planLab(resolveLabOptions(o));

describe('lab options', () => {
  it('defaults to 3 nodes of which 1 kernel, 2 pods, L3, port 4789, VNI 1, kernel udpcsum on, pod offloads off', () => {
    expect(resolveLabOptions()).toEqual({
      name: 'lab', nodes: 3, kernelNodes: 1, pods: 2, mode: 'l3', port: 4789, vni: 1, kernelUdpCsum: [true],
      podOffloads: true, flatnetOffloads: true, underlayOffloads: false, flatnetIo: null, flatnetBusyPoll: null, fdbLimit: null, vtepMacSource: 'config', podsVia: 'cni',
      etcd: 0, leaseTtlSeconds: 60, manifest: null,
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

const NS = (name: string, labels?: Record<string, string>): Record<string, unknown> => ({ apiVersion: 'v1', kind: 'Namespace', metadata: { name, ...(labels ? { labels } : {}) } });
const POD = (ns: string, name: string, node: string | undefined, extra: Record<string, unknown> = {}): Record<string, unknown> => ({
  apiVersion: 'v1', kind: 'Pod', metadata: { namespace: ns, name, labels: { pod: name } },
  spec: { ...(node === undefined ? {} : { nodeName: node }), containers: [{ name: 'main', ports: [{ name: 'http', containerPort: 80 }] }] }, ...extra,
});
const yamlOf = (docs: unknown[]): string => docs.map((d) => JSON.stringify(d)).join('\n---\n');

describe('lab manifests', () => {
  it('reads the e2e fixture: 3 labelled namespaces, 9 pods with 6 named ports each, on n1..n3', () => {
    const m = loadManifest(`${REPO_ROOT}/fixtures/netpol/e2e.yaml`);
    expect([m.nodes, m.pods.length, m.impliedNamespaces]).toEqual([3, 9, []]);
    expect(m.pods.map((p) => `${p.namespace}/${p.name}@${p.node}`)).toEqual(['x/a@n1', 'x/b@n2', 'x/c@n3', 'y/a@n2', 'y/b@n3', 'y/c@n1', 'z/a@n3', 'z/b@n1', 'z/c@n2']);
    const x = m.objects.find((o) => o.kind === 'Namespace' && o.metadata?.name === 'x')!;
    expect(x.metadata?.labels).toEqual({ ns: 'x' });
    const xa = m.objects.find((o) => o.kind === 'Pod' && o.metadata?.name === 'a' && o.metadata.namespace === 'x') as { spec: { containers: { ports: { name: string }[] }[] } };
    expect(xa.spec.containers.flatMap((c) => c.ports.map((p) => p.name))).toEqual(['serve-80-tcp', 'serve-80-udp', 'serve-80-sctp', 'serve-81-tcp', 'serve-81-udp', 'serve-81-sctp']);
  });

  it('implies a missing Namespace (no labels), drops a given status, and plans the pods under NAMESPACE/NAME with no address yet', () => {
    const m = parseManifest(yamlOf([POD('shop', 'web', 'n2', { status: { podIP: '10.9.9.9' } }), POD('default', 'cli', 'n1')]), 'm.yaml');
    expect([m.nodes, m.impliedNamespaces]).toEqual([2, ['shop']]);
    expect(m.objects.map((o) => `${o.kind} ${o.metadata?.namespace ?? ''}/${o.metadata?.name}`)).toEqual(['Namespace /shop', 'Pod shop/web', 'Pod default/cli']);
    expect(m.objects.some((o) => 'status' in o)).toBe(false);
    const p = planLab(resolveLabOptions({ name: 'm1', nodes: 2, kernelNodes: 0, etcd: 1, manifest: m }));
    expect(p.nodes.map((n) => n.pods.map((x) => [x.name, x.ns, x.hostIf, x.ip, x.gateway, x.k8s]))).toEqual([
      [['default/cli', 'fl-m1-default.cli', hostIfName('fl-m1-default.cli', 'eth0'), '', '10.244.1.1', { namespace: 'default', name: 'cli' }]],
      [['shop/web', 'fl-m1-shop.web', hostIfName('fl-m1-shop.web', 'eth0'), '', '10.244.2.1', { namespace: 'shop', name: 'web' }]],
    ]);
  });

  it.each<[string, string, string, string, number]>([
    ['a YAML syntax error', 'kind: Pod\nmetadata: {name: a', 'ERR_LAB_MANIFEST', '', 1],
    ['an empty file', '# nothing\n', 'ERR_LAB_MANIFEST', '', 0],
    ['no Pod', yamlOf([NS('x')]), 'ERR_LAB_MANIFEST', '', 0],
    ['another kind', yamlOf([NS('x'), { apiVersion: 'v1', kind: 'Service', metadata: { name: 's' }, spec: { ports: [{ port: 80 }] } }]), 'ERR_LAB_MANIFEST', 'kind', 2],
    ['a bad label value', yamlOf([NS('x', { ns: 'x y' }), POD('x', 'a', 'n1')]), 'ERR_LAB_MANIFEST', 'metadata.labels.ns', 1],
    ['a bad label key', yamlOf([POD('x', 'a', 'n1', { metadata: { namespace: 'x', name: 'a', labels: { '-pod': 'a' } } })]), 'ERR_LAB_MANIFEST', 'metadata.labels.-pod', 1],
    ['a bad pod name', yamlOf([POD('x', 'A', 'n1')]), 'ERR_LAB_MANIFEST', 'metadata.name', 1],
    ['a port number out of range', yamlOf([POD('x', 'a', 'n1', { spec: { nodeName: 'n1', containers: [{ name: 'c', ports: [{ containerPort: 70000 }] }] } })]), 'ERR_LAB_MANIFEST', 'spec.containers[0].ports[0].containerPort', 1],
    ['a bad protocol', yamlOf([POD('x', 'a', 'n1', { spec: { nodeName: 'n1', containers: [{ name: 'c', ports: [{ containerPort: 80, protocol: 'ICMP' }] }] } })]), 'ERR_LAB_MANIFEST', 'spec.containers[0].ports[0].protocol', 1],
    ['a port name used twice in a pod', yamlOf([POD('x', 'a', 'n1', { spec: { nodeName: 'n1', containers: [{ name: 'c', ports: [{ name: 'http', containerPort: 80 }] }, { name: 'd', ports: [{ name: 'http', containerPort: 81 }] }] } })]), 'ERR_LAB_MANIFEST_DUPLICATE', 'spec.containers[1].ports[0].name', 1],
    ['a duplicate pod', yamlOf([NS('x'), POD('x', 'a', 'n1'), POD('x', 'a', 'n2')]), 'ERR_LAB_MANIFEST_DUPLICATE', 'metadata.name', 3],
    ['a duplicate namespace', yamlOf([NS('x'), NS('x')]), 'ERR_LAB_MANIFEST_DUPLICATE', 'metadata.name', 2],
    ['a pod without a node', yamlOf([POD('x', 'a', undefined)]), 'ERR_LAB_MANIFEST_NODE', 'spec.nodeName', 1],
    ['a node that is not a lab node', yamlOf([POD('x', 'a', 'worker-1')]), 'ERR_LAB_MANIFEST_NODE', 'spec.nodeName', 1],
    ['node n0', yamlOf([POD('x', 'a', 'n0')]), 'ERR_LAB_MANIFEST_NODE', 'spec.nodeName', 1],
  ])('refuses %s', (_what, text, code, field, doc) => {
    let err: unknown;
    try { parseManifest(text, 'm.yaml'); } catch (e) { err = e; }
    expect(err).toBeInstanceOf(ManifestError);
    expect(err).toBeInstanceOf(ConfigError);
    expect([(err as ManifestError).code, (err as ManifestError).field, (err as ManifestError).document]).toEqual([code, field, doc]);
    expect((err as Error).message).toContain('m.yaml');
  });

  it.each<[string, Partial<LabOptions>, string, string]>([
    ['a pod on a node the lab does not have', { nodes: 2, kernelNodes: 0 }, 'ERR_LAB_MANIFEST_NODE', 'the lab has no node n3'],
    ['a pod on a kernel node', { nodes: 3, kernelNodes: 1 }, 'ERR_LAB_MANIFEST_NODE', 'n3 is a kernel-VXLAN node, which does not enforce NetworkPolicy'],
    ['a static lab (no etcd)', { nodes: 3, kernelNodes: 0, etcd: 0 }, 'ERR_LAB_OPTIONS', '--etcd 0'],
    ['an L2 lab', { nodes: 3, kernelNodes: 0, etcd: 1, mode: 'l2' }, 'ERR_LAB_OPTIONS', '--mode l2'],
    ['hand-wired pods', { nodes: 3, kernelNodes: 0, etcd: 1, podsVia: 'config' }, 'ERR_LAB_OPTIONS', '--pods-via config'],
  ])('refuses %s', (_what, o, code, msg) => {
    const manifest = parseManifest(yamlOf([POD('x', 'a', 'n1'), POD('x', 'b', 'n3')]), 'm.yaml');
    let err: unknown;
    try { resolveLabOptions({ etcd: 1, ...o, manifest }); } catch (e) { err = e; }
    expect(err).toBeInstanceOf(FlatnetError);
    expect((err as FlatnetError).code).toBe(code);
    expect((err as Error).message).toContain(msg);
    if (err instanceof ManifestError) expect([err.field, err.document]).toEqual(['spec.nodeName', 2]);
  });

  it('refuses an unreadable file by its path', () => {
    expect(() => loadManifest('/nonexistent/m.yaml')).toThrow(/\/nonexistent\/m\.yaml: cannot read it \(ENOENT\)/);
  });
});
