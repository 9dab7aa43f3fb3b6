import fc from 'fast-check';
import { FrameLayout } from '../../src/mtu/layout.js';
import { afterAll, describe, expect, it } from 'vitest';
import { fragmentIpv4, optionsWellFormed } from '../../src/mtu/fragment.js';
import { MtuStatus } from '../../src/mtu/status.js';
import { dataViewOf } from '../../src/wire/bytes.js';
import { dirty, hex } from '../support/hex.js';
import { ipv4HeaderOk, payloadOf, tcpFrame, udpFrame } from '../support/l4-frames.js';
import { expectBytes } from '../support/superframes.js';

const lens = new Int32Array(1200);
let propertyCases = 0;
afterAll(() => { process.stdout.write(`fragment property cases: ${propertyCases}\n`); });

/** Fragment k of a call with `stride` and `prefix` from offset 0. */
const frag = (out: Buffer, k: number, stride: number, prefix: number): Buffer => out.subarray(k * stride + prefix, k * stride + prefix + lens[k]!);

describe('fragmentIpv4: hand-checked examples', () => {
  // UDP, 92 payload bytes: 100 bytes of IP data, total length 120, DF clear, ID 0xabcd.
  const x = udpFrame({ flagsFrag: 0, id: 0xabcd, payload: payloadOf(92) });

  it('mtu 68: 48 + 48 + 4 data bytes at offsets 0, 6, 12 (8-byte units), MF on all but the last', () => {
    const out = dirty(400);
    expect(fragmentIpv4(FrameLayout.of(x), 68, out, 0, 0, lens)).toBe(3);
    expect([...lens.subarray(0, 3)]).toEqual([82, 82, 38]);
    const f = [0, 1, 2].map((k) => frag(out, k, 82, 0));
    expect(f.map((b) => b.readUInt16BE(16))).toEqual([68, 68, 24]); // total length
    expect(f.map((b) => b.readUInt16BE(18))).toEqual([0xabcd, 0xabcd, 0xabcd]); // same ID
    expect(f.map((b) => b.readUInt16BE(20))).toEqual([0x2000, 0x2006, 0x000c]); // MF | offset
    expect(Buffer.concat(f.map((b) => b.subarray(34)))).toEqual(x.subarray(34));
    for (const b of f) {
      expect(ipv4HeaderOk(b)).toBe(true);
      expect(b.subarray(0, 16)).toEqual(x.subarray(0, 16)); // Ethernet, version/IHL, TOS
      expect(b.subarray(22, 24)).toEqual(x.subarray(22, 24)); // TTL, protocol
      expect(b.subarray(26, 34)).toEqual(x.subarray(26, 34)); // addresses
    }
  });

  it('keeps the prefix room in front of each fragment (prefix 50: encapsulation headroom)', () => {
    const out = dirty(500);
    expect(fragmentIpv4(FrameLayout.of(x), 68, out, 0, 50, lens)).toBe(3);
    const stride = 50 + 82;
    for (let k = 0; k < 3; k++) expect(out.subarray(k * stride, k * stride + 50)).toEqual(dirty(50));
    expect(frag(out, 2, stride, 50).readUInt16BE(20)).toBe(0x000c);
  });

  it('options: the first fragment keeps all; later ones keep copied options and NOOP the rest (ip_options_fragment)', () => {
    // Router Alert (0x94: copied) + Record Route (0x07: not copied, length 7) + END: 12 bytes, IHL 8.
    const opts = hex('94 04 00 00 | 07 07 04 00 00 00 00 | 00');
    const y = udpFrame({ flagsFrag: 0, ipOptions: opts, payload: payloadOf(92) });
    const out = dirty(600);
    // mtu 80: (80 - 32) & ~7 = 48 data bytes per fragment: 48 + 48 + 4
    expect(fragmentIpv4(FrameLayout.of(y), 80, out, 0, 0, lens)).toBe(3);
    const stride = 14 + 32 + 48;
    const f = [0, 1, 2].map((k) => frag(out, k, stride, 0));
    expect(f.map((b) => b.readUInt16BE(16))).toEqual([80, 80, 36]);
    expect(f.map((b) => b.readUInt16BE(20))).toEqual([0x2000, 0x2006, 0x000c]);
    expect(f[0]!.subarray(34, 46)).toEqual(opts);
    expect(f[1]!.subarray(34, 46)).toEqual(hex('94 04 00 00 | 01 01 01 01 01 01 01 | 00'));
    expect(f[2]!.subarray(34, 46)).toEqual(hex('94 04 00 00 | 01 01 01 01 01 01 01 | 00'));
    for (const b of f) expect(ipv4HeaderOk(b)).toBe(true);
  });

  it('a packet that is itself a non-final fragment: offsets continue from its own, MF stays on the last', () => {
    const y = udpFrame({ flagsFrag: 0x2000 | 100, payload: payloadOf(92) });
    const out = dirty(400);
    expect(fragmentIpv4(FrameLayout.of(y), 68, out, 0, 0, lens)).toBe(3);
    expect([0, 1, 2].map((k) => frag(out, k, 82, 0).readUInt16BE(20))).toEqual([0x2000 | 100, 0x2000 | 106, 0x2000 | 112]);
  });

  it('a final fragment (offset, no MF): MF on all but the last; the reserved bit is copied', () => {
    const y = udpFrame({ flagsFrag: 0x8000 | 100, payload: payloadOf(92) });
    const out = dirty(400);
    expect(fragmentIpv4(FrameLayout.of(y), 68, out, 0, 0, lens)).toBe(3);
    expect([0, 1, 2].map((k) => frag(out, k, 82, 0).readUInt16BE(20))).toEqual([0xa000 | 100, 0xa000 | 106, 0x8000 | 112]);
  });

  it('a packet that fits is copied unchanged as one fragment (Ethernet padding dropped)', () => {
    const padded = Buffer.concat([x, Buffer.alloc(6)]);
    const out = dirty(200);
    expect(fragmentIpv4(FrameLayout.of(padded), 120, out, 0, 0, lens)).toBe(1);
    expect(out.subarray(0, lens[0]!)).toEqual(x);
  });

  it('mtu 68 (the RFC 791 minimum) with a 60-byte header carries 8 bytes per fragment', () => {
    const opts = Buffer.alloc(40, 1); // 40 NOOPs
    const y = udpFrame({ flagsFrag: 0, ipOptions: opts, payload: payloadOf(16) });
    const out = dirty(1000);
    expect(fragmentIpv4(FrameLayout.of(y), 68, out, 0, 0, lens)).toBe(3); // 24 bytes of data
    expect([0, 1, 2].map((k) => frag(out, k, 14 + 60 + 8, 0).readUInt16BE(20))).toEqual([0x2000, 0x2001, 0x0002]);
  });
});

