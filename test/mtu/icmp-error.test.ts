import { describe, expect, it } from 'vitest';
import { ICMP_ERROR_MAX_FRAME_LEN, ICMP_ERROR_MAX_QUOTE, IcmpErrorIp, emitIcmpv4Error } from '../../src/mtu/icmp-error.js';
import { EthernetView } from '../../src/wire/ethernet.js';
import { Icmpv4View } from '../../src/wire/icmpv4.js';
import { Ipv4View } from '../../src/wire/ipv4.js';
import { dirty, hex } from '../support/hex.js';
import { verifiesRef } from '../support/refs.js';

const views = { eth: new EthernetView(), ip: new Ipv4View(), icmp: new Icmpv4View() };

describe('emitIcmpv4Error', () => {
  it('caps: 576-byte datagrams, 548-byte quotes, 590-byte frames', () => {
    expect([ICMP_ERROR_MAX_QUOTE, ICMP_ERROR_MAX_FRAME_LEN]).toEqual([548, 590]);
  });

  it('writes every byte of the frame over a dirty buffer', () => {
    const quote = Buffer.alloc(20, 0x11);
    const out = dirty(80);
    const ip = new IcmpErrorIp().set(0x0a000001, 0x0a000002, 9, 0x20, 0x4000);
    const n = emitIcmpv4Error(out, 2, 0x0e0000000002, 0x0e0000000001, ip, 3, 1, 0x12345678, quote, 0, 20, views);
    expect(n).toBe(14 + 20 + 8 + 20);
    const f = out.subarray(2, 2 + n);
    expect(f.subarray(0, 14)).toEqual(hex('0e 00 00 00 00 02 0e 00 00 00 00 01 08 00'));
    expect(f.subarray(14, 34).toString('hex')).toMatch(/^45200030000040000901....0a0000010a000002$/);
    expect(f.subarray(34, 36)).toEqual(hex('03 01'));
    expect(f.subarray(38, 42)).toEqual(hex('12 34 56 78'));
    expect(f.subarray(42)).toEqual(quote);
    expect(verifiesRef(f.subarray(14, 34)) && verifiesRef(f.subarray(34))).toBe(true);
    expect(out.subarray(0, 2)).toEqual(dirty(2));
    expect(out.subarray(2 + n)).toEqual(dirty(80 - 2 - n));
  });

  it('quotes at most 548 bytes, and nothing for a negative length', () => {
    const out = Buffer.alloc(700);
    const ip = new IcmpErrorIp();
    expect(emitIcmpv4Error(out, 0, 1, 2, ip, 3, 4, 0, Buffer.alloc(1000), 0, 1000, views)).toBe(590);
    expect(emitIcmpv4Error(out, 0, 1, 2, ip, 3, 4, 0, Buffer.alloc(10), 0, -5, views)).toBe(42);
  });
});
