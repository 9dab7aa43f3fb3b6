/**
 * The NetworkPolicy e2e suite's truth tables (test/support/netpol-cases.ts) against the policy
 * engine: every case's policies over its pods, every (from, to) pair but loopback checked with
 * the source's egress and the destination's ingress, per port and protocol.
 */
import { describe, expect, it } from 'vitest';
import { PolicySet } from '../../src/policy/engine.js';
import type { Pod } from '../../src/policy/objects.js';
import { parseIpv4 } from '../../src/wire/addr.js';
import { E2E_CASES, type PodName } from '../support/netpol-cases.js';

const ipOf = (p: PodName): string => `10.244.${'xyz'.indexOf(p[0]!) + 1}.${'abc'.indexOf(p[2]!) + 10}`;
const PROTO = { TCP: 6, UDP: 17, SCTP: 132 } as const;

function podObjects(pods: readonly PodName[]): Pod[] {
  return pods.map((p) => ({
    metadata: { name: p[2]!, namespace: p[0]!, labels: { pod: p[2]! } },
    spec: { containers: [{ ports: (['TCP', 'UDP', 'SCTP'] as const).flatMap((protocol) => [80, 81].map((containerPort) => ({ name: `serve-${containerPort}-${protocol.toLowerCase()}`, containerPort, protocol }))) }] },
    status: { podIP: ipOf(p) },
  }));
}

describe('the NetworkPolicy e2e suite, case by case, against the engine', () => {
  it.each(E2E_CASES.map((c) => [c.name, c] as const))('%s', (_name, c) => {
    const set = new PolicySet({ namespaces: ['x', 'y', 'z'].map((name) => ({ metadata: { name } })), pods: podObjects(c.pods), policies: [...c.policies] });
    expect(set.problems).toEqual([]);
    for (const chk of c.checks) {
      const wrong: string[] = [];
      for (const f of c.pods) {
        for (const t of c.pods) {
          if (f === t) continue;
          const got = set.check('egress', parseIpv4(ipOf(f)), parseIpv4(ipOf(t)), PROTO[chk.proto], chk.port).allowed
            && set.check('ingress', parseIpv4(ipOf(t)), parseIpv4(ipOf(f)), PROTO[chk.proto], chk.port).allowed;
          if (got !== chk.expect.get(f, t)) wrong.push(`${chk.proto}/${chk.port} ${f} -> ${t}: expected ${chk.expect.get(f, t) ? '.' : 'X'}`);
        }
      }
      expect(wrong).toEqual([]);
    }
  });

});
