/**
 * Services in the switch: inject -> pump -> dissect. Node 1 (10.244.1.0/24, gateway 10.244.1.1)
 * holds the client pod (10.244.1.2) and a backend pod (10.244.1.3, serving 8080); node 2 holds
 * another backend (10.244.2.5:8080). Service shop/web is 10.96.0.10:80 -> targetPort 8080.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ConnTable, MARK_PREPASS_DNAT, packPorts } from '../../src/conntrack/table.js';
import { Cidr } from '../../src/fib/cidr.js';
import { FakeClock } from '../../src/fib/clock.js';
import type { MemoryPort } from '../../src/io/memory-port.js';
import { FrameLayout } from '../../src/mtu/layout.js';
import { completeChecksum } from '../../src/offload/checksum.js';
import { Framing, Switch, SwitchMode } from '../../src/pipeline/switch.js';
import { PolicySet } from '../../src/policy/engine.js';
import { PolicyEnforcer } from '../../src/policy/enforcer.js';
import { ServiceCatalog, type EndpointSlice, type Service } from '../../src/service/catalog.js';
import { crc32c, natApply, natRewrite, natSums, ServiceNat } from '../../src/service/nat.js';
import { formatIpv4 } from '../../src/wire/addr.js';
import { icmpv4Frame } from '../../src/wire/build.js';
import { checksumRef } from '../support/refs.js';
import { dissectFrame, type LayerRepr } from '../../src/wire/dissect.js';
import { EncapTemplate, VXLAN_HEADROOM } from '../../src/wire/encap.js';
import { ipv4HeaderOk, l4ChecksumOk } from '../support/l4-frames.js';
import { ip, mac, tcp, udp } from '../support/pod-frames.js';
import { testPort } from '../support/test-port.js';
import { AllocationMeter } from '../../src/replay/alloc-meter.js';

const VTEP_MAC = mac('0e:00:0a:f4:01:00'), N2_MAC = mac('0e:00:0a:f4:02:00');
const CLIENT = { ip: ip('10.244.1.2'), mac: mac('02:00:0a:f4:01:02') };
const LOCAL_BE = { ip: ip('10.244.1.3'), mac: mac('02:00:0a:f4:01:03') };
const REMOTE_BE = ip('10.244.2.5');
const VIP = ip('10.96.0.10'), GW = ip('10.244.1.1');
const UL1 = ip('198.51.100.1'), UL2 = ip('198.51.100.2');
const SYN = 0x02, ACK = 0x10, SYNACK = 0x12;

const service = (spec: Partial<Service['spec']> = {}): Service => ({ metadata: { name: 'web', namespace: 'shop' }, spec: { clusterIP: '10.96.0.10', ports: [{ name: 'http', port: 80, targetPort: 8080 }, { name: 'dns', port: 53, protocol: 'UDP', targetPort: 5353 }], ...spec } });
const slice = (eps: { ip: string; node: string }[]): EndpointSlice => ({
  metadata: { name: 'web-1', namespace: 'shop', labels: { 'kubernetes.io/service-name': 'web' } }, addressType: 'IPv4',
  ports: [{ name: 'http', port: 8080 }, { name: 'dns', port: 5353, protocol: 'UDP' }],
  endpoints: eps.map((e) => ({ addresses: [e.ip], nodeName: e.node })),
});
const BOTH = [{ ip: '10.244.1.3', node: 'n1' }, { ip: '10.244.2.5', node: 'n2' }];

interface Node { sw: Switch; client: MemoryPort; be: MemoryPort; ov: MemoryPort; clock: FakeClock; nat: ServiceNat; pick: { i: number } }

function node(o: { svc?: Service; eps?: { ip: string; node: string }[]; lb?: 'random' | 'maglev'; prepass?: boolean; clientVnet?: number } = {}): Node {
  const clock = new FakeClock(1000);
  const sw = new Switch({
    mode: SwitchMode.L3, vni: 1, vtepMac: VTEP_MAC, vtepIp: ip('10.244.1.0'), podCidr: Cidr.parse('10.244.1.0/24'),
    clusterCidr: Cidr.parse('10.244.0.0/16'), gatewayIp: GW, underlayIp: UL1, port: 4789,
    encap: { localUnderlayMac: mac('02:00:c6:33:64:01'), nextHopMac: mac('02:00:c6:33:64:fe'), ttl: 64, df: 'unset', udpChecksum: false, srcPortRange: [49152, 65535] },
    clock, icmpRatePerSec: 1e9,
  });
  const client = testPort('client', o.clientVnet ?? 0), be = testPort('be'), host = testPort('host'), ov = testPort('ov');
  sw.attachPod(client, CLIENT.ip, CLIENT.mac, 'client');
  sw.attachPod(be, LOCAL_BE.ip, LOCAL_BE.mac, 'be');
  sw.attachHost(host, mac('02:00:00:00:00:fe'), 'host');
  sw.attachOverlay(ov, Framing.ETHERNET, 'ov');
  sw.setPeers([{ name: 'n2', underlayIp: UL2, mac: N2_MAC, vni: 1, port: 4789, podCidr: Cidr.parse('10.244.2.0/24') }]);
  // The "random" draw is ours: pick.i chooses the backend (backends are listed in slice order).
  const pick = { i: 0 };
  const cat = new ServiceCatalog({ services: [o.svc ?? service()], slices: [slice(o.eps ?? BOTH)], pods: [], node: 'n1', loadBalancing: o.lb ?? 'random', maglevSize: 251 });
  const nat = new ServiceNat(cat, new ConnTable({ capacity: 256, seed: 2, prepass: o.prepass }), { nodeIp: GW, clock, random: () => (pick.i + 0.5) / 2 });
  sw.setServices(nat);
  return { sw, client, be, ov, clock, nat, pick };
}

const fromN2 = (inner: Buffer): Buffer => {
  const t = new EncapTemplate({ srcMac: mac('02:00:c6:33:64:02'), dstMac: mac('02:00:c6:33:64:01'), srcIp: UL2, dstIp: UL1, vni: 1 });
  const b = Buffer.alloc(VXLAN_HEADROOM + inner.length);
  inner.copy(b, VXLAN_HEADROOM);
  return Buffer.from(b.subarray(t.encap(b, VXLAN_HEADROOM, b.length)));
};
const toVip = (flags: number, sport = 40000, from = CLIENT): Buffer => tcp({ srcMac: from.mac, dstMac: VTEP_MAC, src: from.ip, dst: VIP, sport, dport: 80, flags, payload: 10 });
const udpToVip = (sport: number, payload = 20): Buffer => udp({ srcMac: CLIENT.mac, dstMac: VTEP_MAC, src: CLIENT.ip, dst: VIP, sport, dport: 53, payload });

function one(n: Node, port: MemoryPort, frame: Buffer): { port: string; frame: Buffer; drops: Record<string, number> } | { port: null; drops: Record<string, number> } {
  const before = n.sw.stats.dropsByName();
  port.inject(frame);
  n.sw.pump();
  const after = n.sw.stats.dropsByName(), drops: Record<string, number> = {};
  for (const [k, v] of Object.entries(after)) if (v !== (before[k] ?? 0)) drops[k] = v - (before[k] ?? 0);
  for (const p of [n.client, n.be, n.ov]) {
    const got = p.take();
    if (got.length > 0) { expect(got).toHaveLength(1); return { port: p.name, frame: got[0]!.frame, drops }; }
  }
  return { port: null, drops };
}
const layer = <K extends LayerRepr['layer']>(f: Buffer, kind: K, nth = 0): Extract<LayerRepr, { layer: K }> =>
  dissectFrame(f).layers.filter((l) => l.layer === kind)[nth] as Extract<LayerRepr, { layer: K }>;
/** "src:sport > dst:dport" of the innermost IPv4 + TCP/UDP of a frame, and whether its checksums verify. */
function flow(f: Buffer, inner = 0): string {
  const d = dissectFrame(f);
  const ips = d.layers.filter((l) => l.layer === 'ipv4');
  const v4 = ips[inner === 1 ? ips.length - 1 : 0] as Extract<LayerRepr, { layer: 'ipv4' }>;
  const l4 = d.layers.filter((l) => l.layer === 'tcp' || l.layer === 'udp').at(-1) as Extract<LayerRepr, { layer: 'tcp' | 'udp' }>;
  return `${v4.src}:${l4.srcPort} > ${v4.dst}:${l4.dstPort} ip ${v4.checksumStatus} l4 ${l4.checksumStatus}`;
}

