import { describe, expect, it } from 'vitest';
import { Cidr } from '../../src/fib/cidr.js';
import { parseIpv4 } from '../../src/wire/addr.js';

describe('Cidr', () => {
  it('parses and compiles to network/mask numbers', () => {
    const c = Cidr.parse('10.244.1.0/24');
    expect([c.network, c.len, c.mask >>> 0, c.toString(), c.size]).toEqual([parseIpv4('10.244.1.0'), 24, 0xffffff00, '10.244.1.0/24', 256]);
    expect(c.contains(parseIpv4('10.244.1.255'))).toBe(true);
    expect(c.contains(parseIpv4('10.244.2.0'))).toBe(false);
    expect(Cidr.parse('0.0.0.0/0').contains(parseIpv4('203.0.113.9'))).toBe(true);
  });

  it.each(['10.244.0.1/16', '10.244.1.0/33', '10.244.1/24', 'banana', '10.244.256.0/24', ''])('rejects %j with ERR_CONFIG_INVALID_CIDR naming the field', (text) => {
    expect(() => Cidr.parse(text, 'peers[0].podCidr')).toThrow(expect.objectContaining({ code: 'ERR_CONFIG_INVALID_CIDR', field: 'peers[0].podCidr' }));
  });

  it('detects overlap in either direction', () => {
    const a = Cidr.parse('10.244.0.0/16'), b = Cidr.parse('10.244.3.0/24'), c = Cidr.parse('10.245.0.0/16');
    expect([a.overlaps(b), b.overlaps(a), a.overlaps(c)]).toEqual([true, true, false]);
  });
});
