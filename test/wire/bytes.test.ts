import { describe, expect, it } from 'vitest';
import { EMPTY, putU16, putU16le, putU24, putU32, putU48, putU8, u16, u16le, u24, u32, u48, u8 } from '../../src/wire/bytes.js';
import { dirty, hex } from '../support/hex.js';

// 0000  fe dc ba 98 76 54 32 10                           ....vT2.
const BYTES = hex('fe dc ba 98 76 54 32 10');

describe('big-endian readers', () => {
  it.each([
    ['u8', u8(BYTES, 1), 0xdc],
    ['u16', u16(BYTES, 1), 0xdcba],
    ['u24', u24(BYTES, 1), 0xdcba98],
    ['u32 (unsigned above 2^31)', u32(BYTES, 0), 0xfedcba98],
    ['u48 (exact, above 2^32)', u48(BYTES, 0), 0xfedcba987654],
    ['u16le', u16le(BYTES, 1), 0xbadc],
  ])('%s reads network byte order', (_name, got, want) => {
    expect(got).toBe(want);
  });

  it('u48 is exact for the broadcast MAC', () => {
    expect(u48(hex('ff ff ff ff ff ff'), 0)).toBe(0xffff_ffff_ffff);
  });

  it('readers agree with Node\'s Buffer readers at every offset', () => {
    for (let o = 0; o + 6 <= BYTES.length; o++) {
      expect([u8(BYTES, o), u16(BYTES, o), u24(BYTES, o), u32(BYTES, o), u48(BYTES, o), u16le(BYTES, o)]).toEqual([
        BYTES.readUInt8(o), BYTES.readUInt16BE(o), BYTES.readUIntBE(o, 3), BYTES.readUInt32BE(o), BYTES.readUIntBE(o, 6), BYTES.readUInt16LE(o),
      ]);
    }
  });
});

describe('writers', () => {
  // Each writer runs over a 0xa5 buffer: bytes it must not touch keep showing 0xa5.
  it.each([
    ['putU8', (b: Buffer) => putU8(b, 1, 0x12), 'a5 12 a5 a5 a5 a5 a5 a5'],
    ['putU16', (b: Buffer) => putU16(b, 1, 0x1234), 'a5 12 34 a5 a5 a5 a5 a5'],
    ['putU24', (b: Buffer) => putU24(b, 1, 0x123456), 'a5 12 34 56 a5 a5 a5 a5'],
    ['putU32', (b: Buffer) => putU32(b, 1, 0xfedcba98), 'a5 fe dc ba 98 a5 a5 a5'],
    ['putU48', (b: Buffer) => putU48(b, 1, 0xfedcba987654), 'a5 fe dc ba 98 76 54 a5'],
    ['putU16le', (b: Buffer) => putU16le(b, 1, 0x1234), 'a5 34 12 a5 a5 a5 a5 a5'],
  ])('%s writes exactly its bytes', (_name, write, want) => {
    const b = dirty(8);
    write(b);
    expect(b).toEqual(hex(want));
  });

  it('writers keep the low bits of values wider than the field', () => {
    const b = dirty(4);
    putU16(b, 0, 0x1_2345);
    putU8(b, 2, 0x1ff);
    expect(b).toEqual(hex('23 45 ff a5'));
  });

  it('putU48 then u48 round-trips MACs across the 32-bit boundary', () => {
    const b = dirty(6);
    for (const mac of [0, 1, 0xffff_ffff, 0x1_0000_0000, 0x0e00_0af4_0101, 0xffff_ffff_ffff]) {
      putU48(b, 0, mac);
      expect(u48(b, 0)).toBe(mac);
    }
  });

  it('EMPTY is a zero-length buffer', () => {
    expect(EMPTY.length).toBe(0);
  });
});