describe('Services: ClusterIP load balancing in the switch', () => {
  it('DNATs a new connection to the chosen local backend, keeping the client address; the reply comes back from the ClusterIP', () => {
    const n = node();
    const r = one(n, n.client, toVip(SYN));
    expect(r.port).toBe('be');
    expect(flow((r as { frame: Buffer }).frame)).toBe('10.244.1.2:40000 > 10.244.1.3:8080 ip good l4 good');
    const back = one(n, n.be, tcp({ srcMac: LOCAL_BE.mac, dstMac: VTEP_MAC, src: LOCAL_BE.ip, dst: CLIENT.ip, sport: 8080, dport: 40000, flags: SYNACK, payload: 3 }));
    expect(back.port).toBe('client');
    expect(flow((back as { frame: Buffer }).frame)).toBe('10.96.0.10:80 > 10.244.1.2:40000 ip good l4 good');
    expect(n.nat.catalog.frontends[0]!.backends.map((b) => b.hits)).toEqual([1, 0]);
  });

  it('a local backend that answers its client on the link (to the client\'s MAC, not the gateway) is translated back too', () => {
    const n = node();
    expect(one(n, n.client, toVip(SYN)).port).toBe('be');
    // The pods share the node's /24: the backend's kernel sends the reply straight to the client's MAC.
    const back = one(n, n.be, tcp({ srcMac: LOCAL_BE.mac, dstMac: CLIENT.mac, src: LOCAL_BE.ip, dst: CLIENT.ip, sport: 8080, dport: 40000, flags: SYNACK, payload: 3 }));
    expect(back.port).toBe('client');
    expect(flow((back as { frame: Buffer }).frame)).toBe('10.96.0.10:80 > 10.244.1.2:40000 ip good l4 good');
    // A frame to a ClusterIP sent to a pod's MAC is not load-balanced: it goes where it was addressed, untranslated.
    const direct = one(n, n.client, tcp({ srcMac: CLIENT.mac, dstMac: LOCAL_BE.mac, src: CLIENT.ip, dst: VIP, sport: 40001, dport: 80, flags: SYN }));
    expect([direct.port, flow((direct as { frame: Buffer }).frame)]).toEqual(['be', '10.244.1.2:40001 > 10.96.0.10:80 ip good l4 good']);
    expect(n.nat.catalog.frontends[0]!.backends.map((b) => b.hits)).toEqual([1, 0]);
  });

  it("a client port reused toward another ClusterIP with the same backend gets another source port (the backend's answer tuple is taken), as the kernel's NAT does", () => {
    const n = node({ eps: [BOTH[0]!] });
    const web2: Service = { metadata: { name: 'web2', namespace: 'shop' }, spec: { clusterIP: '10.96.0.20', ports: [{ name: 'http', port: 80, targetPort: 8080 }] } };
    const s2 = slice([BOTH[0]!]);
    n.nat.update(new ServiceCatalog({ services: [service(), web2], slices: [slice([BOTH[0]!]), { ...s2, metadata: { ...s2.metadata, name: 'web2-1', labels: { 'kubernetes.io/service-name': 'web2' } } }], pods: [], node: 'n1' }));
    const a = one(n, n.client, toVip(SYN, 40000)) as { port: string; frame: Buffer };
    expect([a.port, flow(a.frame)]).toEqual(['be', '10.244.1.2:40000 > 10.244.1.3:8080 ip good l4 good']);
    const b = one(n, n.client, tcp({ srcMac: CLIENT.mac, dstMac: VTEP_MAC, src: CLIENT.ip, dst: ip('10.96.0.20'), sport: 40000, dport: 80, flags: SYN })) as { port: string; frame: Buffer; drops: Record<string, number> };
    const moved = layer(b.frame, 'tcp').srcPort;
    expect([b.port, b.drops, moved === 40000, moved >= 1024]).toEqual(['be', {}, false, true]);
    expect(flow(b.frame)).toBe(`10.244.1.2:${moved} > 10.244.1.3:8080 ip good l4 good`);
    const answer = (dport: number): string => flow((one(n, n.be, tcp({ srcMac: LOCAL_BE.mac, dstMac: CLIENT.mac, src: LOCAL_BE.ip, dst: CLIENT.ip, sport: 8080, dport, flags: SYNACK })) as { frame: Buffer }).frame);
    expect(answer(moved)).toBe('10.96.0.20:80 > 10.244.1.2:40000 ip good l4 good');
    expect(answer(40000)).toBe('10.96.0.10:80 > 10.244.1.2:40000 ip good l4 good');
    // The client's next packet of the second connection keeps the port it was given.
    const ack = one(n, n.client, tcp({ srcMac: CLIENT.mac, dstMac: VTEP_MAC, src: CLIENT.ip, dst: ip('10.96.0.20'), sport: 40000, dport: 80, flags: ACK })) as { frame: Buffer };
    expect(flow(ack.frame)).toBe(`10.244.1.2:${moved} > 10.244.1.3:8080 ip good l4 good`);
    expect(n.nat.ct.stats.clashes).toBe(0);
  });

  it('a client that reuses the port of a closed connection through the Service to reach the backend directly gets untranslated replies', () => {
    const n = node();
    expect(one(n, n.client, toVip(SYN)).port).toBe('be');
    const fromBe = (flags: number): Buffer => tcp({ srcMac: LOCAL_BE.mac, dstMac: CLIENT.mac, src: LOCAL_BE.ip, dst: CLIENT.ip, sport: 8080, dport: 40000, flags });
    one(n, n.be, fromBe(SYNACK));
    one(n, n.client, toVip(ACK));
    one(n, n.be, fromBe(0x11)); // FIN+ACK: the server closes first
    one(n, n.client, toVip(0x11));
    one(n, n.be, fromBe(ACK));
    expect(n.nat.ct.list(n.clock.now).map((e) => e.state)).toEqual(['TIME_WAIT']);
    // Port 40000 again, now straight to the backend's pod address.
    const syn = one(n, n.client, tcp({ srcMac: CLIENT.mac, dstMac: VTEP_MAC, src: CLIENT.ip, dst: LOCAL_BE.ip, sport: 40000, dport: 8080, flags: SYN })) as { port: string; frame: Buffer };
    expect([syn.port, flow(syn.frame)]).toEqual(['be', '10.244.1.2:40000 > 10.244.1.3:8080 ip good l4 good']);
    const back = one(n, n.be, fromBe(SYNACK)) as { port: string; frame: Buffer };
    expect([back.port, flow(back.frame)]).toEqual(['client', '10.244.1.3:8080 > 10.244.1.2:40000 ip good l4 good']);
    expect([n.nat.ct.size, n.nat.staleRemoved]).toEqual([0, 1]);
  });

  it('the same SYN in a batch the pre-pass runs over: no connection has it, and the NAT stage still forgets the closing one; the datagrams beside it pass untouched', () => {
    const n = node();
    one(n, n.client, toVip(SYN));
    const fromBe = (flags: number): Buffer => tcp({ srcMac: LOCAL_BE.mac, dstMac: CLIENT.mac, src: LOCAL_BE.ip, dst: CLIENT.ip, sport: 8080, dport: 40000, flags });
    for (const [port, f] of [[n.be, fromBe(SYNACK)], [n.client, toVip(ACK)], [n.be, fromBe(0x11)], [n.client, toVip(0x11)], [n.be, fromBe(ACK)]] as const) one(n, port, f);
    expect(n.nat.ct.list(n.clock.now).map((e) => e.state)).toEqual(['TIME_WAIT']);
    for (let i = 0; i < 3; i++) n.client.inject(udp({ srcMac: CLIENT.mac, dstMac: VTEP_MAC, src: CLIENT.ip, dst: LOCAL_BE.ip, sport: 41000 + i, dport: 7, payload: 8 }));
    n.client.inject(tcp({ srcMac: CLIENT.mac, dstMac: VTEP_MAC, src: CLIENT.ip, dst: LOCAL_BE.ip, sport: 40000, dport: 8080, flags: SYN }));
    n.sw.pump();
    expect(n.be.take().map((f) => flow(f.frame))).toEqual([0, 1, 2].map((i) => `10.244.1.2:${41000 + i} > 10.244.1.3:7 ip good l4 good`).concat('10.244.1.2:40000 > 10.244.1.3:8080 ip good l4 good'));
    expect([n.nat.ct.size, n.nat.staleRemoved]).toEqual([0, 1]);
  });

  it('a client reusing the port of a closed connection through the Service draws a backend again, counted as a new connection, as the kernel reopens it', () => {
    const n = node();
    expect(one(n, n.client, toVip(SYN)).port).toBe('be');
    const fromBe = (flags: number): Buffer => tcp({ srcMac: LOCAL_BE.mac, dstMac: CLIENT.mac, src: LOCAL_BE.ip, dst: CLIENT.ip, sport: 8080, dport: 40000, flags });
    one(n, n.be, fromBe(SYNACK));
    one(n, n.client, toVip(ACK));
    one(n, n.be, fromBe(0x11));
    one(n, n.client, toVip(0x11));
    one(n, n.be, fromBe(ACK));
    expect(n.nat.ct.list(n.clock.now).map((e) => e.state)).toEqual(['TIME_WAIT']);
    n.pick.i = 1;
    const sp = n.sw.portList.find((p) => p.name === 'client')!;
    const t = n.sw.trace({ port: sp, frame: toVip(SYN) });
    expect(t.steps.find((s) => s.stage === 'service-nat')?.looked).toMatch(/a new connection on the port of a closed one \(TIME_WAIT\), which it replaces$/);
    const r = one(n, n.client, toVip(SYN)) as { port: string; frame: Buffer };
    expect([r.port, flow(r.frame, 1)]).toEqual(['ov', '10.244.1.2:40000 > 10.244.2.5:8080 ip good l4 good']);
    const back = one(n, n.ov, fromN2(tcp({ srcMac: N2_MAC, dstMac: VTEP_MAC, src: REMOTE_BE, dst: CLIENT.ip, sport: 8080, dport: 40000, flags: SYNACK, ttl: 63 }))) as { port: string; frame: Buffer };
    expect([back.port, flow(back.frame)]).toEqual(['client', '10.96.0.10:80 > 10.244.1.2:40000 ip good l4 good']);
    expect(n.nat.catalog.frontends[0]!.backends.map((b) => b.hits)).toEqual([1, 1]);
    expect(n.nat.ct.list(n.clock.now).map((e) => e.state)).toEqual(['SYN_RECV']);
  });

  it('an open connection through the Service is not forgotten when a SYN from its port goes straight to the backend', () => {
    const n = node();
    one(n, n.client, toVip(SYN));
    one(n, n.be, tcp({ srcMac: LOCAL_BE.mac, dstMac: CLIENT.mac, src: LOCAL_BE.ip, dst: CLIENT.ip, sport: 8080, dport: 40000, flags: SYNACK }));
    one(n, n.client, tcp({ srcMac: CLIENT.mac, dstMac: VTEP_MAC, src: CLIENT.ip, dst: LOCAL_BE.ip, sport: 40000, dport: 8080, flags: SYN }));
    expect([n.nat.ct.size, n.nat.staleRemoved]).toEqual([1, 0]);
  });

  it('to a backend on another node: encapsulated to it; the reply from the overlay is translated back', () => {
    const n = node();
    n.pick.i = 1;
    const r = one(n, n.client, toVip(SYN)) as { port: string; frame: Buffer };
    expect(r.port).toBe('ov');
    expect(flow(r.frame, 1)).toBe('10.244.1.2:40000 > 10.244.2.5:8080 ip good l4 good');
    const reply = fromN2(tcp({ srcMac: N2_MAC, dstMac: VTEP_MAC, src: REMOTE_BE, dst: CLIENT.ip, sport: 8080, dport: 40000, flags: SYNACK, ttl: 63 }));
    const b = one(n, n.ov, reply) as { port: string; frame: Buffer };
    expect([b.port, flow(b.frame)]).toEqual(['client', '10.96.0.10:80 > 10.244.1.2:40000 ip good l4 good']);
  });

  it('a connection keeps its backend (sticky), whatever the next draw; new connections draw again', () => {
    const n = node();
    one(n, n.client, toVip(SYN));
    n.pick.i = 1;
    expect(one(n, n.client, toVip(ACK)).port).toBe('be');
    expect(one(n, n.client, toVip(SYN, 40001)).port).toBe('ov');
  });

  it('draws uniformly at random by default (200 connections over 2 backends: each gets 70-130)', () => {
    const n = node();
    const nat = new ServiceNat(n.nat.catalog, new ConnTable({ capacity: 512 }), { nodeIp: GW, clock: n.clock });
    n.sw.setServices(nat);
    const got = { be: 0, ov: 0 };
    for (let i = 0; i < 200; i++) got[one(n, n.client, toVip(SYN, 20000 + i)).port as 'be' | 'ov']++;
    expect(got.be).toBeGreaterThanOrEqual(70);
    expect(got.ov).toBeGreaterThanOrEqual(70);
  });

  it('Maglev: the backend is a function of the flow, the same on every node', () => {
    const a = node({ lb: 'maglev' }), b = node({ lb: 'maglev' });
    const picks = (n: Node): string[] => Array.from({ length: 40 }, (_, i) => one(n, n.client, toVip(SYN, 30000 + i)).port!);
    const pa = picks(a);
    expect(picks(b)).toEqual(pa);
    expect(new Set(pa)).toEqual(new Set(['be', 'ov']));
  });

  it('ClientIP affinity: every connection of a client goes to its first backend until the timeout', () => {
    const n = node({ svc: service({ sessionAffinity: 'ClientIP', sessionAffinityConfig: { clientIP: { timeoutSeconds: 10 } } }) });
    n.pick.i = 1;
    expect(one(n, n.client, toVip(SYN, 41000)).port).toBe('ov');
    n.pick.i = 0;
    for (const p of [41001, 41002, 41003]) expect(one(n, n.client, toVip(SYN, p)).port).toBe('ov');
    n.clock.advance(10_001);
    expect(one(n, n.client, toVip(SYN, 41004)).port).toBe('be');
  });

  it('no endpoints: the client gets ICMP port unreachable quoting its packet, counted as service_no_endpoints; a port the Service lacks too', () => {
    const n = node({ eps: [] });
    const r = one(n, n.client, toVip(SYN)) as { port: string; frame: Buffer; drops: Record<string, number> };
    expect([r.port, r.drops]).toEqual(['client', { service_no_endpoints: 1 }]);
    const icmp = layer(r.frame, 'icmp');
    expect([icmp.type, icmp.code, icmp.checksumStatus]).toEqual([3, 3, 'good']);
    // The quoted header (the dissector does not descend into ICMP errors): the SYN as the client sent it.
    expect([formatIpv4(r.frame.readUInt32BE(42 + 16)), r.frame.readUInt16BE(42 + 20 + 2)]).toEqual(['10.96.0.10', 80]);
    const m = node();
    const other = tcp({ srcMac: CLIENT.mac, dstMac: VTEP_MAC, src: CLIENT.ip, dst: VIP, sport: 40000, dport: 443, flags: SYN });
    expect(one(m, m.client, other).drops).toEqual({ service_no_endpoints: 1 });
    expect(n.nat.catalog.frontends[0]!.rejected).toBe(1);
  });

  it('internalTrafficPolicy Local with endpoints only elsewhere: dropped, no ICMP', () => {
    const n = node({ svc: service({ internalTrafficPolicy: 'Local' }), eps: [{ ip: '10.244.2.5', node: 'n2' }] });
    expect(one(n, n.client, toVip(SYN))).toEqual({ port: null, drops: { service_no_local_endpoints: 1 } });
  });

  it('hairpin: a backend reaching itself through its Service is source-NATed to the node, and its reply finds its way back', () => {
    const n = node();
    const r = one(n, n.be, toVip(SYN, 45000, LOCAL_BE)) as { port: string; frame: Buffer };
    expect([r.port, flow(r.frame)]).toEqual(['be', '10.244.1.1:45000 > 10.244.1.3:8080 ip good l4 good']);
    const answer = tcp({ srcMac: LOCAL_BE.mac, dstMac: VTEP_MAC, src: LOCAL_BE.ip, dst: GW, sport: 8080, dport: 45000, flags: SYNACK });
    const b = one(n, n.be, answer) as { port: string; frame: Buffer };
    expect([b.port, flow(b.frame)]).toEqual(['be', '10.96.0.10:80 > 10.244.1.3:45000 ip good l4 good']);
  });

  it('UDP: a backend removed from the endpoints loses its UDP connections at once, so the client moves on; TCP ones to kept backends stay', () => {
    const n = node();
    n.pick.i = 1;
    expect(one(n, n.client, udpToVip(5000)).port).toBe('ov');
    n.pick.i = 0;
    one(n, n.client, toVip(SYN));
    const removed = n.nat.update(new ServiceCatalog({ services: [service()], slices: [slice([BOTH[0]!])], pods: [], node: 'n1' }));
    expect(removed).toBe(1);
    const again = one(n, n.client, udpToVip(5000)) as { port: string; frame: Buffer };
    expect([again.port, flow(again.frame)]).toEqual(['be', '10.244.1.2:5000 > 10.244.1.3:5353 ip good l4 good']);
    expect(one(n, n.client, toVip(ACK)).port).toBe('be');
  });

  it('a zero UDP checksum stays zero', () => {
    const n = node();
    const f = udpToVip(6000);
    f.writeUInt16BE(0, 14 + 20 + 6);
    const r = one(n, n.client, f) as { frame: Buffer };
    expect(r.frame.readUInt16BE(14 + 20 + 6)).toBe(0);
    expect(ipv4HeaderOk(r.frame)).toBe(true);
  });

  it('an ICMP error from the backend about a translated packet is translated back: quoted header and outer source', () => {
    const n = node();
    n.pick.i = 1;
    const sent = (one(n, n.client, udpToVip(7000)) as { frame: Buffer }).frame.subarray(50); // the inner frame as it left
    const err = fromN2(icmpv4Frame({ srcMac: N2_MAC, dstMac: VTEP_MAC, src: REMOTE_BE, dst: CLIENT.ip, ttl: 63, type: 3, code: 3, rest: 0, payload: sent.subarray(14, 14 + 28) }));
    const r = one(n, n.ov, err) as { port: string; frame: Buffer };
    expect(r.port).toBe('client');
    const outer = layer(r.frame, 'ipv4', 0), icmp = layer(r.frame, 'icmp');
    expect([outer.src, outer.dst, outer.checksumStatus, icmp.checksumStatus]).toEqual(['10.96.0.10', '10.244.1.2', 'good', 'good']);
    const q = r.frame.subarray(14 + 20 + 8);
    expect([formatIpv4(q.readUInt32BE(12)), formatIpv4(q.readUInt32BE(16))]).toEqual(['10.244.1.2', '10.96.0.10']);
    expect(checksumRef(q.subarray(0, 20).map((x, i) => (i === 10 || i === 11 ? 0 : x)))).toBe(q.readUInt16BE(10));
    expect([q.readUInt16BE(20), q.readUInt16BE(22)]).toEqual([7000, 53]);
  });

  it('egress NetworkPolicy judges the backend the Service chose (NAT first): allowed to backend pods, not to the ClusterIP', () => {
    const n = node();
    const pods = [
      { metadata: { name: 'client', namespace: 'shop', labels: { app: 'client' } }, status: { podIP: '10.244.1.2' } },
      { metadata: { name: 'be', namespace: 'shop', labels: { app: 'web' } }, status: { podIP: '10.244.1.3' } },
    ];
    const set = new PolicySet({ namespaces: [{ metadata: { name: 'shop' } }], pods, policies: [{
      metadata: { name: 'client-to-web', namespace: 'shop' },
      spec: { podSelector: { matchLabels: { app: 'client' } }, policyTypes: ['Egress'], egress: [{ to: [{ podSelector: { matchLabels: { app: 'web' } } }], ports: [{ port: 8080 }] }] },
    }] });
    new PolicyEnforcer(set, n.nat.ct, n.clock).install(n.sw);
    expect(one(n, n.client, toVip(SYN)).port).toBe('be');
    n.pick.i = 1; // the remote backend is not a pod of the policy set: denied
    expect(one(n, n.client, toVip(SYN, 40001)).drops).toEqual({ policy_denied_egress: 1 });
    expect(n.nat.ct.size).toBe(1);
  });

  it('a trace shows the backend it would pick and the translated frame, and changes nothing', () => {
    const n = node();
    const sp = n.sw.portList.find((p) => p.name === 'client')!;
    const t = n.sw.trace({ port: sp, frame: toVip(SYN) });
    expect(t.steps.find((s) => s.stage === 'service-nat')!.looked).toMatch(/^service shop\/web:http 10\.96\.0\.10:80: backend 10\.244\.1\.3:8080 of 2, at random/);
    expect(t.outcome).toBe('deliver');
    expect(flow(Buffer.from(t.frames[0]!.hex, 'hex'))).toBe('10.244.1.2:40000 > 10.244.1.3:8080 ip good l4 good');
    expect([n.nat.ct.size, n.nat.opened]).toEqual([0, 0]);
  });
});

