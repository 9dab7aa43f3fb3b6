/**
 * NetworkPolicy semantics as a reachability matrix, in the manner of the Kubernetes network
 * policy e2e suite: pods a, b, c in namespaces x, y, z, each serving 80 and 81 over TCP, UDP
 * and SCTP; a case applies policies and compares who reaches whom with a truth table written
 * from the Kubernetes documentation (never computed by the code under test).
 */
import { describe, expect, it } from 'vitest';
import { PolicyReason, PolicySet, type Direction } from '../../src/policy/engine.js';
import type { Namespace, NetworkPolicy, Pod } from '../../src/policy/objects.js';
import { formatIpv4, parseIpv4 } from '../../src/wire/addr.js';

const NS = ['x', 'y', 'z'] as const;
const PODS = ['a', 'b', 'c'] as const;
type Name = `${(typeof NS)[number]}/${(typeof PODS)[number]}`;
const ALL: Name[] = NS.flatMap((n) => PODS.map((p) => `${n}/${p}` as Name));
const ipOf = (k: Name): number => parseIpv4(`10.244.${NS.indexOf(k[0] as 'x') + 1}.${PODS.indexOf(k[2] as 'a') + 10}`);
const NODE_IP = parseIpv4('10.244.1.1');

const namespaces: Namespace[] = NS.map((n) => ({ metadata: { name: n, labels: { ns: n } } }));
const pods: Pod[] = ALL.map((k) => ({
  metadata: { name: k[2]!, namespace: k[0]!, labels: { pod: k[2]!, ...(k === 'y/b' ? { tier: 'db' } : {}) } },
  spec: {
    containers: [{
      ports: ['TCP', 'UDP', 'SCTP'].flatMap((proto) => [80, 81].map((port) => ({
        // x/c serves its "serve-81-tcp" on 80: a named port resolves per pod.
        name: `serve-${port}-${proto.toLowerCase()}`, containerPort: k === 'x/c' && port === 81 && proto === 'TCP' ? 80 : port, protocol: proto as 'TCP',
      }))),
    }],
  },
  status: { podIP: formatIpv4(ipOf(k)) },
}));

const pol = (namespace: string, spec: NetworkPolicy['spec'], name = 'p'): NetworkPolicy => ({ metadata: { name, namespace }, spec });
const set = (...policies: NetworkPolicy[]): PolicySet => new PolicySet({ namespaces, pods, policies, nodeIps: [NODE_IP] });

/** Whether from reaches to on port/proto: the source's egress and the destination's ingress. */
function reaches(s: PolicySet, from: Name, to: Name, proto = 6, port = 80): boolean {
  return s.check('egress', ipOf(from), ipOf(to), proto, port).allowed && s.check('ingress', ipOf(to), ipOf(from), proto, port).allowed;
}

/** The 9x9 matrix, rows = from, one char per destination: '.' reaches, 'X' does not. */
function matrix(s: PolicySet, proto = 6, port = 80): string[] {
  return ALL.map((f) => `${f} ${ALL.map((t) => (reaches(s, f, t, proto, port) ? '.' : 'X')).join('')}`);
}
function expected(allowed: (from: Name, to: Name) => boolean): string[] {
  return ALL.map((f) => `${f} ${ALL.map((t) => (f === t || allowed(f, t) ? '.' : 'X')).join('')}`);
}

