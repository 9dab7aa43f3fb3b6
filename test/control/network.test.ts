import { describe, expect, it } from 'vitest';
import { parseNetwork, parseNetworkText, subnetAt, subnetCount, subnetKey, subnetOfKey, networkDocument } from '../../src/control/network.js';
import { Cidr } from '../../src/fib/cidr.js';
import { formatIpv4 } from '../../src/wire/addr.js';

describe('network config', () => {
  it('fills flannel-like defaults: 10.244.0.0/16 in /24s, the first subnet never leased', () => {
    const n = parseNetwork({});
    expect(networkDocument(n)).toEqual({ network: '10.244.0.0/16', subnetLen: 24, subnetMin: '10.244.1.0', subnetMax: '10.244.255.0', vni: 1, port: 4789, mode: 'l3' });
    expect(subnetCount(n)).toBe(255);
    expect(subnetAt(n, 0).toString()).toBe('10.244.1.0/24');
    expect(subnetAt(n, 254).toString()).toBe('10.244.255.0/24');
  });

  it('honours subnetMin/subnetMax and other lengths', () => {
    const n = parseNetwork({ network: '10.244.0.0/16', subnetLen: 26, subnetMin: '10.244.4.0', subnetMax: '10.244.4.192', vni: 7, port: 8472, mode: 'l2' });
    expect(subnetCount(n)).toBe(4);
    expect([0, 3].map((i) => subnetAt(n, i).toString())).toEqual(['10.244.4.0/26', '10.244.4.192/26']);
    expect(formatIpv4(n.subnetMax)).toBe('10.244.4.192');
  });

  it.each<[string, unknown, string, string]>([
    ['a misaligned network', { network: '10.244.1.0/16' }, 'ERR_CONFIG_INVALID_CIDR', 'network'],
    ['a subnet length that does not split the network', { subnetLen: 16 }, 'ERR_NETWORK_INVALID', 'subnetLen'],
    ['a subnet length beyond /30', { subnetLen: 31 }, 'ERR_NETWORK_INVALID', 'subnetLen'],
    ['subnetMin outside the network', { subnetMin: '10.245.0.0' }, 'ERR_NETWORK_INVALID', 'subnetMin'],
    ['subnetMax not on a subnet boundary', { subnetMax: '10.244.3.7' }, 'ERR_NETWORK_INVALID', 'subnetMax'],
    ['subnetMax below subnetMin', { subnetMin: '10.244.9.0', subnetMax: '10.244.3.0' }, 'ERR_NETWORK_INVALID', 'subnetMax'],
    ['a VNI beyond 24 bits', { vni: 1 << 24 }, 'ERR_NETWORK_INVALID', 'vni'],
    ['port 0', { port: 0 }, 'ERR_NETWORK_INVALID', 'port'],
    ['an unknown mode', { mode: 'l4' }, 'ERR_NETWORK_INVALID', 'mode'],
    ['an unknown key', { Backend: {} }, 'ERR_NETWORK_INVALID', ''],
  ])('refuses %s, naming the field', (_what, input, code, field) => {
    let err: { code?: string; field?: string } = {};
    try { parseNetwork(input); } catch (e) { err = e as typeof err; }
    expect([err.code, err.field]).toEqual([code, field]);
  });

  it('refuses a stored document that is not JSON', () => {
    expect(() => parseNetworkText('{"network":')).toThrow(expect.objectContaining({ code: 'ERR_NETWORK_JSON' }));
  });

  it("names subnets by flannel's key form, and reads only well-formed keys back", () => {
    const c = Cidr.parse('10.244.3.0/24');
    expect(subnetKey('/flatnet', c)).toBe('/flatnet/subnets/10.244.3.0-24');
    expect(subnetOfKey('/flatnet', '/flatnet/subnets/10.244.3.0-24')?.toString()).toBe('10.244.3.0/24');
    for (const bad of ['/flatnet/subnets/10.244.3.1-24', '/flatnet/subnets/x', '/other/subnets/10.244.3.0-24', '/flatnet/subnets/10.244.3.0-24/extra']) {
      expect(subnetOfKey('/flatnet', bad)).toBeNull();
    }
  });
});
