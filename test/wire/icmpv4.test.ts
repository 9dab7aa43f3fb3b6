import { describe, expect, it } from 'vitest';
import {
  DestUnreachCode, ICMPV4_HEADER_LEN, Icmpv4Type, Icmpv4View, TimeExceededCode, emitIcmpv4Header, icmpv4ReprRest, isIcmpv4Error, parseIcmpv4Header,
  type Icmpv4Repr,
} from '../../src/wire/icmpv4.js';
import { dirty, hex } from '../support/hex.js';
import { checksumRef } from '../support/refs.js';

// scapy: ICMP(type=8, code=0, id=0x0efe, seq=1)/Raw(b"abcdefgh")
// 0000  08 00 57 6b 0e fe 00 01 61 62 63 64 65 66 67 68   ..Wk....abcdefgh
const ECHO = hex('08 00 57 6b | 0e fe 00 01 | 61 62 63 64 65 66 67 68');
const ECHO_REPR: Icmpv4Repr = { type: 8, code: 0, checksum: 0x576b, ident: 0x0efe, seq: 1 };

// scapy: ICMP(type=3, code=4, nexthopmtu=1450)/<IPv4 header + 8 bytes of the offending UDP datagram>
// 0000  03 04 10 55 00 00 05 aa 45 00 00 1c 00 01 40 00   ...U....E.....@.
// 0010  3f 11 22 e7 0a f4 01 01 0a f4 02 01 04 d2 00 50   ?.".............
// 0020  05 c8 dc 12                                       ....
const QUOTED = hex('45 00 00 1c 00 01 40 00 3f 11 22 e7 0a f4 01 01 0a f4 02 01 | 04 d2 00 50 05 c8 dc 12');
const FRAG_NEEDED = Buffer.concat([hex('03 04 10 55 | 00 00 05 aa'), QUOTED]);
const FRAG_NEEDED_REPR: Icmpv4Repr = { type: 3, code: 4, checksum: 0x1055, unused: 0, nextHopMtu: 1450 };

// scapy: ICMP(type=11, code=0)/<the same quote>
const TIME_EXCEEDED = Buffer.concat([hex('0b 00 0e 03 | 00 00 00 00'), QUOTED]);
const TIME_EXCEEDED_REPR: Icmpv4Repr = { type: 11, code: 0, checksum: 0x0e03, rest: 0 };

const view = (b: Buffer, len = b.length): Icmpv4View => new Icmpv4View().reset(b, 0, len);

