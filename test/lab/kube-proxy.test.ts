import { describe, expect, it } from 'vitest';
import { kubeProxyRules, sepChain, svcChain } from '../../src/lab/kube-proxy.js';
import { ServiceCatalog, type EndpointSlice, type Service } from '../../src/service/catalog.js';

const svc = (name: string, ip: string, spec: Partial<Service['spec']> = {}): Service => ({ metadata: { name, namespace: 'shop' }, spec: { clusterIP: ip, ports: [{ name: 'http', port: 80 }], ...spec } });
const slice = (name: string, ips: string[]): EndpointSlice => ({
  metadata: { name: `${name}-1`, namespace: 'shop', labels: { 'kubernetes.io/service-name': name } }, ports: [{ name: 'http', port: 8080 }],
  endpoints: ips.map((a) => ({ addresses: [a], nodeName: 'n9' })),
});
const rules = (services: Service[], slices: EndpointSlice[]): string[] =>
  kubeProxyRules(new ServiceCatalog({ services, slices, pods: [], node: 'n1' }), { clusterCidr: '10.244.0.0/16' }).split('\n');

describe("kube-proxy's iptables rules for a catalog", () => {
  it('three endpoints: probabilities 1/3, 1/2, then the rest; one DNAT chain each, hairpin marked for masquerade', () => {
    const r = rules([svc('web', '10.96.0.10')], [slice('web', ['10.244.1.3', '10.244.2.3', '10.244.3.3'])]);
    const fe = new ServiceCatalog({ services: [svc('web', '10.96.0.10')], slices: [slice('web', ['10.244.1.3', '10.244.2.3', '10.244.3.3'])], pods: [], node: 'n1' }).frontends[0]!;
    const s = svcChain(fe);
    expect(s).toMatch(/^KUBE-SVC-[A-Z2-7]{16}$/);
    expect(r).toContain(`-A KUBE-SERVICES -d 10.96.0.10/32 -p tcp -m tcp --dport 80 -m comment --comment "shop/web:http cluster IP" -j ${s}`);
    const picks = r.filter((l) => l.startsWith(`-A ${s} -m comment`)).map((l) => /--probability (\S+)/.exec(l)?.[1] ?? 'rest');
    expect(picks).toEqual(['0.3333333333', '0.5000000000', 'rest']);
    const sep = sepChain(fe, fe.backends[1]!.ip, 8080);
    expect(r).toContain(`-A ${sep} -p tcp -m comment --comment "shop/web:http" -m tcp -j DNAT --to-destination 10.244.2.3:8080`);
    expect(r).toContain(`-A ${sep} -s 10.244.2.3/32 -m comment --comment "shop/web:http" -j KUBE-MARK-MASQ`);
    expect(new Set(r.filter((l) => l.startsWith(':KUBE-SEP-'))).size).toBe(3);
  });

  it('ClientIP affinity checks the recent list of each endpoint first and records the client on DNAT', () => {
    const r = rules([svc('web', '10.96.0.10', { sessionAffinity: 'ClientIP' })], [slice('web', ['10.244.1.3'])]);
    expect(r.filter((l) => l.includes('--rcheck --seconds 10800 --reap'))).toHaveLength(1);
    expect(r.filter((l) => l.includes('--rsource --set') && l.includes('DNAT'))).toHaveLength(1);
  });

  it('a Service port without endpoints is rejected in the filter table; Local without local endpoints is dropped', () => {
    const r = rules([svc('empty', '10.96.0.11'), svc('local', '10.96.0.12', { internalTrafficPolicy: 'Local' })], [slice('local', ['10.244.2.3'])]);
    expect(r).toContain('-A KUBE-SERVICES -d 10.96.0.11/32 -p tcp -m tcp --dport 80 -m comment --comment "shop/empty:http has no endpoints" -j REJECT --reject-with icmp-port-unreachable');
    expect(r).toContain('-A KUBE-SERVICES -d 10.96.0.12/32 -p tcp -m tcp --dport 80 -m comment --comment "shop/local:http has no local endpoints" -j DROP');
    expect(r.filter((l) => l.startsWith(':KUBE-SVC-'))).toEqual([]);
  });
});
