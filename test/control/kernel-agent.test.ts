import { describe, expect, it } from 'vitest';
import { peerCommands } from '../../src/control/kernel-agent.js';
import { Cidr } from '../../src/fib/cidr.js';
import { parseIpv4, parseMac } from '../../src/wire/addr.js';

const p = { name: 'n2', underlayIp: parseIpv4('198.51.100.2'), podCidr: Cidr.parse('10.244.2.0/24'), vtepMac: parseMac('0e:00:0a:f4:02:00') };

describe('kernel agent: what it programs per peer', () => {
  it("L3: flannel's triple (FDB, neighbour, route via .0 onlink), and their removal in reverse", () => {
    expect(peerCommands('l3', 'flannel.1', p, 'add').map(([c, a]) => `${c} ${a.join(' ')}`)).toEqual([
      'bridge fdb replace 0e:00:0a:f4:02:00 dev flannel.1 dst 198.51.100.2 self permanent',
      'ip neigh replace 10.244.2.0 lladdr 0e:00:0a:f4:02:00 dev flannel.1 nud permanent',
      'ip route replace 10.244.2.0/24 via 10.244.2.0 dev flannel.1 onlink',
    ]);
    expect(peerCommands('l3', 'flannel.1', p, 'del').map(([c, a]) => `${c} ${a.slice(0, 2).join(' ')}`)).toEqual(['ip route del', 'ip neigh del', 'bridge fdb del']);
  });

  it('L2: one all-zeros flood entry per remote underlay address', () => {
    expect(peerCommands('l2', 'vxlan0', p, 'add').map(([c, a]) => `${c} ${a.join(' ')}`)).toEqual(['bridge fdb append 00:00:00:00:00:00 dev vxlan0 dst 198.51.100.2']);
    expect(peerCommands('l2', 'vxlan0', p, 'del').map(([c, a]) => `${c} ${a.join(' ')}`)).toEqual(['bridge fdb del 00:00:00:00:00:00 dev vxlan0 dst 198.51.100.2']);
  });
});