describe('fragmentIpv4: refusals are statuses, nothing written', () => {
  const x = udpFrame({ flagsFrag: 0, payload: payloadOf(500) });
  const set = (b: Buffer, at: number, v: number, fixIp = true): Buffer => {
    const c = Buffer.from(b);
    c.writeUInt16BE(v, at);
    if (fixIp) {
      c.writeUInt16BE(0, 24);
      let s = 0;
      for (let i = 14; i < 14 + (c[14]! & 15) * 4; i += 2) s += c.readUInt16BE(i);
      while (s > 0xffff) s = (s & 0xffff) + (s >>> 16);
      c.writeUInt16BE(~s & 0xffff, 24);
    }
    return c;
  };

  it.each([
    ['DF set', set(x, 20, 0x4000), 576, MtuStatus.DF_SET],
    ['IPv6', tcpFrame({ v6: true, payload: payloadOf(600) }), 576, MtuStatus.NOT_IPV4],
    ['ARP', Buffer.concat([x.subarray(0, 12), hex('08 06'), Buffer.alloc(28)]), 576, MtuStatus.NOT_IP],
    ['a bad header checksum', set(x, 24, 0x1234, false), 200, MtuStatus.BAD_IP_CHECKSUM],
    ['a truncated packet', x.subarray(0, 300), 200, MtuStatus.TRUNCATED],
    ['mtu 67', x, 67, MtuStatus.MTU_TOO_SMALL],
    ['an option with length 1', udpFrame({ flagsFrag: 0, ipOptions: hex('07 01 00 00'), payload: payloadOf(200) }), 100, MtuStatus.BAD_IP_OPTIONS],
    ['an option running past the header', udpFrame({ flagsFrag: 0, ipOptions: hex('01 07 08 00'), payload: payloadOf(200) }), 100, MtuStatus.BAD_IP_OPTIONS],
    ['an offset that would overflow 13 bits', set(x, 20, 0x1fff), 100, MtuStatus.BAD_IP_HEADER],
  ])('%s', (_n, f, mtu, want) => {
    const out = dirty(4000);
    // Headers that do not parse (or are not IP) are refused by the layout; given that layout,
    // fragmentIpv4 refuses the frame as not IPv4.
    const L = new FrameLayout();
    const parsed = L.parse(f, dataViewOf(f), 0, f.length);
    const got = fragmentIpv4(L, mtu, out, 0, 0, lens);
    expect(parsed === MtuStatus.OK ? got : parsed).toBe(want);
    if (parsed !== MtuStatus.OK) expect(got).toBe(MtuStatus.NOT_IPV4);
    expect(out).toEqual(dirty(4000));
  });

  it('mtu below header + 8 with options', () => {
    const y = udpFrame({ flagsFrag: 0, ipOptions: Buffer.alloc(40, 1), payload: payloadOf(100) });
    expect(fragmentIpv4(FrameLayout.of(y), 67, dirty(2000), 0, 0, lens)).toBe(MtuStatus.MTU_TOO_SMALL);
  });

  it('TOO_MANY_SEGMENTS, NO_ROOM (short by one byte, negative offset, overlap)', () => {
    expect(fragmentIpv4(FrameLayout.of(x), 100, dirty(4000), 0, 0, new Int32Array(6))).toBe(MtuStatus.TOO_MANY_SEGMENTS);
    // 508 data bytes, 80 per fragment: 7 fragments, 6 * (14 + 20 + 80) + 14 + 20 + 28 = 746
    expect(fragmentIpv4(FrameLayout.of(x), 100, dirty(746), 0, 0, lens)).toBe(7);
    expect(fragmentIpv4(FrameLayout.of(x), 100, dirty(745), 0, 0, lens)).toBe(MtuStatus.NO_ROOM);
    expect(fragmentIpv4(FrameLayout.of(x), 100, dirty(4000), -2, 0, lens)).toBe(MtuStatus.NO_ROOM);
    const buf = dirty(3000);
    x.copy(buf, 0);
    expect(fragmentIpv4(FrameLayout.of(buf, 0, x.length), 100, buf, 400, 0, lens)).toBe(MtuStatus.NO_ROOM);
    expect(fragmentIpv4(FrameLayout.of(buf, 0, x.length), 100, buf, x.length, 0, lens)).toBe(7);
  });

  it('optionsWellFormed', () => {
    const ok = (h: string): boolean => { const b = hex(h); return optionsWellFormed(dataViewOf(b), 0, b.length); };
    expect([ok(''), ok('01 01 01 01'), ok('00 ff ff ff'), ok('94 04 00 00'), ok('07 03 04 01')]).toEqual([true, true, true, true, true]);
    expect([ok('07'), ok('07 01 00 00'), ok('07 05 04 00'), ok('01 01 01 44')]).toEqual([false, false, false, false]);
  });

  it('random and bit-flipped frames never throw and never write outside dst (seed 791)', () => {
    fc.assert(fc.property(fc.nat(x.length - 1), fc.nat(7), fc.integer({ min: 1, max: 700 }), fc.nat(x.length), (at, bit, mtu, cut) => {
      propertyCases++;
      const f = Buffer.from(x.subarray(0, Math.max(cut, 1)));
      if (at < f.length) f[at]! ^= 1 << bit;
      const out = Buffer.concat([dirty(8), Buffer.alloc(20000), dirty(8)]);
      const r = fragmentIpv4(FrameLayout.of(f), mtu, out.subarray(8, 20008), 0, 0, lens);
      expect(Number.isInteger(r)).toBe(true);
      expect(out.subarray(0, 8)).toEqual(dirty(8));
      expect(out.subarray(20008)).toEqual(dirty(8));
    }), { seed: 791, numRuns: 1500 });
  });
});