describe('Services and NetworkPolicy on the data path', () => {
  it('add no allocation per packet of a tracked, translated connection (20,000 frames, within 1 byte of the same switch without tables)', () => {
    // The memory ports copy every frame they hand over, so the switch's own share is measured
    // as the difference from the same traffic through the same switch without tables.
    // Per round of 500 frames; the median round, so that a round in which V8 happened to
    // compile (its allocations land wherever the compiler finishes, more so on a loaded
    // machine) does not count as the data path's.
    const perFrame = (n: Node, frame: Buffer, out: MemoryPort): number => {
      const rounds: number[] = [];
      const meter = new AllocationMeter();
      for (let round = 0; round < 60; round++) {
        for (let i = 0; i < 500; i++) n.client.inject(frame); // allocates, outside the meter
        if (round >= 20) meter.start();
        n.sw.pump();
        if (round >= 20) rounds.push(meter.stop().bytes / 500);
        expect(out.take()).toHaveLength(500);
      }
      return rounds.sort((a, b) => a - b)[rounds.length >> 1]!;
    };
    const plain = node();
    plain.sw.setServices(null);
    const direct = tcp({ srcMac: CLIENT.mac, dstMac: VTEP_MAC, src: CLIENT.ip, dst: LOCAL_BE.ip, sport: 40000, dport: 8080, flags: ACK, payload: 10 });
    const base = perFrame(plain, direct, plain.be);
    const n = node();
    const pods = [{ metadata: { name: 'client', namespace: 'shop', labels: { app: 'client' } }, status: { podIP: '10.244.1.2' } }];
    const set = new PolicySet({ namespaces: [{ metadata: { name: 'shop' } }], pods, policies: [{ metadata: { name: 'all-out', namespace: 'shop' }, spec: { podSelector: {}, policyTypes: ['Egress'], egress: [{}] } }] });
    new PolicyEnforcer(set, n.nat.ct, n.clock).install(n.sw);
    const withTables = perFrame(n, toVip(ACK), n.be);
    expect([n.sw.stats.totalDrops(), n.nat.ct.size, n.nat.translated]).toEqual([0, 1, 30_000]);
    expect(withTables - base).toBeLessThan(1);
  });
});

