/**
 * Cases of the Kubernetes NetworkPolicy e2e suite (test/e2e/network/netpol/network_policy.go in
 * kubernetes/kubernetes), restated as data: the pods a case creates (namespaces x, y, z; pods
 * a, b, c labelled pod=<name>; each serving 80 and 81 as serve-<port>-<proto>), the policies it
 * applies, and the truth table it expects per port and protocol, built the way the suite builds
 * it (start from all-true, then ExpectPeer / ExpectAllIngress / ExpectAllEgress / Expect).
 * Loopback (a pod to itself) is not judged, as the suite does (`ignoreLoopback`).
 *
 * Used by the engine-level conformance test (test/policy/conformance.test.ts) and by the lab
 * (test/policy/netpol-e2e.netns.test.ts: the same policies through etcd, real probes between pod
 * namespaces). Every case of the suite as read at kubernetes/kubernetes 008b3652 is restated
 * here. The cases that change a policy, a pod's labels or a namespace's labels between two
 * checks are E2E_UPDATE_CASES: a list of states, each with its policies, the labels added so far
 * and its checks; the cases that only add a policy between two checks are restated per check in
 * E2E_CASES.
 */

import type { LabelSelector, NetworkPolicy, NetworkPolicyEgressRule, NetworkPolicyIngressRule, NetworkPolicyPort } from '../../src/policy/objects.js';

export type PodName = `${'x' | 'y' | 'z'}/${'a' | 'b' | 'c'}`;
export type Proto = 'TCP' | 'UDP' | 'SCTP';
interface PeerSel { readonly ns?: string; readonly pod?: string }

/** A truth table over a case's pods: reach.get(from, to). */
export class Reachability {
  private readonly m = new Map<string, boolean>();
  constructor(readonly pods: readonly PodName[], dflt = true) {
    for (const f of pods) for (const t of pods) this.m.set(`${f}>${t}`, dflt);
  }
  private static match(p: PodName, s: PeerSel): boolean {
    return (s.ns === undefined || p.startsWith(`${s.ns}/`)) && (s.pod === undefined || p.endsWith(`/${s.pod}`));
  }
  expectPeer(from: PeerSel, to: PeerSel, v: boolean): this {
    for (const f of this.pods) for (const t of this.pods) if (Reachability.match(f, from) && Reachability.match(t, to)) this.m.set(`${f}>${t}`, v);
    return this;
  }
  expectAllIngress(to: PodName, v: boolean): this { return this.expectPeer({}, { ns: to[0], pod: to[2] }, v); }
  expectAllEgress(from: PodName, v: boolean): this { return this.expectPeer({ ns: from[0], pod: from[2] }, {}, v); }
  expect(from: PodName, to: PodName, v: boolean): this { return this.expectPeer({ ns: from[0], pod: from[2] }, { ns: to[0], pod: to[2] }, v); }
  get(from: PodName, to: PodName): boolean { return this.m.get(`${from}>${to}`)!; }
}

export interface Check { readonly port: number; readonly proto: Proto; readonly expect: Reachability }
/** The policies of a case whose ipBlocks are made from the pods' addresses, given them (as the suite reads Pod.status.podIP). */
export type PoliciesFor = (ip: (p: PodName) => string) => readonly NetworkPolicy[];
export interface E2eCase {
  readonly name: string;
  readonly pods: readonly PodName[];
  readonly policies: readonly NetworkPolicy[] | PoliciesFor;
  readonly checks: readonly Check[];
}

/** policiesOf: a case's policies, its pods having the addresses `ip` gives. */
export const policiesOf = (c: E2eCase, ip: (p: PodName) => string): readonly NetworkPolicy[] => (typeof c.policies === 'function' ? c.policies(ip) : c.policies);

const pol = (ns: string, name: string, podSelector: LabelSelector, o: { ingress?: NetworkPolicyIngressRule[]; egress?: NetworkPolicyEgressRule[]; types?: ('Ingress' | 'Egress')[] }): NetworkPolicy => ({
  metadata: { name, namespace: ns },
  spec: { podSelector, ...(o.ingress ? { ingress: o.ingress } : {}), ...(o.egress ? { egress: o.egress } : {}), policyTypes: o.types ?? [...(o.ingress ? ['Ingress' as const] : []), ...(o.egress ? ['Egress' as const] : [])] },
});
const podSel = (pod: string): LabelSelector => ({ matchLabels: { pod } });
const nsName = (ns: string): LabelSelector => ({ matchLabels: { 'kubernetes.io/metadata.name': ns } });
const tcp = (port: number | string): NetworkPolicyPort => ({ protocol: 'TCP', port });
const R = (pods: readonly PodName[]): Reachability => new Reachability(pods);
const all = ['x/a', 'x/b', 'x/c', 'y/a', 'y/b', 'y/c', 'z/a', 'z/b', 'z/c'] as const satisfies readonly PodName[];

