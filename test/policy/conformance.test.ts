/**
 * The NetworkPolicy e2e suite's truth tables (test/support/netpol-cases.ts) against the policy
 * engine: every case's policies over its pods, every (from, to) pair but loopback checked with
 * the source's egress and the destination's ingress, per port and protocol.
 */
import { describe, expect, it } from 'vitest';
import { PolicySet } from '../../src/policy/engine.js';
import type { Pod } from '../../src/policy/objects.js';
import { parseIpv4 } from '../../src/wire/addr.js';
import { E2E_CASES, E2E_UPDATE_CASES, policiesOf, type Check, type LabelChange, type PodName } from '../support/netpol-cases.js';

const ipOf = (p: PodName): string => `10.244.${'xyz'.indexOf(p[0]!) + 1}.${'abc'.indexOf(p[2]!) + 10}`;
const PROTO = { TCP: 6, UDP: 17, SCTP: 132 } as const;

function podObjects(pods: readonly PodName[], labels: readonly LabelChange[] = []): Pod[] {
  return pods.map((p) => ({
    metadata: { name: p[2]!, namespace: p[0]!, labels: Object.assign({ pod: p[2]! }, ...labels.filter((l) => l.kind === 'Pod' && l.name === p).map((l) => l.add)) },
    spec: { containers: [{ ports: (['TCP', 'UDP', 'SCTP'] as const).flatMap((protocol) => [80, 81].map((containerPort) => ({ name: `serve-${containerPort}-${protocol.toLowerCase()}`, containerPort, protocol }))) }] },
    status: { podIP: ipOf(p) },
  }));
}

/** The cells of `chk` the set gets wrong (loopback not judged): the source's egress and the destination's ingress must both allow. */
function wrongCells(set: PolicySet, pods: readonly PodName[], chk: Check): string[] {
  const wrong: string[] = [];
  for (const f of pods) {
    for (const t of pods) {
      if (f === t) continue;
      const got = set.check('egress', parseIpv4(ipOf(f)), parseIpv4(ipOf(t)), PROTO[chk.proto], chk.port).allowed
        && set.check('ingress', parseIpv4(ipOf(t)), parseIpv4(ipOf(f)), PROTO[chk.proto], chk.port).allowed;
      if (got !== chk.expect.get(f, t)) wrong.push(`${chk.proto}/${chk.port} ${f} -> ${t}: expected ${chk.expect.get(f, t) ? '.' : 'X'}`);
    }
  }
  return wrong;
}

describe('the NetworkPolicy e2e suite, case by case, against the engine', () => {
  it.each(E2E_CASES.map((c) => [c.name, c] as const))('%s', (_name, c) => {
    const set = new PolicySet({ namespaces: ['x', 'y', 'z'].map((name) => ({ metadata: { name } })), pods: podObjects(c.pods), policies: [...policiesOf(c, ipOf)] });
    expect(set.problems).toEqual([]);
    for (const chk of c.checks) expect(wrongCells(set, c.pods, chk)).toEqual([]);
  });

  it.each(E2E_UPDATE_CASES.map((c) => [c.name, c] as const))('%s (each state compiled from its objects)', (_name, c) => {
    for (const step of c.steps) {
      const namespaces = ['x', 'y', 'z'].map((name) => ({ metadata: { name, labels: Object.assign({ ns: name }, ...step.labels.filter((l) => l.kind === 'Namespace' && l.name === name).map((l) => l.add)) } }));
      const set = new PolicySet({ namespaces, pods: podObjects(c.pods, step.labels), policies: [...step.policies] });
      expect(set.problems).toEqual([]);
      for (const chk of step.checks) expect(wrongCells(set, c.pods, chk)).toEqual([]);
    }
  });

});
