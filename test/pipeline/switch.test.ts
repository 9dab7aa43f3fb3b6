import { beforeEach, describe, expect, it } from 'vitest';
import { GW, HOST_MAC, N2_MAC, N3_MAC, node1Peers, P1, P2, REMOTE_POD, UL1, UL2, UL3, VTEP_MAC } from '../../fixtures/node1.js';
import { Cidr } from '../../src/fib/cidr.js';
import { FakeClock } from '../../src/fib/clock.js';
import { Framing, Switch, SwitchMode, type OverlayAttach, type SwitchOptions } from '../../src/pipeline/switch.js';
import { formatIpv4, formatMac } from '../../src/wire/addr.js';
import { ArpOp } from '../../src/wire/arp.js';
import { DecapResult, Decapsulator } from '../../src/wire/decap.js';
import { dissectFrame, type LayerRepr } from '../../src/wire/dissect.js';
import { Drop, DROP_NAMES } from '../../src/pipeline/drop.js';
import { EncapTemplate, VXLAN_HEADROOM } from '../../src/wire/encap.js';
import { Icmpv4Type } from '../../src/wire/icmpv4.js';
import { VxlanView } from '../../src/wire/vxlan.js';
import { BROADCAST, arp, icmpEcho, ip, mac, udp } from '../support/pod-frames.js';
import { testPort } from '../support/test-port.js';
import type { MemoryPort, WireFrame } from '../../src/io/memory-port.js';

// Node 1 of a flannel-style cluster (fixtures/node1.ts): 10.244.1.0/24, VTEP 10.244.1.0 on underlay 198.51.100.1.
const PEERS = node1Peers();

function options(mode: SwitchMode, extra: Partial<SwitchOptions> = {}): SwitchOptions {
  return {
    mode, vni: 1, vtepMac: VTEP_MAC, vtepIp: ip('10.244.1.0'), podCidr: Cidr.parse('10.244.1.0/24'),
    clusterCidr: Cidr.parse('10.244.0.0/16'), gatewayIp: GW, underlayIp: UL1, port: 4789,
    encap: { localUnderlayMac: mac('02:00:c6:33:64:01'), nextHopMac: mac('02:00:c6:33:64:ff'), ttl: 64, df: 'unset', udpChecksum: false, srcPortRange: [49152, 65535] },
    clock: new FakeClock(1000),
    ...extra,
  };
}

interface Node {
  sw: Switch;
  p1: MemoryPort;
  p2: MemoryPort;
  host: MemoryPort;
  ov: MemoryPort;
}

function node(mode: SwitchMode, framing: Framing | OverlayAttach = Framing.ETHERNET, extra: Partial<SwitchOptions> = {}, overlayQueue = 4096): Node {
  const sw = new Switch(options(mode, extra));
  const p1 = testPort('p1'), p2 = testPort('p2'), host = testPort('host'), ov = testPort('ov', 0, { queueLimit: overlayQueue });
  sw.attachPod(p1, P1.ip, P1.mac);
  sw.attachPod(p2, P2.ip, P2.mac);
  sw.attachHost(host, HOST_MAC);
  sw.attachOverlay(ov, framing);
  sw.setPeers(PEERS);
  return { sw, p1, p2, host, ov };
}

/** A VXLAN frame as peer `from` would send it to node 1 (full Ethernet framing). */
function fromPeer(fromIp: number, inner: Buffer, vni = 1): Buffer {
  const t = new EncapTemplate({ srcMac: mac('02:00:c6:33:64:02'), dstMac: mac('02:00:c6:33:64:01'), srcIp: fromIp, dstIp: UL1, vni });
  const b = Buffer.alloc(VXLAN_HEADROOM + inner.length);
  inner.copy(b, VXLAN_HEADROOM);
  const o = t.encap(b, VXLAN_HEADROOM, b.length);
  return b.subarray(o);
}

function layer<K extends LayerRepr['layer']>(layers: readonly LayerRepr[], kind: K, nth = 0): Extract<LayerRepr, { layer: K }> {
  const found = layers.filter((l) => l.layer === kind);
  const l = found[nth];
  if (l === undefined) throw new Error(`no ${kind} layer #${nth} in ${JSON.stringify(layers)}`);
  return l as Extract<LayerRepr, { layer: K }>;
}

