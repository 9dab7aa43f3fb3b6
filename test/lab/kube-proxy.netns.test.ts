/**
 * The generated kube-proxy rules on the real kernel: a node namespace routes for a client pod and
 * two backend pods (point-to-point veths), loads the rules with iptables-restore, and the
 * client's connections to the ClusterIP reach the backends (both, at random), stick to one with
 * ClientIP affinity, and are refused for a Service without endpoints. Everything lives in
 * namespaces this test creates.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { kubeProxyRules } from '../../src/lab/kube-proxy.js';
import { ServiceCatalog, type EndpointSlice, type Service } from '../../src/service/catalog.js';
import { Netns, netnsSkipReason } from '../support/netns.js';

const skip = netnsSkipReason();
const SERVER = `
import socket, sys
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1); s.bind(('0.0.0.0', 8080)); s.listen(64)
print('ready', flush=True)
while True:
    c, _ = s.accept(); c.sendall(sys.argv[1].encode()); c.close()
`;
const CLIENT = `
import socket, sys, json, errno
out = []
for i in range(int(sys.argv[2])):
    c = socket.socket(); c.settimeout(3)
    try:
        c.connect((sys.argv[1], 80)); out.append(c.recv(16).decode())
    except OSError as e:
        out.append(errno.errorcode.get(e.errno, str(e)))
    c.close()
print(json.dumps(out))
`;

describe.skipIf(skip !== null)(`kube-proxy rules from a catalog, on the kernel${skip === null ? '' : ` (skipped: ${skip})`}`, () => {
  const ns = new Netns('kp');
  let node = '', client = '';
  beforeAll(async () => {
    node = ns.add('node');
    client = ns.add('c');
    const pods: [string, string, string][] = [[client, '10.244.1.2', '10.244.1.1'], [ns.add('b1'), '10.244.1.6', '10.244.1.5'], [ns.add('b2'), '10.244.1.10', '10.244.1.9']];
    pods.forEach(([pod, addr, gw], i) => {
      ns.veth(node, `v${i}`, pod, 'eth0');
      ns.addr(node, `v${i}`, `${gw}/30`);
      ns.addr(pod, 'eth0', `${addr}/30`);
      ns.ip(pod, 'route', 'add', 'default', 'via', gw);
    });
    ns.exec(node, 'sysctl', ['-qw', 'net.ipv4.ip_forward=1']);
    // A node has a default route (here: toward one of its pods); without one a packet to a
    // ClusterIP that is not DNATed would fail routing before the filter table could REJECT it.
    ns.ip(node, 'route', 'add', 'default', 'via', '10.244.1.10');
    const services: Service[] = [
      { metadata: { name: 'web', namespace: 'shop' }, spec: { clusterIP: '10.96.0.10', ports: [{ name: 'http', port: 80 }] } },
      { metadata: { name: 'sticky', namespace: 'shop' }, spec: { clusterIP: '10.96.0.12', sessionAffinity: 'ClientIP', ports: [{ name: 'http', port: 80 }] } },
      { metadata: { name: 'empty', namespace: 'shop' }, spec: { clusterIP: '10.96.0.11', ports: [{ name: 'http', port: 80 }] } },
    ];
    const slice = (svc: string): EndpointSlice => ({
      metadata: { name: `${svc}-1`, namespace: 'shop', labels: { 'kubernetes.io/service-name': svc } }, ports: [{ name: 'http', port: 8080 }],
      endpoints: [{ addresses: ['10.244.1.6'] }, { addresses: ['10.244.1.10'] }],
    });
    const rules = kubeProxyRules(new ServiceCatalog({ services, slices: [slice('web'), slice('sticky')], pods: [], node: 'node' }), { clusterCidr: '10.244.0.0/16' });
    ns.exec(node, 'iptables-restore', ['--noflush'], { input: rules });
    const ready = pods.slice(1).map(([pod], i) => new Promise<void>((resolve, reject) => {
      const p = ns.spawn(pod, 'python3', ['-c', SERVER, `b${i + 1}`]);
      p.stdout!.once('data', () => resolve());
      p.once('exit', (code) => reject(new Error(`server b${i + 1} exited ${code}`)));
    }));
    await Promise.all(ready);
  }, 60_000);
  afterAll(() => ns.destroy());

  const connect = (vip: string, n: number): string[] => JSON.parse(ns.exec(client, 'python3', ['-c', CLIENT, vip, String(n)], { timeoutMs: 60_000 })) as string[];

  it('the rules load, and connections to the ClusterIP are spread over both backends', () => {
    const got = connect('10.96.0.10', 60);
    expect(got.filter((x) => x === 'b1').length + got.filter((x) => x === 'b2').length).toBe(60);
    expect(got.filter((x) => x === 'b1').length).toBeGreaterThan(10);
    expect(got.filter((x) => x === 'b2').length).toBeGreaterThan(10);
  });

  it('ClientIP affinity: every connection of the client goes to one backend', () => {
    expect(new Set(connect('10.96.0.12', 20)).size).toBe(1);
  });

  it('a Service without endpoints refuses the connection (REJECT with port unreachable)', () => {
    expect(connect('10.96.0.11', 2)).toEqual(['ECONNREFUSED', 'ECONNREFUSED']);
  });
});
