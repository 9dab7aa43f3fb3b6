/**
 * NetworkPolicy semantics (networking.k8s.io/v1), compiled for the data path.
 *
 * compilePolicies() takes the cluster's Namespaces, Pods and NetworkPolicies and answers, for a
 * pod and a peer address, whether a new connection is allowed in one direction, and by which
 * policy and rule. The rules, as Kubernetes defines them:
 * - A pod is isolated for ingress (egress) when at least one policy in its namespace selects it
 *   and lists Ingress (Egress) in policyTypes; policyTypes defaults to Ingress, plus Egress when
 *   the policy has egress rules. Otherwise everything is allowed in that direction.
 * - When isolated, allowed = the union of every applying policy's rules; order never matters.
 * - A rule allows when a peer matches (no `from`/`to`, or an empty list: every peer) and a port
 *   matches (no `ports`, or an empty list: every port and protocol).
 * - Peers: podSelector alone (pods of the policy's namespace), namespaceSelector alone (every
 *   pod of the matching namespaces), both in one peer (pods matching in namespaces matching),
 *   ipBlock (cidr minus except). ipBlock matches any address, pod addresses included (as
 *   Calico does; Kubernetes leaves pod IPs in ipBlocks to the implementation).
 * - Ports: protocol (TCP by default, UDP, SCTP), a number or the name of a container port of
 *   the destination pod (resolved per pod: the same name may be a different number on each),
 *   endPort for a range.
 * - Ingress from the pod's own node (the node's addresses, `nodeIps`) is always allowed, and a
 *   pod cannot block itself.
 * Connection state (replies) is the caller's: this module judges the first packet.
 *
 * Everything is resolved to numbers when compiling, so a check is set lookups and compares.
 * Objects that cannot be compiled (an unparsable CIDR, a pod without an IP) are left out with a
 * named problem, never thrown: the store validates, this copes.
 */

import { U32Map } from '../fib/u32-map.js';
import { Cidr } from '../fib/cidr.js';
import { parseIpv4, prefixMask } from '../wire/addr.js';
import {
  namespaceLabels, selectorMatches, type ContainerPort, type Namespace, type NetworkPolicy, type NetworkPolicyPeer,
  type NetworkPolicyPort, type Pod, type Protocol,
} from './objects.js';

export const IP_PROTO: Readonly<Record<Protocol, number>> = { TCP: 6, UDP: 17, SCTP: 132 };

export type Direction = 'ingress' | 'egress';

/** Why a check came out as it did. */
export const PolicyReason = {
  /** No policy isolates the pod in this direction. */
  NOT_ISOLATED: 'not-isolated',
  /** Ingress from the pod's own node. */
  FROM_NODE: 'from-node',
  /** The pod talking to itself: a pod cannot block itself. */
  SELF: 'self',
  /** A rule matched (see policy and rule). */
  RULE: 'rule',
  /** Isolated and no rule matched. */
  DENIED: 'denied',
  /** The address is not a pod this policy set knows. */
  UNKNOWN_POD: 'unknown-pod',
} as const;
export type PolicyReason = (typeof PolicyReason)[keyof typeof PolicyReason];

export interface PolicyVerdict {
  allowed: boolean;
  reason: PolicyReason;
  /** The matching rule, when reason is RULE. */
  rule: CompiledRule | null;
}

interface CompiledPeer {
  /** Pods this peer selects, by IP (null: an ipBlock peer). */
  readonly ips: U32Map<true> | null;
  readonly block: Cidr | null;
  readonly except: readonly Cidr[];
}

interface CompiledPort {
  readonly proto: number;
  /** A numeric port range, or -1/-1 with a name. No port at all: lo 0, hi 65535. */
  readonly lo: number;
  readonly hi: number;
  readonly name: string | null;
}

export class CompiledRule {
  hits = 0;
  constructor(
    readonly policy: PolicyCounters,
    readonly direction: Direction,
    /** Index of the rule in the policy's ingress or egress list. */
    readonly index: number,
    /** null: every peer. */
    readonly peers: readonly CompiledPeer[] | null,
    /** null: every port and protocol. */
    readonly ports: readonly CompiledPort[] | null,
  ) {}
}

