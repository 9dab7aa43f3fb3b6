import { describe, expect, it } from 'vitest';
import type { Pod } from '../../src/policy/objects.js';
import { ServiceCatalog, type EndpointSlice, type Service } from '../../src/service/catalog.js';
import { formatIpv4, parseIpv4 } from '../../src/wire/addr.js';

const VIP = '10.96.0.10';
const svc = (spec: Partial<Service['spec']> = {}, name = 'web'): Service => ({
  metadata: { name, namespace: 'shop' },
  spec: { clusterIP: VIP, ports: [{ name: 'http', port: 80, targetPort: 8080 }], ...spec },
});
type Ep = { ip: string; ready?: boolean; serving?: boolean; terminating?: boolean; node?: string };
const slice = (eps: Ep[], ports: EndpointSlice['ports'] = [{ name: 'http', port: 8080 }], svcName = 'web'): EndpointSlice => ({
  metadata: { name: `${svcName}-abc`, namespace: 'shop', labels: { 'kubernetes.io/service-name': svcName } },
  addressType: 'IPv4', ports,
  endpoints: eps.map((e) => ({ addresses: [e.ip], nodeName: e.node, conditions: { ready: e.ready, serving: e.serving, terminating: e.terminating } })),
});
const backends = (c: ServiceCatalog, proto = 6, port = 80): string[] | string =>
  c.frontend(parseIpv4(VIP), proto, port)?.backends.map((b) => `${formatIpv4(b.ip)}:${b.port}`) ?? 'no frontend';
const catalog = (services: Service[], slices: EndpointSlice[], pods: Pod[] = [], node = 'n1'): ServiceCatalog => new ServiceCatalog({ services, slices, pods, node });

describe('Service catalog: which backends kube-proxy would program', () => {
  const rows: ReadonlyArray<[string, Service, Ep[], string[], string | null]> = [
    ['ready endpoints', svc(), [{ ip: '10.244.1.5' }, { ip: '10.244.2.5', ready: true }], ['10.244.1.5:8080', '10.244.2.5:8080'], null],
    ['not-ready ones are left out', svc(), [{ ip: '10.244.1.5', ready: false, serving: false }, { ip: '10.244.2.5' }], ['10.244.2.5:8080'], null],
    ['none ready: the serving terminating ones', svc(), [{ ip: '10.244.1.5', ready: false, serving: true, terminating: true }, { ip: '10.244.2.5', ready: false, serving: false, terminating: true }], ['10.244.1.5:8080'], null],
    ['terminating ones are not used while one is ready', svc(), [{ ip: '10.244.1.5', ready: false, serving: true, terminating: true }, { ip: '10.244.2.5' }], ['10.244.2.5:8080'], null],
    ['no endpoints: reject', svc(), [], [], 'no-endpoints'],
    ['internalTrafficPolicy Local: this node only', svc({ internalTrafficPolicy: 'Local' }), [{ ip: '10.244.1.5', node: 'n1' }, { ip: '10.244.2.5', node: 'n2' }], ['10.244.1.5:8080'], null],
    ['Local with endpoints elsewhere only: drop, not reject', svc({ internalTrafficPolicy: 'Local' }), [{ ip: '10.244.2.5', node: 'n2' }], [], 'no-local-endpoints'],
  ];
  it.each(rows)('%s', (_n, s, eps, want, empty) => {
    const c = catalog([s], [slice(eps)]);
    expect(backends(c)).toEqual(want);
    expect(c.frontend(parseIpv4(VIP), 6, 80)!.empty).toBe(empty);
  });

  it('a selector without slices: the selected pods, a named targetPort resolved per pod', () => {
    const pod = (name: string, ip: string, http: number, labels = { app: 'web' }): Pod => ({
      metadata: { name, namespace: 'shop', labels }, spec: { containers: [{ ports: [{ name: 'web-http', containerPort: http }] }] }, status: { podIP: ip },
    });
    const c = catalog([svc({ selector: { app: 'web' }, ports: [{ name: 'http', port: 80, targetPort: 'web-http' }] })], [],
      [pod('a', '10.244.1.5', 8080), pod('b', '10.244.2.5', 9090), pod('c', '10.244.3.5', 8080, { app: 'db' }), { metadata: { name: 'pending', namespace: 'shop', labels: { app: 'web' } } }]);
    expect(backends(c)).toEqual(['10.244.1.5:8080', '10.244.2.5:9090']);
  });

  it('one frontend per port and protocol; the slice port is matched by name and protocol', () => {
    const s = svc({ ports: [{ name: 'dns', port: 53, protocol: 'UDP' }, { name: 'dns-tcp', port: 53, protocol: 'TCP' }] });
    const c = catalog([s], [slice([{ ip: '10.244.1.5' }], [{ name: 'dns', port: 5353, protocol: 'UDP' }, { name: 'dns-tcp', port: 5354, protocol: 'TCP' }])]);
    expect([backends(c, 17, 53), backends(c, 6, 53), backends(c, 6, 80)]).toEqual([['10.244.1.5:5353'], ['10.244.1.5:5354'], 'no frontend']);
    expect(c.isClusterIp(parseIpv4(VIP))).toBe(true);
  });

  it('session affinity: ClientIP with the default 10800 s or the configured timeout; none otherwise', () => {
    const a = catalog([svc({ sessionAffinity: 'ClientIP' })], []).frontends[0]!;
    const b = catalog([svc({ sessionAffinity: 'ClientIP', sessionAffinityConfig: { clientIP: { timeoutSeconds: 60 } } })], []).frontends[0]!;
    expect([a.affinityMs, b.affinityMs, catalog([svc()], []).frontends[0]!.affinityMs]).toEqual([10_800_000, 60_000, 0]);
  });

  it('maglev: a table over the backends, every slot owned', () => {
    const c = new ServiceCatalog({ services: [svc()], slices: [slice([{ ip: '10.244.1.5' }, { ip: '10.244.2.5' }])], pods: [], node: 'n1', loadBalancing: 'maglev', maglevSize: 251 });
    const t = c.frontends[0]!.maglev!;
    expect([t.length, new Set(t).size, Math.min(...t)]).toEqual([251, 2, 0]);
  });

  it('objects it cannot use are named, not thrown', () => {
    const c = catalog([svc({ clusterIP: 'None' }, 'headless'), svc({ clusterIP: '10.96.0.300' }, 'odd'), svc({ ports: [{ port: 0 }] }, 'zero')],
      [{ metadata: { name: 'orphan', namespace: 'shop' } }]);
    expect(c.problems).toEqual([
      { object: 'endpointslice shop/orphan', field: 'metadata.labels["kubernetes.io/service-name"]', reason: 'missing: the slice belongs to no Service' },
      { object: 'service shop/headless', field: 'spec.clusterIP', reason: 'headless: nothing to balance' },
      { object: 'service shop/odd', field: 'spec.clusterIP', reason: 'not an IPv4 address: 10.96.0.300' },
      { object: 'service shop/zero', field: 'spec.ports[0].port', reason: 'not a port number: 0' },
    ]);
    expect(c.frontends).toEqual([]);
  });
});
