import { describe, expect, it } from 'vitest';
import { FrameLayout, pseudoSumAt } from '../../src/mtu/layout.js';
import { MtuStatus } from '../../src/mtu/status.js';
import { dataViewOf } from '../../src/wire/bytes.js';
import { hex } from '../support/hex.js';
import { payloadOf, tcpFrame, udpFrame } from '../support/l4-frames.js';

const parse = (f: Buffer, proto: number, start = 0, end = f.length): [MtuStatus, FrameLayout] => {
  const L = new FrameLayout();
  const s = L.parse(f, dataViewOf(f), start, end);
  return [s !== MtuStatus.OK ? s : L.l4For(proto), L];
};

describe('FrameLayout', () => {
  it.each([
    // name, frame, proto, ipVersion, l3, ipHdrLen, l4, l4HdrLen, ipEnd
    ['IPv4 TCP', tcpFrame({ payload: payloadOf(10) }), 6, 4, 14, 20, 34, 20, 64],
    ['IPv4 with 4 option bytes, TCP with 12', tcpFrame({ ipOptions: hex('94040000'), tcpOptions: Buffer.alloc(12, 1), payload: payloadOf(10) }), 6, 4, 14, 24, 38, 32, 80],
    ['IPv6 UDP', udpFrame({ v6: true, payload: payloadOf(5) }), 17, 6, 14, 40, 54, 8, 67],
  ])('%s', (_n, f, proto, ver, l3, ihl, l4, l4hl, ipEnd) => {
    const [s, L] = parse(f, proto);
    expect(s).toBe(MtuStatus.OK);
    expect([L.ipVersion, L.l3Off, L.ipHdrLen, L.l4Off, L.l4HdrLen, L.ipEnd]).toEqual([ver, l3, ihl, l4, l4hl, ipEnd]);
  });

  it('offsets are absolute when the frame sits inside a larger buffer; padding is not part of the packet', () => {
    const f = Buffer.concat([Buffer.alloc(100), tcpFrame({ payload: payloadOf(2) }), Buffer.alloc(4)]);
    const [s, L] = parse(f, 6, 100, f.length);
    expect(s).toBe(MtuStatus.OK);
    expect([L.l3Off, L.l4Off, L.ipEnd]).toEqual([114, 134, 156]);
  });

  it.each([
    ['13 bytes', tcpFrame().subarray(0, 13), 6, MtuStatus.TRUNCATED],
    ['VLAN-tagged', Buffer.concat([tcpFrame().subarray(0, 12), hex('8100 0001'), tcpFrame().subarray(12)]), 6, MtuStatus.NOT_IP],
    ['UDP asked for TCP', udpFrame(), 6, MtuStatus.WRONG_PROTOCOL],
    ['TCP asked for ICMP', tcpFrame(), 1, MtuStatus.WRONG_PROTOCOL],
    ['a fragment', tcpFrame({ flagsFrag: 0x2000 }), 6, MtuStatus.IP_FRAGMENT],
    ['a later fragment', tcpFrame({ flagsFrag: 0x0001 }), 6, MtuStatus.IP_FRAGMENT],
    ['IPv6 with a fragment header', (() => { const f = tcpFrame({ v6: true }); f[20] = 44; return f; })(), 6, MtuStatus.IPV6_EXT_HEADER],
    ['IPv6 with an unknown next header', (() => { const f = tcpFrame({ v6: true }); f[20] = 99; return f; })(), 6, MtuStatus.WRONG_PROTOCOL],
    ['IPv6 version 4 in a 0x86dd frame', (() => { const f = tcpFrame({ v6: true }); f[14] = 0x40; return f; })(), 6, MtuStatus.BAD_IP_HEADER],
    ['UDP header cut', (() => { const f = udpFrame(); f.writeUInt16BE(27, 16); return f; })(), 17, MtuStatus.TRUNCATED],
  ])('%s', (_n, f, proto, want) => {
    expect(parse(f, proto)[0]).toBe(want);
  });

  it('pseudo-header sums (by hand: 0af4 + 0101 + 0af4 + 0203 + 6 + 0x20 = 0x1912)', () => {
    const f = tcpFrame({ payload: payloadOf(12) });
    expect(pseudoSumAt(dataViewOf(f), 14, 4, 6, 32)).toBe(0x1912);
    const [, L] = parse(f, 6);
    expect(L.pseudoSum(32)).toBe(0x1912);
    // IPv6 fd00:10:244:1::1 -> fd00:10:244:2::3: 0x1feaf (unfolded) + 6 + 22
    const g = tcpFrame({ v6: true, payload: payloadOf(2) });
    expect(pseudoSumAt(dataViewOf(g), 14, 6, 6, 22)).toBe(0x1feaf + 6 + 22);
  });
});