function drops(sw: Switch): Record<string, number> {
  return sw.stats.dropsByName();
}

describe('Switch, L3 (flannel-compatible)', () => {
  let n: Node;
  beforeEach(() => { n = node(SwitchMode.L3); });

  it('encapsulates pod -> remote pod to the owning VTEP with VTEP MACs and TTL - 1', () => {
    n.p1.inject(icmpEcho({ srcMac: P1.mac, dstMac: VTEP_MAC, src: P1.ip, dst: REMOTE_POD, ttl: 64, seq: 9 }));
    n.sw.pump();
    const out = n.ov.take();
    expect(out).toHaveLength(1);
    const f = dissectFrame(out[0]!.frame);
    expect(f.malformed).toBeUndefined();
    const outerIp = layer(f.layers, 'ipv4', 0), outerUdp = layer(f.layers, 'udp'), vx = layer(f.layers, 'vxlan');
    const inEth = layer(f.layers, 'eth', 1), inIp = layer(f.layers, 'ipv4', 1), icmp = layer(f.layers, 'icmp');
    expect([outerIp.src, outerIp.dst, outerIp.checksumStatus]).toEqual(['198.51.100.1', '198.51.100.2', 'good']);
    expect(outerUdp.dstPort).toBe(4789);
    expect(outerUdp.srcPort).toBeGreaterThanOrEqual(49152);
    expect(outerUdp.checksum).toBe(0);
    expect([vx.vni, vx.flags]).toEqual([1, 0x08]);
    expect([inEth.src, inEth.dst]).toEqual([formatMac(VTEP_MAC), formatMac(N2_MAC)]);
    expect([inIp.src, inIp.dst, inIp.ttl, inIp.checksumStatus]).toEqual(['10.244.1.2', '10.244.2.5', 63, 'good']);
    expect([icmp.type, icmp.seq, icmp.checksumStatus]).toEqual([Icmpv4Type.ECHO_REQUEST, 9, 'good']);
    expect(n.sw.stats.encapsulated).toBe(1);
    expect(n.sw.stats.totalDrops()).toBe(0);
  });

  it('sends only the VXLAN header and payload, with the peer as destination, on a UDP-socket overlay', () => {
    const u = node(SwitchMode.L3, Framing.UDP);
    u.p1.inject(udp({ srcMac: P1.mac, dstMac: VTEP_MAC, src: P1.ip, dst: ip('10.244.3.9') }));
    u.sw.pump();
    const [s] = u.ov.take();
    expect(s).toBeDefined();
    expect([formatIpv4(s!.addr), s!.port]).toEqual(['198.51.100.3', 4789]);
    const vx = new VxlanView().reset(s!.frame, 0, s!.frame.length);
    expect([vx.flags, vx.vni, vx.reservedZero(false)]).toEqual([0x08, 1, true]);
    const inner = dissectFrame(s!.frame, 8);
    expect(layer(inner.layers, 'eth').dst).toBe(formatMac(N3_MAC));
  });

  it('decapsulates peer -> local pod, rewriting MACs to gateway -> pod and decrementing TTL', () => {
    const inner = icmpEcho({ srcMac: N2_MAC, dstMac: VTEP_MAC, src: REMOTE_POD, dst: P1.ip, ttl: 63 });
    n.ov.inject(fromPeer(UL2, inner));
    n.sw.pump();
    const [got] = n.p1.take();
    const f = dissectFrame(got!.frame);
    const eth = layer(f.layers, 'eth'), ipl = layer(f.layers, 'ipv4');
    expect([eth.src, eth.dst]).toEqual([formatMac(VTEP_MAC), formatMac(P1.mac)]);
    expect([ipl.src, ipl.dst, ipl.ttl, ipl.checksumStatus]).toEqual(['10.244.2.5', '10.244.1.2', 62, 'good']);
    expect(n.p2.take()).toHaveLength(0);
    expect(n.ov.take()).toHaveLength(0);
    expect(n.sw.peerList[0]!.rxPackets).toBe(1);
  });

  it('accepts UDP-socket overlay datagrams from a known peer and checks their source address', () => {
    const u = node(SwitchMode.L3, Framing.UDP);
    const frame = fromPeer(UL2, icmpEcho({ srcMac: N2_MAC, dstMac: VTEP_MAC, src: REMOTE_POD, dst: P2.ip }));
    const payload = frame.subarray(42); // what a kernel UDP socket hands over: VXLAN header onward
    u.ov.inject(payload, UL2, 40000);
    u.ov.inject(payload, ip('198.51.100.77'), 40000);
    u.sw.pump();
    expect(u.p2.take()).toHaveLength(1);
    expect(drops(u.sw)).toEqual({ vtep_unknown: 1 });
  });

  it.each([
    ['the gateway', GW, VTEP_MAC],
    ['the node VTEP address', ip('10.244.1.0'), VTEP_MAC],
    ['another local pod (its real MAC)', P2.ip, P2.mac],
    ['a remote pod (proxy ARP)', REMOTE_POD, VTEP_MAC],
  ])('answers a pod ARP request for %s', (_what, target, want) => {
    n.p1.inject(arp({ srcMac: P1.mac, spa: P1.ip, tpa: target }));
    n.sw.pump();
    const [r] = n.p1.take();
    const f = dissectFrame(r!.frame);
    const a = layer(f.layers, 'arp'), eth = layer(f.layers, 'eth');
    expect([a.oper, a.sha, a.spa, a.tha, a.tpa]).toEqual([ArpOp.REPLY, formatMac(want), formatIpv4(target), formatMac(P1.mac), '10.244.1.2']);
    expect([eth.dst, eth.src]).toEqual([formatMac(P1.mac), formatMac(want)]);
    expect(n.ov.take()).toHaveLength(0); // no ARP crosses the overlay in L3 mode
  });

  it('does not answer ARP for unknown addresses in its own subnet', () => {
    n.p1.inject(arp({ srcMac: P1.mac, spa: P1.ip, tpa: ip('10.244.1.200') }));
    n.sw.pump();
    expect(n.p1.take()).toHaveLength(0);
    expect(drops(n.sw)).toEqual({ arp_unanswered: 1 });
  });

  it('answers the host stack ARP for pods (local and remote) with the VTEP MAC', () => {
    for (const t of [P1.ip, REMOTE_POD]) n.host.inject(arp({ srcMac: HOST_MAC, spa: ip('10.244.1.0'), tpa: t }));
    n.sw.pump();
    const replies = n.host.take().map((s) => layer(dissectFrame(s.frame).layers, 'arp'));
    expect(replies.map((a) => [a.spa, a.sha])).toEqual([['10.244.1.2', formatMac(VTEP_MAC)], ['10.244.2.5', formatMac(VTEP_MAC)]]);
  });

  it('answers pings to the gateway address', () => {
    n.p1.inject(icmpEcho({ srcMac: P1.mac, dstMac: VTEP_MAC, src: P1.ip, dst: GW, seq: 3 }));
    n.sw.pump();
    const f = dissectFrame(n.p1.take()[0]!.frame);
    const i = layer(f.layers, 'icmp'), ipl = layer(f.layers, 'ipv4');
    expect([i.type, i.seq, i.checksumStatus, ipl.src, ipl.dst, ipl.checksumStatus]).toEqual([0, 3, 'good', '10.244.1.1', '10.244.1.2', 'good']);
  });

  it('bridges pod -> pod on the same node by MAC without touching the packet', () => {
    const f = udp({ srcMac: P1.mac, dstMac: P2.mac, src: P1.ip, dst: P2.ip });
    n.p1.inject(f);
    n.sw.pump();
    expect(n.p2.take()[0]!.frame).toEqual(f);
  });

  it('routes pod -> pod via the gateway MAC with a rewrite and TTL - 1', () => {
    n.p1.inject(udp({ srcMac: P1.mac, dstMac: VTEP_MAC, src: P1.ip, dst: P2.ip, ttl: 10 }));
    n.sw.pump();
    const f = dissectFrame(n.p2.take()[0]!.frame);
    expect([layer(f.layers, 'eth').dst, layer(f.layers, 'ipv4').ttl]).toEqual([formatMac(P2.mac), 9]);
  });

  it('sends pod -> outside and pod -> node traffic to the host port, and host -> pod back', () => {
    n.p1.inject(udp({ srcMac: P1.mac, dstMac: VTEP_MAC, src: P1.ip, dst: ip('203.0.113.7') }));
    n.p1.inject(udp({ srcMac: P1.mac, dstMac: VTEP_MAC, src: P1.ip, dst: ip('10.244.1.0') }));
    n.host.inject(udp({ srcMac: HOST_MAC, dstMac: VTEP_MAC, src: ip('10.244.1.0'), dst: P1.ip }));
    n.sw.pump();
    const toHost = n.host.take().map((s) => layer(dissectFrame(s.frame).layers, 'eth').dst);
    expect(toHost).toEqual([formatMac(HOST_MAC), formatMac(HOST_MAC)]);
    expect(n.p1.take()).toHaveLength(1);
  });

  it('drops TTL 1 and answers with ICMP time exceeded from the gateway, quoting the packet', () => {
    const orig = udp({ srcMac: P1.mac, dstMac: VTEP_MAC, src: P1.ip, dst: REMOTE_POD, ttl: 1 });
    n.p1.inject(orig);
    n.sw.pump();
    expect(n.ov.take()).toHaveLength(0);
    const f = dissectFrame(n.p1.take()[0]!.frame);
    const ipl = layer(f.layers, 'ipv4'), i = layer(f.layers, 'icmp'), quoted = layer(f.layers, 'data');
    expect([ipl.src, ipl.dst, i.type, i.code, i.checksumStatus]).toEqual(['10.244.1.1', '10.244.1.2', 11, 0, 'good']);
    expect(Buffer.from(quoted.hex, 'hex')).toEqual(orig.subarray(14));
    expect(drops(n.sw)).toEqual({ ttl_exceeded: 1 });
  });

  it('rate-limits the ICMP errors it originates', () => {
    const s = node(SwitchMode.L3, Framing.ETHERNET, { icmpRatePerSec: 10 });
    for (let i = 0; i < 50; i++) s.p1.inject(udp({ srcMac: P1.mac, dstMac: VTEP_MAC, src: P1.ip, dst: REMOTE_POD, ttl: 1 }));
    s.sw.pump();
    expect(s.p1.take()).toHaveLength(5); // burst = rate / 2 with a clock that does not move
    expect(s.sw.stats.icmpSuppressed).toBe(45);
    expect(drops(s.sw)).toEqual({ ttl_exceeded: 50 });
  });

  it('reconciles peers: a removed peer loses its route, counters of kept peers survive', () => {
    n.p1.inject(udp({ srcMac: P1.mac, dstMac: VTEP_MAC, src: P1.ip, dst: REMOTE_POD }));
    n.sw.pump();
    n.ov.take();
    n.sw.setPeers([PEERS[0]!]);
    expect(n.sw.peerList[0]!.txPackets).toBe(1);
    n.p1.inject(udp({ srcMac: P1.mac, dstMac: VTEP_MAC, src: P1.ip, dst: ip('10.244.3.9') }));
    n.sw.pump();
    expect(n.ov.take()).toHaveLength(0);
    expect(drops(n.sw)).toEqual({ no_route: 1 });
  });

  it('counts frames the egress port does not take as tx_busy', () => {
    n = node(SwitchMode.L3, Framing.ETHERNET, {}, 1); // the overlay's peer holds one frame
    for (let i = 0; i < 3; i++) n.p1.inject(udp({ srcMac: P1.mac, dstMac: VTEP_MAC, src: P1.ip, dst: REMOTE_POD, sport: 1000 + i }));
    n.sw.pump();
    expect(n.ov.take()).toHaveLength(1);
    expect(drops(n.sw)).toEqual({ tx_busy: 2 });
    // The peer's counters say what reached the port, and what did not.
    const n2 = n.sw.peerList.find((p) => p.name === 'n2')!;
    expect({ tx: n2.txPackets, failed: n2.txFailed }).toEqual({ tx: 1, failed: 2 });
  });

  it.each([Framing.ETHERNET, Framing.IP, Framing.UDP])('counts a send the overlay refused against its peer, not as sent (%s framing)', (tx) => {
    n = node(SwitchMode.L3, { rx: tx === Framing.IP ? Framing.UDP : tx, tx });
    n.p1.inject(udp({ srcMac: P1.mac, dstMac: VTEP_MAC, src: P1.ip, dst: REMOTE_POD, payload: 100 }));
    n.sw.pump();
    n.ov.take();
    const n2 = n.sw.peerList.find((p) => p.name === 'n2')!;
    const sent = { tx: n2.txPackets, bytes: n2.txBytes };
    expect(sent.tx).toBe(1);
    n.ov.close(); // the overlay's writes fail now (EBADF), as a socket's would after a fatal error
    n.p1.inject(udp({ srcMac: P1.mac, dstMac: VTEP_MAC, src: P1.ip, dst: REMOTE_POD, payload: 100 }));
    n.p1.inject(udp({ srcMac: P1.mac, dstMac: VTEP_MAC, src: P1.ip, dst: ip('10.244.3.7') }));
    n.sw.pump();
    expect(drops(n.sw)).toEqual({ tx_error: 2 });
    expect({ tx: n2.txPackets, bytes: n2.txBytes, failed: n2.txFailed }).toEqual({ tx: 1, bytes: sent.bytes, failed: 1 });
    const n3 = n.sw.peerList.find((p) => p.name === 'n3')!;
    expect({ tx: n3.txPackets, bytes: n3.txBytes, failed: n3.txFailed }).toEqual({ tx: 0, bytes: 0, failed: 1 });
  });

  it("accepts an inner source on the sending peer's own network address: its VTEP address, which its host stack sends from (flannel's convention)", () => {
    n.ov.inject(fromPeer(UL2, icmpEcho({ srcMac: N2_MAC, dstMac: VTEP_MAC, src: ip('10.244.2.0'), dst: P1.ip })));
    n.sw.pump();
    expect(n.p1.take()).toHaveLength(1);
    expect(drops(n.sw)).toEqual({});
  });

  describe('hostile input: each frame counted under its reason, nothing delivered', () => {
    const withI = (frame: Buffer, mutate: (vx: Buffer) => void): Buffer => {
      const b = Buffer.from(frame);
      mutate(b.subarray(42));
      return b;
    };
    const good = (): Buffer => fromPeer(UL2, icmpEcho({ srcMac: N2_MAC, dstMac: VTEP_MAC, src: REMOTE_POD, dst: P1.ip }));
    const cases: [string, () => { port: 'p1' | 'ov' | 'host'; frame: Buffer }, string][] = [
      ['pod spoofing its source MAC', () => ({ port: 'p1', frame: udp({ srcMac: P2.mac, dstMac: VTEP_MAC, src: P1.ip, dst: REMOTE_POD }) }), 'spoof_src_mac'],
      ['pod spoofing its source IP', () => ({ port: 'p1', frame: udp({ srcMac: P1.mac, dstMac: VTEP_MAC, src: P2.ip, dst: REMOTE_POD }) }), 'spoof_src_ip'],
      ['pod gratuitous ARP for a foreign IP', () => ({ port: 'p1', frame: arp({ srcMac: P1.mac, spa: P2.ip, tpa: P2.ip }) }), 'arp_spoof'],
      ['pod ARP with a foreign sender MAC', () => ({ port: 'p1', frame: arp({ srcMac: P1.mac, sha: P2.mac, spa: P1.ip, tpa: GW }) }), 'arp_spoof'],
      ['pod sending VXLAN to a peer VTEP', () => ({ port: 'p1', frame: udp({ srcMac: P1.mac, dstMac: VTEP_MAC, src: P1.ip, dst: UL2, dport: 4789 }) }), 'pod_sent_vxlan'],
      ['pod sending VXLAN to this VTEP', () => ({ port: 'p1', frame: udp({ srcMac: P1.mac, dstMac: VTEP_MAC, src: P1.ip, dst: UL1, dport: 4789 }) }), 'pod_sent_vxlan'],
      ["pod sending VXLAN to this VTEP's overlay address", () => ({ port: 'p1', frame: udp({ srcMac: P1.mac, dstMac: VTEP_MAC, src: P1.ip, dst: ip('10.244.1.0'), dport: 4789 }) }), 'pod_sent_vxlan'],
      ["pod sending VXLAN to the pods' gateway", () => ({ port: 'p1', frame: udp({ srcMac: P1.mac, dstMac: VTEP_MAC, src: P1.ip, dst: GW, dport: 4789 }) }), 'pod_sent_vxlan'],
      ["pod sending VXLAN to a peer VTEP's overlay address", () => ({ port: 'p1', frame: udp({ srcMac: P1.mac, dstMac: VTEP_MAC, src: P1.ip, dst: ip('10.244.2.0'), dport: 4789 }) }), 'pod_sent_vxlan'],
      ['inner source on the peer pod CIDR broadcast address', () => ({ port: 'ov', frame: fromPeer(UL2, icmpEcho({ srcMac: N2_MAC, dstMac: VTEP_MAC, src: ip('10.244.2.255'), dst: P1.ip })) }), 'inner_src_broadcast'],
      ['pod broadcast that is not ARP', () => ({ port: 'p1', frame: udp({ srcMac: P1.mac, dstMac: BROADCAST, src: P1.ip, dst: ip('255.255.255.255') }) }), 'l3_broadcast'],
      ['unknown source VTEP', () => ({ port: 'ov', frame: fromPeer(ip('198.51.100.9'), icmpEcho({ srcMac: N2_MAC, dstMac: VTEP_MAC, src: REMOTE_POD, dst: P1.ip })) }), 'vtep_unknown'],
      ['inner source outside the peer pod CIDR', () => ({ port: 'ov', frame: fromPeer(UL2, icmpEcho({ srcMac: N2_MAC, dstMac: VTEP_MAC, src: ip('10.244.3.5'), dst: P1.ip })) }), 'inner_src_not_in_peer_cidr'],
      ["inner source on another node's subnet network address (its VTEP address)", () => ({ port: 'ov', frame: fromPeer(UL2, icmpEcho({ srcMac: N2_MAC, dstMac: VTEP_MAC, src: ip('10.244.3.0'), dst: P1.ip })) }), 'inner_src_not_in_peer_cidr'],
      ["inner source on this node's subnet network address", () => ({ port: 'ov', frame: fromPeer(UL2, icmpEcho({ srcMac: N2_MAC, dstMac: VTEP_MAC, src: ip('10.244.1.0'), dst: P1.ip })) }), 'inner_src_not_in_peer_cidr'],
      ['no I flag', () => ({ port: 'ov', frame: withI(good(), (vx) => { vx[0] = 0; }) }), 'vxlan_no_i_flag'],
      ['a reserved bit', () => ({ port: 'ov', frame: withI(good(), (vx) => { vx[7] = 1; }) }), 'vxlan_reserved_set'],
      ['unknown VNI', () => ({ port: 'ov', frame: fromPeer(UL2, icmpEcho({ srcMac: N2_MAC, dstMac: VTEP_MAC, src: REMOTE_POD, dst: P1.ip }), 99) }), 'vxlan_vni_unknown'],
      ['truncated VXLAN datagram', () => ({ port: 'ov', frame: good().subarray(0, 46) }), 'ipv4_truncated'],
      ['inner frame for another MAC', () => ({ port: 'ov', frame: fromPeer(UL2, icmpEcho({ srcMac: N2_MAC, dstMac: P1.mac, src: REMOTE_POD, dst: P1.ip })) }), 'inner_dst_mac_not_ours'],
      ['inner packet routed back into the overlay', () => ({ port: 'ov', frame: fromPeer(UL2, icmpEcho({ srcMac: N2_MAC, dstMac: VTEP_MAC, src: REMOTE_POD, dst: ip('10.244.3.9') })) }), 'overlay_loop'],
      ['inner source MAC is our VTEP MAC', () => ({ port: 'ov', frame: fromPeer(UL2, icmpEcho({ srcMac: VTEP_MAC, dstMac: VTEP_MAC, src: REMOTE_POD, dst: P1.ip })) }), 'inner_src_mac_ours'],
    ];
    it.each(cases)('%s', (_name, make, reason) => {
      const { port, frame } = make();
      n[port].inject(frame);
      const routesBefore = n.sw.routes.routes.map((r) => r.describe());
      n.sw.pump();
      for (const p of [n.p1, n.p2, n.host, n.ov]) expect(p.take(), `${p.name} got a frame`).toHaveLength(0);
      expect(drops(n.sw)).toEqual({ [reason]: 1 });
      expect(n.sw.routes.routes.map((r) => r.describe())).toEqual(routesBefore);
      // Still forwarding legitimate traffic afterwards.
      n.p1.inject(udp({ srcMac: P1.mac, dstMac: VTEP_MAC, src: P1.ip, dst: REMOTE_POD }));
      n.sw.pump();
      expect(n.ov.take()).toHaveLength(1);
    });
  });
});