describe('Services with the batch pre-pass (ConnTable.prepass): the same traffic gives the same result as the stages alone', () => {
  const SPORTS = [40000, 40001, 40002, 40003, 40004, 40005];
  const beReply = (sport: number, flags: number): Buffer => tcp({ srcMac: LOCAL_BE.mac, dstMac: VTEP_MAC, src: LOCAL_BE.ip, dst: CLIENT.ip, sport: 8080, dport: sport, flags, payload: 5 });
  const remoteReply = (sport: number): Buffer => fromN2(udp({ srcMac: N2_MAC, dstMac: VTEP_MAC, src: REMOTE_BE, dst: CLIENT.ip, sport: 5353, dport: sport, ttl: 63, payload: 30 }));

  /**
   * With NetworkPolicy in the same table too (as the daemon keeps them): the client may send
   * anywhere, the backend takes TCP 8080 from the client only (the UDP straight to it on port 7
   * is denied), and the pre-pass's packets of connections no Service translates skip the NAT
   * stage (FrameContext.ctPassNat).
   */
  const policies = (n: Node): PolicyEnforcer => {
    const pods = [
      { metadata: { name: 'client', namespace: 'shop', labels: { app: 'client' } }, status: { podIP: formatIpv4(CLIENT.ip) } },
      { metadata: { name: 'be', namespace: 'shop', labels: { app: 'be' } }, status: { podIP: formatIpv4(LOCAL_BE.ip) } },
    ];
    const set = new PolicySet({ namespaces: [{ metadata: { name: 'shop' } }], pods, policies: [
      { metadata: { name: 'client-out', namespace: 'shop' }, spec: { podSelector: { matchLabels: { app: 'client' } }, policyTypes: ['Egress'], egress: [{}] } },
      { metadata: { name: 'be-in', namespace: 'shop' }, spec: { podSelector: { matchLabels: { app: 'be' } }, policyTypes: ['Ingress'], ingress: [{ from: [{ podSelector: { matchLabels: { app: 'client' } } }], ports: [{ port: 8080 }] }] } },
    ] });
    const e = new PolicyEnforcer(set, n.nat.ct, n.clock);
    e.install(n.sw);
    return e;
  };

  it.each([['Services alone', false], ['Services and NetworkPolicy in one table', true]] as const)('%s: frames out (rewritten both ways), drops, connection entries, backend and policy hits match, and the pre-pass took the established packets', (_name, withPolicy) => {
    const a = node({ prepass: false }), b = node();
    const pa = withPolicy ? policies(a) : null, pb = withPolicy ? policies(b) : null;
    for (let r = 0; r < 10; r++) {
      for (const n of [a, b]) {
        // TCP to the local backend (draw 0), opened in round 0; UDP to the remote one (draw 1), from round 1.
        n.pick.i = r === 0 ? 0 : 1;
        for (const sp of SPORTS) {
          n.client.inject(toVip(r === 0 ? SYN : ACK, sp));
          // Round 1: twice in one batch, the second after the first opened the connection (no
          // miss of the pre-pass stands then); and UDP straight to the pod, which no connection
          // has (the stages skip the lookup).
          if (r > 0) n.client.inject(udpToVip(sp));
          if (r === 1) n.client.inject(udpToVip(sp));
          n.client.inject(udp({ srcMac: CLIENT.mac, dstMac: VTEP_MAC, src: CLIENT.ip, dst: LOCAL_BE.ip, sport: sp, dport: 7, payload: 8 }));
          if (r > 0) n.be.inject(beReply(sp, r === 1 ? SYNACK : ACK));
          if (r > 1) n.ov.inject(remoteReply(sp));
        }
        n.sw.pump();
      }
      for (const port of ['client', 'be', 'ov'] as const) expect(b[port].take().map((f) => f.frame)).toEqual(a[port].take().map((f) => f.frame));
      expect(b.sw.stats.dropsByName()).toEqual(a.sw.stats.dropsByName());
      expect(b.nat.ct.list(b.clock.now)).toEqual(a.nat.ct.list(a.clock.now));
      a.clock.advance(r % 3 === 0 ? 1500 : 0);
      b.clock.advance(r % 3 === 0 ? 1500 : 0);
    }
    expect(b.nat.catalog.frontends.map((f) => f.backends.map((x) => x.hits))).toEqual(a.nat.catalog.frontends.map((f) => f.backends.map((x) => x.hits)));
    expect([b.nat.translated, b.nat.opened]).toEqual([a.nat.translated, a.nat.opened]);
    if (pa !== null && pb !== null) {
      const hits = (e: PolicyEnforcer): unknown => e.set.policies.map((p) => [p.allowed, p.denied, p.rules.map((x) => x.hits)]);
      expect(hits(pb)).toEqual(hits(pa));
      // The UDP straight to the backend's port 7, every round; nothing else.
      expect(a.sw.stats.dropsByName()).toEqual({ policy_denied_ingress: 10 * SPORTS.length });
    }
    expect(a.nat.ct.stats.prepassed).toBe(0);
    // At least rounds 2-9's TCP both ways and UDP out, rounds 3-9's UDP back: 6 connections each.
    expect(b.nat.ct.stats.prepassed).toBeGreaterThanOrEqual(6 * (8 * 3 + 7));
    // Of those, the client's packets to the Service were translated there too: at least rounds
    // 3-9's TCP (the handshake ends in round 2) and rounds 2-9's UDP; replies never are.
    expect(b.nat.ct.stats.prepassTranslated).toBeGreaterThanOrEqual(6 * (7 + 8));
  });

  it('offloaded frames (partial checksums), hairpin and a Service on the overlay\'s port: the same frames out; hairpin and the overlay\'s port are not translated by the pre-pass', () => {
    const svc = service({ ports: [{ name: 'http', port: 80, targetPort: 8080 }, { name: 'dns', port: 53, protocol: 'UDP', targetPort: 5353 }, { name: 'vx', port: 4789, protocol: 'UDP', targetPort: 4789 }] });
    const a = node({ svc, prepass: false, clientVnet: 12 }), b = node({ svc, clientVnet: 12 });
    const sl = slice(BOTH), withVx: EndpointSlice = { ...sl, ports: [...(sl.ports ?? []), { name: 'vx', port: 4789, protocol: 'UDP' }] };
    for (const n of [a, b]) n.nat.update(new ServiceCatalog({ services: [svc], slices: [withVx], pods: [], node: 'n1' }));
    // As a sender with checksum offload leaves a frame: the folded pseudo-header sum in the field, NEEDS_CSUM in the virtio-net header.
    const offloaded = (f: Buffer, at: number): { frame: Buffer; vnet: Buffer } => {
      const ph = Buffer.alloc(12);
      f.copy(ph, 0, 26, 34); ph[9] = f[23]!; ph.writeUInt16BE(f.length - 34, 10);
      f.writeUInt16BE(0xffff - checksumRef(ph), 34 + at);
      const h = Buffer.alloc(12);
      h[0] = 1; h.writeUInt16LE(34, 6); h.writeUInt16LE(at, 8);
      return { frame: f, vnet: h };
    };
    const plain = Buffer.alloc(12);
    for (let r = 0; r < 6; r++) {
      for (const n of [a, b]) {
        n.pick.i = 0; // the local backend
        for (const sp of SPORTS) {
          const t = offloaded(toVip(r === 0 ? SYN : ACK, sp), 16);
          n.client.inject(t.frame, 0, 0, { vnet: t.vnet });
          const u = r % 2 === 0 ? offloaded(udpToVip(sp), 6) : { frame: udpToVip(sp), vnet: plain };
          n.client.inject(u.frame, 0, 0, { vnet: u.vnet });
          n.client.inject(udp({ srcMac: CLIENT.mac, dstMac: VTEP_MAC, src: CLIENT.ip, dst: VIP, sport: sp, dport: 4789, payload: 16 }), 0, 0, { vnet: plain });
          n.be.inject(udp({ srcMac: LOCAL_BE.mac, dstMac: VTEP_MAC, src: LOCAL_BE.ip, dst: VIP, sport: sp, dport: 53, payload: 12 })); // hairpin
          if (r > 0) n.be.inject(beReply(sp, r === 1 ? SYNACK : ACK));
        }
        n.sw.pump();
      }
      for (const port of ['client', 'be', 'ov'] as const) {
        const got = b[port].take().map((f) => f.frame);
        expect(got).toEqual(a[port].take().map((f) => f.frame));
        // What reaches the backend carries checksums that verify (completed for a port without offloads).
        if (port === 'be') for (const f of got) expect([ipv4HeaderOk(f), l4ChecksumOk(f)]).toEqual([true, true]);
      }
      expect(b.sw.stats.dropsByName()).toEqual(a.sw.stats.dropsByName());
      expect(b.nat.ct.list(b.clock.now)).toEqual(a.nat.ct.list(a.clock.now));
    }
    const marked = (sport: number, dport: number, src = CLIENT.ip): boolean => {
      const n = b.nat.ct.lookup(17, src | 0, VIP | 0, packPorts(sport, dport), b.clock.now);
      expect(n).toBeGreaterThanOrEqual(0);
      return (b.nat.ct.mark(n) & MARK_PREPASS_DNAT) !== 0;
    };
    expect([marked(SPORTS[0]!, 53), marked(SPORTS[0]!, 4789), marked(SPORTS[0]!, 53, LOCAL_BE.ip)]).toEqual([true, false, false]);
    expect(b.nat.translated).toBe(a.nat.translated);
    // Nothing but the client's packets to port 80 and 53 and the backend's TCP replies: TCP from
    // round 3 (the handshake ends in round 2), six clients; UDP from round 1, but for the last
    // client's, which a port with offloads reads after 16 frames (BIG_BATCH), in a batch of 2:
    // too few for the pre-pass; the replies from round 2 (round 1's SYN/ACK moves the state).
    expect(b.nat.ct.stats.prepassTranslated).toBe(6 * 3 + 5 * 5 + 6 * 4);
  });
});