/** Per-policy counters and what it selects (for `flatnet show policy`). */
export interface PolicyCounters {
  readonly namespace: string;
  readonly name: string;
  readonly types: readonly ('Ingress' | 'Egress')[];
  /** namespace/name of every pod it selects. */
  readonly selects: string[];
  /** Connections this policy's rules allowed. */
  allowed: number;
  /** Connections denied to a pod this policy isolates (a deny is every isolating policy's). */
  denied: number;
  readonly rules: CompiledRule[];
}

interface PodRules {
  readonly key: string;
  readonly ip: number;
  readonly ports: readonly ContainerPort[];
  ingressIsolated: boolean;
  egressIsolated: boolean;
  readonly ingress: CompiledRule[];
  readonly egress: CompiledRule[];
  /** The policies isolating it, per direction (their deny counters). */
  readonly isolatedBy: { ingress: PolicyCounters[]; egress: PolicyCounters[] };
}

export interface PolicyProblem { readonly object: string; readonly field: string; readonly reason: string }

export interface PolicyInputs {
  readonly namespaces: readonly Namespace[];
  readonly pods: readonly Pod[];
  readonly policies: readonly NetworkPolicy[];
  /** The node's own addresses: ingress from them is always allowed. */
  readonly nodeIps?: readonly number[];
}

const nsOf = (m: { namespace?: string }): string => m.namespace ?? 'default';

/** parseCidr: an ipBlock's CIDR as a Cidr (host bits cleared, as before), or null when it is not one. */
function parseCidr(text: string): Cidr | null {
  const m = /^(\d+\.\d+\.\d+\.\d+)\/(\d{1,2})$/.exec(text);
  if (m === null || Number(m[2]) > 32) return null;
  let ip: number;
  try { ip = parseIpv4(m[1]!); } catch { return null; }
  const len = Number(m[2]);
  return new Cidr((ip & prefixMask(len)) >>> 0, len);
}

export class PolicySet {
  readonly policies: PolicyCounters[] = [];
  readonly problems: PolicyProblem[] = [];
  private readonly pods = new U32Map<PodRules>();
  private readonly nodeIps: Set<number>;
  private readonly out: PolicyVerdict = { allowed: true, reason: PolicyReason.NOT_ISOLATED, rule: null };

