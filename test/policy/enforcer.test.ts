/**
 * NetworkPolicy in the pipeline, stateful: inject -> pump -> look at what came out and what was
 * counted. Node 1 (10.244.1.0/24) holds pods web (10.244.1.2, app=web, port http=80) and client
 * (10.244.1.3, app=client) in namespace shop; node 2's pods 10.244.2.5 (app=client) and
 * 10.244.2.6 (app=other), namespace shop, are behind the overlay.
 */
import { beforeEach, describe, expect, it } from 'vitest';
import { ConnTable } from '../../src/conntrack/table.js';
import { Cidr } from '../../src/fib/cidr.js';
import { FakeClock } from '../../src/fib/clock.js';
import type { MemoryPort } from '../../src/io/memory-port.js';
import { Framing, Switch, SwitchMode } from '../../src/pipeline/switch.js';
import { PolicySet } from '../../src/policy/engine.js';
import { PolicyEnforcer } from '../../src/policy/enforcer.js';
import type { NetworkPolicy, Pod } from '../../src/policy/objects.js';
import { formatIpv4 } from '../../src/wire/addr.js';
import { dissectFrame } from '../../src/wire/dissect.js';
import { EncapTemplate, VXLAN_HEADROOM } from '../../src/wire/encap.js';
import { icmpv4Frame } from '../../src/wire/build.js';
import { icmpEcho, ip, mac, tcp, udp } from '../support/pod-frames.js';
import { testPort } from '../support/test-port.js';

const VTEP_MAC = mac('0e:00:0a:f4:01:00'), N2_MAC = mac('0e:00:0a:f4:02:00');
const WEB = { ip: ip('10.244.1.2'), mac: mac('02:00:0a:f4:01:02') };
const CLIENT = { ip: ip('10.244.1.3'), mac: mac('02:00:0a:f4:01:03') };
const R_CLIENT = ip('10.244.2.5'), R_OTHER = ip('10.244.2.6');
const UL1 = ip('198.51.100.1'), UL2 = ip('198.51.100.2');
const SYN = 0x02, ACK = 0x10, SYNACK = 0x12, FIN = 0x01;

const pod = (name: string, addr: number, app: string, ports: { name: string; containerPort: number }[] = []): Pod => ({
  metadata: { name, namespace: 'shop', labels: { app } }, spec: { containers: [{ ports }] }, status: { podIP: formatIpv4(addr) },
});
const PODS = [pod('web', WEB.ip, 'web', [{ name: 'http', containerPort: 80 }]), pod('client', CLIENT.ip, 'client'), pod('r-client', R_CLIENT, 'client'), pod('r-other', R_OTHER, 'other')];
const NAMESPACES = [{ metadata: { name: 'shop' } }];
/** web accepts TCP on its named port http from app=client pods. */
const WEB_INGRESS: NetworkPolicy = {
  metadata: { name: 'web-from-clients', namespace: 'shop' },
  spec: { podSelector: { matchLabels: { app: 'web' } }, ingress: [{ from: [{ podSelector: { matchLabels: { app: 'client' } } }], ports: [{ port: 'http' }] }] },
};
/** client may open nothing. */
const CLIENT_NO_EGRESS: NetworkPolicy = { metadata: { name: 'client-no-egress', namespace: 'shop' }, spec: { podSelector: { matchLabels: { app: 'client' } }, policyTypes: ['Egress'] } };
const CLIENT_NO_INGRESS: NetworkPolicy = { metadata: { name: 'client-no-ingress', namespace: 'shop' }, spec: { podSelector: { matchLabels: { app: 'client' } }, policyTypes: ['Ingress'] } };

interface Node { sw: Switch; web: MemoryPort; client: MemoryPort; host: MemoryPort; ov: MemoryPort; clock: FakeClock; enf: PolicyEnforcer }

