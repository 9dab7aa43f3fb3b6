import { describe, expect, it } from 'vitest';
import { parseConfig } from '../../src/daemon/config.js';
import { nodeConfig } from '../../src/lab/flatnet-node.js';
import { planLab, resolveLabOptions, type LabOptions } from '../../src/lab/topology.js';
import { formatIpv4, formatMac } from '../../src/wire/addr.js';

const plan = (o: Partial<LabOptions> = {}) => planLab(resolveLabOptions({ name: 'f', ...o }));

describe('flatnet node configs', () => {
  it('are valid node configs: every other node a peer, the pods on their veths, the fixed VTEP MAC', () => {
    const p = plan({ podsVia: 'config' });
    const raw = nodeConfig(p, p.nodes[0]!);
    expect(raw).toEqual({
      node: 'n1', vni: 1, port: 4789, mode: 'l3',
      underlay: { interface: 'eth0', address: '198.51.100.1' },
      podCidr: '10.244.1.0/24',
      stateDir: '/run/flatnet/lab-f/state',
      controlSocket: '/run/flatnet/lab-f/n1.sock',
      metrics: '127.0.0.1:9465',
      vtepMac: '0e:00:0a:f4:01:00',
      peers: [
        { name: 'n2', underlay: '198.51.100.2', podCidr: '10.244.2.0/24', vtepMac: '0e:00:0a:f4:02:00' },
        { name: 'n3', underlay: '198.51.100.3', podCidr: '10.244.3.0/24', vtepMac: '0e:00:0a:f4:03:00' },
      ],
      pods: [
        { name: 'n1p0', interface: 'vp0', ip: '10.244.1.10', mac: '02:00:0a:f4:01:0a' },
        { name: 'n1p1', interface: 'vp1', ip: '10.244.1.11', mac: '02:00:0a:f4:01:0b' },
      ],
    });
    const c = parseConfig(raw);
    expect([formatIpv4(c.gateway), formatIpv4(c.vtepIp), c.udpChecksum, c.peers.length, c.pods.length]).toEqual(['10.244.1.1', '10.244.1.0', false, 2, 2]);
  });

  it('leave the pods out when the CNI plugin makes them (L3, the default); L2 keeps them in the file', () => {
    const p = plan();
    expect(nodeConfig(p, p.nodes[0]!).pods).toEqual([]);
    const l2 = plan({ mode: 'l2' });
    expect(nodeConfig(l2, l2.nodes[0]!).pods).toEqual([
      { name: 'n1p0', interface: 'vp0', ip: '10.244.1.10', mac: '02:00:0a:f4:01:0a' },
      { name: 'n1p1', interface: 'vp1', ip: '10.244.1.11', mac: '02:00:0a:f4:01:0b' },
    ]);
  });

  it('L2, another port and VNI, an FDB limit, and the VTEP MAC left to the state directory', () => {
    const p = plan({ mode: 'l2', port: 8472, vni: 7, fdbLimit: 16, vtepMacSource: 'state' });
    const raw = nodeConfig(p, p.nodes[1]!);
    expect(raw.vtepMac).toBeUndefined();
    const c = parseConfig(raw);
    expect([c.mode, c.port, c.vni, c.fdbLimit, c.vtepMac]).toEqual(['l2', 8472, 7, 16, null]);
    expect(c.peers.map((x) => formatMac(x.vtepMac))).toEqual(['0e:00:0a:f4:01:00', '0e:00:0a:f4:03:00']);
  });
});