  constructor(inputs: PolicyInputs) {
    this.nodeIps = new Set((inputs.nodeIps ?? []).map((x) => x >>> 0));
    const nsByName = new Map(inputs.namespaces.map((n) => [n.metadata.name, n]));
    const pods: { pod: Pod; ns: string; ip: number; labels: Readonly<Record<string, string>>; nsLabels: Readonly<Record<string, string>> }[] = [];
    for (const pod of inputs.pods) {
      const ns = nsOf(pod.metadata), key = `${ns}/${pod.metadata.name}`;
      const ipText = pod.status?.podIP;
      if (ipText === undefined) { this.problems.push({ object: `pod ${key}`, field: 'status.podIP', reason: 'no IP yet: not selectable' }); continue; }
      let ip: number;
      try { ip = parseIpv4(ipText) >>> 0; } catch { this.problems.push({ object: `pod ${key}`, field: 'status.podIP', reason: `not an IPv4 address: ${ipText}` }); continue; }
      const labels = pod.metadata.labels ?? {};
      pods.push({ pod, ns, ip, labels, nsLabels: namespaceLabels(nsByName.get(ns), ns) });
      const ports = (pod.spec?.containers ?? []).flatMap((c) => c.ports ?? []);
      this.pods.set(ip, {
        key, ip, ports, ingressIsolated: false, egressIsolated: false, ingress: [], egress: [],
        isolatedBy: { ingress: [], egress: [] },
      });
    }

    const podsByNs = new Map<string, typeof pods>();
    for (const q of pods) {
      const l = podsByNs.get(q.ns);
      if (l === undefined) podsByNs.set(q.ns, [q]); else l.push(q);
    }
    const peerCache = new Map<string, U32Map<true>>();
    const podCache = new Map<string, typeof pods>();
    for (const pol of inputs.policies) {
      const ns = nsOf(pol.metadata), where = `networkpolicy ${ns}/${pol.metadata.name}`;
      const spec = pol.spec;
      const types = spec.policyTypes ?? (spec.egress !== undefined && spec.egress.length > 0 ? ['Ingress', 'Egress'] : ['Ingress']);
      const counters: PolicyCounters = { namespace: ns, name: pol.metadata.name, types, selects: [], allowed: 0, denied: 0, rules: [] };
      this.policies.push(counters);
      const peerSets = (peers: readonly NetworkPolicyPeer[] | undefined, field: string): CompiledPeer[] | null => {
        if (peers === undefined || peers.length === 0) return null;
        const out: CompiledPeer[] = [];
        peers.forEach((p, i) => {
          if (p.ipBlock !== undefined) {
            const block = parseCidr(p.ipBlock.cidr);
            if (block === null) { this.problems.push({ object: where, field: `${field}[${i}].ipBlock.cidr`, reason: `not an IPv4 CIDR: ${p.ipBlock.cidr}` }); return; }
            const except: Cidr[] = [];
            for (const [j, e] of (p.ipBlock.except ?? []).entries()) {
              const c = parseCidr(e);
              if (c === null) this.problems.push({ object: where, field: `${field}[${i}].ipBlock.except[${j}]`, reason: `not an IPv4 CIDR: ${e}` });
              else except.push(c);
            }
            out.push({ ips: null, block, except });
            return;
          }
          // Policies repeat their peers: each distinct (namespace, selectors) is resolved once.
          const key = JSON.stringify([p.namespaceSelector === undefined ? ns : null, p.namespaceSelector ?? null, p.podSelector ?? null]);
          let ips = peerCache.get(key);
          if (ips === undefined) {
            ips = new U32Map<true>();
            for (const q of pods) {
              const nsOk = p.namespaceSelector !== undefined ? selectorMatches(p.namespaceSelector, q.nsLabels) : q.ns === ns;
              if (!nsOk) continue;
              if (p.podSelector !== undefined && !selectorMatches(p.podSelector, q.labels)) continue;
              ips.set(q.ip, true);
            }
            peerCache.set(key, ips);
          }
          out.push({ ips, block: null, except: [] });
        });
        return out;
      };
      const ports = (list: readonly NetworkPolicyPort[] | undefined): CompiledPort[] | null => {
        if (list === undefined || list.length === 0) return null;
        return list.map((p) => {
          const proto = IP_PROTO[p.protocol ?? 'TCP'] ?? 6;
          if (p.port === undefined) return { proto, lo: 0, hi: 65535, name: null };
          if (typeof p.port === 'string') return { proto, lo: -1, hi: -1, name: p.port };
          return { proto, lo: p.port, hi: p.endPort ?? p.port, name: null };
        });
      };
      const ingress = types.includes('Ingress')
        ? (spec.ingress ?? []).map((r, i) => new CompiledRule(counters, 'ingress', i, peerSets(r.from, `spec.ingress[${i}].from`), ports(r.ports)))
        : [];
      const egress = types.includes('Egress')
        ? (spec.egress ?? []).map((r, i) => new CompiledRule(counters, 'egress', i, peerSets(r.to, `spec.egress[${i}].to`), ports(r.ports)))
        : [];
      counters.rules.push(...ingress, ...egress);
      const selKey = JSON.stringify(spec.podSelector);
      let selected = podCache.get(`${ns}\u0000${selKey}`);
      if (selected === undefined) {
        selected = (podsByNs.get(ns) ?? []).filter((q) => selectorMatches(spec.podSelector, q.labels));
        podCache.set(`${ns}\u0000${selKey}`, selected);
      }
      for (const q of selected) {
        const pr = this.pods.get(q.ip)!;
        counters.selects.push(pr.key);
        if (types.includes('Ingress')) { pr.ingressIsolated = true; pr.ingress.push(...ingress); pr.isolatedBy.ingress.push(counters); }
        if (types.includes('Egress')) { pr.egressIsolated = true; pr.egress.push(...egress); pr.isolatedBy.egress.push(counters); }
      }
    }
  }

