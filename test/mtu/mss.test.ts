import fc from 'fast-check';
import { FrameLayout } from '../../src/mtu/layout.js';
import { describe, expect, it } from 'vitest';
import { MssClamp, clampMss } from '../../src/mtu/mss.js';
import { MtuStatus } from '../../src/mtu/status.js';
import { hex } from '../support/hex.js';
import { l4ChecksumOk, payloadOf, tcpFrame, udpFrame, type TcpSpec } from '../support/l4-frames.js';
import { ACK, FIN, PSH, RST, SYN } from '../support/superframes.js';

/** SYN options as Linux sends them, with the MSS value `mss`: MSS, SACK-permitted, timestamps, NOP, wscale 7. */
const linuxOpts = (mss: number): Buffer => {
  const o = hex('02 04 00 00 | 04 02 08 0a | 00 00 00 01 | 00 00 00 00 | 01 03 03 07');
  o.writeUInt16BE(mss, 2);
  return o;
};
/** The MSS option at an odd offset (after one NOP), as some stacks send it. */
const oddOpts = (mss: number): Buffer => {
  const o = hex('01 02 04 00 00 01 01 01');
  o.writeUInt16BE(mss, 3);
  return o;
};
const syn = (mss: number, s: TcpSpec = {}, opts = linuxOpts): Buffer => tcpFrame({ flags: SYN, tcpOptions: opts(mss), ...s });

describe('clampMss', () => {
  it.each([
    // name, frame before, mtu, result, frame after (built independently with the clamped value)
    ['IPv4 SYN, 1460 -> 1410 (mtu 1450 - 40)', syn(1460), 1450, MssClamp.CLAMPED, syn(1410)],
    ['IPv4 SYN-ACK', syn(1460, { flags: SYN | ACK }), 1450, MssClamp.CLAMPED, syn(1410, { flags: SYN | ACK })],
    ['IPv6 SYN, 1440 -> 1390 (mtu 1450 - 60)', syn(1440, { v6: true }), 1450, MssClamp.CLAMPED, syn(1390, { v6: true })],
    ['the option at an odd offset (checksum words straddled)', syn(1460, {}, oddOpts), 1450, MssClamp.CLAMPED, syn(1410, {}, oddOpts)],
    ['SYN with data (TCP Fast Open)', syn(1460, { payload: payloadOf(33) }), 1450, MssClamp.CLAMPED, syn(1410, { payload: payloadOf(33) })],
    ['IPv4 with IP options', syn(9000, { ipOptions: hex('94 04 00 00') }), 1450, MssClamp.CLAMPED, syn(1410, { ipOptions: hex('94 04 00 00') })],
    ['already at the limit', syn(1410), 1450, MssClamp.UNTOUCHED, syn(1410)],
    ['below the limit (TCPMSS only lowers)', syn(536), 1450, MssClamp.UNTOUCHED, syn(536)],
    ['no MSS option (nothing added)', tcpFrame({ flags: SYN }), 1450, MssClamp.UNTOUCHED, tcpFrame({ flags: SYN })],
    ['SYN + RST', syn(1460, { flags: SYN | RST }), 1450, MssClamp.UNTOUCHED, syn(1460, { flags: SYN | RST })],
    ['not a SYN (an MSS option on an ACK)', syn(1460, { flags: ACK | PSH }), 1450, MssClamp.UNTOUCHED, syn(1460, { flags: ACK | PSH })],
    ['FIN', syn(1460, { flags: FIN | ACK }), 1450, MssClamp.UNTOUCHED, syn(1460, { flags: FIN | ACK })],
    ['UDP', udpFrame({ payload: payloadOf(40) }), 1450, MssClamp.UNTOUCHED, udpFrame({ payload: payloadOf(40) })],
    ['an IPv4 fragment', syn(1460, { flagsFrag: 0x2000 }), 1450, MssClamp.UNTOUCHED, syn(1460, { flagsFrag: 0x2000 })],
    ['ARP', Buffer.concat([hex('ff ff ff ff ff ff 0e 00 0a f4 01 01 08 06'), Buffer.alloc(28)]), 1450, MssClamp.UNTOUCHED, Buffer.concat([hex('ff ff ff ff ff ff 0e 00 0a f4 01 01 08 06'), Buffer.alloc(28)])],
  ])('%s', (_n, before, mtu, want, after) => {
    const b = Buffer.from(before);
    expect(clampMss(FrameLayout.of(b), mtu)).toBe(want);
    expect(b).toEqual(after);
    if (want === MssClamp.CLAMPED) expect(l4ChecksumOk(b)).toBe(true);
  });

  it('a bad checksum stays bad (the update is incremental, as inet_proto_csum_replace2)', () => {
    const b = syn(1460);
    b[51]! ^= 0x10; // break the TCP checksum
    expect(clampMss(FrameLayout.of(b), 1450)).toBe(MssClamp.CLAMPED);
    expect(l4ChecksumOk(b)).toBe(false);
  });

  it('works inside a window of a larger buffer and touches only the option value and the checksum', () => {
    const f = syn(1460);
    const b = Buffer.concat([Buffer.alloc(7, 0xee), f, Buffer.alloc(5, 0xee)]);
    const before = Buffer.from(b);
    expect(clampMss(FrameLayout.of(b, 7, 7 + f.length), 1450)).toBe(MssClamp.CLAMPED);
    const changed = [...b.keys()].filter((i) => b[i] !== before[i]).map((i) => i - 7);
    expect(changed.every((i) => i === 50 || i === 51 || i === 56 || i === 57)).toBe(true);
  });

  it.each([
    ['a TCP packet shorter than 20 bytes', (() => { const f = syn(1460); f.writeUInt16BE(20 + 19, 16); return f; })(), MtuStatus.TRUNCATED],
    ['a SYN whose options run past the packet', (() => { const f = tcpFrame({ flags: SYN }); f[46] = 0xf0; return f; })(), MtuStatus.TRUNCATED],
    ['a SYN with data offset 4', (() => { const f = tcpFrame({ flags: SYN }); f[46] = 0x40; return f; })(), MtuStatus.BAD_L4_HEADER],
  ])('malformed: %s', (_n, f, want) => {
    expect(clampMss(FrameLayout.of(f), 1450)).toBe(want);
  });

  it('random and bit-flipped frames never throw; a clamp never breaks a valid checksum (seed 879)', () => {
    const base = [syn(1460), syn(1460, { v6: true }), syn(1460, {}, oddOpts)];
    fc.assert(fc.property(fc.nat(2), fc.nat(200), fc.nat(7), fc.integer({ min: 0, max: 9000 }), fc.boolean(), (which, at, bit, mtu, flip) => {
      const f = Buffer.from(base[which]!);
      if (flip) f[at % f.length]! ^= 1 << bit;
      const valid = l4ChecksumOk(f);
      const r = clampMss(FrameLayout.of(f), mtu);
      expect(Number.isInteger(r)).toBe(true);
      if (r === MssClamp.CLAMPED && valid) expect(l4ChecksumOk(f)).toBe(true);
    }), { seed: 879, numRuns: 2000 });
  });
});