describe('Switch, L2 (learning bridge per VNI)', () => {
  let n: Node;
  beforeEach(() => { n = node(SwitchMode.L2); });
  const REMOTE_MAC = mac('02:00:0a:f4:02:05');

  it('floods a broadcast to local ports and exactly one copy to each remote VTEP, never back to the sender', () => {
    n.p1.inject(arp({ srcMac: P1.mac, spa: P1.ip, tpa: REMOTE_POD }));
    n.sw.pump();
    expect(n.p1.take()).toHaveLength(0);
    expect(n.p2.take()).toHaveLength(1);
    expect(n.host.take()).toHaveLength(1);
    const out = n.ov.take().map((s) => dissectFrame(s.frame));
    expect(out.map((f) => layer(f.layers, 'ipv4').dst).sort()).toEqual(['198.51.100.2', '198.51.100.3']);
    for (const f of out) expect(layer(f.layers, 'arp').tpa).toBe('10.244.2.5');
    expect(n.sw.stats.floodCopies).toBe(1);
  });

  it('learns a remote MAC from the overlay and then unicasts to that VTEP only', () => {
    n.ov.inject(fromPeer(UL2, arp({ srcMac: REMOTE_MAC, dstMac: P1.mac, oper: ArpOp.REPLY, spa: REMOTE_POD, tpa: P1.ip, tha: P1.mac })));
    n.sw.pump();
    expect(n.p1.take()).toHaveLength(1);
    expect(n.sw.fdb.peek(REMOTE_MAC)?.vtep?.name).toBe('n2');
    n.p1.inject(udp({ srcMac: P1.mac, dstMac: REMOTE_MAC, src: P1.ip, dst: REMOTE_POD }));
    n.sw.pump();
    const out = n.ov.take();
    expect(out.map((s) => layer(dissectFrame(s.frame).layers, 'ipv4').dst)).toEqual(['198.51.100.2']);
    // The inner frame is forwarded unchanged in L2 mode.
    expect(layer(dissectFrame(out[0]!.frame).layers, 'ipv4', 1).ttl).toBe(64);
  });

  it('delivers overlay broadcasts locally but never floods them back into the overlay', () => {
    n.ov.inject(fromPeer(UL2, arp({ srcMac: REMOTE_MAC, spa: REMOTE_POD, tpa: P1.ip })));
    n.sw.pump();
    expect([n.p1.take().length, n.p2.take().length, n.host.take().length, n.ov.take().length]).toEqual([1, 1, 1, 0]);
  });

  it('never moves a static entry: an overlay frame claiming a local pod MAC is dropped', () => {
    n.ov.inject(fromPeer(UL2, arp({ srcMac: P1.mac, spa: REMOTE_POD, tpa: P2.ip })));
    n.sw.pump();
    expect(drops(n.sw)).toEqual({ fdb_static_conflict: 1 });
    expect(n.sw.fdb.peek(P1.mac)?.port).toBe(0);
  });

  it('migrates a learned MAC from one VTEP to another', () => {
    n.ov.inject(fromPeer(UL2, arp({ srcMac: REMOTE_MAC, spa: REMOTE_POD, tpa: P1.ip })));
    n.ov.inject(fromPeer(UL3, arp({ srcMac: REMOTE_MAC, spa: REMOTE_POD, tpa: P1.ip })));
    n.sw.pump();
    expect(n.sw.fdb.peek(REMOTE_MAC)?.vtep?.name).toBe('n3');
    expect(n.sw.stats.fdbMoved).toBe(1);
  });

  it('bounds learning: a MAC flood beyond the limit is refused and counted, the table stays at its limit', () => {
    const s = node(SwitchMode.L2, Framing.ETHERNET, { fdbLimit: 10 });
    for (let i = 0; i < 100; i++) {
      s.ov.inject(fromPeer(UL2, arp({ srcMac: mac(`02:00:00:00:01:${i.toString(16).padStart(2, '0')}`), spa: REMOTE_POD, tpa: P1.ip })));
    }
    s.sw.pump();
    expect(s.sw.fdb.size).toBe(10);
    // 2 static pod entries + 8 learned before the table filled.
    expect(drops(s.sw)).toEqual({ fdb_full: 92 });
    expect(s.p1.take()).toHaveLength(8);
  });

  it('ages learned entries out, keeps static ones', () => {
    const clock = new FakeClock(0);
    const s = node(SwitchMode.L2, Framing.ETHERNET, { clock, fdbAgeingMs: 300_000 });
    s.ov.inject(fromPeer(UL2, arp({ srcMac: REMOTE_MAC, spa: REMOTE_POD, tpa: P1.ip })));
    s.sw.pump();
    clock.advance(299_000);
    expect(s.sw.fdb.sweep(clock.now)).toBe(0);
    clock.advance(2_000);
    expect(s.sw.fdb.sweep(clock.now)).toBe(1);
    expect(s.sw.fdb.peek(REMOTE_MAC)).toBeUndefined();
    expect(s.sw.fdb.peek(P1.mac)).toBeDefined();
  });
});