describe('fragmentIpv4 property: reassembly == original (fast-check, seed 815)', () => {
  const optionSets = fc.array(fc.constantFrom('94040000', '0707040000000000', '01', '44080500000000000000', '8303040000000000'), { maxLength: 4 })
    .map((p) => {
      let h = p.join('');
      while ((h.length / 2) % 4 !== 0) h += '00';
      return Buffer.from(h, 'hex').subarray(0, 40);
    });

  it('every fragment fits, carries the right fields, and the pieces put back together are the packet', () => {
    fc.assert(fc.property(optionSets, fc.nat(4000), fc.nat(0xffff), fc.nat(1000), fc.nat(64), fc.boolean(), fc.nat(0x1f00), (opts, plen, id, mtuPick, prefix, wasFragment, off) => {
      propertyCases++;
      const ff = wasFragment ? 0x2000 | (off & 0x0ff) : 0;
      const x = udpFrame({ flagsFrag: ff, id, ipOptions: opts, payload: payloadOf(plen, id), csum: 'partial' });
      const hl = 20 + opts.length;
      const mtu = Math.max(68, hl + 8) + (mtuPick % Math.max(1, x.length - 14 - Math.max(68, hl + 8) + 50));
      const out = dirty(prefix + 1200 * (prefix + 14 + 60 + 8) + 100);
      const n = fragmentIpv4(FrameLayout.of(x), mtu, out, 0, prefix, lens);
      expect(n).toBeGreaterThan(0);
      const data = x.subarray(14 + hl);
      const per = x.length - 14 <= mtu ? data.length : (mtu - hl) & ~7;
      const stride = prefix + 14 + hl + per;
      const pieces: Buffer[] = [];
      let expectOff = (ff & 0x1fff) * 8;
      for (let k = 0; k < n; k++) {
        const f = frag(out, k, stride, prefix);
        expect(out.subarray(k * stride, k * stride + prefix)).toEqual(dirty(prefix));
        expect(f.length - 14).toBeLessThanOrEqual(mtu);
        expect(ipv4HeaderOk(f)).toBe(true);
        expect(f.subarray(0, 14)).toEqual(x.subarray(0, 14));
        expect(f[14]).toBe(x[14]); // same IHL: options become NOOPs, never removed
        expect(f.readUInt16BE(18)).toBe(id);
        expect(f.subarray(22, 24)).toEqual(x.subarray(22, 24));
        expect(f.subarray(26, 34)).toEqual(x.subarray(26, 34));
        const w = f.readUInt16BE(20);
        expect((w & 0x1fff) * 8).toBe(expectOff);
        const last = k === n - 1;
        expect((w & 0x2000) !== 0).toBe(last ? (ff & 0x2000) !== 0 : true);
        expect(w & 0x4000).toBe(0);
        if (!last) expect((f.length - 14 - hl) % 8).toBe(0);
        // Options: all in the first fragment; afterwards non-copied ones are NOOP bytes.
        expect(f.subarray(34, 34 + opts.length)).toEqual(k === 0 ? opts : nopNonCopied(opts));
        const body = f.subarray(14 + hl);
        pieces.push(body);
        expectOff += body.length;
      }
      expectBytes(Buffer.concat(pieces), data, 'reassembled data');
    }), { seed: 815, numRuns: 400 });
  });
});

/** The reference for ip_options_fragment, written from RFC 791's copied flag. */
function nopNonCopied(opts: Buffer): Buffer {
  const o = Buffer.from(opts);
  for (let i = 0; i < o.length;) {
    const t = o[i]!;
    if (t === 0) break;
    if (t === 1) { i++; continue; }
    const l = o[i + 1]!;
    if ((t & 0x80) === 0) o.fill(1, i, i + l);
    i += l;
  }
  return o;
}
