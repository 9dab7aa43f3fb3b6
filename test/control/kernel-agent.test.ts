import pino from 'pino';
import { describe, expect, it, vi } from 'vitest';
import { KernelAgent, peerCommands } from '../../src/control/kernel-agent.js';
import type { NodeControl } from '../../src/control/node-control.js';
import { Cidr } from '../../src/fib/cidr.js';
import { parseIpv4, parseMac } from '../../src/wire/addr.js';

const p = { name: 'n2', underlayIp: parseIpv4('198.51.100.2'), podCidr: Cidr.parse('10.244.2.0/24'), vtepMac: parseMac('0e:00:0a:f4:02:00') };

describe('kernel agent: what it programs per peer', () => {
  it("L3: flannel's triple (FDB, neighbour, route via .0 onlink), and their removal in reverse", () => {
    expect(peerCommands('l3', 'flannel.1', p, 'add').map(([c, a]) => `${c} ${a.join(' ')}`)).toEqual([
      'bridge fdb replace 0e:00:0a:f4:02:00 dev flannel.1 dst 198.51.100.2 self permanent',
      'ip neigh replace 10.244.2.0 lladdr 0e:00:0a:f4:02:00 dev flannel.1 nud permanent',
      'ip route replace 10.244.2.0/24 via 10.244.2.0 dev flannel.1 onlink',
    ]);
    expect(peerCommands('l3', 'flannel.1', p, 'del').map(([c, a]) => `${c} ${a.slice(0, 2).join(' ')}`)).toEqual(['ip route del', 'ip neigh del', 'bridge fdb del']);
  });

  it('L2: one all-zeros flood entry per remote underlay address', () => {
    expect(peerCommands('l2', 'vxlan0', p, 'add').map(([c, a]) => `${c} ${a.join(' ')}`)).toEqual(['bridge fdb append 00:00:00:00:00:00 dev vxlan0 dst 198.51.100.2']);
    expect(peerCommands('l2', 'vxlan0', p, 'del').map(([c, a]) => `${c} ${a.join(' ')}`)).toEqual(['bridge fdb del 00:00:00:00:00:00 dev vxlan0 dst 198.51.100.2']);
  });
});

/**
 * The agent's Service sync over a recorded exec: a tiny model of the namespace's iptables (which
 * jumps exist, what iptables-save shows) answers -C/-I/-D, and every restore input is kept.
 */
class FakeIptables {
  readonly calls: string[] = [];
  readonly restores: string[] = [];
  readonly jumps = new Set<string>();
  saved = '*nat\n:PREROUTING ACCEPT [0:0]\nCOMMIT\n';
  failRestores = 0;
  readonly exec = (cmd: string, args: readonly string[], input?: string): string => {
    this.calls.push(`${cmd} ${args.join(' ')}`);
    if (cmd === 'iptables-save') return this.saved;
    if (cmd === 'conntrack') throw new Error('Command failed: conntrack\nconntrack v1.4.7 (conntrack-tools): 0 flow entries have been deleted.');
    if (cmd === 'iptables-restore') {
      if (this.failRestores > 0) { this.failRestores--; throw new Error('iptables-restore: line 3 failed'); }
      this.restores.push(input ?? '');
      return '';
    }
    const op = args[3]!, key = [args[2], ...args.slice(4)].join(' ');
    if (op === '-C') { if (!this.jumps.has(key)) throw new Error('Bad rule (does a matching rule exist in that chain?)'); }
    else if (op === '-I') this.jumps.add(key);
    else if (op === '-D') this.jumps.delete(key);
    return '';
  };
}

const quiet = pino({ level: 'silent' });
const network = { network: Cidr.parse('10.244.0.0/16'), subnetLen: 24, subnetMin: 0, subnetMax: 0, vni: 1, port: 4789, mode: 'l3' } as const;
const web = (spec: Record<string, unknown> = {}): unknown => ({ metadata: { name: 'web', namespace: 'shop' }, spec: { clusterIP: '10.96.0.10', ports: [{ name: 'http', port: 80 }], ...spec } });
const slice = (ips: string[]): unknown => ({
  metadata: { name: 'web-1', namespace: 'shop', labels: { 'kubernetes.io/service-name': 'web' } }, ports: [{ name: 'http', port: 8080 }],
  endpoints: ips.map((a) => ({ addresses: [a] })),
});

function agent(ipt: FakeIptables): KernelAgent {
  return KernelAgent.withControl({ control: { endpoints: [], prefix: '/flatnet', leaseTtlSeconds: 5 }, node: 'n3', underlay: '198.51.100.3', dev: 'flannel.1', stateDir: '/nonexistent', log: quiet, exec: ipt.exec },
    { network, status: () => ({}) as ReturnType<NodeControl['status']>, close: async () => {} });
}
const tick = (): Promise<void> => new Promise((r) => setImmediate(r));
const chainsOf = (restore: string): string[] => restore.split('\n').filter((l) => l.startsWith(':')).map((l) => l.slice(1).split(' ')[0]!);