describe('Switch decapsulation path agrees with the codec', () => {
  it('what the switch sends, a strict Decapsulator on the peer accepts', () => {
    const n = node(SwitchMode.L3);
    for (let i = 0; i < 20; i++) n.p1.inject(udp({ srcMac: P1.mac, dstMac: VTEP_MAC, src: P1.ip, dst: REMOTE_POD, sport: 2000 + i, payload: i * 37 }));
    n.sw.pump();
    const d = new Decapsulator({ port: 4789 });
    const r = new DecapResult();
    const sent = n.ov.take();
    expect(sent).toHaveLength(20);
    for (const s of sent) expect(DROP_NAMES[d.decapFrame(s.frame, 0, s.frame.length, r)]).toBe(DROP_NAMES[Drop.NONE]);
  });
});

describe('Switch gateway announcements', () => {
  it('tells every pod (L3) in a gratuitous ARP that the gateway is at the VTEP MAC', () => {
    const n = node(SwitchMode.L3);
    expect(n.sw.announceGateway()).toBe(2);
    for (const p of [n.p1, n.p2]) {
      const [g] = p.take();
      const f = dissectFrame(g!.frame);
      const eth = layer(f.layers, 'eth'), a = layer(f.layers, 'arp');
      expect([eth.dst, eth.src]).toEqual(['ff:ff:ff:ff:ff:ff', formatMac(VTEP_MAC)]);
      expect([a.oper, a.sha, a.spa, a.tpa]).toEqual([ArpOp.REQUEST, formatMac(VTEP_MAC), '10.244.1.1', '10.244.1.1']);
    }
    expect(n.ov.take()).toHaveLength(0);
    expect(node(SwitchMode.L2).sw.announceGateway()).toBe(0);
  });
});
