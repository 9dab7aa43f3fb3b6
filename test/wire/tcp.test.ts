import { describe, expect, it } from 'vitest';
import { TCP_HEADER_LEN, TCP_MAX_HEADER_LEN, TcpFlag, TcpOption, TcpView, emitTcpHeader, parseTcpHeader, tcpFlagsString, type TcpRepr } from '../../src/wire/tcp.js';
import { dirty, hex } from '../support/hex.js';
import { ipRef, pseudoHeaderRef, verifiesRef } from '../support/refs.js';

const SRC = ipRef('10.244.1.1');
const DST = ipRef('10.244.1.2');

// Inner TCP SYN of frame 11 of fixtures/kernel/vxlan-4789-noudpcsum.pcap (Linux, MSS 1410):
// 0000  81 da 1b 58 a4 ff 0f b2 00 00 00 00 a0 02 fd 5c   ...X...........\
// 0010  a2 59 00 00 02 04 05 82 04 02 08 0a 4c ae f1 fb   .Y..........L...
// 0020  00 00 00 00 01 03 03 0a                           ........
const KERNEL_SYN = hex(`
  81 da 1b 58 | a4 ff 0f b2 | 00 00 00 00 | a0 02 fd 5c | a2 59 00 00
  02 04 05 82                       # MSS 1410 at an even offset (20)
  04 02 08 0a 4c ae f1 fb 00 00 00 00 01 03 03 0a   # SACK-permitted, timestamps, NOP, wscale 10
`);

// scapy: TCP(sport=40000, dport=7000, seq=0x01020304, flags="S", window=64240,
//            options=[('NOP',None),('MSS',1460),('WScale',7)])   (10.244.1.1 -> 10.244.1.2)
// 0000  9c 40 1b 58 01 02 03 04 00 00 00 00 70 02 fa f0   .@.X........p...
// 0010  05 4f 00 00 01 02 04 05 b4 03 03 07               .O..........
const ODD_MSS = hex('9c 40 1b 58 | 01 02 03 04 | 00 00 00 00 | 70 02 fa f0 | 05 4f 00 00 | 01 | 02 04 05 b4 | 03 03 07');
const ODD_MSS_REPR: TcpRepr = {
  srcPort: 40000, dstPort: 7000, seq: 0x01020304, ack: 0, dataOffset: 7, reserved: 0, flags: TcpFlag.SYN, window: 64240,
  checksum: 0x054f, urgent: 0, options: '01020405b4030307', mss: 1460,
};

// scapy: TCP(sport=40000, dport=7000, seq=0x01020304, ack=5, flags="PA", window=512)/b"hi"
const PLAIN = hex('9c 40 1b 58 | 01 02 03 04 | 00 00 00 05 | 50 18 02 00 | 71 d3 00 00 | 68 69');

// scapy: TCP(sport=40000, dport=7000, seq=1, ack=2, flags="NCEA", window=1, reserved=5)
// byte 12 = 0x5b: data offset 5, reserved bits 101, AE (ex-NS); byte 13 = 0xd0: CWR ECE ACK
const AE_RESERVED = hex('9c 40 1b 58 | 00 00 00 01 | 00 00 00 02 | 5b d0 00 01 | d4 8d 00 00');

const view = (b: Buffer, len = b.length): TcpView => new TcpView().reset(b, 0, len);
const verifies = (b: Buffer): boolean => verifiesRef(pseudoHeaderRef(SRC, DST, 6, b.length), b);

/** A SYN whose options are `opts` (hex, padded by the caller to a multiple of 4), checksum filled. */
function synWith(opts: string, payload = ''): Buffer {
  const o = Buffer.from(opts, 'hex');
  const b = Buffer.concat([hex('9c 40 1b 58 01 02 03 04 00 00 00 00 00 02 fa f0 00 00 00 00'), o, Buffer.from(payload)]);
  b[12] = ((20 + o.length) / 4) << 4;
  view(b).fillChecksum(SRC, DST);
  return b;
}