describe('Services with the batch pre-pass: the ingress checks see a translated reply as it came', () => {
  const UL3 = ip('198.51.100.3');
  const fromPeer = (ul: number, inner: Buffer): Buffer => {
    const t = new EncapTemplate({ srcMac: mac('02:00:c6:33:64:09'), dstMac: mac('02:00:c6:33:64:01'), srcIp: ul, dstIp: UL1, vni: 1 });
    const b = Buffer.alloc(VXLAN_HEADROOM + inner.length);
    inner.copy(b, VXLAN_HEADROOM);
    return Buffer.from(b.subarray(t.encap(b, VXLAN_HEADROOM, b.length)));
  };
  const reply = (sport: number): Buffer => udp({ srcMac: N2_MAC, dstMac: VTEP_MAC, src: REMOTE_BE, dst: CLIENT.ip, sport: 5353, dport: sport, ttl: 63, payload: 30 });

  it('a reply from the backend\'s node is translated back; the same reply from another peer (its inner source outside that peer\'s pod CIDR) is dropped, with and without the pre-pass', () => {
    const a = node({ prepass: false }), b = node();
    for (const n of [a, b]) {
      n.sw.setPeers([
        { name: 'n2', underlayIp: UL2, mac: N2_MAC, vni: 1, port: 4789, podCidr: Cidr.parse('10.244.2.0/24') },
        { name: 'n3', underlayIp: UL3, mac: mac('0e:00:0a:f4:03:00'), vni: 1, port: 4789, podCidr: Cidr.parse('10.244.3.0/24') },
      ]);
      n.pick.i = 1; // the remote backend, 10.244.2.5 on n2
      for (let sp = 40000; sp < 40006; sp++) n.client.inject(udpToVip(sp));
      n.sw.pump();
      n.ov.take();
      for (let sp = 40000; sp < 40006; sp++) n.ov.inject(fromPeer(UL2, reply(sp))).inject(fromPeer(UL3, reply(sp)));
      n.sw.pump();
    }
    const got = b.client.take().map((f) => f.frame);
    expect(got).toEqual(a.client.take().map((f) => f.frame));
    expect(got.map((f) => flow(f))).toEqual([40000, 40001, 40002, 40003, 40004, 40005].map((sp) => `10.96.0.10:53 > 10.244.1.2:${sp} ip good l4 good`));
    expect([a.sw.stats.dropsByName(), b.sw.stats.dropsByName()]).toEqual([{ inner_src_not_in_peer_cidr: 6 }, { inner_src_not_in_peer_cidr: 6 }]);
    // The pre-pass translated the replies it took (all six from n2, and n3's, dropped after).
    expect([a.nat.ct.stats.prepassTranslated, b.nat.ct.stats.prepassTranslated]).toEqual([0, 12]);
  });
});

