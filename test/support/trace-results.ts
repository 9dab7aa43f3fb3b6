/**
 * Canned TraceResults (src/pipeline/trace.ts) for the renderer and CLI tests: what the daemon
 * of lab node n1 would answer for a ping from pod n1p0 to a pod on n2 (tunnelled), and for the
 * same ping with a forged source address (dropped). The frames are built with the same
 * builders as `flatnet trace` and EncapTemplate, so that they dissect as real ones.
 */

import type { TraceResult } from '../../src/pipeline/trace.js';
import { type PacketDefaults, buildPacket } from '../../src/trace/packet.js';
import { parseIpv4, parseMac } from '../../src/wire/addr.js';
import { icmpv4Frame, vxlanFrame } from '../../src/wire/build.js';
import { EncapTemplate } from '../../src/wire/encap.js';

export const N1 = {
  vtepMac: parseMac('0e:00:0a:f4:01:00'),
  underlay: parseIpv4('198.51.100.1'),
  underlayMac: parseMac('02:00:c6:33:64:01'),
  nextHopMac: parseMac('02:00:c6:33:64:fe'),
  pod: { name: 'n1p0', ip: parseIpv4('10.244.1.10'), mac: parseMac('02:00:0a:f4:01:0a') },
  peers: [
    { name: 'n2', underlayIp: parseIpv4('198.51.100.2'), mac: parseMac('0e:00:0a:f4:02:00'), net: parseIpv4('10.244.2.0') },
    { name: 'n3', underlayIp: parseIpv4('198.51.100.3'), mac: parseMac('0e:00:0a:f4:03:00'), net: parseIpv4('10.244.3.0') },
  ],
} as const;

export const POD_DEFAULTS: PacketDefaults = { role: 'pod', srcMac: N1.pod.mac, dstMac: N1.vtepMac, srcIp: N1.pod.ip, overlay: null };

/** The ping: 98 bytes from n1p0 to 10.244.2.10. */
export const PING = buildPacket('icmp -> 10.244.2.10 id 7 seq 1', POD_DEFAULTS);

/** The ping as n1 sends it to n2: routed (TTL 63), between the VTEP MACs, in VXLAN to 198.51.100.2:4789. */
export function pingTunnelled(): Buffer {
  const inner = icmpv4Frame({
    srcMac: N1.vtepMac, dstMac: N1.peers[0].mac, src: N1.pod.ip, dst: parseIpv4('10.244.2.10'), ttl: 63,
    type: 8, code: 0, rest: (7 << 16) | 1, payload: PING.subarray(PING.length - 56),
  });
  const t = new EncapTemplate({ srcMac: N1.underlayMac, dstMac: N1.nextHopMac, srcIp: N1.underlay, dstIp: N1.peers[0].underlayIp, vni: 1 });
  return vxlanFrame(t, inner);
}

export function tunnelResult(): TraceResult {
  const out = pingTunnelled();
  return {
    in: { port: 'n1p0', role: 'pod' },
    packet: { hex: PING.toString('hex'), length: PING.length, vnet: null },
    steps: [
      {
        stage: 'ingress', looked: 'pod n1p0 src 02:00:0a:f4:01:0a 10.244.1.10',
        matched: [{ what: 'binding', detail: 'n1p0 10.244.1.10 lladdr 02:00:0a:f4:01:0a' }], verdict: 'next',
      },
      { stage: 'service-nat', looked: '', matched: [], verdict: 'next' },
      { stage: 'policy-egress', looked: '', matched: [], verdict: 'next' },
      {
        stage: 'route', looked: 'ipv4 10.244.1.10 > 10.244.2.10 ttl 64 proto icmp',
        matched: [
          { what: 'route', detail: '10.244.2.0/24 via 10.244.2.0 dev n2 onlink underlay 198.51.100.2 lladdr 0e:00:0a:f4:02:00' },
          { what: 'neighbour', detail: '10.244.2.0 lladdr 0e:00:0a:f4:02:00 PERMANENT' },
        ],
        verdict: 'tunnel n2',
      },
      { stage: 'bridge', looked: '', matched: [], verdict: 'next' },
      { stage: 'policy-ingress', looked: '', matched: [], verdict: 'next' },
      {
        stage: 'egress', looked: 'inner 98 bytes, underlay MTU 1500',
        matched: [{ what: 'mtu', detail: '98 + 50 <= 1500' }, { what: 'peer', detail: 'n2 underlay 198.51.100.2 port 4789 vni 1' }],
        verdict: 'encapsulate',
      },
      { stage: 'transmit', looked: 'overlay vxlan:4789', matched: [], verdict: 'send' },
    ],
    outcome: 'tunnel',
    drop: null,
    frames: [{ port: 'vxlan:4789', role: 'overlay', kind: 'forwarded', to: '198.51.100.2:4789', hex: out.toString('hex'), length: out.length }],
    droppedCopies: [],
    notes: ['nothing was sent: transmit-time outcomes (tx_busy, tx_error) are not known to a trace'],
  };
}

export function dropResult(): TraceResult {
  const forged = buildPacket('icmp 10.244.1.99 -> 10.244.2.10', POD_DEFAULTS);
  return {
    in: { port: 'n1p0', role: 'pod' },
    packet: { hex: forged.toString('hex'), length: forged.length, vnet: null },
    steps: [{
      stage: 'ingress', looked: 'pod n1p0 src 02:00:0a:f4:01:0a 10.244.1.99',
      matched: [{ what: 'binding', detail: 'n1p0 10.244.1.10 lladdr 02:00:0a:f4:01:0a' }], verdict: 'drop spoof_src_ip',
    }],
    outcome: 'drop',
    drop: { reason: 'spoof_src_ip', help: "pod packet whose source IP is not the pod's" },
    frames: [],
    droppedCopies: [],
    notes: [],
  };
}
