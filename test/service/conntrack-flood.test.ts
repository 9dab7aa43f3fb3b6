/**
 * A connection-table exhaustion flood through the Service NAT: one pod opens thousands of new
 * connections to a ClusterIP on a node whose table holds 64. Established connections keep being
 * translated both ways; the flood is what gives way, and every frame of it is accounted for:
 * unanswered SYNs early-drop each other (conntrack early_dropped), answered connections fill the
 * table and the rest are refused (drop reason conntrack_full).
 */
import { describe, expect, it } from 'vitest';
import { ConnTable } from '../../src/conntrack/table.js';
import { Cidr } from '../../src/fib/cidr.js';
import { FakeClock } from '../../src/fib/clock.js';
import type { MemoryPort } from '../../src/io/memory-port.js';
import { Switch, SwitchMode } from '../../src/pipeline/switch.js';
import { ServiceCatalog } from '../../src/service/catalog.js';
import { ServiceNat } from '../../src/service/nat.js';
import { dissectFrame, type LayerRepr } from '../../src/wire/dissect.js';
import { ip, mac, tcp } from '../support/pod-frames.js';
import { testPort } from '../support/test-port.js';

const VTEP_MAC = mac('0e:00:0a:f4:01:00');
const CLIENT = { ip: ip('10.244.1.2'), mac: mac('02:00:0a:f4:01:02') };
const BE = { ip: ip('10.244.1.3'), mac: mac('02:00:0a:f4:01:03') };
const VIP = ip('10.96.0.10');
const SYN = 0x02, ACK = 0x10, SYNACK = 0x12, PSHACK = 0x18;
const CAPACITY = 64;

function node(): { sw: Switch; client: MemoryPort; be: MemoryPort; nat: ServiceNat; clock: FakeClock } {
  const clock = new FakeClock(1000);
  const sw = new Switch({
    mode: SwitchMode.L3, vni: 1, vtepMac: VTEP_MAC, vtepIp: ip('10.244.1.0'), podCidr: Cidr.parse('10.244.1.0/24'),
    clusterCidr: Cidr.parse('10.244.0.0/16'), gatewayIp: ip('10.244.1.1'), underlayIp: ip('198.51.100.1'), port: 4789,
    encap: { localUnderlayMac: mac('02:00:c6:33:64:01'), nextHopMac: mac('02:00:c6:33:64:fe'), ttl: 64, df: 'unset', udpChecksum: false, srcPortRange: [49152, 65535] },
    clock, icmpRatePerSec: 1e9,
  });
  const client = testPort('client'), be = testPort('be');
  sw.attachPod(client, CLIENT.ip, CLIENT.mac, 'client');
  sw.attachPod(be, BE.ip, BE.mac, 'be');
  const cat = new ServiceCatalog({
    services: [{ metadata: { name: 'web', namespace: 'shop' }, spec: { clusterIP: '10.96.0.10', ports: [{ name: 'http', port: 80, targetPort: 8080 }] } }],
    slices: [{ metadata: { name: 'web-1', namespace: 'shop', labels: { 'kubernetes.io/service-name': 'web' } }, ports: [{ name: 'http', port: 8080 }], endpoints: [{ addresses: ['10.244.1.3'], nodeName: 'n1' }] }],
    pods: [], node: 'n1',
  });
  const nat = new ServiceNat(cat, new ConnTable({ capacity: CAPACITY, seed: 3 }), { nodeIp: ip('10.244.1.1'), clock });
  sw.setServices(nat);
  return { sw, client, be, nat, clock };
}

type Node = ReturnType<typeof node>;
const toVip = (sport: number, flags: number): Buffer => tcp({ srcMac: CLIENT.mac, dstMac: VTEP_MAC, src: CLIENT.ip, dst: VIP, sport, dport: 80, flags, payload: flags === PSHACK ? 20 : 0 });
const fromBe = (dport: number, flags: number): Buffer => tcp({ srcMac: BE.mac, dstMac: VTEP_MAC, src: BE.ip, dst: CLIENT.ip, sport: 8080, dport, flags, payload: flags === PSHACK ? 20 : 0 });
/** "src:sport > dst:dport" of a frame's IPv4 + TCP. */
function flow(f: Buffer): string {
  const d = dissectFrame(f).layers;
  const v4 = d.find((l) => l.layer === 'ipv4') as Extract<LayerRepr, { layer: 'ipv4' }>;
  const t = d.find((l) => l.layer === 'tcp') as Extract<LayerRepr, { layer: 'tcp' }>;
  return `${v4.src}:${t.srcPort} > ${v4.dst}:${t.dstPort}`;
}
/** send: a frame in, the switch pumped; what came out on the other pod's port (or null). */
function send(n: Node, from: MemoryPort, frame: Buffer): string | null {
  from.inject(frame);
  n.sw.pump();
  const to = from === n.client ? n.be : n.client;
  const out = to.take();
  return out.length === 0 ? null : flow(out[0]!.frame);
}
/** open: a whole handshake through the ClusterIP; whether it got through. */
function open(n: Node, sport: number): boolean {
  if (send(n, n.client, toVip(sport, SYN)) === null) return false;
  send(n, n.be, fromBe(sport, SYNACK));
  send(n, n.client, toVip(sport, ACK));
  return true;
}
/** Data both ways on an open connection, translated as it must be. */
function talks(n: Node, sport: number): boolean {
  return send(n, n.client, toVip(sport, PSHACK)) === `10.244.1.2:${sport} > 10.244.1.3:8080`
    && send(n, n.be, fromBe(sport, PSHACK)) === `10.96.0.10:80 > 10.244.1.2:${sport}`;
}
const drops = (n: Node): number => n.sw.stats.dropsByName()['conntrack_full'] ?? 0;

describe('a connection-table exhaustion flood from one pod through a ClusterIP', () => {
  const ESTABLISHED = [40000, 40001, 40002, 40003, 40004, 40005, 40006, 40007];

  it('5,000 unanswered SYNs: they early-drop each other (counted); the established connections keep talking', () => {
    const n = node();
    for (const p of ESTABLISHED) expect(open(n, p)).toBe(true);
    let through = 0;
    for (let i = 0; i < 5000; i++) {
      if (send(n, n.client, toVip(20000 + i, SYN)) !== null) through++;
      if (i % 500 === 0) for (const p of ESTABLISHED) expect(talks(n, p), `after ${i} SYNs, port ${p}`).toBe(true);
      n.clock.advance(1);
    }
    const st = n.nat.ct.stats;
    expect(n.nat.ct.size).toBe(CAPACITY);
    // Each SYN either took a slot (early-dropping an unanswered one when full) or was refused.
    expect(through + drops(n)).toBe(5000);
    expect(st.earlyDropped).toBe(through - (CAPACITY - ESTABLISHED.length));
    expect(st.earlyDropped).toBeGreaterThan(4000);
    for (const p of ESTABLISHED) expect(talks(n, p)).toBe(true);
  });

  it('answered connections fill the table: the rest are refused (conntrack_full, counted) and the established ones keep talking', () => {
    const n = node();
    for (const p of ESTABLISHED) expect(open(n, p)).toBe(true);
    let opened = 0, refused = 0;
    for (let i = 0; i < 1000; i++) {
      if (open(n, 20000 + i)) opened++;
      else refused++;
      n.clock.advance(1);
    }
    expect(opened).toBe(CAPACITY - ESTABLISHED.length);
    expect([refused, drops(n), n.nat.ct.stats.refused]).toEqual([1000 - opened, 1000 - opened, 1000 - opened]);
    for (const p of ESTABLISHED) expect(talks(n, p)).toBe(true);
  });
});
