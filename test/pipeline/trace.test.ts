// A trace and the real pipeline cannot disagree, and a trace changes nothing:
//   - every frame of every replay fixture is traced, then sent through the same switch: the
//     trace's outcome and drop reason are what the switch counts, and the frames the trace says
//     would leave are, byte for byte, what the ports get;
//   - the same for one frame per drop reason the pipeline has (the reasons a trace cannot know,
//     decided when the port takes the write or by resources, are listed and shown counted);
//   - tracing frames of every kind leaves the counters, the FDB and its timestamps, the ICMP
//     token bucket, the queues, the peers' counters and the encapsulation's IPv4 ID untouched.
import { readFileSync, readdirSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { switchOptionsFor } from '../../src/daemon/switch-options.js';
import { GW, HOST_MAC, N2_MAC, N3_MAC, node1Peers, P1, P2, REMOTE_POD as REMOTE, UL1, UL2, UL3, VTEP_MAC } from '../../fixtures/node1.js';
import { Cidr } from '../../src/fib/cidr.js';
import { FakeClock } from '../../src/fib/clock.js';
import type { MemoryPort, WireFrame } from '../../src/io/memory-port.js';
import { LinkType, PcapReader, PcapRecord } from '../../src/pcap/pcap.js';
import { DROP_NAMES, Drop } from '../../src/pipeline/drop.js';
import { Framing, Switch, SwitchMode, type OverlayAttach, type SwitchOptions, type SwitchPort } from '../../src/pipeline/switch.js';
import type { TraceResult } from '../../src/pipeline/trace.js';
import { Classifier } from '../../src/replay/classify.js';
import { buildTracePacket } from '../../src/trace/packet.js';
import { traceDefaults, traceRequest } from '../../src/trace/request.js';
import { DEFAULT_UNDERLAY_MACS, DEFAULT_VTEP_MAC, defaultNodeConfig } from '../../src/replay/node.js';
import { dataViewOf } from '../../src/wire/bytes.js';
import { EncapTemplate, VXLAN_HEADROOM } from '../../src/wire/encap.js';
import { VirtioGso, VirtioNetFlag } from '../../src/wire/virtio-net-hdr.js';
import { tcpFrame as l4Tcp } from '../support/l4-frames.js';
import { BROADCAST, arp, icmpEcho, ip, mac, tcp, udp } from '../support/pod-frames.js';
import { testPort } from '../support/test-port.js';
import { refillIpv4ChecksumRef } from '../support/refs.js';
import { ConnTable } from '../../src/conntrack/table.js';
import { PolicySet } from '../../src/policy/engine.js';
import { PolicyEnforcer } from '../../src/policy/enforcer.js';
import type { NetworkPolicy, Pod } from '../../src/policy/objects.js';
import { ServiceCatalog, type EndpointSlice, type Service } from '../../src/service/catalog.js';
import { ServiceNat } from '../../src/service/nat.js';

const FIXTURES = new URL('../../fixtures/replay/', import.meta.url);

/** Sends `frame` in at `port`, pumps, and returns the drops counted and what every port got. */
function realRun(sw: Switch, ports: readonly MemoryPort[], port: MemoryPort, frame: Buffer, addr = 0, vnet?: Buffer): { drops: Record<string, number>; out: { port: string; hex: string }[] } {
  const before = Float64Array.from(sw.stats.drops);
  port.inject(frame, addr, 0, vnet === undefined ? {} : { vnet });
  sw.pump();
  const drops: Record<string, number> = {};
  sw.stats.drops.forEach((n, i) => { if (n !== before[i]) drops[DROP_NAMES[i]!] = n - before[i]!; });
  const out: { port: string; hex: string }[] = [];
  for (const p of ports) for (const w of p.take()) out.push({ port: p.name, hex: w.frame.toString('hex') });
  return { drops, out };
}

/** What the trace says the switch counts (the frame's drop, a flood's lost copies) and sends. */
function predicted(t: TraceResult): { drops: Record<string, number>; out: { port: string; hex: string }[] } {
  const drops: Record<string, number> = t.drop === null ? {} : { [t.drop.reason]: 1 };
  for (const d of t.droppedCopies) drops[d.reason] = (drops[d.reason] ?? 0) + 1;
  return { drops, out: t.frames.map((f) => ({ port: f.port, hex: f.hex })) };
}

const sortOut = (o: { port: string; hex: string }[]): string[] => o.map((x) => `${x.port} ${x.hex}`).sort();

/** The node every replay fixture was made for, over memory ports; ICMP never rate-limited. */
function replayNode(): { sw: Switch; ports: MemoryPort[]; sps: SwitchPort[]; cls: Classifier } {
  const cfg = defaultNodeConfig();
  const sw = new Switch({ ...switchOptionsFor(cfg, DEFAULT_VTEP_MAC, cfg.underlay.mtu ?? 1500, DEFAULT_UNDERLAY_MACS), slotSize: 2048, clock: new FakeClock(1000), icmpRatePerSec: 1e9 });
  const host = testPort(cfg.host.interface), overlay = testPort(`vxlan:${cfg.port}`);
  const hostSp = sw.attachHost(host, cfg.host.mac ?? 0, host.name);
  const ovSp = sw.attachOverlay(overlay, Framing.ETHERNET, overlay.name);
  sw.setPeers(cfg.peers.map((p) => ({ name: p.name, underlayIp: p.underlayIp, mac: p.vtepMac, vni: cfg.vni, port: cfg.port, podCidr: p.podCidr })));
  const ports: MemoryPort[] = [], sps: SwitchPort[] = [];
  for (const p of cfg.pods) {
    const port = testPort(p.name);
    sps.push(sw.attachPod(port, p.ip, p.mac, p.name));
    ports.push(port);
  }
  ports.push(host, overlay);
  sps.push(hostSp, ovSp);
  const cls = new Classifier({
    podMacs: cfg.pods.map((p) => p.mac), podIps: cfg.pods.map((p) => p.ip), hostMac: cfg.host.mac,
    underlayIp: cfg.underlay.address, vxlanPort: cfg.port, hostIndex: ports.length - 2, overlayIndex: ports.length - 1,
  });
  return { sw, ports, sps, cls };
}

describe('trace and pipeline agree on every frame of every replay fixture', () => {
  const files = readdirSync(FIXTURES).filter((f) => f.endsWith('.pcap'));
  it('has fixtures to replay', () => expect(files.length).toBeGreaterThanOrEqual(5));

  it.each(files)('%s', (file) => {
    const { sw, ports, sps, cls } = replayNode();
    const data = readFileSync(new URL(file, FIXTURES));
    const reader = new PcapReader(data), rec = new PcapRecord(), dv = dataViewOf(data);
    let n = 0, skipped = 0;
    const outcomes = new Map<string, number>();
    while (reader.next(rec)) {
      if (rec.linkType !== LinkType.ETHERNET || rec.capLen < rec.origLen) { skipped++; continue; } // cut by the snaplen: no whole frame to trace
      const frame = Buffer.from(data.subarray(rec.off, rec.off + rec.capLen));
      const i = cls.classify(dv, rec.off, rec.capLen);
      const t = sw.trace({ port: sps[i]!, frame });
      const real = realRun(sw, ports, ports[i]!, frame);
      const want = predicted(t);
      expect({ drops: real.drops, out: sortOut(real.out) }, `${file} frame ${n + skipped + 1} (${t.outcome}${t.drop ? ` ${t.drop.reason}` : ''})`).toEqual({ drops: want.drops, out: sortOut(want.out) });
      const key = t.drop?.reason ?? t.outcome;
      outcomes.set(key, (outcomes.get(key) ?? 0) + 1);
      n++;
    }
    expect(n).toBeGreaterThan(90);
    expect(skipped).toBeLessThan(3);
    // Each fixture is what its name says (a trace that always said "drop" would agree too, with a switch that always drops).
    if (file === 'hostile.pcap') expect(outcomes.size).toBeGreaterThan(30);
    else expect((outcomes.get('tunnel') ?? 0) + (outcomes.get('deliver') ?? 0)).toBeGreaterThan(n / 2);
  });
});

// ---------------------------------------------------------------------------------------
// One frame per drop reason.

// Node 1 of fixtures/node1.ts.
const PEERS = node1Peers();

interface Node { sw: Switch; p1: MemoryPort; p2: MemoryPort; host: MemoryPort; ov: MemoryPort | null; sp: Record<'p1' | 'p2' | 'host' | 'ov', SwitchPort | null> }

function node(o: { mode?: SwitchMode; overlay?: OverlayAttach | null; vnet?: number; extra?: Partial<SwitchOptions> } = {}): Node {
  const sw = new Switch({
    mode: o.mode ?? SwitchMode.L3, vni: 1, vtepMac: VTEP_MAC, vtepIp: ip('10.244.1.0'), podCidr: Cidr.parse('10.244.1.0/24'),
    clusterCidr: Cidr.parse('10.244.0.0/16'), gatewayIp: GW, underlayIp: UL1, port: 4789,
    encap: { localUnderlayMac: mac('02:00:c6:33:64:01'), nextHopMac: mac('02:00:c6:33:64:fe'), ttl: 64, df: 'unset', udpChecksum: false, srcPortRange: [49152, 65535] },
    clock: new FakeClock(1000), icmpRatePerSec: 1e9, ...o.extra,
  });
  const p1 = testPort('p1', o.vnet ?? 0), p2 = testPort('p2'), host = testPort('host');
  const sp = { p1: sw.attachPod(p1, P1.ip, P1.mac, 'p1'), p2: sw.attachPod(p2, P2.ip, P2.mac, 'p2'), host: sw.attachHost(host, HOST_MAC, 'host'), ov: null as SwitchPort | null };
  let ov: MemoryPort | null = null;
  if (o.overlay !== null) {
    ov = testPort('ov');
    sp.ov = sw.attachOverlay(ov, o.overlay ?? Framing.ETHERNET, 'ov');
  }
  sw.setPeers(PEERS);
  return { sw, p1, p2, host, ov, sp };
}

/** A VXLAN frame from `fromIp` carrying `inner` (outer Ethernet/IPv4/UDP as the underlay shows it). */
function fromPeer(fromIp: number, inner: Buffer, o: { vni?: number; tos?: number } = {}): Buffer {
  const t = new EncapTemplate({ srcMac: mac('02:00:c6:33:64:02'), dstMac: mac('02:00:c6:33:64:01'), srcIp: fromIp, dstIp: UL1, vni: o.vni ?? 1 });
  const b = Buffer.alloc(VXLAN_HEADROOM + inner.length);
  inner.copy(b, VXLAN_HEADROOM);
  const f = Buffer.from(b.subarray(t.encap(b, VXLAN_HEADROOM, b.length)));
  if (o.tos !== undefined) { f[15] = o.tos; refillIpv4ChecksumRef(f, 14); }
  return f;
}


const edit = (f: Buffer, fn: (b: Buffer) => void): Buffer => { const b = Buffer.from(f); fn(b); return b; };
const toRemote = (o: Partial<Parameters<typeof udp>[0]> = {}): Buffer => udp({ srcMac: P1.mac, dstMac: VTEP_MAC, src: P1.ip, dst: REMOTE, ...o });
const fromN2 = (o: Partial<Parameters<typeof icmpEcho>[0]> = {}): Buffer => icmpEcho({ srcMac: N2_MAC, dstMac: VTEP_MAC, src: REMOTE, dst: P1.ip, ttl: 63, ...o });
const vnetHdr = (flags: number, gso: number, hdrLen: number, gsoSize: number, cs: number, co: number): Buffer => {
  const h = Buffer.alloc(10);
  h[0] = flags; h[1] = gso; h.writeUInt16LE(hdrLen, 2); h.writeUInt16LE(gsoSize, 4); h.writeUInt16LE(cs, 6); h.writeUInt16LE(co, 8);
  return h;
};
const macBuf = (m: number): Buffer => Buffer.from(m.toString(16).padStart(12, '0'), 'hex');
const ipBuf = (a: number): Buffer => { const b = Buffer.alloc(4); b.writeUInt32BE(a >>> 0); return b; };

interface Case {
  readonly node?: Parameters<typeof node>[0];
  /** Installs what the case needs beyond the node (a policy). */
  readonly setup?: (n: Node) => void;
  readonly port: 'p1' | 'host' | 'ov';
  readonly frame: () => Buffer;
  readonly vnet?: Buffer;
}

/** isolateP1 installs a NetworkPolicy that isolates pod p1 in one direction and allows nothing. */
function isolateP1(n: Node, type: 'Ingress' | 'Egress'): void {
  const pods: Pod[] = [{ metadata: { name: 'p1', namespace: 'default', labels: { app: 'p1' } }, status: { podIP: '10.244.1.2' } }];
  const policies: NetworkPolicy[] = [{ metadata: { name: 'deny', namespace: 'default' }, spec: { podSelector: { matchLabels: { app: 'p1' } }, policyTypes: [type] } }];
  new PolicyEnforcer(new PolicySet({ namespaces: [], pods, policies }), new ConnTable({ capacity: 64 }), n.sw.clock).install(n.sw);
}

/** serviceWith installs Service 10.96.0.10:53/UDP with endpoints on node n2 (`eps`). */
function serviceWith(n: Node, eps: string[], policy: 'Cluster' | 'Local'): void {
  const services: Service[] = [{ metadata: { name: 'dns', namespace: 'default' }, spec: { clusterIP: '10.96.0.10', internalTrafficPolicy: policy, ports: [{ port: 53, protocol: 'UDP' }] } }];
  const slices: EndpointSlice[] = [{ metadata: { name: 'dns-1', namespace: 'default', labels: { 'kubernetes.io/service-name': 'dns' } }, ports: [{ port: 53, protocol: 'UDP' }], endpoints: eps.map((a) => ({ addresses: [a], nodeName: 'n2' })) }];
  n.sw.setServices(new ServiceNat(new ServiceCatalog({ services, slices, pods: [], node: 'n1' }), new ConnTable({ capacity: 64 }), { nodeIp: GW, clock: n.sw.clock }));
}

/** One frame per drop reason a trace can decide. */
const CASES: Readonly<Record<string, Case>> = {
  eth_truncated: { port: 'p1', frame: () => Buffer.alloc(13, 2) },
  outer_not_ipv4: { port: 'ov', frame: () => edit(fromPeer(UL2, fromN2()), (b) => b.writeUInt16BE(0x86dd, 12)) },
  ipv4_truncated: { port: 'ov', frame: () => fromPeer(UL2, fromN2()).subarray(0, 30) },
  ipv4_bad_version: { port: 'p1', frame: () => edit(toRemote(), (b) => { b[14] = 0x65; }) },
  ipv4_bad_ihl: { port: 'p1', frame: () => edit(toRemote(), (b) => { b[14] = 0x44; }) },
  ipv4_bad_total_len: { port: 'p1', frame: () => edit(toRemote(), (b) => b.writeUInt16BE(19, 16)) },
  ipv4_bad_checksum: { port: 'p1', frame: () => edit(toRemote(), (b) => { b[24] = b[24]! ^ 0xff; }) },
  ipv4_fragment: { port: 'ov', frame: () => refillIpv4ChecksumRef(edit(fromPeer(UL2, fromN2()), (b) => b.writeUInt16BE(0x2000, 20)), 14) },
  outer_not_udp: { port: 'ov', frame: () => refillIpv4ChecksumRef(edit(fromPeer(UL2, fromN2()), (b) => { b[23] = 6; }), 14) },
  udp_truncated: { port: 'ov', frame: () => refillIpv4ChecksumRef(edit(fromPeer(UL2, fromN2()), (b) => b.writeUInt16BE(24, 16)), 14).subarray(0, 38) },
  udp_bad_len: { port: 'ov', frame: () => edit(fromPeer(UL2, fromN2()), (b) => b.writeUInt16BE(4, 38)) },
  udp_bad_checksum: { port: 'ov', frame: () => edit(fromPeer(UL2, fromN2()), (b) => b.writeUInt16BE(0x1234, 40)) },
  udp_port_mismatch: { port: 'ov', frame: () => edit(fromPeer(UL2, fromN2()), (b) => b.writeUInt16BE(4790, 36)) },
  vxlan_truncated: { port: 'ov', frame: () => refillIpv4ChecksumRef(edit(fromPeer(UL2, fromN2()), (b) => { b.writeUInt16BE(32, 16); b.writeUInt16BE(12, 38); }), 14).subarray(0, 46) },
  vxlan_no_i_flag: { port: 'ov', frame: () => edit(fromPeer(UL2, fromN2()), (b) => { b[42] = 0; }) },
  vxlan_reserved_set: { port: 'ov', frame: () => edit(fromPeer(UL2, fromN2()), (b) => { b[49] = 1; }) },
  vxlan_vni_unknown: { port: 'ov', frame: () => fromPeer(UL2, fromN2(), { vni: 99 }) },
  inner_eth_truncated: { port: 'ov', frame: () => fromPeer(UL2, Buffer.alloc(10, 2)) },
  inner_src_mac_invalid: { port: 'ov', frame: () => fromPeer(UL2, fromN2({ srcMac: BROADCAST })) },
  inner_src_mac_ours: { port: 'ov', frame: () => fromPeer(UL2, fromN2({ srcMac: VTEP_MAC })) },
  ecn_ce_not_ect: { port: 'ov', frame: () => fromPeer(UL2, fromN2(), { tos: 0x03 }) },
  vtep_unknown: { port: 'ov', frame: () => fromPeer(ip('198.51.100.9'), fromN2()) },
  inner_src_not_in_peer_cidr: { port: 'ov', frame: () => fromPeer(UL2, fromN2({ src: ip('10.244.3.5') })) },
  inner_src_broadcast: { port: 'ov', frame: () => fromPeer(UL2, fromN2({ src: ip('10.244.2.255') })) },
  inner_dst_mac_not_ours: { port: 'ov', frame: () => fromPeer(UL2, fromN2({ dstMac: P1.mac })) },
  overlay_loop: { port: 'ov', frame: () => fromPeer(UL2, fromN2({ dst: ip('10.244.3.9') })) },
  vlan_tagged: { port: 'p1', frame: () => Buffer.concat([toRemote().subarray(0, 12), Buffer.from('81000005', 'hex'), toRemote().subarray(12)]) },
  spoof_src_mac: { port: 'p1', frame: () => toRemote({ srcMac: P2.mac }) },
  spoof_src_ip: { port: 'p1', frame: () => toRemote({ src: P2.ip }) },
  arp_spoof: { port: 'p1', frame: () => arp({ srcMac: P1.mac, spa: P2.ip, tpa: P2.ip }) },
  pod_sent_vxlan: { port: 'p1', frame: () => toRemote({ dst: UL2, dport: 4789 }) },
  arp_malformed: { port: 'p1', frame: () => arp({ srcMac: P1.mac, spa: P1.ip, tpa: GW }).subarray(0, 30) },
  arp_unanswered: { port: 'p1', frame: () => arp({ srcMac: P1.mac, spa: P1.ip, tpa: ip('10.244.1.200') }) },
  ethertype_unsupported: { port: 'p1', frame: () => edit(toRemote(), (b) => b.writeUInt16BE(0x88cc, 12)) },
  l3_broadcast: { port: 'p1', frame: () => toRemote({ dstMac: BROADCAST, dst: ip('255.255.255.255') }) },
  unknown_dst_mac: { port: 'p1', frame: () => toRemote({ dstMac: mac('02:00:00:00:00:99') }) },
  hairpin: { port: 'p1', frame: () => toRemote({ dstMac: P1.mac }) },
  no_route: { port: 'p1', frame: () => toRemote({ dst: ip('10.244.9.9') }) },
  ttl_exceeded: { port: 'p1', frame: () => toRemote({ ttl: 1 }) },
  fdb_full: { node: { mode: SwitchMode.L2, extra: { fdbLimit: 2 } }, port: 'ov', frame: () => fromPeer(UL2, fromN2({ srcMac: mac('02:00:0a:f4:02:05'), dstMac: P1.mac })) },
  fdb_static_conflict: { node: { mode: SwitchMode.L2 }, port: 'ov', frame: () => fromPeer(UL2, arp({ srcMac: P1.mac, spa: REMOTE, tpa: P2.ip })) },
  mtu_exceeded: { port: 'p1', frame: () => toRemote({ payload: 1500, df: true }) },
  rx_truncated: { port: 'p1', frame: () => toRemote({ payload: 2100 }) },
  offload_invalid: { node: { vnet: 10 }, port: 'p1', frame: () => toRemote({ payload: 100 }), vnet: vnetHdr(VirtioNetFlag.NEEDS_CSUM, 0, 0, 0, 34, 900) },
  gso_unsupported: { node: { vnet: 10 }, port: 'p1', frame: () => toRemote({ payload: 3000 }), vnet: vnetHdr(VirtioNetFlag.NEEDS_CSUM, VirtioGso.UDP, 42, 1000, 34, 6) },
  too_many_segments: {
    node: { vnet: 10 }, port: 'p1',
    frame: () => l4Tcp({ srcMac: macBuf(P1.mac), dstMac: macBuf(VTEP_MAC), src: ipBuf(P1.ip), dst: ipBuf(REMOTE), payload: Buffer.alloc(30_000, 1), csum: 'partial' }),
    vnet: vnetHdr(VirtioNetFlag.NEEDS_CSUM, VirtioGso.TCPV4, 54, 100, 34, 16),
  },
  no_egress_port: { node: { overlay: null }, port: 'p1', frame: () => toRemote() },
  // A flood copy too big for a scratch slot (the first VTEP takes the frame in place, the second a copy).
  no_buffer: {
    node: { mode: SwitchMode.L2, extra: { underlayMtu: 20_000, slotSize: 20_480 } }, port: 'p1',
    frame: () => udp({ srcMac: P1.mac, dstMac: BROADCAST, src: P1.ip, dst: ip('10.244.255.255'), payload: 17_000 }),
  },
  gateway_unanswered: { port: 'p1', frame: () => toRemote({ dst: GW }) },
  policy_denied_egress: { port: 'p1', setup: (n) => isolateP1(n, 'Egress'), frame: () => toRemote() },
  policy_denied_ingress: { port: 'ov', setup: (n) => isolateP1(n, 'Ingress'), frame: () => fromPeer(UL2, fromN2()) },
  service_no_endpoints: { port: 'p1', setup: (n) => serviceWith(n, [], 'Cluster'), frame: () => toRemote({ dst: ip('10.96.0.10'), dport: 53 }) },
  service_no_local_endpoints: { port: 'p1', setup: (n) => serviceWith(n, ['10.244.2.5'], 'Local'), frame: () => toRemote({ dst: ip('10.96.0.10'), dport: 53 }) },
  ipv4_bad_options: {
    port: 'p1',
    frame: () => {
      // IHL 6 with a 4-byte option whose length byte says 1 (malformed), no DF, too big: must be fragmented.
      const f = toRemote({ payload: 1480 });
      const b = Buffer.concat([f.subarray(0, 34), Buffer.from('07010000', 'hex'), f.subarray(34)]);
      b[14] = 0x46;
      b.writeUInt16BE(f.length - 14 + 4, 16);
      return refillIpv4ChecksumRef(b, 14);
    },
  },
};

/** Reasons a trace cannot decide: the port's write (tx_*) and an invariant's guard. */
const NOT_TRACEABLE: Readonly<Record<string, string>> = {
  tx_busy: 'decided when the port takes the write (its queue is full)',
  tx_error: 'decided when the port takes the write (the write fails)',
  port_detached: 'a guard: routes and FDB entries of a port go when it is detached',
  conntrack_full: 'decided when the connection is created (the table full of established connections); test/policy/enforcer.test.ts counts it',
  nat_clash: 'decided when the connection is created (its translated tuple taken)',
};

describe('trace and pipeline agree on one frame per drop reason', () => {
  it('covers every drop reason the pipeline has', () => {
    const all = DROP_NAMES.slice(1);
    expect([...Object.keys(CASES), ...Object.keys(NOT_TRACEABLE)].sort()).toEqual([...all].sort());
  });

  it.each(Object.entries(CASES))('%s', (reason, c) => {
    const n = node(c.node);
    c.setup?.(n);
    const port = n[c.port]!, sp = n.sp[c.port]!;
    const frame = c.frame();
    const t = n.sw.trace({ port: sp, frame, vnet: c.vnet === undefined ? undefined : { flags: c.vnet[0]!, gsoType: c.vnet[1]!, hdrLen: c.vnet.readUInt16LE(2), gsoSize: c.vnet.readUInt16LE(4), csumStart: c.vnet.readUInt16LE(6), csumOffset: c.vnet.readUInt16LE(8) } });
    // The frame's own drop, or (a flood) the reason of the outputs it loses.
    const reasons = t.drop === null ? t.droppedCopies.map((d) => d.reason) : [t.drop.reason];
    expect(reasons, JSON.stringify(t.steps.map((s) => `${s.stage}: ${s.verdict}`))).toContain(reason);
    if (t.drop !== null) expect(t.drop.help).toMatch(/\S/);
    const real = realRun(n.sw, [n.p1, n.p2, n.host, ...(n.ov ? [n.ov] : [])], port, frame, 0, c.vnet);
    expect({ drops: real.drops, out: sortOut(real.out) }).toEqual({ drops: { [reason]: 1 }, out: sortOut(predicted(t).out) });
  });

  it('tx_busy and tx_error are counted by the pipeline when the port refuses the write, and a trace says it cannot know', () => {
    const n = node();
    const t = n.sw.trace({ port: n.sp.p1!, frame: toRemote() });
    expect(t.outcome).toBe('tunnel');
    expect(t.notes.join(' ')).toMatch(/tx_busy, tx_error/);
    n.ov!.close(); // the overlay's writes now fail: -EBADF
    n.p1.inject(toRemote());
    n.sw.pump();
    expect(n.sw.stats.dropsByName()).toEqual({ tx_error: 1 });
  });

  it('a flood whose tunnel copies do not fit the underlay: the local copies go, each VTEP copy is counted, the sender gets one frag-needed', () => {
    const n = node({ mode: SwitchMode.L2 });
    const f = udp({ srcMac: P1.mac, dstMac: mac('02:00:0a:f4:02:0a'), src: P1.ip, dst: REMOTE, payload: 1600, df: true });
    const t = n.sw.trace({ port: n.sp.p1!, frame: f });
    expect([t.outcome, t.drop]).toEqual(['flood', null]);
    expect(t.droppedCopies).toEqual([{ to: 'VTEP n2', reason: 'mtu_exceeded' }, { to: 'VTEP n3', reason: 'mtu_exceeded' }]);
    expect(t.frames.map((x) => `${x.port} ${x.kind}`)).toEqual(['p2 flood-copy', 'host flood-copy', 'p1 icmp-error']);
    const real = realRun(n.sw, [n.p1, n.p2, n.host, n.ov!], n.p1, f);
    expect({ drops: real.drops, out: sortOut(real.out) }).toEqual({ drops: { mtu_exceeded: 2 }, out: sortOut(predicted(t).out) });
  });

  it('no_buffer: a flood copy larger than a scratch slot is dropped for want of room, the other outputs still go', () => {
    const n = node({ mode: SwitchMode.L2, extra: { underlayMtu: 20_000, slotSize: 20_480 } });
    const big = udp({ srcMac: P1.mac, dstMac: BROADCAST, src: P1.ip, dst: ip('10.244.255.255'), payload: 17_000 });
    n.p1.inject(big);
    n.sw.pump();
    // Two peers: the first VTEP takes the frame in place, the copy for the second does not fit.
    expect(n.sw.stats.dropsByName()).toEqual({ no_buffer: 1 });
    expect(n.ov!.take()).toHaveLength(1);
    expect([n.p2.take().length, n.host.take().length]).toEqual([1, 1]);
  });
});

describe('a trace changes nothing', () => {
  /** Everything a trace must leave alone, as comparable values. */
  function state(n: Node): unknown {
    const sw = n.sw, st = sw.state;
    return {
      drops: [...sw.stats.drops], counters: { ...sw.stats, drops: undefined },
      fdb: sw.fdb.entries().map((e) => ({ ...e, vtep: e.vtep?.name ?? null })).sort((a, b) => a.mac - b.mac),
      fdbRefused: [sw.fdb.refusedFull, sw.fdb.refusedStatic],
      tokens: st.icmpBucket.available(st.clock.now), bucket: JSON.stringify(st.icmpBucket),
      // The next IPv4 identification each peer's outer header gets (a trace must not take one).
      peers: sw.peerList.map((p) => [p.name, p.txPackets, p.txBytes, p.rxPackets, p.rxBytes, (p.template as unknown as { ident: number }).ident]),
      queues: sw.portList.map((p) => [p.name, p.tx.count, p.gro?.count ?? 0, p.mac]),
      ports: [n.p1, n.p2, n.host, n.ov!].map((p) => [p.name, JSON.stringify(p.stats), p.take().length]),
    };
  }

  it.each([SwitchMode.L3, SwitchMode.L2])('%s: counters, FDB, timestamps, tokens, queues, peers, the IPv4 ID', (mode) => {
    const n = node({ mode, extra: { icmpRatePerSec: 10 } });
    // Some real traffic first, so that there is state to disturb (learned MACs, used tokens).
    n.ov!.inject(fromPeer(UL2, arp({ srcMac: mac('02:00:0a:f4:02:05'), spa: REMOTE, tpa: P1.ip })));
    n.p1.inject(toRemote({ ttl: 1 }));
    n.sw.pump();
    for (const p of [n.p1, n.p2, n.host, n.ov!]) p.take();
    (n.sw.clock as FakeClock).advance(50);
    const before = state(n);
    const frames: [SwitchPort, Buffer][] = [
      [n.sp.p1!, toRemote()], [n.sp.p1!, toRemote({ ttl: 1 })], [n.sp.p1!, toRemote({ payload: 1500, df: true })],
      [n.sp.p1!, toRemote({ payload: 1500 })], [n.sp.p1!, arp({ srcMac: P1.mac, spa: P1.ip, tpa: GW })],
      [n.sp.p1!, icmpEcho({ srcMac: P1.mac, dstMac: VTEP_MAC, src: P1.ip, dst: GW })],
      [n.sp.p1!, udp({ srcMac: P1.mac, dstMac: mac('02:00:0a:f4:09:09'), src: P1.ip, dst: REMOTE })],
      [n.sp.ov!, fromPeer(UL2, fromN2())], [n.sp.ov!, fromPeer(UL3, arp({ srcMac: mac('02:00:0a:f4:02:05'), spa: REMOTE, tpa: P1.ip }))],
      [n.sp.ov!, fromPeer(UL2, fromN2({ srcMac: mac('02:00:0a:f4:02:77') }))], [n.sp.ov!, fromPeer(UL2, fromN2({ ttl: 1 }))],
      [n.sp.host!, tcp({ srcMac: HOST_MAC, dstMac: VTEP_MAC, src: ip('10.244.1.0'), dst: P1.ip })],
      // L2 unicast both ways (L3 drops them: not for the gateway MAC).
      [n.sp.ov!, fromPeer(UL2, fromN2({ srcMac: mac('02:00:0a:f4:02:05'), dstMac: P1.mac }))],
      [n.sp.p1!, udp({ srcMac: P1.mac, dstMac: mac('02:00:0a:f4:02:05'), src: P1.ip, dst: REMOTE })],
    ];
    const outcomes = frames.map(([sp, f]) => n.sw.trace({ port: sp, frame: f }).outcome);
    expect(new Set(outcomes).size).toBeGreaterThanOrEqual(mode === SwitchMode.L3 ? 4 : 2);
    expect(state(n)).toEqual(before);
  });
});

describe('Switch.trace input', () => {
  it('refuses a virtio header on a port that takes none, and a detached port', () => {
    const n = node();
    expect(() => n.sw.trace({ port: n.sp.p1!, frame: toRemote(), vnet: { flags: 0, gsoType: 0, hdrLen: 0, gsoSize: 0, csumStart: 0, csumOffset: 0 } })).toThrow(expect.objectContaining({ code: 'ERR_TRACE_INPUT' }));
    n.sw.detach(n.sp.p2!.id);
    expect(() => n.sw.trace({ port: n.sp.p2!, frame: toRemote() })).toThrow(expect.objectContaining({ code: 'ERR_TRACE_INPUT' }));
  });

  it('on an overlay port that receives UDP payloads, checks and strips the outer headers as the kernel socket would', () => {
    const n = node({ overlay: { rx: Framing.UDP, tx: Framing.IP } });
    const t = n.sw.trace({ port: n.sp.ov!, frame: fromPeer(UL2, fromN2()) });
    expect([t.outcome, t.frames.map((f) => f.port)]).toEqual(['deliver', ['p1']]);
    expect(t.notes.join(' ')).toMatch(/from 198\.51\.100\.2/);
    expect(() => n.sw.trace({ port: n.sp.ov!, frame: edit(fromPeer(UL2, fromN2()), (b) => b.writeUInt16BE(4790, 36)) })).toThrow(expect.objectContaining({ code: 'ERR_TRACE_INPUT' }));
  });

  it('on a UDP-receiving overlay port, refuses a datagram whose UDP checksum the kernel would reject', () => {
    const n = node({ overlay: { rx: Framing.UDP, tx: Framing.IP } });
    const t = new EncapTemplate({ srcMac: mac('02:00:c6:33:64:02'), dstMac: mac('02:00:c6:33:64:01'), srcIp: UL2, dstIp: UL1, vni: 1, udpChecksum: true });
    const inner = fromN2();
    const b = Buffer.alloc(VXLAN_HEADROOM + inner.length);
    inner.copy(b, VXLAN_HEADROOM);
    const good = Buffer.from(b.subarray(t.encap(b, VXLAN_HEADROOM, b.length)));
    expect(n.sw.trace({ port: n.sp.ov!, frame: good }).outcome).toBe('deliver');
    expect(() => n.sw.trace({ port: n.sp.ov!, frame: edit(good, (f) => { f[f.length - 1] = f[f.length - 1]! ^ 1; }) })).toThrow(expect.objectContaining({ code: 'ERR_TRACE_INPUT', message: expect.stringMatching(/UDP checksum/) }));
  });

  it('names each stage in pipeline order and what it matched', () => {
    const n = node();
    const t = n.sw.trace({ port: n.sp.p1!, frame: toRemote() });
    expect(t.steps.map((s) => s.stage)).toEqual(['ingress', 'service-nat', 'policy-egress', 'route', 'egress', 'transmit']);
    expect(t.steps[0]!.matched.map((m) => m.what)).toContain('binding');
    expect(t.steps[3]!.matched.find((m) => m.what === 'route')?.detail).toMatch(/^10\.244\.2\.0\/24 via 10\.244\.2\.0 dev n2 onlink/);
    expect(t.steps[3]!.verdict).toBe('tunnel to n2 (198.51.100.2)');
    expect(t.steps[4]!.verdict).toBe('encapsulate');
    expect(t.frames).toHaveLength(1);
    expect(t.frames[0]).toMatchObject({ port: 'ov', role: 'overlay', kind: 'forwarded', to: '198.51.100.2:4789' });
    expect(Drop.NONE).toBe(0);
  });
});

describe('traceRequest: what the daemon runs for `flatnet trace`', () => {
  const vnetBuf = (v: { flags: number; gsoType: number; hdrLen: number; gsoSize: number; csumStart: number; csumOffset: number }): Buffer =>
    vnetHdr(v.flags, v.gsoType, v.hdrLen, v.gsoSize, v.csumStart, v.csumOffset);

  it('tso N: the super-frame a pod with TSO hands over is segmented and encapsulated as the pipeline does it', () => {
    const n = node({ vnet: 10 });
    const flow = 'tcp -> 10.244.2.5:80 flags PA payload 8000 tso 1398';
    const t = traceRequest(n.sw, 'p1', { flow });
    expect(t.packet.vnet).toBe('needs-csum,gso=tcpv4,gso-size=1398,hdr-len=54,csum-start=34,csum-offset=16');
    expect(t.outcome).toBe('tunnel');
    expect(t.steps.find((s) => s.stage === 'egress')!.matched.map((m) => m.detail)).toContain('needs-csum,gso=tcpv4,gso-size=1398,hdr-len=54,csum-start=34,csum-offset=16');
    expect(t.frames).toHaveLength(Math.ceil(8000 / 1398));
    const { frame, vnet } = buildTracePacket(flow, traceDefaults(n.sw, n.sp.p1!));
    const real = realRun(n.sw, [n.p1, n.p2, n.host, n.ov!], n.p1, frame, 0, vnetBuf(vnet!));
    expect({ drops: real.drops, out: sortOut(real.out) }).toEqual({ drops: {}, out: sortOut(predicted(t).out) });
  });

  it('--vnet with a hex frame; the refusals', () => {
    const n = node({ vnet: 10 });
    const big = udp({ srcMac: P1.mac, dstMac: VTEP_MAC, src: P1.ip, dst: REMOTE, payload: 3000 });
    const ufo = traceRequest(n.sw, 'p1', { hex: big.toString('hex'), vnet: 'needs-csum,gso=udp,gso-size=1000,hdr-len=42,csum-start=34,csum-offset=6' });
    expect(ufo.drop?.reason).toBe('gso_unsupported');
    expect(ufo.packet.vnet).toBe('needs-csum,gso=udp,gso-size=1000,hdr-len=42,csum-start=34,csum-offset=6');
    expect(() => traceRequest(n.sw, 'p1', { flow: 'tcp -> 10.244.2.5:80 tso 1000', vnet: 'none' })).toThrow(expect.objectContaining({ code: 'ERR_TRACE_INPUT', message: expect.stringMatching(/leave out --vnet/) }));
    expect(() => traceRequest(n.sw, 'p2', { flow: 'tcp -> 10.244.2.5:80 tso 1000' })).toThrow(expect.objectContaining({ code: 'ERR_TRACE_INPUT', message: expect.stringMatching(/port p2 receives complete frames/) }));
    expect(() => traceRequest(n.sw, 'p1', { hex: big.toString('hex'), vnet: 'gso=tcp' })).toThrow(expect.objectContaining({ code: 'ERR_TRACE_PACKET' }));
  });
});

