import { describe, expect, it } from 'vitest';
import { EtherType, IpProto, UdpPort, etherTypeName, ipProtoName } from '../../src/wire/consts.js';

describe('protocol numbers', () => {
  it('are the IANA / IEEE values', () => {
    expect(EtherType).toEqual({ IPV4: 0x0800, ARP: 0x0806, VLAN: 0x8100, QINQ: 0x88a8, IPV6: 0x86dd });
    expect(IpProto).toEqual({ ICMP: 1, TCP: 6, UDP: 17, ICMPV6: 58 });
    expect(UdpPort).toEqual({ VXLAN: 4789, VXLAN_LINUX: 8472, VXLAN_GPE: 4790 });
  });

  it.each([
    [0x0800, 'IPv4'],
    [0x0806, 'ARP'],
    [0x8100, '802.1Q'],
    [0x88a8, '802.1ad'],
    [0x86dd, 'IPv6'],
    [0x88b5, '0x88b5'],
    [0x0042, '0x0042'],
  ])('etherTypeName(%i) is %s; unknown types print as hex', (t, name) => {
    expect(etherTypeName(t)).toBe(name);
  });

  it.each([
    [1, 'ICMP'],
    [6, 'TCP'],
    [17, 'UDP'],
    [58, 'ICMPv6'],
    [132, 'proto-132'],
  ])('ipProtoName(%i) is %s; unknown protocols print their number', (p, name) => {
    expect(ipProtoName(p)).toBe(name);
  });
});