function node(policies: NetworkPolicy[], capacity = 1024, prepass = true): Node {
  const clock = new FakeClock(1000);
  const sw = new Switch({
    mode: SwitchMode.L3, vni: 1, vtepMac: VTEP_MAC, vtepIp: ip('10.244.1.0'), podCidr: Cidr.parse('10.244.1.0/24'),
    clusterCidr: Cidr.parse('10.244.0.0/16'), gatewayIp: ip('10.244.1.1'), underlayIp: UL1, port: 4789,
    encap: { localUnderlayMac: mac('02:00:c6:33:64:01'), nextHopMac: mac('02:00:c6:33:64:fe'), ttl: 64, df: 'unset', udpChecksum: false, srcPortRange: [49152, 65535] },
    clock, icmpRatePerSec: 1e9,
  });
  const web = testPort('web'), client = testPort('client'), host = testPort('host'), ov = testPort('ov');
  sw.attachPod(web, WEB.ip, WEB.mac, 'web');
  sw.attachPod(client, CLIENT.ip, CLIENT.mac, 'client');
  sw.attachHost(host, mac('02:00:00:00:00:fe'), 'host');
  sw.attachOverlay(ov, Framing.ETHERNET, 'ov');
  sw.setPeers([{ name: 'n2', underlayIp: UL2, mac: N2_MAC, vni: 1, port: 4789, podCidr: Cidr.parse('10.244.2.0/24') }]);
  const enf = new PolicyEnforcer(compile(policies), new ConnTable({ capacity, seed: 1, prepass }), clock);
  enf.install(sw);
  return { sw, web, client, host, ov, clock, enf };
}
const compile = (policies: NetworkPolicy[]): PolicySet => new PolicySet({ namespaces: NAMESPACES, pods: PODS, policies, nodeIps: [ip('10.244.1.0'), ip('10.244.1.1')] });

function fromN2(inner: Buffer): Buffer {
  const t = new EncapTemplate({ srcMac: mac('02:00:c6:33:64:02'), dstMac: mac('02:00:c6:33:64:01'), srcIp: UL2, dstIp: UL1, vni: 1 });
  const b = Buffer.alloc(VXLAN_HEADROOM + inner.length);
  inner.copy(b, VXLAN_HEADROOM);
  return Buffer.from(b.subarray(t.encap(b, VXLAN_HEADROOM, b.length)));
}
/** TCP segments as each side sends them. */
const clientToWeb = (flags: number, sport = 40000, dport = 80): Buffer => tcp({ srcMac: CLIENT.mac, dstMac: VTEP_MAC, src: CLIENT.ip, dst: WEB.ip, sport, dport, flags });
const webToClient = (flags: number, dport = 40000): Buffer => tcp({ srcMac: WEB.mac, dstMac: VTEP_MAC, src: WEB.ip, dst: CLIENT.ip, sport: 80, dport, flags });
const remoteToWeb = (src: number, flags: number, sport = 41000, dport = 80): Buffer =>
  fromN2(tcp({ srcMac: N2_MAC, dstMac: VTEP_MAC, src, dst: WEB.ip, sport, dport, flags, ttl: 63 }));

/** inject one frame at `port`, pump, and return [frames out per port name, drops by name]. */
function send(n: Node, port: MemoryPort, frame: Buffer): [Record<string, number>, Record<string, number>] {
  const before = n.sw.stats.dropsByName();
  port.inject(frame);
  n.sw.pump();
  const out: Record<string, number> = {};
  for (const p of [n.web, n.client, n.host, n.ov]) { const k = p.take().length; if (k > 0) out[p.name] = k; }
  const after = n.sw.stats.dropsByName(), d: Record<string, number> = {};
  for (const [k, v] of Object.entries(after)) if (v !== (before[k] ?? 0)) d[k] = v - (before[k] ?? 0);
  return [out, d];
}