describe('natRewrite checksums', () => {
  it('an offloaded frame (partial checksum): the pseudo-header part follows the new addresses, and completing it verifies', () => {
    const f = tcp({ srcMac: CLIENT.mac, dstMac: VTEP_MAC, src: CLIENT.ip, dst: VIP, sport: 40000, dport: 80, flags: ACK, payload: 100 });
    // As a sender with checksum offload leaves it: the folded pseudo-header sum, not complemented.
    const ph = Buffer.alloc(12);
    f.copy(ph, 0, 26, 34); ph[9] = 6; ph.writeUInt16BE(f.length - 34, 10);
    f.writeUInt16BE(0xffff - checksumRef(ph), 34 + 16);
    const L = FrameLayout.of(f);
    L.l4();
    natRewrite(L, true, CLIENT.ip, LOCAL_BE.ip, 40000, 8080);
    completeChecksum(f, 0, f.length, 34, 16);
    expect([formatIpv4(f.readUInt32BE(30)), f.readUInt16BE(36), ipv4HeaderOk(f), l4ChecksumOk(f)]).toEqual(['10.244.1.3', 8080, true, true]);
  });

  it('natApply (the checksum changes stored with the connection) writes the same bytes as natRewrite, for any tuple and checksum', () => {
    const u32 = fc.integer({ min: 0, max: 0xffff_ffff }), u16 = fc.integer({ min: 0, max: 0xffff });
    const edge32 = fc.oneof(u32, fc.constantFrom(0, 0xffff_ffff, 0xffff_0000, 0x0000_ffff));
    const edge16 = fc.oneof(u16, fc.constantFrom(0, 0xffff));
    fc.assert(fc.property(
      fc.constantFrom('tcp', 'udp'), fc.boolean(), fc.tuple(edge32, edge32, edge16, edge16), fc.tuple(edge32, edge32, edge16, edge16), edge16,
      (proto, partial, [os, od, osp, odp], [ns, nd, nsp, ndp], csum) => {
        const make = (): Buffer => {
          const f = proto === 'tcp' ? tcp({ srcMac: CLIENT.mac, dstMac: VTEP_MAC, src: os, dst: od, sport: osp, dport: odp, flags: ACK, payload: 10 })
            : udp({ srcMac: CLIENT.mac, dstMac: VTEP_MAC, src: os, dst: od, sport: osp, dport: odp, payload: 10 });
          f.writeUInt16BE(csum, 34 + (proto === 'tcp' ? 16 : 6)); // any field value, 0 included (UDP: no checksum)
          return f;
        };
        const a = make(), b = make();
        const La = FrameLayout.of(a), Lb = FrameLayout.of(b);
        La.l4(); Lb.l4();
        natRewrite(La, partial, ns, nd, nsp, ndp);
        natApply(Lb, partial, natSums(os, od, packPorts(osp, odp), ns, nd, packPorts(nsp, ndp)), ns, nd, packPorts(nsp, ndp));
        expect(b.toString('hex')).toBe(a.toString('hex'));
      }), { numRuns: 3000, seed: 5 });
  });

  it('crc32c matches the RFC 3720 check value, so SCTP packets are rewritten with a CRC32c that verifies', () => {
    expect(crc32c(Buffer.from('123456789'), 0, 9)).toBe(0xe3069283);
    expect(crc32c(Buffer.alloc(32), 0, 32)).toBe(0x8a9136aa);
  });
});