describe('TcpView', () => {
  it('has a 20-byte fixed header and at most 60', () => {
    expect([TCP_HEADER_LEN, TCP_MAX_HEADER_LEN]).toEqual([20, 60]);
  });

  it('deconstructs the kernel\'s SYN', () => {
    const v = view(KERNEL_SYN);
    expect(v.checkLen()).toBe(true);
    expect([v.srcPort, v.dstPort, v.seq, v.ack, v.dataOffset, v.headerLen, v.flags, v.window, v.checksum, v.urgent, v.payloadOff, v.mss()]).toEqual([
      33242, 7000, 0xa4ff0fb2, 0, 10, 40, TcpFlag.SYN, 64860, 0xa259, 0, 40, 1410,
    ]);
    expect(v.verifyChecksum(SRC, DST)).toBe(true);
  });

  it('deconstructs AE, CWR, ECE and ACK', () => {
    const v = view(AE_RESERVED);
    expect(v.flags).toBe(TcpFlag.AE | TcpFlag.CWR | TcpFlag.ECE | TcpFlag.ACK);
    expect(v.verifyChecksum(SRC, DST)).toBe(true);
  });

  it('constructs a header without options over a dirty slot', () => {
    const b = dirty(PLAIN.length);
    Buffer.from('hi').copy(b, 20);
    const v = view(b);
    expect(v.emit(40000, 7000, 0x01020304, 5, TcpFlag.PSH | TcpFlag.ACK, 512)).toBe(20);
    expect(b.readUInt16BE(16)).toBe(0);
    v.fillChecksum(SRC, DST);
    expect(b).toEqual(PLAIN);
  });

  it('the flags setter keeps the data offset and the reserved bits', () => {
    const b = Buffer.from(AE_RESERVED);
    view(b).flags = TcpFlag.FIN;
    expect(b[12]).toBe(0x5a);
    expect(b[13]).toBe(0x01);
  });

  it.each([
    ['19 bytes', KERNEL_SYN, 19],
    ['options cut short (data offset 10, 39 bytes)', KERNEL_SYN, 39],
  ])('rejects %s', (_name, bytes, len) => {
    expect(view(bytes, len).checkLen()).toBe(false);
  });

  it.each([0, 1, 4])('rejects an impossible data offset of %i words', (words) => {
    const b = Buffer.from(PLAIN);
    b[12] = (words << 4) | (b[12]! & 0x0f);
    expect(view(b).checkLen()).toBe(false);
  });

  it('rejects a data offset of 15 words (60 bytes) in a 40-byte window', () => {
    const b = Buffer.from(KERNEL_SYN);
    b[12] = 0xf0;
    expect(view(b).checkLen()).toBe(false);
  });
});

describe('TCP MSS option', () => {
  it('reads an MSS at an odd offset after a NOP', () => {
    const v = view(ODD_MSS);
    expect(v.mssOptionOff()).toBe(23);
    expect(v.mss()).toBe(1460);
  });

  it.each([
    ['odd offset (after a NOP)', ODD_MSS, 23],
    ['even offset (first option)', KERNEL_SYN, 22],
  ])('setMss at an %s rewrites the value and keeps the checksum valid', (_name, bytes, at) => {
    const b = Buffer.from(bytes);
    expect(view(b).setMss(1360)).toBe(true);
    expect(b.readUInt16BE(at)).toBe(1360);
    expect(verifies(b)).toBe(true);
    const expected = Buffer.from(bytes);
    expected.writeUInt16BE(1360, at);
    expected.writeUInt16BE(b.readUInt16BE(16), 16);
    expect(b).toEqual(expected); // nothing else changed
  });

  it.each([0, 1, 2, 3])('finds and rewrites the MSS after %i NOPs, with a payload, checksum valid', (nops) => {
    const opts = '01'.repeat(nops) + '020405b4';
    const padded = opts + '00'.repeat((4 - ((opts.length / 2) % 4)) % 4);
    const b = synWith(padded, 'payload!');
    expect(verifies(b)).toBe(true);
    const v = view(b);
    expect(v.mss()).toBe(1460);
    for (const mss of [0, 1, 0x00ff, 0xff00, 0xffff, 536]) {
      expect(v.setMss(mss)).toBe(true);
      expect(v.mss()).toBe(mss);
      expect(verifies(b), `mss ${mss}`).toBe(true);
    }
  });

  it('skips options it does not know (kind 254, length 4) before the MSS', () => {
    const b = synWith('fe04abcd020405b4');
    expect(view(b).mss()).toBe(1460);
  });

  it.each([
    ['no options', ''],
    ['only NOPs and END', '01010100'],
    ['END before the MSS', '00020405b4000000'],
    ['an option of length 0', 'fe00020405b40000'],
    ['an option of length 1', 'fe01020405b40000'],
    ['an option running past the header', '0101fe08'],
    ['an MSS of length 3', '0203050000000000'],
    ['an MSS of length 5', '0205050000000000'],
    ['a kind byte with no length byte at the end', '01010102'],
  ])('reports no MSS for %s and leaves the segment alone', (_name, opts) => {
    const b = synWith(opts);
    const before = Buffer.from(b);
    const v = view(b);
    expect(v.mssOptionOff()).toBe(-1);
    expect(v.mss()).toBe(-1);
    expect(v.setMss(1200)).toBe(false);
    expect(b).toEqual(before);
  });
});

