import { describe, expect, it } from 'vitest';
import { EncapTemplate, VXLAN_HEADROOM, type EncapOptions } from '../../src/wire/encap.js';
import { verifiesRef } from '../support/refs.js';

const BASE: EncapOptions = {
  srcMac: 0x02_00_c6_33_64_01,
  dstMac: 0x02_00_c6_33_64_02,
  srcIp: 0xc6_33_64_01, // 198.51.100.1
  dstIp: 0xc6_33_64_02, // 198.51.100.2
  vni: 42,
};

describe('EncapTemplate options', () => {
  it.each([
    ['VNI above 24 bits', { vni: 0x100_0000 }],
    ['negative VNI', { vni: -1 }],
    ['inverted source port range', { srcPortRange: [60000, 50000] as const }],
    ['source port 0', { srcPortRange: [0, 10] as const }],
    ['DSCP 64', { dscp: 64 }],
    ['negative DSCP', { dscp: -1 }],
    ['fractional DSCP', { dscp: 1.5 }],
    ['TTL 256', { ttl: 256 }],
    ['negative TTL', { ttl: -1 }],
  ])('rejects %s with a RangeError', (_name, o) => {
    expect(() => new EncapTemplate({ ...BASE, ...o })).toThrow(RangeError);
  });

  // Regression: DSCP 64 used to be accepted, truncated to 0 in the TOS byte but added in full to
  // the pre-summed header checksum, so every packet left with a bad IPv4 checksum.
  it.each([0, 46, 63])('DSCP %i gives a header that verifies', (dscp) => {
    const t = new EncapTemplate({ ...BASE, dscp });
    const b = Buffer.alloc(VXLAN_HEADROOM + 64, 0xa5);
    const o = t.encap(b, VXLAN_HEADROOM, b.length);
    expect(b[o + 15]! >>> 2).toBe(dscp);
    expect(verifiesRef(b.subarray(o + 14, o + 34))).toBe(true);
  });
});