describe("kernel agent: the store's Services as kube-proxy's iptables rules", () => {
  it('writes nothing until Services, EndpointSlices and Pods have all been listed; then one restore and the six jumps', async () => {
    const ipt = new FakeIptables(), a = agent(ipt);
    a.updateObjects('Service', [web()]);
    a.updateObjects('EndpointSlice', [slice(['10.244.1.10', '10.244.2.10', '10.244.3.11'])]);
    await tick();
    expect(ipt.calls).toEqual([]);
    a.updateObjects('Pod', []);
    await tick();
    expect(ipt.restores).toHaveLength(1);
    const r = ipt.restores[0]!;
    expect(r).toContain('-A KUBE-SEP-');
    expect(r.match(/-j DNAT --to-destination 10\.244\.\d\.1\d:8080/g)).toHaveLength(3);
    // Only kube-proxy's own chains are declared (so flushed): never a built-in chain, never a rule in one.
    expect(chainsOf(r).every((c) => c.startsWith('KUBE-'))).toBe(true);
    expect(r.split('\n').filter((l) => /^-A (PREROUTING|OUTPUT|POSTROUTING|INPUT|FORWARD) /.test(l))).toEqual([]);
    expect(ipt.calls[0]).toBe('iptables-save -t nat');
    expect(ipt.calls[1]).toBe('iptables-restore --noflush --wait');
    expect(ipt.calls.filter((c) => c.includes(' -I '))).toEqual([
      'iptables -w -t filter -I INPUT -m conntrack --ctstate NEW -m comment --comment kubernetes service portals -j KUBE-SERVICES',
      'iptables -w -t filter -I FORWARD -m conntrack --ctstate NEW -m comment --comment kubernetes service portals -j KUBE-SERVICES',
      'iptables -w -t filter -I OUTPUT -m conntrack --ctstate NEW -m comment --comment kubernetes service portals -j KUBE-SERVICES',
      'iptables -w -t nat -I PREROUTING -m comment --comment kubernetes service portals -j KUBE-SERVICES',
      'iptables -w -t nat -I OUTPUT -m comment --comment kubernetes service portals -j KUBE-SERVICES',
      'iptables -w -t nat -I POSTROUTING -m comment --comment kubernetes postrouting rules -j KUBE-POSTROUTING',
    ]);
    expect(a.serviceStatus()).toMatchObject({ enabled: true, frontends: 1, syncs: 1, failures: 0, natChains: 3 + 1 + 3 });
  });

  it('a change that leaves the rules as they are restores nothing, but a deleted jump is put back', async () => {
    const ipt = new FakeIptables(), a = agent(ipt);
    for (const [k, v] of [['Service', [web()]], ['EndpointSlice', [slice(['10.244.1.10'])]], ['Pod', []]] as const) a.updateObjects(k, v);
    await tick();
    ipt.jumps.delete([...ipt.jumps].find((j) => j.startsWith('nat PREROUTING'))!);
    ipt.calls.length = 0;
    a.updateObjects('Pod', [{ metadata: { name: 'other', namespace: 'shop' }, spec: { containers: [] } }]);
    await tick();
    expect(ipt.restores).toHaveLength(1);
    expect(ipt.calls.filter((c) => !c.includes(' -C '))).toEqual(['iptables -w -t nat -I PREROUTING -m comment --comment kubernetes service portals -j KUBE-SERVICES']);
  });

  it('removing an endpoint rewrites the service chain and deletes the endpoint chain no longer used; no endpoint left is a REJECT', async () => {
    const ipt = new FakeIptables(), a = agent(ipt);
    for (const [k, v] of [['Service', [web()]], ['EndpointSlice', [slice(['10.244.1.10', '10.244.2.10'])]], ['Pod', []]] as const) a.updateObjects(k, v);
    await tick();
    const before = chainsOf(ipt.restores[0]!).filter((c) => c.startsWith('KUBE-SEP-'));
    a.updateObjects('EndpointSlice', [slice(['10.244.1.10'])]);
    await tick();
    const r = ipt.restores[1]!;
    const gone = before.filter((c) => r.includes(`-X ${c}`));
    expect(gone).toHaveLength(1);
    expect(r).not.toContain(`-A ${gone[0]!} `);
    expect(r).not.toContain('10.244.2.10');
    expect(a.serviceStatus().natChains).toBe(3 + 1 + 1);
    a.updateObjects('EndpointSlice', []);
    await tick();
    const last = ipt.restores[2]!;
    expect(last).toContain('-A KUBE-SERVICES -d 10.96.0.10/32 -p tcp -m tcp --dport 80 -m comment --comment "shop/web:http has no endpoints" -j REJECT --reject-with icmp-port-unreachable');
    expect(last.split('\n').filter((l) => l.startsWith('-X '))).toHaveLength(2);
    expect(a.serviceStatus().natChains).toBe(3);
  });

  it('service chains an earlier agent left (iptables-save at the first sync) are deleted; other chains are not touched', async () => {
    const ipt = new FakeIptables();
    ipt.saved = '*nat\n:PREROUTING ACCEPT [0:0]\n:KUBE-SVC-AAAAAAAAAAAAAAAA - [0:0]\n:KUBE-SEP-BBBBBBBBBBBBBBBB - [0:0]\n:MY-CHAIN - [0:0]\nCOMMIT\n';
    const a = agent(ipt);
    for (const [k, v] of [['Service', [web()]], ['EndpointSlice', [slice(['10.244.1.10'])]], ['Pod', []]] as const) a.updateObjects(k, v);
    await tick();
    const r = ipt.restores[0]!;
    expect(r.split('\n').filter((l) => l.startsWith('-X '))).toEqual(['-X KUBE-SVC-AAAAAAAAAAAAAAAA', '-X KUBE-SEP-BBBBBBBBBBBBBBBB']);
    expect(r).not.toContain('MY-CHAIN');
  });

  it('a failed restore is counted and retried a second later', async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
    try {
      const ipt = new FakeIptables(), a = agent(ipt);
      ipt.failRestores = 1;
      for (const [k, v] of [['Service', [web()]], ['EndpointSlice', [slice(['10.244.1.10'])]], ['Pod', []]] as const) a.updateObjects(k, v);
      await tick();
      expect([ipt.restores.length, a.serviceStatus().failures, a.serviceStatus().syncs]).toEqual([0, 1, 0]);
      expect(ipt.jumps.size).toBe(0);
      vi.advanceTimersByTime(1000);
      expect([ipt.restores.length, a.serviceStatus().syncs, ipt.jumps.size]).toEqual([1, 1, 6]);
    } finally {
      vi.useRealTimers();
    }
  });

  it("deletes the kernel's UDP connections to an endpoint a UDP Service port lost (conntrack -D, as kube-proxy); TCP ones are left to end", async () => {
    const ipt = new FakeIptables(), a = agent(ipt);
    const both = web({ ports: [{ name: 'http', port: 80 }, { name: 'dns', port: 53, protocol: 'UDP' }] });
    const sl = (ips: string[]): unknown => ({ ...(slice(ips) as object), ports: [{ name: 'http', port: 8080 }, { name: 'dns', port: 5353, protocol: 'UDP' }] });
    for (const [k, v] of [['Service', [both]], ['EndpointSlice', [sl(['10.244.1.10', '10.244.2.10'])]], ['Pod', []]] as const) a.updateObjects(k, v);
    await tick();
    expect(ipt.calls.filter((c) => c.startsWith('conntrack'))).toEqual([]);
    a.updateObjects('EndpointSlice', [sl(['10.244.1.10'])]);
    await tick();
    expect(ipt.calls.filter((c) => c.startsWith('conntrack'))).toEqual(['conntrack -D -p udp --orig-dst 10.96.0.10 --orig-port-dst 53 --dst-nat 10.244.2.10']);
    // conntrack's exit status 1 for "0 flow entries have been deleted" is not a failure.
    expect(a.status()['commandErrors']).toBe(0);
  });

  it('stop deletes the jumps and then flushes and deletes every chain it wrote; an agent that wrote nothing runs nothing', async () => {
    const ipt = new FakeIptables(), a = agent(ipt);
    for (const [k, v] of [['Service', [web()]], ['EndpointSlice', [slice(['10.244.1.10', '10.244.2.10'])]], ['Pod', []]] as const) a.updateObjects(k, v);
    await tick();
    const written = chainsOf(ipt.restores[0]!).filter((c) => c !== 'KUBE-SERVICES').sort();
    ipt.calls.length = 0;
    await a.stop();
    expect(ipt.jumps.size).toBe(0);
    expect(ipt.calls.filter((c) => c.includes(' -D '))).toHaveLength(6);
    const cleanup = ipt.restores[1]!;
    expect(cleanup.split('\n').filter((l) => l.startsWith('-X ')).map((l) => l.slice(3)).sort()).toEqual([...written, 'KUBE-SERVICES', 'KUBE-SERVICES'].sort());
    expect(cleanup.split('\n').filter((l) => l.startsWith('-A '))).toEqual([]);
    a.updateObjects('Service', []);
    await tick();
    expect(ipt.restores).toHaveLength(2);
    const idle = new FakeIptables();
    await agent(idle).stop();
    expect(idle.calls).toEqual([]);
  });
});
