import { describe, expect, it } from 'vitest';
import { BROADCAST_MAC, formatIpv4, formatMac, isMulticastMac, parseIpv4, parseMac, prefixMask } from '../../src/wire/addr.js';

describe('MAC addresses', () => {
  it.each([
    ['0e:00:0a:f4:01:01', 0x0e00_0af4_0101],
    ['ff:ff:ff:ff:ff:ff', 0xffff_ffff_ffff],
    ['00:00:00:00:00:00', 0],
    ['02:00:c6:33:64:02', 0x0200_c633_6402],
  ])('%s <-> %i', (text, mac) => {
    expect(parseMac(text)).toBe(mac);
    expect(formatMac(mac)).toBe(text);
  });

  it('accepts dashes, upper case and surrounding blanks', () => {
    expect(parseMac(' 0E-00-0A-F4-01-01 ')).toBe(0x0e00_0af4_0101);
  });

  it.each(['', '0e:00:0a:f4:01', '0e:00:0a:f4:01:01:02', '0e:00:0a:f4:01:0g', '0e00.0af4.0101', 'e:0:a:f4:1:1'])('rejects %j with ERR_WIRE_BAD_ADDRESS', (text) => {
    expect(() => parseMac(text)).toThrow(expect.objectContaining({ code: 'ERR_WIRE_BAD_ADDRESS' }));
  });

  it.each([
    ['ff:ff:ff:ff:ff:ff', true],
    ['01:00:5e:00:00:01', true],
    ['33:33:00:00:00:01', true],
    ['0e:00:0a:f4:01:01', false],
    ['02:00:00:00:00:00', false],
    ['fe:ff:ff:ff:ff:ff', false],
  ])('isMulticastMac(%s) is %s (the I/G bit of the first octet)', (text, want) => {
    expect(isMulticastMac(parseMac(text))).toBe(want);
  });

  it('BROADCAST_MAC is all ones', () => {
    expect(formatMac(BROADCAST_MAC)).toBe('ff:ff:ff:ff:ff:ff');
  });
});

describe('IPv4 addresses', () => {
  it.each([
    ['10.244.1.1', 0x0af4_0101],
    ['198.51.100.2', 0xc633_6402],
    ['0.0.0.0', 0],
    ['255.255.255.255', 0xffff_ffff],
  ])('%s <-> %i', (text, ip) => {
    expect(parseIpv4(text)).toBe(ip);
    expect(formatIpv4(ip)).toBe(text);
  });

  it.each(['', '10.244.1', '10.244.1.1.1', '10.244.1.256', '10.244.01.1', '10.244.-1.1', '10.244.1.a', '10..1.1'])('rejects %j with ERR_WIRE_BAD_ADDRESS', (text) => {
    expect(() => parseIpv4(text)).toThrow(expect.objectContaining({ code: 'ERR_WIRE_BAD_ADDRESS' }));
  });

  it.each([
    [0, 0],
    [1, 0x8000_0000],
    [16, 0xffff_0000],
    [24, 0xffff_ff00],
    [31, 0xffff_fffe],
    [32, 0xffff_ffff],
  ])('prefixMask(%i) is %i', (len, mask) => {
    expect(prefixMask(len)).toBe(mask);
  });
});