export const E2E_CASES: readonly E2eCase[] = [
  ((p: PodName[]) => ({ name: "should support a 'default-deny-ingress' policy", pods: p, policies: [pol('x', 'deny-ingress', {}, { ingress: [] })], checks: [{ port: 80, proto: 'TCP', expect: R(p).expectPeer({}, { ns: 'x' }, false) }] }))(['x/a', 'x/b', 'y/a', 'y/b']),
  ((p: PodName[]) => ({ name: "should support a 'default-deny-all' policy", pods: p, policies: [pol('x', 'deny-all', {}, { ingress: [], egress: [] })], checks: [{ port: 80, proto: 'TCP', expect: R(p).expectPeer({}, { ns: 'x' }, false).expectPeer({ ns: 'x' }, {}, false) }] }))(['x/a', 'x/b', 'y/a']),
  ((p: PodName[]) => ({ name: 'should enforce policy to allow traffic from pods within server namespace based on PodSelector', pods: p, policies: [pol('x', 'x-a-allows-x-b', podSel('a'), { ingress: [{ from: [{ podSelector: podSel('b') }] }] })], checks: [{ port: 80, proto: 'TCP', expect: R(p).expectAllIngress('x/a', false).expect('x/b', 'x/a', true) }] }))(['x/a', 'x/b', 'x/c', 'y/a']),
  ((p: PodName[]) => ({ name: 'should enforce policy to allow ingress traffic for a target', pods: p, policies: [pol('x', 'deny-all', {}, { ingress: [] }), pol('x', 'allow-all-to-a', podSel('a'), { ingress: [{ from: [{ podSelector: {}, namespaceSelector: {} }] }] })], checks: [{ port: 80, proto: 'TCP', expect: R(p).expectAllIngress('x/a', true).expectAllIngress('x/b', false) }] }))(['x/a', 'x/b', 'y/a']),
  ((p: PodName[]) => ({ name: 'should enforce policy to allow ingress traffic from pods in all namespaces', pods: p, policies: [pol('x', 'allow-from-another-ns', podSel('a'), { ingress: [{ from: [{ namespaceSelector: { matchLabels: {} } }] }] })], checks: [{ port: 80, proto: 'TCP', expect: R(p) }] }))(['x/a', 'x/b', 'y/a', 'z/a']),
  ((p: PodName[]) => ({ name: 'should enforce policy to allow traffic only from a different namespace, based on NamespaceSelector', pods: p, policies: [pol('x', 'allow-client-a-via-ns-selector', podSel('a'), { ingress: [{ from: [{ namespaceSelector: nsName('y') }] }] })], checks: [{ port: 80, proto: 'TCP', expect: R(p).expectPeer({ ns: 'x' }, { ns: 'x', pod: 'a' }, false).expectPeer({ ns: 'z' }, { ns: 'x', pod: 'a' }, false) }] }))(['x/a', 'x/b', 'y/a', 'z/a']),
  ((p: PodName[]) => ({ name: 'should enforce policy based on PodSelector with MatchExpressions', pods: p, policies: [pol('x', 'x-a-allows-x-b', podSel('a'), { ingress: [{ from: [{ podSelector: { matchExpressions: [{ key: 'pod', operator: 'In', values: ['b'] }] } }] }] })], checks: [{ port: 80, proto: 'TCP', expect: R(p).expectAllIngress('x/a', false).expect('x/b', 'x/a', true) }] }))(['x/a', 'x/b', 'y/a']),
  ((p: PodName[]) => ({ name: 'should enforce policy based on NamespaceSelector with MatchExpressions', pods: p, policies: [pol('x', 'allow-ns-y-match-selector', podSel('a'), { ingress: [{ from: [{ namespaceSelector: { matchExpressions: [{ key: 'kubernetes.io/metadata.name', operator: 'In', values: ['y'] }] } }] }] })], checks: [{ port: 80, proto: 'TCP', expect: R(p).expectPeer({ ns: 'x' }, { ns: 'x', pod: 'a' }, false).expectPeer({ ns: 'z' }, { ns: 'x', pod: 'a' }, false) }] }))(['x/a', 'x/b', 'y/a', 'z/a']),
  ((p: PodName[]) => ({ name: 'should enforce policy based on PodSelector or NamespaceSelector', pods: p, policies: [pol('x', 'allow-ns-y-match-selector', podSel('a'), { ingress: [{ from: [{ namespaceSelector: { matchExpressions: [{ key: 'kubernetes.io/metadata.name', operator: 'NotIn', values: ['x'] }] } }, { podSelector: podSel('b') }] }] })], checks: [{ port: 80, proto: 'TCP', expect: R(p).expect('x/a', 'x/a', false).expect('x/c', 'x/a', false) }] }))(['x/a', 'x/b', 'x/c', 'y/a']),
  ((p: PodName[]) => ({ name: 'should enforce policy based on PodSelector and NamespaceSelector', pods: p, policies: [pol('x', 'allow-ns-y-podselector-and-nsselector', podSel('a'), { ingress: [{ from: [{ namespaceSelector: { matchExpressions: [{ key: 'kubernetes.io/metadata.name', operator: 'NotIn', values: ['x'] }] }, podSelector: podSel('b') }] }] })], checks: [{ port: 80, proto: 'TCP', expect: R(p).expectAllIngress('x/a', false).expect('y/b', 'x/a', true).expect('z/b', 'x/a', true) }] }))(['x/a', 'x/b', 'y/a', 'y/b', 'z/b']),
  ((p: PodName[]) => ({ name: 'should enforce policy based on Multiple PodSelectors and NamespaceSelectors', pods: p, policies: [pol('x', 'allow-ns-y-z-pod-b-c', podSel('a'), { ingress: [{ from: [{ namespaceSelector: { matchExpressions: [{ key: 'kubernetes.io/metadata.name', operator: 'NotIn', values: ['x'] }] }, podSelector: { matchExpressions: [{ key: 'pod', operator: 'In', values: ['b', 'c'] }] } }] }] })], checks: [{ port: 80, proto: 'TCP', expect: R(p).expectPeer({ ns: 'x' }, { ns: 'x', pod: 'a' }, false).expect('y/a', 'x/a', false) }] }))(['x/a', 'x/b', 'y/a', 'y/b', 'y/c']),
  ((p: PodName[]) => ({ name: 'should enforce policy based on any PodSelectors', pods: p, policies: [pol('x', 'allow-ns-x-pod-b-c', podSel('a'), { ingress: [{ from: [{ podSelector: podSel('b') }, { podSelector: podSel('c') }] }] })], checks: [{ port: 80, proto: 'TCP', expect: R(p).expectAllIngress('x/a', false).expect('x/b', 'x/a', true).expect('x/c', 'x/a', true) }] }))(['x/a', 'x/b', 'x/c']),
  ((p: PodName[]) => ({ name: 'should enforce policy to allow traffic only from a pod in a different namespace based on PodSelector and NamespaceSelector', pods: p, policies: [pol('x', 'allow-ns-y-pod-a-via-namespace-pod-selector', podSel('a'), { ingress: [{ from: [{ namespaceSelector: nsName('y'), podSelector: podSel('a') }] }] })], checks: [{ port: 80, proto: 'TCP', expect: R(p).expectAllIngress('x/a', false).expect('y/a', 'x/a', true) }] }))(['x/a', 'x/b', 'y/a', 'y/b', 'z/a']),
  ((p: PodName[]) => ({ name: 'should enforce policy based on Ports', pods: p, policies: [pol('x', 'allow-client-a-via-ns-selector', podSel('a'), { ingress: [{ from: [{ namespaceSelector: nsName('y') }], ports: [tcp(81)] }] })], checks: [{ port: 81, proto: 'TCP', expect: R(p).expectPeer({ ns: 'x' }, { ns: 'x', pod: 'a' }, false).expectPeer({ ns: 'y' }, { ns: 'x', pod: 'a' }, true).expectPeer({ ns: 'z' }, { ns: 'x', pod: 'a' }, false) }] }))(['x/a', 'x/b', 'y/a', 'y/b', 'z/a']),
  ((p: PodName[]) => ({ name: 'should enforce multiple, stacked policies with overlapping podSelectors', pods: p,
    policies: [pol('x', 'allow-client-a-via-ns-selector', podSel('a'), { ingress: [{ from: [{ namespaceSelector: nsName('y') }], ports: [tcp(81)] }] }), pol('x', 'allow-client-a-via-ns-selector-80', podSel('a'), { ingress: [{ from: [{ namespaceSelector: nsName('y') }], ports: [tcp(80)] }] })],
    checks: [80, 81].map((port) => ({ port, proto: 'TCP' as const, expect: R(p).expectPeer({ ns: 'x' }, { ns: 'x', pod: 'a' }, false).expectPeer({ ns: 'y' }, { ns: 'x', pod: 'a' }, true).expectPeer({ ns: 'z' }, { ns: 'x', pod: 'a' }, false) })) }))(['x/a', 'x/b', 'y/a', 'y/b', 'z/a']),
  ((p: PodName[]) => ({ name: 'should support allow-all policy', pods: p, policies: [pol('x', 'allow-all', {}, { ingress: [{}] })], checks: [80, 81].map((port) => ({ port, proto: 'TCP' as const, expect: R(p) })) }))(['x/a', 'x/b', 'y/a']),
  ((p: PodName[]) => ({ name: 'should allow ingress access on one named port', pods: p, policies: [pol('x', 'allow-all', {}, { ingress: [{ ports: [{ port: 'serve-81-tcp' }] }] })], checks: [{ port: 81, proto: 'TCP', expect: R(p) }, { port: 80, proto: 'TCP', expect: R(p).expectPeer({}, { ns: 'x' }, false) }] }))(['x/a', 'x/b', 'y/a']),
  ((p: PodName[]) => ({ name: 'should allow ingress access from namespace on one named port', pods: p, policies: [pol('x', 'allow-client-a-via-ns-selector-80', podSel('a'), { ingress: [{ from: [{ namespaceSelector: nsName('y') }], ports: [tcp('serve-80-tcp')] }] })],
    checks: [{ port: 80, proto: 'TCP', expect: R(p).expectPeer({ ns: 'x' }, { ns: 'x', pod: 'a' }, false).expectPeer({ ns: 'z' }, { ns: 'x', pod: 'a' }, false) }, { port: 81, proto: 'TCP', expect: R(p).expectAllIngress('x/a', false) }] }))(['x/a', 'x/b', 'y/a', 'z/a']),
  ((p: PodName[]) => ({ name: 'should allow egress access on one named port', pods: p, policies: [pol('x', 'allow-egress', {}, { egress: [{ ports: [{ port: 'serve-80-tcp' }] }] })], checks: [{ port: 80, proto: 'TCP', expect: R(p) }, { port: 81, proto: 'TCP', expect: R(p).expectPeer({ ns: 'x' }, {}, false) }] }))(['x/a', 'y/a']),
  ((p: PodName[]) => ({ name: 'should deny ingress from pods on other namespaces', pods: p, policies: [pol('x', 'deny-empty-policy', {}, { ingress: [{ from: [{ podSelector: { matchLabels: {} } }] }] })], checks: [{ port: 80, proto: 'TCP', expect: R(p).expectPeer({ ns: 'y' }, { ns: 'x' }, false).expectPeer({ ns: 'z' }, { ns: 'x' }, false) }] }))(['x/a', 'x/b', 'y/a', 'z/a']),
  ((p: PodName[]) => ({ name: 'should deny egress from pods based on PodSelector', pods: p, policies: [pol('x', 'deny-egress-pod-a', podSel('a'), { egress: [] , types: ['Egress'] })], checks: [{ port: 80, proto: 'TCP', expect: R(p).expectAllEgress('x/a', false) }] }))(['x/a', 'x/b', 'y/a']),
  ((p: PodName[]) => ({ name: 'should deny egress from all pods in a namespace', pods: p, policies: [pol('x', 'deny-egress-ns-x', {}, { egress: [], types: ['Egress'] })], checks: [{ port: 80, proto: 'TCP', expect: R(p).expectPeer({ ns: 'x' }, {}, false) }] }))(['x/a', 'x/b', 'y/a']),
  ((p: PodName[]) => ({ name: 'should work with Ingress, Egress specified together', pods: p, policies: [pol('x', 'allow-client-a-via-pod-selector', podSel('a'), { ingress: [{ from: [{ podSelector: podSel('b') }] }], egress: [{ ports: [{ port: 80 }] }], types: ['Egress', 'Ingress'] })],
    checks: [{ port: 80, proto: 'TCP', expect: R(p).expectAllIngress('x/a', false).expect('x/b', 'x/a', true) }, { port: 81, proto: 'TCP', expect: R(p).expectAllIngress('x/a', false).expectAllEgress('x/a', false).expect('x/b', 'x/a', true) }] }))(['x/a', 'x/b', 'x/c', 'y/a']),
  ((p: PodName[]) => ({ name: 'should support denying of egress traffic on the client side (even if the server explicitly allows this traffic)', pods: p,
    policies: [
      pol('x', 'allow-to-ns-y-pod-a', podSel('a'), { egress: [{ to: [{ namespaceSelector: nsName('y'), podSelector: podSel('a') }] }] }),
      pol('y', 'allow-from-xa-on-ya-match-selector', podSel('a'), { ingress: [{ from: [{ namespaceSelector: nsName('x'), podSelector: podSel('a') }] }] }),
      pol('y', 'allow-from-xa-on-yb-match-selector', podSel('b'), { ingress: [{ from: [{ namespaceSelector: nsName('x'), podSelector: podSel('a') }] }] }),
    ],
    checks: [{ port: 80, proto: 'TCP', expect: R(p).expectPeer({ ns: 'x', pod: 'a' }, {}, false).expectPeer({}, { ns: 'y', pod: 'a' }, false).expectPeer({ ns: 'x', pod: 'a' }, { ns: 'y', pod: 'a' }, true).expectPeer({}, { ns: 'y', pod: 'b' }, false) }] }))(['x/a', 'y/a', 'y/b']),
  ((p: PodName[]) => ({ name: 'should enforce egress policy allowing traffic to a server in a different namespace based on PodSelector and NamespaceSelector', pods: p, policies: [pol('x', 'allow-to-ns-y-pod-a', podSel('a'), { egress: [{ to: [{ namespaceSelector: nsName('y'), podSelector: podSel('a') }] }] })], checks: [{ port: 80, proto: 'TCP', expect: R(p).expectAllEgress('x/a', false).expect('x/a', 'y/a', true) }] }))(['x/a', 'y/a', 'y/b']),
  ((p: PodName[]) => ({ name: 'should enforce policy to allow traffic based on NamespaceSelector with MatchLabels using default ns label', pods: p, policies: [pol('x', 'allow-client-a-via-ns-selector-for-immutable-ns-label', podSel('a'), { ingress: [{ from: [{ namespaceSelector: nsName('y') }] }] })], checks: [{ port: 80, proto: 'TCP', expect: R(p).expectPeer({ ns: 'x' }, { ns: 'x', pod: 'a' }, false).expectPeer({ ns: 'z' }, { ns: 'x', pod: 'a' }, false) }] }))(['x/a', 'x/b', 'y/a', 'z/a']),
  ((p: PodName[]) => ({ name: 'should enforce policy based on NamespaceSelector with MatchExpressions using default ns label', pods: p, policies: [pol('x', 'allow-ns-y-match-selector-for-immutable-ns-label', podSel('a'), { egress: [{ to: [{ namespaceSelector: { matchExpressions: [{ key: 'kubernetes.io/metadata.name', operator: 'NotIn', values: ['y'] }] } }] }] })], checks: [{ port: 80, proto: 'TCP', expect: R(p).expectPeer({ ns: 'x', pod: 'a' }, { ns: 'y' }, false) }] }))(['x/a', 'x/b', 'y/a', 'z/a']),
  // "NetworkPolicy between server and client using UDP" and "... using SCTP" ([Feature:SCTPConnectivity]).
  ...(['UDP', 'SCTP'] as const).flatMap((proto) => [
    ((p: PodName[]) => ({ name: `should support a 'default-deny-ingress' policy (${proto})`, pods: p, policies: [pol('x', 'deny-all', {}, { ingress: [] })], checks: [{ port: 80, proto, expect: R(p).expectPeer({}, { ns: 'x' }, false) }] }))(['x/a', 'x/b', 'y/a', 'y/b']),
    ((p: PodName[]) => ({ name: `should enforce policy based on Ports (${proto})`, pods: p, policies: [pol('x', 'allow-ingress-on-port-81-ns-x', podSel('a'), { ingress: [{ from: [{ namespaceSelector: nsName('y') }], ports: [{ protocol: proto, port: 81 }] }] })], checks: [{ port: 81, proto, expect: R(p).expectPeer({ ns: 'x' }, { ns: 'x', pod: 'a' }, false).expectPeer({ ns: 'z' }, { ns: 'x', pod: 'a' }, false) }] }))(['x/a', 'x/b', 'y/a', 'z/a']),
    ((p: PodName[]) => ({ name: `should enforce policy to allow traffic only from a pod in a different namespace based on PodSelector and NamespaceSelector (${proto})`, pods: p, policies: [pol('x', 'allow-ns-y-pod-a-via-namespace-pod-selector', podSel('a'), { ingress: [{ from: [{ namespaceSelector: nsName('y'), podSelector: podSel('a') }] }] })], checks: [{ port: 80, proto, expect: R(p).expectAllIngress('x/a', false).expect('y/a', 'x/a', true) }] }))(['x/a', 'x/b', 'y/a']),
  ] satisfies E2eCase[]),
  ((p: PodName[]) => ({ name: 'should enforce ingress policy allowing any port traffic to a server on a specific protocol', pods: p, policies: [pol('x', 'allow-ingress-by-proto', podSel('a'), { ingress: [{ ports: [{ protocol: 'TCP' }] }] })], checks: [{ port: 80, proto: 'TCP', expect: R(p) }, { port: 80, proto: 'UDP', expect: R(p).expectAllIngress('x/a', false) }] }))(['x/a', 'y/a']),
  // The suite's cases that add a policy between two checks: each check is the state its
  // policies make, restated as a case of its own ("first check", "second check").
  ((p: PodName[]) => ({ name: 'should enforce multiple ingress policies with ingress allow-all policy taking precedence (first check: port 80 only)', pods: p, policies: [pol('x', 'allow-ingress-port-80', {}, { ingress: [{ ports: [{ port: 80 }] }] })], checks: [{ port: 81, proto: 'TCP', expect: R(p).expectPeer({}, { ns: 'x' }, false) }] }))(['x/a', 'y/a']),
  ((p: PodName[]) => ({ name: 'should enforce multiple ingress policies with ingress allow-all policy taking precedence (second check: allow-all added)', pods: p, policies: [pol('x', 'allow-ingress-port-80', {}, { ingress: [{ ports: [{ port: 80 }] }] }), pol('x', 'allow-ingress', {}, { ingress: [{}] })], checks: [{ port: 81, proto: 'TCP', expect: R(p) }] }))(['x/a', 'y/a']),
  ((p: PodName[]) => ({ name: 'should enforce multiple egress policies with egress allow-all policy taking precedence (first check: port 80 only)', pods: p, policies: [pol('x', 'allow-egress-port-80', {}, { egress: [{ ports: [{ port: 80 }] }] })], checks: [{ port: 81, proto: 'TCP', expect: R(p).expectPeer({ ns: 'x' }, {}, false) }] }))(['x/a', 'y/a']),
  ((p: PodName[]) => ({ name: 'should enforce multiple egress policies with egress allow-all policy taking precedence (second check: allow-all added)', pods: p, policies: [pol('x', 'allow-egress-port-80', {}, { egress: [{ ports: [{ port: 80 }] }] }), pol('x', 'allow-egress', {}, { egress: [{}] })], checks: [{ port: 81, proto: 'TCP', expect: R(p) }] }))(['x/a', 'y/a']),
  // The second check (after the deletion, everything reachable) is what the lab test probes after every case.
  ((p: PodName[]) => ({ name: 'should stop enforcing policies after they are deleted', pods: p, policies: [pol('x', 'deny-all', {}, { ingress: [], egress: [] })], checks: [{ port: 80, proto: 'TCP', expect: R(p).expectPeer({ ns: 'x' }, {}, false).expectPeer({}, { ns: 'x' }, false) }] }))(['x/a', 'y/a']),
  ((p: PodName[]) => ({ name: 'should enforce policies to check ingress and egress policies can be controlled independently based on PodSelector (first check: egress allowed)', pods: p, policies: [pol('x', 'allow-egress-for-target', podSel('a'), { egress: [{}] })], checks: [{ port: 80, proto: 'TCP', expect: R(p) }] }))(['x/a', 'x/b', 'y/a']),
  ((p: PodName[]) => ({ name: 'should enforce policies to check ingress and egress policies can be controlled independently based on PodSelector (second check: ingress denied)', pods: p, policies: [pol('x', 'allow-egress-for-target', podSel('a'), { egress: [{}] }), pol('x', 'deny-ingress-via-label-selector', podSel('a'), { ingress: [], types: ['Ingress'] })], checks: [{ port: 80, proto: 'TCP', expect: R(p).expectAllIngress('x/a', false) }] }))(['x/a', 'x/b', 'y/a']),
  // ipBlock: CIDRs made from the pods' addresses.
  ((p: PodName[]) => ({ name: 'should allow egress access to server in CIDR block', pods: p, policies: (ip: (q: PodName) => string) => [pol('x', 'allow-client-a-via-cidr-egress-rule', podSel('a'), { egress: [{ to: [{ ipBlock: { cidr: `${ip('y/b')}/32` } }] }] })], checks: [{ port: 80, proto: 'TCP', expect: R(p).expectAllEgress('x/a', false).expect('x/a', 'y/b', true) }] }))(['x/a', 'y/a', 'y/b']),
  ((p: PodName[]) => ({ name: 'should enforce except clause while egress access to server in CIDR block', pods: p, policies: (ip: (q: PodName) => string) => [pol('x', 'allow-client-a-via-cidr-egress-rule', podSel('a'), { egress: [{ to: [{ ipBlock: { cidr: largeCidr(ip('x/b')), except: [`${ip('x/b')}/32`] } }] }] })], checks: [{ port: 80, proto: 'TCP', expect: R(p).expect('x/a', 'x/b', false) }] }))(['x/a', 'x/b', 'x/c']),
  ((p: PodName[]) => ({ name: 'should ensure an IP overlapping both IPBlock.CIDR and IPBlock.Except is allowed (first check: excepted)', pods: p, policies: (ip: (q: PodName) => string) => [pol('x', 'allow-client-a-via-cidr-egress-rule', podSel('a'), { egress: [{ to: [{ ipBlock: { cidr: largeCidr(ip('x/b')), except: [`${ip('x/b')}/32`] } }] }] })], checks: [{ port: 80, proto: 'TCP', expect: R(p).expect('x/a', 'x/b', false) }] }))(['x/a', 'x/b', 'x/c']),
  // The suite updates the policy in place; its second state is this policy alone.
  ((p: PodName[]) => ({ name: 'should ensure an IP overlapping both IPBlock.CIDR and IPBlock.Except is allowed (second check: the policy updated to allow it)', pods: p, policies: (ip: (q: PodName) => string) => [pol('x', 'allow-client-a-via-cidr-egress-rule', podSel('a'), { egress: [{ to: [{ ipBlock: { cidr: `${ip('x/b')}/32` } }] }] })], checks: [{ port: 80, proto: 'TCP', expect: R(p).expectAllEgress('x/a', false).expect('x/a', 'x/b', true) }] }))(['x/a', 'x/b', 'x/c']),
  // A policy for another protocol must not open TCP (the suite: "a security hole if you fail this test").
  ((p: PodName[]) => ({ name: "should not mistakenly treat 'protocol: SCTP' as 'protocol: TCP', even if the plugin doesn't support SCTP", pods: p, policies: [pol('x', 'deny-ingress', {}, { ingress: [] }), pol('x', 'allow-only-sctp-ingress-on-port-81', podSel('a'), { ingress: [{ ports: [{ protocol: 'SCTP', port: 81 }] }] })], checks: [{ port: 81, proto: 'TCP', expect: R(p).expectPeer({}, { ns: 'x' }, false) }] }))(['x/a', 'y/a']),
  ((p: PodName[]) => ({ name: "should properly isolate pods that are selected by a policy allowing SCTP, even if the plugin doesn't support SCTP", pods: p, policies: [pol('x', 'allow-only-sctp-ingress-on-port-80', podSel('a'), { ingress: [{ ports: [{ protocol: 'SCTP', port: 80 }] }] })], checks: [{ port: 81, proto: 'TCP', expect: R(p).expectAllIngress('x/a', false) }] }))(['x/a', 'y/a']),
  ((p: PodName[]) => ({ name: 'should not allow access by TCP when a policy specifies only UDP', pods: p, policies: [pol('x', 'allow-only-udp-ingress-on-port-81', podSel('a'), { ingress: [{ ports: [{ protocol: 'UDP', port: 81 }] }] })], checks: [{ port: 81, proto: 'TCP', expect: R(p).expectAllIngress('x/a', false) }] }))(['x/a', 'y/a']),
];

