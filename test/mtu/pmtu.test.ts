import fc from 'fast-check';
import { FrameLayout } from '../../src/mtu/layout.js';
import { describe, expect, it } from 'vitest';
import { ICMP_ERROR_MAX_FRAME_LEN } from '../../src/mtu/icmp-error.js';
import { OversizeAction, buildFragNeeded, fragNeededAllowed, oversizeAction } from '../../src/mtu/pmtu.js';
import { MtuStatus } from '../../src/mtu/status.js';
import { buildIcmpError } from '../../src/pipeline/icmp.js';
import { dataViewOf } from '../../src/wire/bytes.js';
import { EthernetView } from '../../src/wire/ethernet.js';
import { Icmpv4View } from '../../src/wire/icmpv4.js';
import { Ipv4View } from '../../src/wire/ipv4.js';
import { dirty, hex } from '../support/hex.js';
import { MAC_A, MAC_B, payloadOf, tcpFrame, udpFrame, type IpSpec } from '../support/l4-frames.js';
import { verifiesRef } from '../support/refs.js';

const views = { eth: new EthernetView(), ip: new Ipv4View(), icmp: new Icmpv4View() };
const MTU = 1450;
/** A 1,500-byte IPv4 packet (1,514-byte frame): 50 bytes too big for a 1,450 pod MTU. */
const big = (s: IpSpec = {}): Buffer => tcpFrame({ payload: payloadOf(1460), ...s });
const ip4 = (t: string): Buffer => Buffer.from(t.split('.').map(Number));

/** An ICMP packet of 1,500 bytes with the given type (echo data, or an error's quote). */
function icmpFrame(type: number, s: IpSpec = {}): Buffer {
  const f = big(s);
  f[23] = 1; // protocol ICMP
  f.writeUInt16BE(0, 24);
  let sum = 0;
  for (let i = 14; i < 34; i += 2) sum += f.readUInt16BE(i);
  while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);
  f.writeUInt16BE(~sum & 0xffff, 24);
  f[34] = type;
  return f;
}

describe('oversizeAction', () => {
  it.each([
    ['exactly the MTU', tcpFrame({ payload: payloadOf(1410) }), OversizeAction.FITS],
    ['a small frame', tcpFrame({ payload: payloadOf(10) }), OversizeAction.FITS],
    ['IPv4 DF, one byte over', tcpFrame({ payload: payloadOf(1411) }), OversizeAction.FRAG_NEEDED],
    ['IPv4 without DF', big({ flagsFrag: 0 }), OversizeAction.FRAGMENT],
    ['IPv4 DF + MF (not exactly DF: the kernel does not answer)', big({ flagsFrag: 0x6000 }), OversizeAction.DROP],
    ['IPv4 DF + reserved bit', big({ flagsFrag: 0xc000 }), OversizeAction.DROP],
    ['IPv4 without DF but a fragment already: fragmented again', big({ flagsFrag: 0x2000 | 10 }), OversizeAction.FRAGMENT],
    ['IPv6 (no Packet Too Big here)', tcpFrame({ v6: true, payload: payloadOf(1420) }), OversizeAction.DROP],
    ['non-IP', Buffer.concat([big().subarray(0, 12), hex('88 b5'), Buffer.alloc(1500)]), OversizeAction.DROP],
    ['a broken IPv4 header (version 5)', Buffer.concat([big().subarray(0, 14), hex('55'), big().subarray(15)]), OversizeAction.DROP],
    ['from 0.0.0.0/8', big({ src: ip4('0.1.2.3') }), OversizeAction.DROP],
    ['from 127.0.0.0/8', big({ src: ip4('127.0.0.1') }), OversizeAction.DROP],
    ['from 255.255.255.255', big({ src: ip4('255.255.255.255') }), OversizeAction.DROP],
    ['from a multicast source', big({ src: ip4('224.0.0.5') }), OversizeAction.DROP],
    ['to 255.255.255.255', big({ dst: ip4('255.255.255.255') }), OversizeAction.DROP],
    ['to a multicast group', big({ dst: ip4('239.1.2.3') }), OversizeAction.DROP],
    ['to a subnet broadcast (not checked by the kernel either)', big({ dst: ip4('10.244.2.255') }), OversizeAction.FRAG_NEEDED],
    ['an ICMP echo request', icmpFrame(8), OversizeAction.FRAG_NEEDED],
    ['an ICMP destination unreachable', icmpFrame(3), OversizeAction.DROP],
    ['an ICMP source quench', icmpFrame(4), OversizeAction.DROP],
    ['an ICMP redirect', icmpFrame(5), OversizeAction.DROP],
    ['an ICMP time exceeded', icmpFrame(11), OversizeAction.DROP],
    ['an ICMP parameter problem', icmpFrame(12), OversizeAction.DROP],
  ])('%s', (_n, f, want) => {
    expect(oversizeAction(FrameLayout.of(f), MTU)).toBe(want);
  });

  it('below the kernel\'s 576 minimum MTU there is no reply: DROP', () => {
    const f = tcpFrame({ payload: payloadOf(600) });
    expect(oversizeAction(FrameLayout.of(f), 576)).toBe(OversizeAction.FRAG_NEEDED);
    expect(oversizeAction(FrameLayout.of(f), 575)).toBe(OversizeAction.DROP);
  });

  it('fragNeededAllowed: an ICMP packet too short to show its type is not answered', () => {
    const f = tcpFrame({ payload: Buffer.alloc(0) });
    f[23] = 1;
    f.writeUInt16BE(20, 16);
    expect(fragNeededAllowed(dataViewOf(f), 14, 34, 1450)).toBe(false);
  });

  it('never throws on random or cut frames (seed 1191)', () => {
    fc.assert(fc.property(fc.uint8Array({ maxLength: 1600 }), fc.integer({ min: 0, max: 2000 }), (u, mtu) => {
      const b = Buffer.from(u);
      const r = oversizeAction(FrameLayout.of(b), mtu);
      expect([0, 1, 2, 3]).toContain(r);
    }), { seed: 1191, numRuns: 2000 });
  });
});

