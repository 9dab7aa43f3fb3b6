import { describe, expect, it } from 'vitest';
import { createRegistry, serveMetrics } from '../../src/daemon/metrics.js';
import { Cidr } from '../../src/fib/cidr.js';
import { FakeClock } from '../../src/fib/clock.js';
import { Framing, Switch } from '../../src/pipeline/switch.js';
import { ip, mac, udp } from '../support/pod-frames.js';
import { TestPort } from '../support/test-port.js';

describe('metrics', () => {
  it('exports drop counters and port counters read at scrape time', async () => {
    const sw = new Switch({
      mode: 'l3', vni: 1, vtepMac: mac('0e:00:00:00:01:00'), vtepIp: ip('10.244.1.0'), podCidr: Cidr.parse('10.244.1.0/24'),
      clusterCidr: Cidr.parse('10.244.0.0/16'), gatewayIp: ip('10.244.1.1'), underlayIp: ip('198.51.100.1'), port: 4789,
      encap: { localUnderlayMac: 2, nextHopMac: 4, ttl: 64, df: 'unset', udpChecksum: false, srcPortRange: [49152, 65535] }, clock: new FakeClock(),
    });
    const pod = new TestPort('pod-a');
    sw.attachPod(pod, ip('10.244.1.2'), mac('02:00:00:00:00:02'));
    sw.attachOverlay(new TestPort('ov'), Framing.UDP);
    for (let i = 0; i < 3; i++) pod.inject(udp({ srcMac: mac('02:00:00:00:00:09'), dstMac: mac('0e:00:00:00:01:00'), src: ip('10.244.1.2'), dst: ip('10.244.2.2') }));
    sw.pump();
    const reg = createRegistry(sw, { node: 'node1' });
    const text = await reg.metrics();
    expect(text).toContain('flatnet_drops_total{reason="spoof_src_mac",node="node1"} 3');
    expect(text).toContain('flatnet_drops_total{reason="no_route",node="node1"} 0');
    expect(text).toContain('flatnet_port_packets_total{port="pod-a",role="pod",direction="rx",node="node1"} 3');
    const server = await serveMetrics(reg, '127.0.0.1', 0);
    try {
      const addr = server.address() as { port: number };
      const res = await fetch(`http://127.0.0.1:${addr.port}/metrics`);
      expect(res.status).toBe(200);
      expect(await res.text()).toContain('flatnet_drops_total');
    } finally {
      server.close();
    }
  });
});
