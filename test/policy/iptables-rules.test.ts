/**
 * The Calico-style rule generator (src/lab/calico-rules.ts) as text: the chains and ipsets a
 * small case renders to, how policies with one selector are grouped, how ipBlocks and named
 * ports become sets, and the typed errors for what it cannot or must not render. The kernel's
 * verdicts on these rules are checked in iptables.netns.test.ts.
 */
import { describe, expect, it } from 'vitest';
import { calicoRules, workloadInterface, type CalicoInputs } from '../../src/lab/calico-rules.js';
import { ConfigError } from '../../src/errors.js';
import type { NetworkPolicy, NetworkPolicyPort, Pod } from '../../src/policy/objects.js';

const pod = (ns: string, name: string, ip: string | undefined, ports: Pod['spec'] = undefined): Pod => ({
  metadata: { name, namespace: ns, labels: { pod: name } }, ...(ports ? { spec: ports } : {}), ...(ip ? { status: { podIP: ip } } : {}),
});
const NS = [{ metadata: { name: 'x' } }, { metadata: { name: 'y' } }];
const A = pod('x', 'a', '10.244.1.10'), B = pod('x', 'b', '10.244.1.11'), YA = pod('y', 'a', '10.244.2.10');
const ingressTo = (name: string, rule: NonNullable<NetworkPolicy['spec']['ingress']>[number]): NetworkPolicy => ({
  metadata: { name, namespace: 'x' }, spec: { podSelector: { matchLabels: { pod: 'a' } }, ingress: [rule] },
});
const lines = (text: string, prefix: string): string[] => text.split('\n').filter((l) => l.startsWith(prefix));