describe('TCP checksum', () => {
  it('fillChecksum writes scapy\'s value', () => {
    const b = Buffer.from(ODD_MSS);
    b.writeUInt16BE(0xa5a5, 16);
    view(b).fillChecksum(SRC, DST);
    expect(b).toEqual(ODD_MSS);
  });

  it('covers the payload and the pseudo-header', () => {
    const b = Buffer.from(PLAIN);
    expect(view(b).verifyChecksum(SRC, DST)).toBe(true);
    expect(view(b).verifyChecksum(DST, SRC + 1)).toBe(false);
    b[21]! ^= 0x01;
    expect(view(b).verifyChecksum(SRC, DST)).toBe(false);
  });
});

describe('parseTcpHeader / emitTcpHeader', () => {
  it('parses options and the MSS at an odd offset', () => {
    expect(parseTcpHeader(view(ODD_MSS))).toEqual(ODD_MSS_REPR);
  });

  it('parses the reserved bits and AE', () => {
    expect(parseTcpHeader(view(AE_RESERVED))).toMatchObject({ dataOffset: 5, reserved: 5, flags: 0x1d0, options: '' });
  });

  it('leaves mss out when there is none', () => {
    expect('mss' in parseTcpHeader(view(PLAIN))).toBe(false);
  });

  it.each([
    ['options and an odd-offset MSS', ODD_MSS],
    ['the kernel\'s SYN', KERNEL_SYN],
    ['reserved bits and AE', AE_RESERVED],
  ])('emits %s over a dirty slot', (_name, bytes) => {
    const r = parseTcpHeader(view(bytes));
    const b = dirty(bytes.length + 1);
    expect(emitTcpHeader(view(b, bytes.length), r)).toBe(r.dataOffset * 4);
    expect(b.subarray(0, bytes.length)).toEqual(bytes);
    expect(b[bytes.length]).toBe(0xa5);
  });

  it.each([
    ['19 bytes', ODD_MSS, 19],
    ['options cut short', ODD_MSS, 27],
  ])('throws ERR_WIRE_TRUNCATED on %s', (_name, bytes, len) => {
    expect(() => parseTcpHeader(view(bytes, len))).toThrow(expect.objectContaining({ code: 'ERR_WIRE_TRUNCATED' }));
  });

  it.each([
    ['data offset 6 with 8 option bytes', { ...ODD_MSS_REPR, dataOffset: 6 }],
    ['options not a multiple of 4', { ...ODD_MSS_REPR, options: '01020405b40303' }],
  ])('refuses to emit %s (ERR_WIRE_MALFORMED)', (_name, r) => {
    expect(() => emitTcpHeader(view(dirty(60)), r)).toThrow(expect.objectContaining({ code: 'ERR_WIRE_MALFORMED' }));
  });

  it.each([
    [TcpFlag.SYN, 'SYN'],
    [TcpFlag.SYN | TcpFlag.ACK, 'SYN,ACK'],
    [TcpFlag.FIN | TcpFlag.PSH | TcpFlag.ACK, 'FIN,PSH,ACK'],
    [TcpFlag.AE | TcpFlag.CWR | TcpFlag.ECE | TcpFlag.URG | TcpFlag.RST, 'RST,URG,ECE,CWR,AE'],
    [0, '<none>'],
  ])('tcpFlagsString(%i) is %s', (flags, text) => {
    expect(tcpFlagsString(flags)).toBe(text);
  });

  it('knows the option kinds of RFC 9293 / RFC 7323', () => {
    expect(TcpOption).toEqual({ END: 0, NOP: 1, MSS: 2, WSCALE: 3, SACK_PERMITTED: 4, SACK: 5, TIMESTAMP: 8 });
  });
});
