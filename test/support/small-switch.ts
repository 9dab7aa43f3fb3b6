/**
 * A one-pod switch over test ports (pod-a 10.244.1.2, the host flatnet0, overlay vxlan:4789,
 * peer n2 with 10.244.2.0/24), for tests about the switch's counters and drain loop rather than
 * its forwarding (/metrics, busy polling).
 */

import { Cidr } from '../../src/fib/cidr.js';
import { FakeClock } from '../../src/fib/clock.js';
import type { MemoryPort } from '../../src/io/memory-port.js';
import { Framing, Switch } from '../../src/pipeline/switch.js';
import { ip, mac } from './pod-frames.js';
import { testPort } from './test-port.js';

export const VTEP = mac('0e:00:00:00:01:00');
export const POD_MAC = mac('02:00:00:00:00:02');

export function smallSwitch(): { sw: Switch; pod: MemoryPort; host: MemoryPort; overlay: MemoryPort } {
  const sw = new Switch({
    mode: 'l3', vni: 1, vtepMac: VTEP, vtepIp: ip('10.244.1.0'), podCidr: Cidr.parse('10.244.1.0/24'),
    clusterCidr: Cidr.parse('10.244.0.0/16'), gatewayIp: ip('10.244.1.1'), underlayIp: ip('198.51.100.1'), port: 4789,
    encap: { localUnderlayMac: 2, nextHopMac: 4, ttl: 64, df: 'unset', udpChecksum: false, srcPortRange: [49152, 65535] }, clock: new FakeClock(),
  });
  const pod = testPort('pod-a'), host = testPort('flatnet0'), overlay = testPort('ov');
  sw.attachPod(pod, ip('10.244.1.2'), POD_MAC, 'pod-a');
  sw.attachHost(host, mac('02:00:00:00:00:fe'), 'flatnet0');
  sw.attachOverlay(overlay, Framing.ETHERNET, 'vxlan:4789');
  sw.setPeers([{ name: 'n2', underlayIp: ip('198.51.100.2'), mac: mac('0e:00:00:00:02:00'), vni: 1, port: 4789, podCidr: Cidr.parse('10.244.2.0/24') }]);
  return { sw, pod, host, overlay };
}