describe('NetworkPolicy: who reaches whom (TCP 80 unless the case says)', () => {
  const cases: ReadonlyArray<[string, NetworkPolicy[], (f: Name, t: Name) => boolean, number?, number?]> = [
    ['no policy: everything', [], () => true],
    ['default deny ingress in x', [pol('x', { podSelector: {}, policyTypes: ['Ingress'] })], (_f, t) => !t.startsWith('x/')],
    ['deny ingress to x/a only (policyTypes defaulted to Ingress)', [pol('x', { podSelector: { matchLabels: { pod: 'a' } } })], (_f, t) => t !== 'x/a'],
    ['x/a allows its own namespace (empty podSelector peer)',
      [pol('x', { podSelector: { matchLabels: { pod: 'a' } }, ingress: [{ from: [{ podSelector: {} }] }] })], (f, t) => t !== 'x/a' || f.startsWith('x/')],
    ['x/a allows namespace y (namespaceSelector alone: every pod of y)',
      [pol('x', { podSelector: { matchLabels: { pod: 'a' } }, ingress: [{ from: [{ namespaceSelector: { matchLabels: { ns: 'y' } } }] }] })], (f, t) => t !== 'x/a' || f.startsWith('y/')],
    ['x/a allows pods b of namespace y (both selectors in one peer: AND)',
      [pol('x', { podSelector: { matchLabels: { pod: 'a' } }, ingress: [{ from: [{ namespaceSelector: { matchLabels: { ns: 'y' } }, podSelector: { matchLabels: { pod: 'b' } } }] }] })],
      (f, t) => t !== 'x/a' || f === 'y/b'],
    ['x/a allows pods b of x, or anything in y (two peers: OR)',
      [pol('x', { podSelector: { matchLabels: { pod: 'a' } }, ingress: [{ from: [{ podSelector: { matchLabels: { pod: 'b' } } }, { namespaceSelector: { matchLabels: { ns: 'y' } } }] }] })],
      (f, t) => t !== 'x/a' || f === 'x/b' || f.startsWith('y/')],
    ['namespaces by their metadata.name label, with NotIn',
      [pol('x', { podSelector: {}, ingress: [{ from: [{ namespaceSelector: { matchExpressions: [{ key: 'kubernetes.io/metadata.name', operator: 'NotIn', values: ['y'] }] } }] }] })],
      (f, t) => !t.startsWith('x/') || !f.startsWith('y/')],
    ['In, Exists and DoesNotExist on pod labels (every namespace)',
      [pol('z', { podSelector: { matchExpressions: [{ key: 'pod', operator: 'In', values: ['a', 'b'] }] }, ingress: [{ from: [{ namespaceSelector: {}, podSelector: { matchExpressions: [{ key: 'tier', operator: 'Exists' }] } }] }] }),
        pol('z', { podSelector: { matchLabels: { pod: 'c' } }, ingress: [{ from: [{ namespaceSelector: {}, podSelector: { matchExpressions: [{ key: 'tier', operator: 'DoesNotExist' }] } }] }] }, 'q')],
      (f, t) => !(t === 'z/a' || t === 'z/b') ? (t !== 'z/c' || f !== 'y/b') : f === 'y/b'],
    ['an empty rule allows every source', [pol('x', { podSelector: {}, ingress: [{}] })], () => true],
    ['an empty rule list denies every source', [pol('x', { podSelector: {}, ingress: [] })], (_f, t) => !t.startsWith('x/')],
    ['two policies add up (union)',
      [pol('x', { podSelector: { matchLabels: { pod: 'a' } }, ingress: [{ from: [{ podSelector: { matchLabels: { pod: 'b' } } }] }] }),
        pol('x', { podSelector: { matchLabels: { pod: 'a' } }, ingress: [{ from: [{ namespaceSelector: { matchLabels: { ns: 'z' } }, podSelector: { matchLabels: { pod: 'c' } } }] }] }, 'q')],
      (f, t) => t !== 'x/a' || f === 'x/b' || f === 'z/c'],
    ['egress deny all from x/a', [pol('x', { podSelector: { matchLabels: { pod: 'a' } }, policyTypes: ['Egress'] })], (f) => f !== 'x/a'],
    ['egress to an ipBlock with an exception (pod addresses match it too)',
      [pol('x', { podSelector: { matchLabels: { pod: 'a' } }, policyTypes: ['Egress'], egress: [{ to: [{ ipBlock: { cidr: '10.244.2.0/24', except: ['10.244.2.11/32'] } }] }] })],
      (f, t) => f !== 'x/a' || (t.startsWith('y/') && t !== 'y/b')],
    ['egress rules make policyTypes default to Ingress and Egress',
      [pol('x', { podSelector: { matchLabels: { pod: 'a' } }, egress: [{ to: [{ namespaceSelector: { matchLabels: { ns: 'z' } } }] }] })],
      (f, t) => t !== 'x/a' && (f !== 'x/a' || t.startsWith('z/'))],
    ['policyTypes Egress only: ingress stays open',
      [pol('x', { podSelector: { matchLabels: { pod: 'a' } }, policyTypes: ['Egress'], egress: [{ to: [{ podSelector: {} }] }] })],
      (f, t) => f !== 'x/a' || t.startsWith('x/')],
    ['a connection needs the egress of the source and the ingress of the destination',
      [pol('x', { podSelector: { matchLabels: { pod: 'a' } }, policyTypes: ['Egress'], egress: [{ to: [{ namespaceSelector: { matchLabels: { ns: 'y' } } }] }] }),
        pol('y', { podSelector: { matchLabels: { pod: 'b' } }, ingress: [{ from: [{ namespaceSelector: { matchLabels: { ns: 'z' } } }] }] }, 'q')],
      (f, t) => (f !== 'x/a' || t.startsWith('y/')) && (t !== 'y/b' || f.startsWith('z/'))],
  ];
  it.each(cases)('%s', (_name, policies, allowed, proto, port) => {
    expect(matrix(set(...policies), proto, port)).toEqual(expected(allowed));
  });
});