  /** Whether `ip` is a pod this set knows, and isolated in `dir`. */
  isolated(ip: number, dir: Direction): boolean {
    const p = this.pods.get(ip >>> 0);
    return p !== undefined && (dir === 'ingress' ? p.ingressIsolated : p.egressIsolated);
  }

  /**
   * check judges a new connection of pod `podIp` with `peerIp` in direction `dir` (ingress:
   * peer -> pod, to `port` of the pod; egress: pod -> peer, to `port` of the peer). Pure; the
   * returned object is reused by the next call. count() records it.
   */
  check(dir: Direction, podIp: number, peerIp: number, proto: number, port: number): PolicyVerdict {
    const out = this.out;
    out.rule = null;
    const pod = this.pods.get(podIp >>> 0);
    if (pod === undefined) { out.allowed = true; out.reason = PolicyReason.UNKNOWN_POD; return out; }
    const isolated = dir === 'ingress' ? pod.ingressIsolated : pod.egressIsolated;
    if (!isolated) { out.allowed = true; out.reason = PolicyReason.NOT_ISOLATED; return out; }
    if (peerIp >>> 0 === pod.ip) { out.allowed = true; out.reason = PolicyReason.SELF; return out; }
    if (dir === 'ingress' && this.nodeIps.has(peerIp >>> 0)) { out.allowed = true; out.reason = PolicyReason.FROM_NODE; return out; }
    // Named ports resolve on the destination: the pod itself for ingress, the peer for egress.
    const target = dir === 'ingress' ? pod : this.pods.get(peerIp >>> 0);
    const rules = dir === 'ingress' ? pod.ingress : pod.egress;
    for (let i = 0; i < rules.length; i++) {
      const r = rules[i]!;
      if (peerMatches(r.peers, peerIp >>> 0) && portMatches(r.ports, proto, port, target)) {
        out.allowed = true; out.reason = PolicyReason.RULE; out.rule = r;
        return out;
      }
    }
    out.allowed = false; out.reason = PolicyReason.DENIED;
    return out;
  }

  /** count records a verdict check() returned (the data path's act step). */
  count(dir: Direction, podIp: number, v: PolicyVerdict): void {
    if (v.rule !== null) { v.rule.hits++; v.rule.policy.allowed++; return; }
    if (v.reason !== PolicyReason.DENIED) return;
    const pod = this.pods.get(podIp >>> 0);
    if (pod === undefined) return;
    for (const p of dir === 'ingress' ? pod.isolatedBy.ingress : pod.isolatedBy.egress) p.denied++;
  }
}

function peerMatches(peers: readonly CompiledPeer[] | null, ip: number): boolean {
  if (peers === null) return true;
  for (let i = 0; i < peers.length; i++) {
    const p = peers[i]!;
    if (p.ips !== null) { if (p.ips.has(ip)) return true; continue; }
    if (!p.block!.contains(ip)) continue;
    let excluded = false;
    for (let j = 0; j < p.except.length; j++) if (p.except[j]!.contains(ip)) { excluded = true; break; }
    if (!excluded) return true;
  }
  return false;
}

function portMatches(ports: readonly CompiledPort[] | null, proto: number, port: number, target: PodRules | undefined): boolean {
  if (ports === null) return true;
  for (let i = 0; i < ports.length; i++) {
    const p = ports[i]!;
    if (p.proto !== proto) continue;
    if (p.name === null) { if (port >= p.lo && port <= p.hi) return true; continue; }
    if (target === undefined) continue;
    for (const cp of target.ports) {
      if (cp.name === p.name && IP_PROTO[cp.protocol ?? 'TCP'] === proto && cp.containerPort === port) return true;
    }
  }
  return false;
}