/**
 * largeCidr: a large block around an IPv4 address, as the suite's makeLargeCIDRForIP makes one
 * for its except cases: here the /4 that holds it, written as its network address (every pod of
 * 10.244.0.0/16 is inside).
 */
function largeCidr(ip: string): string {
  const first = Number(ip.split('.')[0]) & 0xf0;
  return `${first}.0.0.0/4`;
}

/** Labels a step of an update case adds to a pod ('x/b') or a namespace ('y'). */
export interface LabelChange { readonly kind: 'Pod' | 'Namespace'; readonly name: string; readonly add: Readonly<Record<string, string>> }
/** One state of an update case: the policies in force (an update keeps the name), the labels added so far, the checks then. */
export interface E2eStep { readonly policies: readonly NetworkPolicy[]; readonly labels: readonly LabelChange[]; readonly checks: readonly Check[] }
/** A case of the suite that changes a policy in place or a pod's or namespace's labels between two checks. */
export interface E2eUpdateCase { readonly name: string; readonly pods: readonly PodName[]; readonly steps: readonly E2eStep[] }

const nsLabel = (ns: string, add: Record<string, string>): LabelChange => ({ kind: 'Namespace', name: ns, add });
const podLabel = (pod: PodName, add: Record<string, string>): LabelChange => ({ kind: 'Pod', name: pod, add });