describe('NetworkPolicy: ports', () => {
  const only = (ports: NonNullable<NetworkPolicy['spec']['ingress']>[number]['ports']): PolicySet =>
    set(pol('x', { podSelector: {}, ingress: [{ from: [{ namespaceSelector: {} }], ports }] }));
  const TCP = 6, UDP = 17, SCTP = 132;
  const rows: ReadonlyArray<[string, PolicySet, Name, number, number, boolean]> = [
    ['TCP 80 listed: TCP 80', only([{ port: 80 }]), 'x/a', TCP, 80, true],
    ['TCP 80 listed: TCP 81', only([{ port: 80 }]), 'x/a', TCP, 81, false],
    ['TCP 80 listed: UDP 80 (protocol defaults to TCP)', only([{ port: 80 }]), 'x/a', UDP, 80, false],
    ['UDP 81 listed: UDP 81', only([{ protocol: 'UDP', port: 81 }]), 'x/a', UDP, 81, true],
    ['SCTP 80 listed: SCTP 80', only([{ protocol: 'SCTP', port: 80 }]), 'x/a', SCTP, 80, true],
    ['SCTP 80 listed: TCP 80', only([{ protocol: 'SCTP', port: 80 }]), 'x/a', TCP, 80, false],
    ['a protocol without a port: every UDP port', only([{ protocol: 'UDP' }]), 'x/a', UDP, 4242, true],
    ['endPort 80-81: 81', only([{ port: 80, endPort: 81 }]), 'x/b', TCP, 81, true],
    ['endPort 80-81: 82', only([{ port: 80, endPort: 81 }]), 'x/b', TCP, 82, false],
    ['named port serve-81-tcp on x/a: 81', only([{ port: 'serve-81-tcp' }]), 'x/a', TCP, 81, true],
    ['named port serve-81-tcp on x/c (it is 80 there): 80', only([{ port: 'serve-81-tcp' }]), 'x/c', TCP, 80, true],
    ['named port serve-81-tcp on x/c: 81', only([{ port: 'serve-81-tcp' }]), 'x/c', TCP, 81, false],
    ['named UDP port: the name carries its protocol', only([{ protocol: 'UDP', port: 'serve-80-udp' }]), 'x/a', UDP, 80, true],
    ['a name no container has', only([{ port: 'nope' }]), 'x/a', TCP, 80, false],
    ['no ports: ICMP too', only([]), 'x/a', 1, 0, true],
    ['ports listed: ICMP is not a listed protocol', only([{ port: 80 }]), 'x/a', 1, 0, false],
  ];
  it.each(rows)('%s', (_n, s, to, proto, port, ok) => {
    expect(s.check('ingress', ipOf(to), ipOf('y/a'), proto, port).allowed).toBe(ok);
  });

  it('egress named ports resolve on the destination pod', () => {
    const s = set(pol('x', { podSelector: { matchLabels: { pod: 'a' } }, policyTypes: ['Egress'], egress: [{ ports: [{ port: 'serve-81-tcp' }] }] }));
    expect([reaches(s, 'x/a', 'x/b', 6, 81), reaches(s, 'x/a', 'x/c', 6, 80), reaches(s, 'x/a', 'x/c', 6, 81)]).toEqual([true, true, false]);
    // An address that is no pod has no named ports.
    expect(s.check('egress', ipOf('x/a'), parseIpv4('203.0.113.7'), 6, 81).allowed).toBe(false);
  });
});