describe('Icmpv4View', () => {
  it('has an 8-byte header', () => {
    expect(ICMPV4_HEADER_LEN).toBe(8);
  });

  it.each([
    ['echo request', ECHO, [8, 0, 0x576b, 0x0efe_0001, 0x0efe, 1, 8]],
    ['fragmentation needed', FRAG_NEEDED, [3, 4, 0x1055, 1450, 0, 1450, 8]],
    ['time exceeded', TIME_EXCEEDED, [11, 0, 0x0e03, 0, 0, 0, 8]],
  ] as const)('deconstructs %s', (_name, bytes, [type, code, csum, rest, ident, seqOrMtu, payloadOff]) => {
    const v = view(bytes);
    expect(v.checkLen()).toBe(true);
    expect([v.type, v.code, v.checksum, v.rest, v.ident, v.seq, v.nextHopMtu, v.payloadOff]).toEqual([type, code, csum, rest, ident, seqOrMtu, seqOrMtu, payloadOff]);
    expect(v.verifyChecksum()).toBe(true);
  });

  it.each([
    ['echo request', ECHO, Icmpv4Type.ECHO_REQUEST, 0, 0x0efe_0001],
    ['fragmentation needed', FRAG_NEEDED, Icmpv4Type.DEST_UNREACH, DestUnreachCode.FRAG_NEEDED, 1450],
    ['time exceeded', TIME_EXCEEDED, Icmpv4Type.TIME_EXCEEDED, TimeExceededCode.TTL, 0],
  ])('constructs %s over a dirty slot and fills the checksum over the whole message', (_name, bytes, type, code, rest) => {
    const b = dirty(bytes.length);
    bytes.copy(b, ICMPV4_HEADER_LEN, ICMPV4_HEADER_LEN);
    const v = view(b);
    expect(v.emitHeader(type, code, rest)).toBe(ICMPV4_HEADER_LEN);
    expect(b.readUInt16BE(2)).toBe(0);
    v.fillChecksum();
    expect(b).toEqual(bytes);
  });

  it('fillChecksum agrees with the reference over an odd-length message', () => {
    const b = Buffer.concat([hex('08 00 a5 a5 12 34 56 78'), Buffer.from('odd')]);
    view(b).fillChecksum();
    const z = Buffer.from(b);
    z.writeUInt16BE(0, 2);
    expect(b.readUInt16BE(2)).toBe(checksumRef(z));
  });

  it('verifyChecksum detects a flipped payload bit', () => {
    const b = Buffer.from(ECHO);
    b[12]! ^= 0x10;
    expect(view(b).verifyChecksum()).toBe(false);
  });

  it.each([0, 1, 4, 7])('rejects %i bytes', (len) => {
    expect(view(ECHO, len).checkLen()).toBe(false);
  });

  it.each([
    [Icmpv4Type.DEST_UNREACH, true],
    [4, true], // source quench
    [Icmpv4Type.REDIRECT, true],
    [Icmpv4Type.TIME_EXCEEDED, true],
    [Icmpv4Type.PARAM_PROBLEM, true],
    [Icmpv4Type.ECHO_REQUEST, false],
    [Icmpv4Type.ECHO_REPLY, false],
    [13, false], // timestamp
    [42, false],
  ])('isIcmpv4Error(%i) is %s', (type, want) => {
    expect(isIcmpv4Error(type)).toBe(want);
  });
});

describe('parseIcmpv4Header / emitIcmpv4Header', () => {
  it.each([
    ['echo request', ECHO, ECHO_REPR],
    ['fragmentation needed (next-hop MTU)', FRAG_NEEDED, FRAG_NEEDED_REPR],
    ['time exceeded', TIME_EXCEEDED, TIME_EXCEEDED_REPR],
  ])('parses %s', (_name, bytes, repr) => {
    expect(parseIcmpv4Header(view(bytes))).toEqual(repr);
  });

  it.each([
    ['echo request', ECHO, ECHO_REPR],
    ['fragmentation needed (next-hop MTU)', FRAG_NEEDED, FRAG_NEEDED_REPR],
    ['time exceeded', TIME_EXCEEDED, TIME_EXCEEDED_REPR],
  ])('emits %s over a dirty slot, with the recorded checksum', (_name, bytes, repr) => {
    const b = dirty(ICMPV4_HEADER_LEN + 1);
    expect(emitIcmpv4Header(view(b, ICMPV4_HEADER_LEN), repr)).toBe(ICMPV4_HEADER_LEN);
    expect(b.subarray(0, 8)).toEqual(bytes.subarray(0, 8));
    expect(b[8]).toBe(0xa5);
  });

  it('passes an unknown type through with its raw rest-of-header word', () => {
    const b = hex('2a 07 12 34 | de ad be ef');
    const r = parseIcmpv4Header(view(b));
    expect(r).toEqual({ type: 42, code: 7, checksum: 0x1234, rest: 0xdeadbeef });
    expect(icmpv4ReprRest(r)).toBe(0xdeadbeef);
    const out = dirty(8);
    emitIcmpv4Header(view(out), r);
    expect(out).toEqual(b);
  });

  it('keeps a non-zero "unused" field of a destination unreachable', () => {
    const b = hex('03 01 00 00 | ab cd 00 00');
    const r = parseIcmpv4Header(view(b));
    expect(r).toMatchObject({ unused: 0xabcd, nextHopMtu: 0 });
    const out = dirty(8);
    emitIcmpv4Header(view(out), r);
    expect(out).toEqual(b);
  });

  it('throws ERR_WIRE_TRUNCATED on 7 bytes', () => {
    expect(() => parseIcmpv4Header(view(ECHO, 7))).toThrow(expect.objectContaining({ code: 'ERR_WIRE_TRUNCATED' }));
  });
});