describe('NetworkPolicy in the switch', () => {
  let n: Node;
  beforeEach(() => { n = node([WEB_INGRESS]); });

  it('allows what a rule allows, on the named port, from a local and from a remote pod', () => {
    expect(send(n, n.client, clientToWeb(SYN))).toEqual([{ web: 1 }, {}]);
    expect(send(n, n.ov, remoteToWeb(R_CLIENT, SYN))).toEqual([{ web: 1 }, {}]);
  });

  it('drops a new connection no rule allows: another port, another pod, counted as policy_denied_ingress and against the policy', () => {
    expect(send(n, n.client, clientToWeb(SYN, 40001, 81))).toEqual([{}, { policy_denied_ingress: 1 }]);
    expect(send(n, n.ov, remoteToWeb(R_OTHER, SYN))).toEqual([{}, { policy_denied_ingress: 1 }]);
    expect(send(n, n.ov, fromN2(udp({ srcMac: N2_MAC, dstMac: VTEP_MAC, src: R_CLIENT, dst: WEB.ip, dport: 80, ttl: 63 })))).toEqual([{}, { policy_denied_ingress: 1 }]);
    const [p] = n.enf.set.policies;
    expect([p!.denied, p!.allowed]).toEqual([3, 0]);
  });

  it('replies of an allowed connection pass back, to a local and to a remote client; the connection is tracked to ESTABLISHED', () => {
    send(n, n.client, clientToWeb(SYN));
    expect(send(n, n.web, webToClient(SYNACK))).toEqual([{ client: 1 }, {}]);
    expect(send(n, n.client, clientToWeb(ACK))).toEqual([{ web: 1 }, {}]);
    send(n, n.ov, remoteToWeb(R_CLIENT, SYN));
    const reply = tcp({ srcMac: WEB.mac, dstMac: VTEP_MAC, src: WEB.ip, dst: R_CLIENT, sport: 80, dport: 41000, flags: SYNACK });
    expect(send(n, n.web, reply)).toEqual([{ ov: 1 }, {}]);
    const states = n.enf.ct.list(n.clock.now).map((e) => `${e.original.src}:${e.original.sport} ${e.state} ${e.flags.join(',')}`);
    expect(states).toEqual(['10.244.1.3:40000 ESTABLISHED ASSURED', '10.244.2.5:41000 SYN_RECV ']);
    expect(n.enf.set.policies[0]!.rules[0]!.hits).toBe(2);
  });

  it('a reply is only a reply of a connection that was let through: the same packet unsolicited is judged, and denied', () => {
    const m = node([CLIENT_NO_INGRESS]);
    // web -> client: client is ingress-isolated with no rules.
    expect(send(m, m.web, webToClient(SYN))).toEqual([{}, { policy_denied_ingress: 1 }]);
    // client -> web, then web's answer: a reply, allowed although client allows no ingress.
    expect(send(m, m.client, clientToWeb(SYN, 40005))).toEqual([{ web: 1 }, {}]);
    expect(send(m, m.web, webToClient(SYNACK, 40005))).toEqual([{ client: 1 }, {}]);
    // The denied SYN left no entry behind for its "replies" to use.
    expect(send(m, m.client, clientToWeb(SYNACK, 40000))).toEqual([{ web: 1 }, {}]);
    expect(m.enf.ct.size).toBe(1);
  });

  it('egress: a pod isolated for egress opens nothing, counted as policy_denied_egress, but still answers', () => {
    const m = node([CLIENT_NO_EGRESS]);
    expect(send(m, m.client, clientToWeb(SYN))).toEqual([{}, { policy_denied_egress: 1 }]);
    expect(send(m, m.client, icmpEcho({ srcMac: CLIENT.mac, dstMac: VTEP_MAC, src: CLIENT.ip, dst: R_CLIENT }))).toEqual([{}, { policy_denied_egress: 1 }]);
    expect(send(m, m.web, webToClient(SYN, 40010))).toEqual([{ client: 1 }, {}]);
    expect(send(m, m.client, clientToWeb(SYNACK, 40011))).toEqual([{}, { policy_denied_egress: 1 }]); // other ports: not the reply
    const answer = tcp({ srcMac: CLIENT.mac, dstMac: VTEP_MAC, src: CLIENT.ip, dst: WEB.ip, sport: 40010, dport: 80, flags: SYNACK });
    expect(send(m, m.client, answer)).toEqual([{ web: 1 }, {}]);
  });

  it('ping: the echo reply of an allowed request passes an ingress-isolated pod; an unsolicited echo reply does not', () => {
    const m = node([CLIENT_NO_INGRESS]);
    expect(send(m, m.client, icmpEcho({ srcMac: CLIENT.mac, dstMac: VTEP_MAC, src: CLIENT.ip, dst: R_CLIENT, id: 77 }))).toEqual([{ ov: 1 }, {}]);
    const reply = (id: number): Buffer => fromN2(icmpEcho({ srcMac: N2_MAC, dstMac: VTEP_MAC, src: R_CLIENT, dst: CLIENT.ip, id, reply: true, ttl: 63 }));
    expect(send(m, m.ov, reply(77))).toEqual([{ client: 1 }, {}]);
    expect(send(m, m.ov, reply(78))).toEqual([{}, { policy_denied_ingress: 1 }]);
  });

  it('an ICMP error about a tracked connection passes (related); the same error about nothing tracked is judged', () => {
    const m = node([CLIENT_NO_INGRESS]);
    const probe = udp({ srcMac: CLIENT.mac, dstMac: VTEP_MAC, src: CLIENT.ip, dst: R_CLIENT, sport: 5000, dport: 9 });
    expect(send(m, m.client, probe)).toEqual([{ ov: 1 }, {}]);
    const unreachable = (quoted: Buffer): Buffer => fromN2(icmpv4Frame({
      srcMac: N2_MAC, dstMac: VTEP_MAC, src: R_CLIENT, dst: CLIENT.ip, ttl: 63, type: 3, code: 3, rest: 0, payload: quoted.subarray(14, 14 + 28),
    }));
    expect(send(m, m.ov, unreachable(probe))).toEqual([{ client: 1 }, {}]);
    const other = udp({ srcMac: CLIENT.mac, dstMac: VTEP_MAC, src: CLIENT.ip, dst: R_CLIENT, sport: 5001, dport: 9 });
    expect(send(m, m.ov, unreachable(other))).toEqual([{}, { policy_denied_ingress: 1 }]);
  });

  it('a policy change: established connections keep flowing, new ones are judged by the new policies', () => {
    send(n, n.client, clientToWeb(SYN));
    send(n, n.web, webToClient(SYNACK));
    send(n, n.client, clientToWeb(ACK));
    n.enf.update(compile([{ metadata: { name: 'deny-all', namespace: 'shop' }, spec: { podSelector: {}, policyTypes: ['Ingress'] } }]));
    expect(send(n, n.client, clientToWeb(ACK))).toEqual([{ web: 1 }, {}]);
    expect(send(n, n.web, webToClient(ACK))).toEqual([{ client: 1 }, {}]);
    expect(send(n, n.client, clientToWeb(SYN, 40001))).toEqual([{}, { policy_denied_ingress: 1 }]);
    // Closed and timed out, the old tuple is a new connection again: denied.
    send(n, n.client, clientToWeb(FIN | ACK));
    send(n, n.web, webToClient(FIN | ACK));
    send(n, n.client, clientToWeb(ACK));
    n.clock.advance(120_001);
    expect(send(n, n.client, clientToWeb(SYN))).toEqual([{}, { policy_denied_ingress: 1 }]);
  });

  it('a client reusing the port of a closed connection (TIME_WAIT) opens a new one, judged by the policies in force, as the kernel reopens it', () => {
    const open = (sport: number): void => { send(n, n.client, clientToWeb(SYN, sport)); send(n, n.web, webToClient(SYNACK, sport)); send(n, n.client, clientToWeb(ACK, sport)); };
    const close = (sport: number): void => { send(n, n.client, clientToWeb(FIN | ACK, sport)); send(n, n.web, webToClient(FIN | ACK, sport)); send(n, n.client, clientToWeb(ACK, sport)); };
    open(40000);
    close(40000);
    expect(n.enf.ct.list(n.clock.now).map((e) => e.state)).toEqual(['TIME_WAIT']);
    // Still allowed: the new connection replaces the closed one (one entry, SYN_SENT).
    expect(send(n, n.client, clientToWeb(SYN))).toEqual([{ web: 1 }, {}]);
    expect(n.enf.ct.list(n.clock.now).map((e) => e.state)).toEqual(['SYN_SENT']);
    send(n, n.web, webToClient(SYNACK));
    send(n, n.client, clientToWeb(ACK));
    close(40000);
    // Denied now: the port of an allowed connection that closed does not carry the old verdict.
    n.enf.update(compile([{ metadata: { name: 'deny-all', namespace: 'shop' }, spec: { podSelector: {}, policyTypes: ['Ingress'] } }]));
    expect(send(n, n.client, clientToWeb(SYN))).toEqual([{}, { policy_denied_ingress: 1 }]);
    expect(n.enf.ct.size).toBe(0);
  });

  it('the node itself is always let in (the host port, from the node address)', () => {
    const m = node([CLIENT_NO_INGRESS]);
    const fromHost = tcp({ srcMac: mac('02:00:00:00:00:fe'), dstMac: VTEP_MAC, src: ip('10.244.1.1'), dst: CLIENT.ip, sport: 33000, dport: 22, flags: SYN });
    expect(send(m, m.host, fromHost)).toEqual([{ client: 1 }, {}]);
  });

  it('a full table of established connections refuses the next new one: conntrack_full, and the old ones keep going', () => {
    const m = node([WEB_INGRESS], 2);
    for (const sport of [40000, 40001]) {
      send(m, m.client, clientToWeb(SYN, sport));
      send(m, m.web, webToClient(SYNACK, sport));
      send(m, m.client, clientToWeb(ACK, sport));
    }
    expect(send(m, m.client, clientToWeb(SYN, 40002))).toEqual([{}, { conntrack_full: 1 }]);
    expect(send(m, m.client, clientToWeb(ACK, 40001))).toEqual([{ web: 1 }, {}]);
    expect([m.enf.refused, m.enf.ct.stats.refused]).toEqual([1, 1]);
  });

  it('a trace says which policy and rule let a connection in, or that a packet is a reply, and changes nothing', () => {
    const sp = n.sw.portList.find((p) => p.name === 'client')!;
    const t = n.sw.trace({ port: sp, frame: clientToWeb(SYN) });
    const line = (stage: string): string => t.steps.find((s) => s.stage === stage)?.looked ?? '';
    expect(line('policy-ingress')).toBe('new connection to pod 10.244.1.2: allowed by networkpolicy shop/web-from-clients ingress[0]');
    expect(line('policy-egress')).toBe('new connection from pod 10.244.1.3: no policy isolates it for egress');
    expect(n.enf.ct.size).toBe(0);
    send(n, n.client, clientToWeb(SYN));
    const r = n.sw.trace({ port: n.sw.portList.find((p) => p.name === 'web')!, frame: webToClient(SYNACK) });
    expect(r.steps.find((s) => s.stage === 'policy-egress')?.looked).toBe('reply of a tracked connection (SYN_SENT): passes');
    expect(n.enf.ct.list(n.clock.now)[0]!.reply.packets).toBe(0);
    expect(dissectFrame(clientToWeb(SYN)).malformed).toBeUndefined();
  });
});