describe('buildFragNeeded (the kernel\'s iptunnel_pmtud_build_icmp)', () => {
  const orig = big({ ttl: 61, id: 0x4242 });

  it('builds the 590-byte reply field by field', () => {
    const out = dirty(700);
    expect(buildFragNeeded(FrameLayout.of(orig), MTU, out, 10, views)).toBe(590);
    const r = out.subarray(10, 600);
    // Ethernet: back to the sender's MAC, from the MAC it was sent to.
    expect(r.subarray(0, 14)).toEqual(Buffer.concat([MAC_A, MAC_B, hex('08 00')]));
    // IPv4: 576 bytes, ID 0, DF, TTL 61 (the original's), ICMP, checksum 0x22d2 (by hand),
    // from the original destination to the original source.
    expect(r.subarray(14, 34)).toEqual(hex('45 00 02 40 | 00 00 40 00 | 3d 01 22 d2 | 0a f4 02 03 | 0a f4 01 01'));
    // ICMP: type 3 code 4, unused 0, next-hop MTU 1450 (0x05aa); checksum verified below.
    expect(r.subarray(34, 36)).toEqual(hex('03 04'));
    expect(r.subarray(38, 42)).toEqual(hex('00 00 05 aa'));
    expect(verifiesRef(r.subarray(34))).toBe(true);
    expect(verifiesRef(r.subarray(14, 34))).toBe(true);
    // The quote: the first 548 bytes of the original IP packet.
    expect(r.subarray(42)).toEqual(orig.subarray(14, 14 + 548));
    expect(out.subarray(0, 10)).toEqual(dirty(10));
    expect(out.subarray(600)).toEqual(dirty(100));
  });

  it('a short packet (when asked anyway) is quoted whole', () => {
    const small = udpFrame({ payload: payloadOf(60) });
    const out = dirty(700);
    const n = buildFragNeeded(FrameLayout.of(small), 576, out, 0, views);
    expect(n).toBe(14 + 20 + 8 + 88);
    expect(out.readUInt16BE(16)).toBe(20 + 8 + 88);
    expect(out.subarray(42, n)).toEqual(small.subarray(14));
    expect(out.readUInt16BE(40)).toBe(576);
  });

  it('refuses without room, for IPv6 and for broken frames, writing nothing', () => {
    const out = dirty(ICMP_ERROR_MAX_FRAME_LEN + 3);
    expect(buildFragNeeded(FrameLayout.of(orig), MTU, out, 4, views)).toBe(MtuStatus.NO_ROOM);
    expect(buildFragNeeded(FrameLayout.of(orig), MTU, out, -1, views)).toBe(MtuStatus.NO_ROOM);
    const v6 = tcpFrame({ v6: true, payload: payloadOf(1420) });
    expect(buildFragNeeded(FrameLayout.of(v6), MTU, out, 0, views)).toBe(MtuStatus.NOT_IPV4);
    // A frame whose IPv4 header did not parse (here: cut) has no IPv4 layout to answer.
    expect(buildFragNeeded(FrameLayout.of(orig, 0, 30), MTU, out, 0, views)).toBe(MtuStatus.NOT_IPV4);
    expect(out).toEqual(dirty(ICMP_ERROR_MAX_FRAME_LEN + 3));
    expect(buildFragNeeded(FrameLayout.of(orig), MTU, out, 3, views)).toBe(590);
  });
});

describe('the switch\'s buildIcmpError still builds its own errors through the shared builder', () => {
  it('time exceeded: TTL 64, TOS 0xc0, no DF, from the given address, 548-byte quote', () => {
    const o = big();
    const out = dirty(700);
    const n = buildIcmpError(out, 0, 0x0e000af40101, 0x020000000001, 0x0af40101, 11, 0, 0, FrameLayout.of(o), views);
    expect(n).toBe(590);
    expect(out.subarray(0, 14)).toEqual(hex('0e 00 0a f4 01 01 02 00 00 00 00 01 08 00'));
    expect(out.subarray(14, 34).toString('hex')).toMatch(/^45c0024000000000400[1]....0af401010af40101$/);
    expect(out.subarray(34, 36)).toEqual(hex('0b 00'));
    expect(verifiesRef(out.subarray(14, 34)) && verifiesRef(out.subarray(34, 590))).toBe(true);
    expect(out.subarray(42, 590)).toEqual(o.subarray(14, 562));
  });
});