describe('NetworkPolicy: the node, counters and problems', () => {
  it("ingress from the pod's own node is always allowed; so is the pod to itself", () => {
    const s = set(pol('x', { podSelector: {}, ingress: [] }));
    expect(s.check('ingress', ipOf('x/a'), NODE_IP, 6, 80)).toMatchObject({ allowed: true, reason: PolicyReason.FROM_NODE });
    expect(s.check('ingress', ipOf('x/a'), ipOf('x/a'), 6, 80)).toMatchObject({ allowed: true, reason: PolicyReason.SELF });
    expect(s.check('ingress', ipOf('x/a'), ipOf('x/b'), 6, 80)).toMatchObject({ allowed: false, reason: PolicyReason.DENIED });
  });

  it('counts hits per rule and policy, and denials against every policy isolating the pod', () => {
    const a = pol('x', { podSelector: { matchLabels: { pod: 'a' } }, ingress: [{ from: [{ podSelector: { matchLabels: { pod: 'b' } } }] }, { from: [{ namespaceSelector: { matchLabels: { ns: 'y' } } }] }] }, 'allow-b-and-y');
    const b = pol('x', { podSelector: {}, policyTypes: ['Ingress'] }, 'deny-all');
    const s = set(a, b);
    const go = (dir: Direction, pod: Name, peer: Name): void => s.count(dir, ipOf(pod), s.check(dir, ipOf(pod), ipOf(peer), 6, 80));
    go('ingress', 'x/a', 'x/b');
    go('ingress', 'x/a', 'y/c');
    go('ingress', 'x/a', 'y/a');
    go('ingress', 'x/a', 'z/a');
    go('ingress', 'x/b', 'x/a');
    const [p, q] = s.policies;
    expect([p!.rules.map((r) => r.hits), p!.allowed, p!.denied]).toEqual([[1, 2], 3, 1]);
    expect([q!.allowed, q!.denied, q!.selects]).toEqual([0, 2, ['x/a', 'x/b', 'x/c']]);
    expect(p!.selects).toEqual(['x/a']);
  });

  it('objects it cannot use are left out with the field named, never thrown', () => {
    const s = new PolicySet({
      namespaces, nodeIps: [],
      pods: [...pods, { metadata: { name: 'pending', namespace: 'x', labels: { pod: 'a' } } }, { metadata: { name: 'odd', namespace: 'x' }, status: { podIP: 'fe80::1' } }],
      policies: [pol('x', { podSelector: { matchLabels: { pod: 'a' } }, policyTypes: ['Egress'], egress: [{ to: [{ ipBlock: { cidr: '10.0.0.0/33' } }, { ipBlock: { cidr: '10.244.0.0/16', except: ['nope'] } }] }] })],
    });
    expect(s.problems).toEqual([
      { object: 'pod x/pending', field: 'status.podIP', reason: 'no IP yet: not selectable' },
      { object: 'pod x/odd', field: 'status.podIP', reason: 'not an IPv4 address: fe80::1' },
      { object: 'networkpolicy x/p', field: 'spec.egress[0].to[0].ipBlock.cidr', reason: 'not an IPv4 CIDR: 10.0.0.0/33' },
      { object: 'networkpolicy x/p', field: 'spec.egress[0].to[1].ipBlock.except[0]', reason: 'not an IPv4 CIDR: nope' },
    ]);
    // The usable peer still applies: 10.244.0.0/16 is allowed.
    expect(s.check('egress', ipOf('x/a'), ipOf('z/c'), 6, 80).allowed).toBe(true);
    expect(s.check('egress', ipOf('x/a'), parseIpv4('10.0.0.1'), 6, 80).allowed).toBe(false);
  });
});