describe('calicoRules', () => {
  const small = calicoRules({
    namespaces: NS, pods: [A, B, YA],
    policies: [ingressTo('a-from-b', { from: [{ podSelector: { matchLabels: { pod: 'b' } } }], ports: [{ protocol: 'TCP', port: 80 }, { protocol: 'UDP', port: 53 }] })],
  });
  const ifA = workloadInterface('x', 'a'), ifB = workloadInterface('x', 'b');
  const set = small.ipset.split('\n')[0]!.split(' ')[1]!;
  const polChain = /-j (cali-pi-\S+)/.exec(small.iptables)![1]!;

  it('names workload interfaces as Calico does: cali + 11 hex digits of SHA-1("namespace.name")', () => {
    expect(ifA).toBe('cali456b416f2bf');
    expect(small.endpoints.get('x/a')).toEqual({ iface: ifA, ip: '10.244.1.10' });
  });

  it('renders a pod selector as a hash:net set of the selected pods', () => {
    expect(set).toMatch(/^cali40s:[A-Za-z0-9_-]{22}$/);
    expect(small.ipset).toBe(`create ${set} hash:net family inet hashsize 1024 maxelem 1048576\nadd ${set} 10.244.1.11/32\n`);
  });

  it('renders the policy chain: one accept-mark rule and one return per protocol of the rule', () => {
    expect(lines(small.iptables, `-A ${polChain} `)).toEqual([
      `-A ${polChain} -p tcp -m set --match-set ${set} src -m multiport --destination-ports 80 -j MARK --set-xmark 0x10000/0x10000`,
      `-A ${polChain} -m mark --mark 0x10000/0x10000 -j RETURN`,
      `-A ${polChain} -p udp -m set --match-set ${set} src -m multiport --destination-ports 53 -j MARK --set-xmark 0x10000/0x10000`,
      `-A ${polChain} -m mark --mark 0x10000/0x10000 -j RETURN`,
    ]);
  });

  it('the isolated pod\'s ingress chain: conntrack first, the policy, then the isolation drop', () => {
    expect(lines(small.iptables, `-A cali-tw-${ifA} `).map((l) => l.slice(`-A cali-tw-${ifA} `.length))).toEqual([
      '-m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT',
      '-m conntrack --ctstate INVALID -j DROP',
      '-j MARK --set-xmark 0x0/0x30000',
      '-m comment --comment "Start of tier default" -j MARK --set-xmark 0x0/0x20000',
      `-m mark --mark 0x0/0x20000 -j ${polChain}`,
      '-m mark --mark 0x10000/0x10000 -m comment --comment "Return if policy accepted" -j RETURN',
      '-m mark --mark 0x0/0x20000 -m comment --comment "Drop if no policies passed packet" -j DROP',
      '-j cali-pri-kns.x',
      '-m mark --mark 0x10000/0x10000 -m comment --comment "Return if profile accepted" -j RETURN',
      '-m comment --comment "Drop if no profiles matched" -j DROP',
    ]);
  });

  it('a pod no policy isolates goes straight to its namespace profile, which accepts', () => {
    expect(lines(small.iptables, `-A cali-tw-${ifB} `).some((l) => l.includes('cali-pi-'))).toBe(false);
    expect(lines(small.iptables, `-A cali-tw-${ifB} `)).toContain(`-A cali-tw-${ifB} -j cali-pri-kns.x`);
    expect(lines(small.iptables, '-A cali-pri-kns.x ')).toEqual(['-A cali-pri-kns.x -j MARK --set-xmark 0x10000/0x10000', '-A cali-pri-kns.x -m mark --mark 0x10000/0x10000 -j RETURN']);
  });

  it('dispatches by interface and accepts in FORWARD on the accept mark', () => {
    expect(small.iptables).toContain(`-A cali-from-wl-dispatch -i ${ifA} -g cali-fw-${ifA}\n`);
    expect(small.iptables).toContain(`-A cali-to-wl-dispatch -o ${ifB} -g cali-tw-${ifB}\n`);
    expect(small.iptables.split('\n').filter((l) => /^-[AI] FORWARD /.test(l))).toEqual([
      '-I FORWARD 1 -j cali-FORWARD',
      '-A FORWARD -m mark --mark 0x10000/0x10000 -m comment --comment "Policy explicitly accepted packet." -j ACCEPT',
      '-A FORWARD -j MARK --set-xmark 0x10000/0x10000',
    ]);
    // Only pods of the given node get endpoint chains.
    const onN1 = calicoRules({ namespaces: NS, pods: [{ ...A, spec: { nodeName: 'n1' } }, { ...B, spec: { nodeName: 'n2' } }], policies: [], node: 'n1' });
    expect([...onN1.endpoints.keys()]).toEqual(['x/a']);
  });

  it('groups policies with one selector into a group chain that checks for a verdict every 5 jumps', () => {
    const policies = Array.from({ length: 12 }, (_, i) => ingressTo(`p${String(i).padStart(2, '0')}`, { ports: [{ port: 80 + i }] }));
    const r = calicoRules({ namespaces: NS, pods: [A], policies });
    const jumps = lines(r.iptables, `-A cali-tw-${ifA} `).filter((l) => / -j cali-g/.test(l));
    expect(jumps).toHaveLength(1);
    const group = /-j (cali-gi-\S+)/.exec(jumps[0]!)![1]!;
    const body = lines(r.iptables, `-A ${group} `);
    expect(body).toHaveLength(12 + 2);
    expect(body.filter((l) => l.includes('Return on verdict'))).toHaveLength(2);
    expect(body[0]).toMatch(new RegExp(`^-A ${group} -j cali-pi-`));
    expect(body[1]).toMatch(new RegExp(`^-A ${group} -m mark --mark 0x0/0x30000 -j cali-pi-`));
    expect(r.counts.chains).toBe(6 + 2 + 12 + 1 + 2);
  });

  it('an ipBlock is its CIDR inline; with except, a hash:net set whose exceptions are nomatch entries', () => {
    const r = calicoRules({ namespaces: NS, pods: [A], policies: [ingressTo('blocks', { from: [{ ipBlock: { cidr: '10.0.0.0/8' } }, { ipBlock: { cidr: '10.244.0.0/16', except: ['10.244.2.0/24', '10.244.3.7/32'] } }] })] });
    const body = lines(r.iptables, '-A cali-pi-');
    expect(body[0]).toMatch(/ -s 10\.0\.0\.0\/8 -j MARK --set-xmark 0x10000\/0x10000$/);
    const name = /--match-set (\S+) src/.exec(body[2]!)![1]!;
    expect(r.ipset).toContain(`add ${name} 10.244.0.0/16\nadd ${name} 10.244.2.0/24 nomatch\nadd ${name} 10.244.3.7/32 nomatch\n`);
  });

  it('a named port is a hash:ip,port set of every pod carrying that name, matched on the destination', () => {
    const ports = { containers: [{ ports: [{ name: 'http', containerPort: 8080 }, { name: 'dns', containerPort: 53, protocol: 'UDP' as const }] }] };
    const r = calicoRules({ namespaces: NS, pods: [pod('x', 'a', '10.244.1.10', ports), pod('y', 'a', '10.244.2.10', ports)], policies: [ingressTo('named', { ports: [{ port: 'http' }] })] });
    const name = /--match-set (cali40n:\S+) dst,dst/.exec(r.iptables)![1]!;
    expect(r.ipset).toContain(`create ${name} hash:ip,port family inet`);
    expect(r.ipset).toContain(`add ${name} 10.244.1.10,tcp:8080\nadd ${name} 10.244.2.10,tcp:8080\n`);
  });

  it('splits more than 15 ports (a range counts twice) into several multiport rules', () => {
    const ports: NetworkPolicyPort[] = [...Array.from({ length: 14 }, (_, i) => ({ port: 1000 + i })), { port: 2000, endPort: 2010 }, { port: 3000 }];
    const r = calicoRules({ namespaces: NS, pods: [A], policies: [ingressTo('many', { ports })] });
    expect(lines(r.iptables, '-A cali-pi-').filter((l) => l.includes('multiport')).map((l) => /--destination-ports (\S+)/.exec(l)![1])).toEqual([
      '1000,1001,1002,1003,1004,1005,1006,1007,1008,1009,1010,1011,1012,1013', '2000:2010,3000',
    ]);
  });

  it('leaves out a pod without an address and says so', () => {
    const r = calicoRules({ namespaces: NS, pods: [A, pod('x', 'pending', undefined)], policies: [] });
    expect(r.skipped).toEqual(['x/pending']);
    expect([...r.endpoints.keys()]).toEqual(['x/a']);
  });

  const bad: [string, Partial<CalicoInputs>, string, string][] = [
    ['SCTP', { policies: [ingressTo('s', { ports: [{ protocol: 'SCTP', port: 7 }] })] }, 'ERR_CALICO_UNSUPPORTED', 'networkpolicy x/s: spec.ingress[0].ports[0].protocol'],
    ['an unknown protocol', { policies: [ingressTo('s', { ports: [{ protocol: 'ICMP' as 'TCP', port: 7 }] })] }, 'ERR_CALICO_INVALID', 'networkpolicy x/s: spec.ingress[0].ports[0].protocol'],
    ['a CIDR that is not one', { policies: [ingressTo('c', { from: [{ podSelector: {} }, { ipBlock: { cidr: '10.0.0.0/33' } }] })] }, 'ERR_CALICO_INVALID', 'networkpolicy x/c: spec.ingress[0].from[1].ipBlock.cidr'],
    ['an except outside its CIDR', { policies: [ingressTo('e', { from: [{ ipBlock: { cidr: '10.1.0.0/16', except: ['10.2.0.0/24'] } }] })] }, 'ERR_CALICO_INVALID', 'networkpolicy x/e: spec.ingress[0].from[0].ipBlock.except[0]'],
    ['endPort below port', { policies: [ingressTo('r', { ports: [{ port: 90, endPort: 80 }] })] }, 'ERR_CALICO_INVALID', 'networkpolicy x/r: spec.ingress[0].ports[0].endPort'],
    ['endPort with a named port', { policies: [ingressTo('r', { ports: [{ port: 'http', endPort: 80 }] })] }, 'ERR_CALICO_INVALID', 'networkpolicy x/r: spec.ingress[0].ports[0].endPort'],
    ['port 0', { policies: [ingressTo('z', { ports: [{ port: 0 }] })] }, 'ERR_CALICO_INVALID', 'networkpolicy x/z: spec.ingress[0].ports[0].port'],
    ['a pod address that is not IPv4', { pods: [pod('x', 'v6', 'fd00::1')] }, 'ERR_CALICO_INVALID', 'pod x/v6: status.podIP'],
  ];
  it.each(bad)('refuses %s with a typed error naming the field', (_what, over, code, field) => {
    let err: unknown;
    try { calicoRules({ namespaces: NS, pods: [A], policies: [], ...over }); } catch (e) { err = e; }
    expect(err).toBeInstanceOf(ConfigError);
    expect([(err as ConfigError).code, (err as ConfigError).field]).toEqual([code, field]);
  });
});
