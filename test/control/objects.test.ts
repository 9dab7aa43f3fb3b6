import { describe, expect, it } from 'vitest';
import { kindOf, validateObject } from '../../src/control/objects.js';
import { parseDocuments } from '../../src/cli/objects.js';

const pod = (): Record<string, any> => ({
  apiVersion: 'v1', kind: 'Pod', metadata: { name: 'web-1', labels: { app: 'web' } },
  spec: { nodeName: 'n1', containers: [{ name: 'c', image: 'busybox', ports: [{ name: 'http', containerPort: 8080 }] }] },
});
const edit = (o: Record<string, any>, f: (x: Record<string, any>) => void): Record<string, any> => { const c = structuredClone(o); f(c); return c; };
const netpol = (): Record<string, any> => ({
  apiVersion: 'networking.k8s.io/v1', kind: 'NetworkPolicy', metadata: { name: 'allow-web', namespace: 'shop' },
  spec: { podSelector: { matchLabels: { app: 'web' } }, policyTypes: ['Ingress'], ingress: [{ from: [{ podSelector: { matchLabels: { role: 'client' } } }], ports: [{ protocol: 'TCP', port: 'http' }] }] },
});

describe('cluster objects: validation in the spirit of the API server', () => {
  it('accepts the five kinds, defaulting the namespace', () => {
    expect(validateObject(pod()).ref).toEqual({ kind: 'Pod', namespace: 'default', name: 'web-1' });
    expect(validateObject(netpol()).ref).toEqual({ kind: 'NetworkPolicy', namespace: 'shop', name: 'allow-web' });
    expect(validateObject({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'shop' } }).ref).toEqual({ kind: 'Namespace', namespace: null, name: 'shop' });
    expect(validateObject({ apiVersion: 'v1', kind: 'Service', metadata: { name: 'web' }, spec: { selector: { app: 'web' }, ports: [{ port: 80, targetPort: 'http' }] } }).ref.kind).toBe('Service');
    expect(validateObject({ apiVersion: 'discovery.k8s.io/v1', kind: 'EndpointSlice', metadata: { name: 'web-abc', labels: { 'kubernetes.io/service-name': 'web' } }, addressType: 'IPv4', endpoints: [{ addresses: ['10.244.1.10'], conditions: { ready: true } }], ports: [{ name: 'http', port: 8080, protocol: 'TCP' }] }).ref.kind).toBe('EndpointSlice');
  });

  it.each<[string, () => unknown, string]>([
    ['an unknown kind', () => ({ ...pod(), kind: 'Deployment' }), 'kind'],
    ['a wrong apiVersion', () => ({ ...netpol(), apiVersion: 'v1' }), 'apiVersion'],
    ['an upper-case name', () => edit(pod(), (p) => { p.metadata.name = 'Web'; }), 'metadata.name'],
    ['a label value too long', () => edit(pod(), (p) => { p.metadata.labels.app = 'x'.repeat(64); }), 'metadata.labels.app'],
    ['a pod without containers', () => edit(pod(), (p) => { p.spec.containers = []; }), 'spec.containers'],
    ['a container port out of range', () => edit(pod(), (p) => { p.spec.containers[0].ports[0].containerPort = 70000; }), 'spec.containers[0].ports[0].containerPort'],
    ['a port name longer than 15', () => edit(pod(), (p) => { p.spec.containers[0].ports[0].name = 'a-very-long-port-name'; }), 'spec.containers[0].ports[0].name'],
    ['a bad pod IP', () => edit(pod(), (p) => { p.status = { podIP: '10.244.1' }; }), 'status.podIP'],
    ['a namespace on a Namespace', () => ({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'a', namespace: 'b' } }), 'metadata.namespace'],
    ['a policy type that does not exist', () => edit(netpol(), (p) => { p.spec.policyTypes = ['Both']; }), 'spec.policyTypes[0]'],
    ['an ipBlock that is not a CIDR', () => edit(netpol(), (p) => { p.spec.ingress[0].from = [{ ipBlock: { cidr: '10.0.0.1/8' } }]; }), 'spec.ingress[0].from[0].ipBlock.cidr'],
    ['an In expression without values', () => edit(netpol(), (p) => { p.spec.podSelector = { matchExpressions: [{ key: 'app', operator: 'In' }] }; }), 'spec.podSelector.matchExpressions[0]'],
    ['an unknown field in a policy rule', () => edit(netpol(), (p) => { p.spec.ingress[0].form = []; }), 'spec.ingress[0]'],
    ['a service without ports', () => ({ apiVersion: 'v1', kind: 'Service', metadata: { name: 'web' }, spec: { ports: [] } }), 'spec.ports'],
    ['an except outside its cidr', () => edit(netpol(), (p) => { p.spec.ingress[0].from = [{ ipBlock: { cidr: '10.0.0.0/8', except: ['10.1.0.0/16', '192.168.0.0/16'] } }]; }), 'spec.ingress[0].from[0].ipBlock.except[1]'],
    ['an except as wide as its cidr', () => edit(netpol(), (p) => { p.spec.ingress[0].from = [{ ipBlock: { cidr: '10.0.0.0/8', except: ['10.0.0.0/8'] } }]; }), 'spec.ingress[0].from[0].ipBlock.except[0]'],
    ['an endPort below its port', () => edit(netpol(), (p) => { p.spec.ingress[0].ports = [{ port: 90, endPort: 80 }]; }), 'spec.ingress[0].ports[0]'],
    ['an endPort with a named port', () => edit(netpol(), (p) => { p.spec.ingress[0].ports = [{ port: 'http', endPort: 80 }]; }), 'spec.ingress[0].ports[0]'],
    ['an unknown selector operator', () => edit(netpol(), (p) => { p.spec.podSelector = { matchExpressions: [{ key: 'app', operator: 'Like', values: ['a'] }] }; }), 'spec.podSelector.matchExpressions[0].operator'],
    ['a service port out of range', () => ({ apiVersion: 'v1', kind: 'Service', metadata: { name: 'web' }, spec: { ports: [{ port: 70000 }] } }), 'spec.ports[0].port'],
    ['a service protocol flatnet does not know', () => ({ apiVersion: 'v1', kind: 'Service', metadata: { name: 'web' }, spec: { ports: [{ port: 80, protocol: 'ICMP' }] } }), 'spec.ports[0].protocol'],
    ['two service ports of one name', () => ({ apiVersion: 'v1', kind: 'Service', metadata: { name: 'web' }, spec: { ports: [{ name: 'http', port: 80 }, { name: 'http', port: 81 }] } }), 'spec.ports[1].name'],
    ['two service ports, one unnamed', () => ({ apiVersion: 'v1', kind: 'Service', metadata: { name: 'web' }, spec: { ports: [{ name: 'http', port: 80 }, { port: 81 }] } }), 'spec.ports[1].name'],
    ['one port and protocol twice', () => ({ apiVersion: 'v1', kind: 'Service', metadata: { name: 'web' }, spec: { ports: [{ name: 'a', port: 80 }, { name: 'b', port: 80 }] } }), 'spec.ports[1].port'],
    ['an EndpointSlice of IPv6', () => ({ apiVersion: 'discovery.k8s.io/v1', kind: 'EndpointSlice', metadata: { name: 'x' }, addressType: 'IPv6', endpoints: [] }), 'addressType'],
    ['a resourceVersion that is not a number', () => edit(pod(), (p) => { p.metadata.resourceVersion = 'abc'; }), 'metadata.resourceVersion'],
  ])('refuses %s, naming the field path', (_w, make, field) => {
    expect(() => validateObject(make())).toThrow(expect.objectContaining({ code: 'ERR_OBJECT_INVALID', field }));
  });

  it("knows kubectl's kind names", () => {
    expect(['po', 'pods', 'svc', 'netpol', 'ns', 'endpointslices', 'NetworkPolicy'].map(kindOf)).toEqual(['Pod', 'Pod', 'Service', 'NetworkPolicy', 'Namespace', 'EndpointSlice', 'NetworkPolicy']);
    expect(() => kindOf('deployments')).toThrow(expect.objectContaining({ code: 'ERR_OBJECT_KIND' }));
  });

  it('reads several YAML documents, JSON, and a List', () => {
    expect(parseDocuments('a: 1\n---\nb: 2\n---\n', 'f')).toEqual([{ a: 1 }, { b: 2 }]);
    expect(parseDocuments('{"kind": "List", "items": [{"x": 1}, {"y": 2}]}', 'f')).toEqual([{ x: 1 }, { y: 2 }]);
    expect(() => parseDocuments('a: 1\n---\nb: [\n', 'f.yaml')).toThrow(expect.objectContaining({ code: 'ERR_OBJECT_PARSE', message: expect.stringContaining('document 2') }));
  });
});
