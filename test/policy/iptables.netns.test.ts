/**
 * The Calico-style rules (src/lab/calico-rules.ts) on the real kernel: a node namespace with the
 * nine pods of the NetworkPolicy e2e suite (x/a .. z/c) on routed veths, as Calico plugs pods in;
 * for each case, the case's policies rendered as ipsets and iptables rules and loaded into the
 * node, real TCP/UDP connections between the case's pods (src/lab/probe.ts), and the grid compared
 * with the suite's truth table. A last case (ipBlock with except, a port range) is compared with
 * flatnet's own policy engine instead. This is what makes the iptables bench measure the same
 * allow/deny set as flatnet's. Everything lives in namespaces this file creates.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { calicoNodeCommands, calicoRules, workloadInterface } from '../../src/lab/calico-rules.js';
import { gridDiff, probeMatrix, ProbeServers, renderGrid, type Grid, type ProbePod } from '../../src/lab/probe.js';
import { PolicySet } from '../../src/policy/engine.js';
import type { NetworkPolicy, Pod } from '../../src/policy/objects.js';
import { parseIpv4 } from '../../src/wire/addr.js';
import { Netns, netnsSkipReason, sh } from '../support/netns.js';
import { ALL_PODS, E2E_CASES, policiesOf, type PodName, type Reachability } from '../support/netpol-cases.js';

// A missing ipset (which .ci/setup installs) skips only when FLATNET_REQUIRE_ORACLES is not 1, as the lab tests do.
const skip = netnsSkipReason() ?? (() => {
  if (process.env['FLATNET_REQUIRE_ORACLES'] === '1') return null;
  try { sh('ipset', ['--version']); return null; } catch { return 'ipset is not installed (run .ci/setup)'; }
})();

const ipOf = (p: PodName): string => `10.244.${'xyz'.indexOf(p[0]!) + 1}.${'abc'.indexOf(p[2]!) + 10}`;
const macOf = (p: PodName): string => `02:00:0a:f4:0${'xyz'.indexOf(p[0]!) + 1}:${'abc'.indexOf(p[2]!) + 10}`;

function podObjects(pods: readonly PodName[]): Pod[] {
  return pods.map((p) => ({
    metadata: { name: p[2]!, namespace: p[0]!, labels: { pod: p[2]! } },
    spec: { containers: [{ ports: (['TCP', 'UDP'] as const).flatMap((protocol) => [80, 81].map((containerPort) => ({ name: `serve-${containerPort}-${protocol.toLowerCase()}`, containerPort, protocol }))) }] },
    status: { podIP: ipOf(p) },
  }));
}

/** The cases run here: every kind of peer, ports by number and by name, egress, both directions, UDP (the SCTP ones cannot run: no SCTP in this kernel). */
const CASES = [
  "should support a 'default-deny-all' policy",
  'should enforce policy to allow traffic from pods within server namespace based on PodSelector',
  'should enforce policy based on PodSelector or NamespaceSelector',
  'should enforce policy based on PodSelector and NamespaceSelector',
  'should enforce multiple, stacked policies with overlapping podSelectors',
  'should allow ingress access from namespace on one named port',
  'should allow egress access on one named port',
  'should work with Ingress, Egress specified together',
  'should support denying of egress traffic on the client side (even if the server explicitly allows this traffic)',
  'should enforce ingress policy allowing any port traffic to a server on a specific protocol',
  'should enforce policy based on NamespaceSelector with MatchExpressions using default ns label',
  "should support a 'default-deny-ingress' policy (UDP)",
  'should enforce policy based on Ports (UDP)',
];

