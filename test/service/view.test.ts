import { describe, expect, it } from 'vitest';
import { ConnTable, CtProto, packPorts } from '../../src/conntrack/table.js';
import { PolicySet } from '../../src/policy/engine.js';
import { policyRows, renderPolicies } from '../../src/policy/view.js';
import { ServiceCatalog } from '../../src/service/catalog.js';
import { conntrackView, renderConntrack, renderServices, serviceRows } from '../../src/service/view.js';
import { parseIpv4 } from '../../src/wire/addr.js';

describe('show policy', () => {
  it('lists each policy with its types, the pods it selects, its verdict counts and each rule’s hits', () => {
    const set = new PolicySet({
      namespaces: [{ metadata: { name: 'shop' } }],
      pods: [{ metadata: { name: 'web', namespace: 'shop', labels: { app: 'web' } }, status: { podIP: '10.244.1.2' } }, { metadata: { name: 'client', namespace: 'shop', labels: { app: 'client' } }, status: { podIP: '10.244.1.3' } }],
      policies: [
        { metadata: { name: 'web-from-clients', namespace: 'shop' }, spec: { podSelector: { matchLabels: { app: 'web' } }, ingress: [{ from: [{ podSelector: { matchLabels: { app: 'client' } } }] }] } },
        { metadata: { name: 'nothing', namespace: 'shop' }, spec: { podSelector: { matchLabels: { app: 'gone' } }, policyTypes: ['Egress'] } },
      ],
    });
    const web = parseIpv4('10.244.1.2');
    set.count('ingress', web, set.check('ingress', web, parseIpv4('10.244.1.3'), 6, 80));
    set.count('ingress', web, set.check('ingress', web, parseIpv4('10.244.9.9'), 6, 80));
    expect(policyRows(set)[0]).toEqual({ namespace: 'shop', name: 'web-from-clients', types: ['Ingress'], selects: ['shop/web'], allowed: 1, denied: 1, rules: [{ rule: 'ingress[0]', hits: 1 }] });
    expect(renderPolicies(policyRows(set)).split('\n')).toEqual([
      'NAMESPACE   NAME               TYPES     PODS   ALLOWED   DENIED',
      'shop        web-from-clients   Ingress   1      1         1',
      '    ingress[0]   hits 1',
      '    selects      shop/web',
      'shop        nothing            Egress    0      0         0',
      '    selects      (no pod)',
    ]);
    expect(renderPolicies([])).toBe('No NetworkPolicies installed.');
  });
});

describe('show services and conntrack', () => {
  const cat = new ServiceCatalog({
    services: [
      { metadata: { name: 'web', namespace: 'shop' }, spec: { clusterIP: '10.96.0.10', sessionAffinity: 'ClientIP', ports: [{ name: 'http', port: 80 }] } },
      { metadata: { name: 'empty', namespace: 'shop' }, spec: { clusterIP: '10.96.0.11', ports: [{ port: 53, protocol: 'UDP' }] } },
    ],
    slices: [{ metadata: { name: 'web-1', namespace: 'shop', labels: { 'kubernetes.io/service-name': 'web' } }, ports: [{ name: 'http', port: 8080 }], endpoints: [{ addresses: ['10.244.1.3'], nodeName: 'n1' }, { addresses: ['10.244.2.3'], nodeName: 'n2' }] }],
    pods: [], node: 'n1',
  });

  it('services: each frontend with its scheduler and flags, one line per backend with its connections (ipvsadm -Ln layout)', () => {
    cat.frontends[0]!.backends[1]!.hits = 4;
    cat.frontends[1]!.rejected = 2;
    expect(renderServices(serviceRows(cat)).split('\n')).toEqual([
      'Prot LocalAddress:Port Scheduler Flags',
      '  -> RemoteAddress:Port           Node             Connections',
      'TCP  10.96.0.10:80 random persistent 10800   # shop/web:http',
      '  -> 10.244.1.3:8080              n1               0',
      '  -> 10.244.2.3:8080              n2               4',
      'UDP  10.96.0.11:53 random reject (2)   # shop/empty:53',
    ]);
  });

  it('conntrack: conntrack -L lines, its closing count, and the table counters', () => {
    const ct = new ConnTable({ capacity: 16, seed: 1 });
    ct.create(CtProto.UDP, parseIpv4('10.244.1.2'), parseIpv4('10.96.0.11'), packPorts(5000, 53), parseIpv4('10.244.2.3'), parseIpv4('10.244.1.2'), packPorts(53, 5000), 0, 60, 0);
    const lines = renderConntrack(conntrackView(ct, 1000)).split('\n');
    expect(lines).toEqual([
      'udp      17 29 src=10.244.1.2 dst=10.96.0.11 sport=5000 dport=53 packets=1 bytes=60 [UNREPLIED] src=10.244.2.3 dst=10.244.1.2 sport=53 dport=5000 packets=0 bytes=0 mark=0',
      'flatnet conntrack: 1 flow entries have been shown.',
      'entries 1/16 inserted 1 expired 0 early_dropped 0 refused 0 clashes 0 invalid 0 removed 0 prepassed 0 prepass_translated 0',
    ]);
  });
});