export const E2E_UPDATE_CASES: readonly E2eUpdateCase[] = [
  ((p: PodName[]) => ({ name: 'should enforce updated policy', pods: p, steps: [
    { policies: [pol('x', 'allow-all-mutate-to-deny-all', {}, { ingress: [{}] })], labels: [], checks: [{ port: 81, proto: 'TCP' as const, expect: R(p) }] },
    { policies: [pol('x', 'allow-all-mutate-to-deny-all', {}, { ingress: [] })], labels: [], checks: [{ port: 81, proto: 'TCP' as const, expect: R(p).expectPeer({}, { ns: 'x' }, false) }] },
  ] }))(['x/a', 'y/a']),
  ((p: PodName[]) => {
    const policies = [pol('x', 'allow-client-a-via-ns-selector', podSel('a'), { ingress: [{ from: [{ namespaceSelector: { matchLabels: { ns2: 'updated' } } }] }] })];
    return { name: 'should allow ingress access from updated namespace', pods: p, steps: [
      { policies, labels: [], checks: [{ port: 80, proto: 'TCP' as const, expect: R(p).expectAllIngress('x/a', false) }] },
      { policies, labels: [nsLabel('y', { ns2: 'updated' })], checks: [{ port: 80, proto: 'TCP' as const, expect: R(p).expectAllIngress('x/a', false).expectPeer({ ns: 'y' }, {}, true) }] },
    ] };
  })(['x/a', 'y/a']),
  ((p: PodName[]) => {
    const policies = [pol('x', 'allow-client-a-via-pod-selector', podSel('a'), { ingress: [{ from: [{ podSelector: { matchLabels: { pod: 'b', pod2: 'updated' } } }] }] })];
    return { name: 'should allow ingress access from updated pod', pods: p, steps: [
      { policies, labels: [], checks: [{ port: 80, proto: 'TCP' as const, expect: R(p).expectAllIngress('x/a', false) }] },
      { policies, labels: [podLabel('x/b', { pod2: 'updated' })], checks: [{ port: 80, proto: 'TCP' as const, expect: R(p).expectAllIngress('x/a', false).expect('x/b', 'x/a', true) }] },
    ] };
  })(['x/a', 'x/b']),
  ((p: PodName[]) => {
    const policies = [pol('x', 'deny-ingress-via-label-selector', { matchLabels: { target: 'isolated' } }, { ingress: [], types: ['Ingress'] })];
    return { name: 'should deny ingress access to updated pod', pods: p, steps: [
      { policies, labels: [], checks: [{ port: 80, proto: 'TCP' as const, expect: R(p) }] },
      { policies, labels: [podLabel('x/a', { target: 'isolated' })], checks: [{ port: 80, proto: 'TCP' as const, expect: R(p).expectAllIngress('x/a', false) }] },
    ] };
  })(['x/a', 'y/a']),
];

export { all as ALL_PODS };