describe.skipIf(skip !== null)(`Calico-style iptables rules on the kernel against the e2e truth tables${skip === null ? '' : ` (skipped: ${skip})`}`, () => {
  const ns = new Netns('i');
  let node = '';
  const podNs = new Map<PodName, string>();
  let servers: ProbeServers | null = null;

  beforeAll(async () => {
    node = ns.add('node');
    for (const p of ALL_PODS) podNs.set(p, ns.add(`${p[0]}${p[2]}`));
    ns.noIpv6(node, ...podNs.values());
    for (const [cmd, args] of calicoNodeCommands(node, ALL_PODS.map((p) => ({ ns: podNs.get(p)!, ip: ipOf(p), mac: macOf(p), iface: workloadInterface(p[0]!, p[2]!) })))) sh(cmd, [...args]);
    servers = await ProbeServers.start(ALL_PODS.map((p) => ({ name: p, netns: podNs.get(p)!, ip: ipOf(p) })), [80, 81]);
  }, 60_000);
  afterAll(() => {
    servers?.stop();
    ns.destroy();
  });

  /** load replaces the node's filter table and ipsets with the rules for `pods` and `policies`. */
  const load = (pods: readonly PodName[], policies: readonly NetworkPolicy[]): void => {
    const r = calicoRules({ namespaces: ['x', 'y', 'z'].map((name) => ({ metadata: { name } })), pods: podObjects(pods), policies });
    ns.exec(node, 'iptables', ['-F']);
    ns.exec(node, 'iptables', ['-X']);
    ns.exec(node, 'ipset', ['destroy']);
    ns.exec(node, 'ipset', ['restore'], { input: r.ipset });
    ns.exec(node, 'iptables-restore', ['--noflush'], { input: r.iptables });
  };
  const probePods = (pods: readonly PodName[]): ProbePod[] => pods.map((p) => ({ name: p, netns: podNs.get(p)!, ip: ipOf(p) }));
  const gridOf = (pods: readonly PodName[], proto: 'tcp' | 'udp', port: number, reach: (f: PodName, t: PodName) => boolean): Grid => ({
    proto, port, pods, reach: Object.fromEntries(pods.map((f) => [f, Object.fromEntries(pods.map((t) => [t, reach(f, t)]))])),
  });
  /** The probed grid's cells that differ from `expected`, loopback left out (the suite does not judge it). */
  const differences = (got: Grid, expected: Grid): string[] => {
    const self = new Set(got.pods.map((p) => `${p} -> ${p}:`));
    return gridDiff(got, expected).filter((d) => ![...self].some((s) => d.startsWith(s)));
  };

  it('with no policy every pod reaches every pod (the rules installed: conntrack, dispatch, profiles)', async () => {
    load(ALL_PODS, []);
    const got = await probeMatrix(probePods(ALL_PODS), 80, 'tcp');
    expect(differences(got, gridOf(ALL_PODS, 'tcp', 80, () => true))).toEqual([]);
  });

  it.each(CASES)('%s', async (name) => {
    const c = E2E_CASES.find((x) => x.name === name);
    expect(c, name).toBeDefined();
    load(c!.pods, policiesOf(c!, ipOf));
    for (const chk of c!.checks) {
      const proto = chk.proto === 'UDP' ? 'udp' : 'tcp';
      const got = await probeMatrix(probePods(c!.pods), chk.port, proto);
      const want = gridOf(c!.pods, proto, chk.port, (f, t) => (chk.expect as Reachability).get(f, t));
      expect(differences(got, want), `${chk.proto}/${chk.port}\n${renderGrid(got, want)}`).toEqual([]);
    }
  });

  it('an ipBlock with except and a port range: the kernel agrees with flatnet\'s engine', async () => {
    const pods = ['x/a', 'x/b', 'y/a', 'y/b', 'z/a'] as const satisfies readonly PodName[];
    const policies: NetworkPolicy[] = [{
      metadata: { name: 'block', namespace: 'x' },
      spec: {
        podSelector: { matchLabels: { pod: 'a' } }, policyTypes: ['Ingress'],
        // y/* (10.244.2.0/24) but y/b (10.244.2.11), and z/a by a second block; TCP 79-80 only.
        ingress: [{ from: [{ ipBlock: { cidr: '10.244.2.0/24', except: ['10.244.2.11/32'] } }, { ipBlock: { cidr: '10.244.3.10/32' } }], ports: [{ protocol: 'TCP', port: 79, endPort: 80 }] }],
      },
    }];
    load(pods, policies);
    const set = new PolicySet({ namespaces: ['x', 'y', 'z'].map((name) => ({ metadata: { name } })), pods: podObjects(pods), policies });
    for (const port of [80, 81]) {
      const engine = (f: PodName, t: PodName): boolean => set.check('egress', parseIpv4(ipOf(f)), parseIpv4(ipOf(t)), 6, port).allowed
        && set.check('ingress', parseIpv4(ipOf(t)), parseIpv4(ipOf(f)), 6, port).allowed;
      const want = gridOf(pods, 'tcp', port, engine);
      const got = await probeMatrix(probePods(pods), port, 'tcp');
      expect(differences(got, want), `TCP/${port}\n${renderGrid(got, want)}`).toEqual([]);
      // The case is not trivial: x/a is reached from y/a on 80 and not from y/b.
      expect([got.reach['y/a']!['x/a'], got.reach['y/b']!['x/a'], got.reach['z/a']!['x/a']]).toEqual([port === 80, false, port === 80]);
    }
  });
});
