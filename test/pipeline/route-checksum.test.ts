/**
 * The L3 switch drops IPv4 packets whose header checksum does not verify before routing them
 * (RFC 1812 §5.2.2, as Linux's ip_rcv_core), from every ingress role; a switched frame between
 * two local pods (not routed) and L2 mode (a bridge) are not checked. Kept apart from
 * switch.test.ts so the change that added the check is reviewable on its own.
 */

import { describe, expect, it } from 'vitest';
import { Cidr } from '../../src/fib/cidr.js';
import { FakeClock } from '../../src/fib/clock.js';
import { Framing, Switch, SwitchMode } from '../../src/pipeline/switch.js';
import { EncapTemplate, VXLAN_HEADROOM } from '../../src/wire/encap.js';
import { icmpEcho, ip, mac, udp } from '../support/pod-frames.js';
import { testPort } from '../support/test-port.js';
import type { MemoryPort, WireFrame } from '../../src/io/memory-port.js';

const VTEP_MAC = mac('0e:00:0a:f4:01:00');
const N2_MAC = mac('0e:00:0a:f4:02:00');
const P1 = { ip: ip('10.244.1.2'), mac: mac('02:00:0a:f4:01:02') };
const P2 = { ip: ip('10.244.1.3'), mac: mac('02:00:0a:f4:01:03') };
const HOST_MAC = mac('02:00:00:00:00:fe');
const UL1 = ip('198.51.100.1'), UL2 = ip('198.51.100.2');

function node(mode: SwitchMode): { sw: Switch; p1: MemoryPort; p2: MemoryPort; host: MemoryPort; ov: MemoryPort } {
  const sw = new Switch({
    mode, vni: 1, vtepMac: VTEP_MAC, vtepIp: ip('10.244.1.0'), podCidr: Cidr.parse('10.244.1.0/24'),
    clusterCidr: Cidr.parse('10.244.0.0/16'), gatewayIp: ip('10.244.1.1'), underlayIp: UL1, port: 4789,
    encap: { localUnderlayMac: mac('02:00:c6:33:64:01'), nextHopMac: mac('02:00:c6:33:64:ff'), ttl: 64, df: 'unset', udpChecksum: false, srcPortRange: [49152, 65535] },
    clock: new FakeClock(1000),
  });
  const p1 = testPort('p1'), p2 = testPort('p2'), host = testPort('host'), ov = testPort('ov');
  sw.attachPod(p1, P1.ip, P1.mac);
  sw.attachPod(p2, P2.ip, P2.mac);
  sw.attachHost(host, HOST_MAC);
  sw.attachOverlay(ov, Framing.ETHERNET);
  sw.setPeers([{ name: 'n2', underlayIp: UL2, mac: N2_MAC, vni: 1, port: 4789, podCidr: Cidr.parse('10.244.2.0/24') }]);
  return { sw, p1, p2, host, ov };
}

/** A copy of `f` with the IPv4 header checksum (at 14 + 10) corrupted. */
function badSum(f: Buffer): Buffer {
  const b = Buffer.from(f);
  b[14 + 11]! ^= 0x5a;
  return b;
}

function fromPeer(inner: Buffer): Buffer {
  const t = new EncapTemplate({ srcMac: mac('02:00:c6:33:64:ff'), dstMac: mac('02:00:c6:33:64:01'), srcIp: UL2, dstIp: UL1, vni: 1 });
  const b = Buffer.alloc(VXLAN_HEADROOM + inner.length);
  inner.copy(b, VXLAN_HEADROOM);
  return b.subarray(t.encap(b, VXLAN_HEADROOM, b.length));
}

const toRemote = udp({ srcMac: P1.mac, dstMac: VTEP_MAC, src: P1.ip, dst: ip('10.244.2.7') });
const toPod = icmpEcho({ srcMac: N2_MAC, dstMac: VTEP_MAC, src: ip('10.244.2.7'), dst: P1.ip, ttl: 63 });
const hostToPod = udp({ srcMac: HOST_MAC, dstMac: VTEP_MAC, src: ip('10.244.1.0'), dst: P2.ip });
const pingGateway = icmpEcho({ srcMac: P1.mac, dstMac: VTEP_MAC, src: P1.ip, dst: ip('10.244.1.1') });

describe('Switch, L3: IPv4 header checksum before routing', () => {
  it.each([
    ['pod -> remote pod', 'p1', toRemote],
    ['pod -> the gateway (ping)', 'p1', pingGateway],
    ['host -> pod', 'host', hostToPod],
  ] as const)('%s: forwarded with a good checksum, dropped as ipv4_bad_checksum with a bad one', (_, from, frame) => {
    const n = node(SwitchMode.L3);
    n[from].inject(frame).inject(badSum(frame));
    n.sw.pump();
    const out = [n.p1, n.p2, n.host, n.ov].flatMap((p) => p.take());
    expect(out).toHaveLength(1);
    expect(n.sw.stats.dropsByName()).toEqual({ ipv4_bad_checksum: 1 });
  });

  it('peer -> pod: an inner packet with a bad checksum is dropped after decapsulation', () => {
    const n = node(SwitchMode.L3);
    n.ov.inject(fromPeer(toPod)).inject(fromPeer(badSum(toPod)));
    n.sw.pump();
    expect(n.p1.take()).toHaveLength(1);
    expect(n.sw.stats.dropsByName()).toEqual({ ipv4_bad_checksum: 1 });
    expect(n.sw.stats.decapsulated).toBe(2);
  });

  it('pod -> pod on the same node by MAC is switched, not routed: not checked', () => {
    const n = node(SwitchMode.L3);
    n.p1.inject(badSum(udp({ srcMac: P1.mac, dstMac: P2.mac, src: P1.ip, dst: P2.ip })));
    n.sw.pump();
    expect(n.p2.take()).toHaveLength(1);
    expect(n.sw.stats.totalDrops()).toBe(0);
  });

  it('L2 mode bridges frames unchanged: not checked', () => {
    const n = node(SwitchMode.L2);
    n.p1.inject(badSum(udp({ srcMac: P1.mac, dstMac: N2_MAC, src: P1.ip, dst: ip('10.244.2.7') })));
    n.sw.pump();
    expect(n.ov.take()).toHaveLength(1);
    expect(n.sw.stats.totalDrops()).toBe(0);
  });
});