describe('NetworkPolicy with the batch pre-pass (ConnTable.prepass): the same traffic gives the same result as the stages alone', () => {
  /** A client egress policy too, so that both stages judge: clients may reach web and the remote pods. */
  const CLIENT_EGRESS: NetworkPolicy = {
    metadata: { name: 'client-egress', namespace: 'shop' },
    spec: { podSelector: { matchLabels: { app: 'client' } }, policyTypes: ['Egress'], egress: [{ to: [{ podSelector: {} }, { ipBlock: { cidr: '10.244.2.0/24' } }] }] },
  };
  const toRemote = (sport: number): Buffer => udp({ srcMac: CLIENT.mac, dstMac: VTEP_MAC, src: CLIENT.ip, dst: R_CLIENT, sport, dport: 5000, payload: 40 });
  const fromRemote = (dport: number): Buffer => fromN2(udp({ srcMac: N2_MAC, dstMac: VTEP_MAC, src: R_CLIENT, dst: CLIENT.ip, sport: 5000, dport, ttl: 63, payload: 40 }));
  const webToRemote = (flags: number, dport: number): Buffer => tcp({ srcMac: WEB.mac, dstMac: VTEP_MAC, src: WEB.ip, dst: R_CLIENT, sport: 80, dport, flags });
  const SPORTS = [40000, 40001, 40002, 40003, 40004, 40005];

  /** Round r's batch per port: handshakes first, then data both ways, denied and unsolicited frames mixed in, closes last. */
  function round(r: number): Array<[keyof Pick<Node, 'web' | 'client' | 'ov'>, Buffer]> {
    const out: Array<[keyof Pick<Node, 'web' | 'client' | 'ov'>, Buffer]> = [];
    for (const sp of SPORTS) {
      const data = r === 0 ? SYN : r === 9 && sp === 40000 ? FIN | ACK : r === 9 && sp === 40001 ? 0x04 : ACK;
      out.push(['client', clientToWeb(data, sp)], ['ov', remoteToWeb(R_CLIENT, data, sp + 1000)], ['client', toRemote(sp)]);
      if (r > 0) out.push(['web', webToClient(r === 1 ? SYNACK : ACK, sp)], ['web', webToRemote(r === 1 ? SYNACK : ACK, sp + 1000)], ['ov', fromRemote(sp)]);
    }
    out.push(['ov', remoteToWeb(R_OTHER, SYN, 42000 + r)], ['web', webToClient(ACK, 45000 + r)]);
    return out;
  }

  it('frames out, drops, connection entries and policy hits match, pods and overlay alike, and the pre-pass took the established packets', () => {
    const a = node([WEB_INGRESS, CLIENT_EGRESS], 1024, false), b = node([WEB_INGRESS, CLIENT_EGRESS], 1024, true);
    for (let r = 0; r < 10; r++) {
      for (const n of [a, b]) {
        for (const [port, frame] of round(r)) n[port].inject(frame);
        n.sw.pump();
      }
      for (const port of ['web', 'client', 'host', 'ov'] as const) expect(b[port].take().map((f) => f.frame)).toEqual(a[port].take().map((f) => f.frame));
      expect(b.sw.stats.dropsByName()).toEqual(a.sw.stats.dropsByName());
      expect(b.enf.ct.list(b.clock.now)).toEqual(a.enf.ct.list(a.clock.now));
      const step = r % 3 === 0 ? 1500 : 0;
      a.clock.advance(step);
      b.clock.advance(step);
    }
    expect(b.enf.set.policies.map((p) => [p.allowed, p.denied, p.rules.map((x) => x.hits)])).toEqual(a.enf.set.policies.map((p) => [p.allowed, p.denied, p.rules.map((x) => x.hits)]));
    expect(a.sw.stats.dropsByName()).toMatchObject({ policy_denied_ingress: 10 });
    expect(a.enf.ct.stats.prepassed).toBe(0);
    // Rounds 2-8: 6 connections x (2 TCP + 2 UDP directions... ) of established packets per round, each way.
    expect(b.enf.ct.stats.prepassed).toBeGreaterThan(200);
  });
});
