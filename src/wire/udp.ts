/**
 * UDP header (RFC 768). Over IPv4 a zero checksum means "none" (RFC 768, and RFC 7348 §5 for
 * the VXLAN outer header); a computed zero is sent as 0xffff.
 *
 *   0                   1                   2                   3
 *  +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 *  |          Source Port          |       Destination Port        |
 *  |            Length             |           Checksum            |
 *  +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 */

import { WireError } from '../errors.js';
import { EMPTY, putU16, u16 } from './bytes.js';
import { finish, fold16, pseudoHeaderSum, sum16 } from './checksum.js';
import { IpProto } from './consts.js';

const F = { SRC_PORT: 0, DST_PORT: 2, LENGTH: 4, CHECKSUM: 6 } as const;
export const UDP_HEADER_LEN = F.CHECKSUM + 2; // 8

/** Checksum status as Wireshark reports it. */
export const ChecksumStatus = { NONE: 'none', GOOD: 'good', BAD: 'bad' } as const;
export type ChecksumStatus = (typeof ChecksumStatus)[keyof typeof ChecksumStatus];

/** In-place view of one UDP header; the datagram spans [off, off + length). */
export class UdpView {
  buf: Buffer = EMPTY;
  off = 0;
  end = 0;

  reset(buf: Buffer, off: number, end: number): this {
    this.buf = buf;
    this.off = off;
    this.end = end;
    return this;
  }

  checkLen(): boolean { return this.end - this.off >= UDP_HEADER_LEN; }

  get srcPort(): number { return u16(this.buf, this.off + F.SRC_PORT); }
  set srcPort(v: number) { putU16(this.buf, this.off + F.SRC_PORT, v); }
  get dstPort(): number { return u16(this.buf, this.off + F.DST_PORT); }
  set dstPort(v: number) { putU16(this.buf, this.off + F.DST_PORT, v); }
  get length(): number { return u16(this.buf, this.off + F.LENGTH); }
  set length(v: number) { putU16(this.buf, this.off + F.LENGTH, v); }
  get checksum(): number { return u16(this.buf, this.off + F.CHECKSUM); }
  set checksum(v: number) { putU16(this.buf, this.off + F.CHECKSUM, v); }
  get payloadOff(): number { return this.off + UDP_HEADER_LEN; }

  /** verifyChecksum: true when the checksum is zero (none) or verifies over `length` bytes. */
  verifyChecksum(src: number, dst: number): boolean {
    if (this.checksum === 0) return true;
    const len = this.length;
    return fold16(sum16(this.buf, this.off, len, pseudoHeaderSum(src, dst, IpProto.UDP, len))) === 0xffff;
  }

  checksumStatus(src: number, dst: number): ChecksumStatus {
    if (this.checksum === 0) return ChecksumStatus.NONE;
    return this.verifyChecksum(src, dst) ? ChecksumStatus.GOOD : ChecksumStatus.BAD;
  }

  /** fillChecksum computes the checksum over `length` bytes; a result of 0 is sent as 0xffff. */
  fillChecksum(src: number, dst: number): void {
    const len = this.length;
    putU16(this.buf, this.off + F.CHECKSUM, 0);
    const c = finish(sum16(this.buf, this.off, len, pseudoHeaderSum(src, dst, IpProto.UDP, len)));
    putU16(this.buf, this.off + F.CHECKSUM, c === 0 ? 0xffff : c);
  }

  /** emit writes all 8 bytes with a zero (absent) checksum. */
  emit(srcPort: number, dstPort: number, length: number): number {
    const b = this.buf, o = this.off;
    putU16(b, o + F.SRC_PORT, srcPort);
    putU16(b, o + F.DST_PORT, dstPort);
    putU16(b, o + F.LENGTH, length);
    putU16(b, o + F.CHECKSUM, 0);
    return UDP_HEADER_LEN;
  }
}

export interface UdpRepr {
  readonly srcPort: number;
  readonly dstPort: number;
  readonly length: number;
  readonly checksum: number;
}

export function parseUdpHeader(v: UdpView): UdpRepr {
  if (!v.checkLen()) throw new WireError('ERR_WIRE_TRUNCATED', `udp: ${v.end - v.off} bytes`);
  return { srcPort: v.srcPort, dstPort: v.dstPort, length: v.length, checksum: v.checksum };
}

export function emitUdpHeader(v: UdpView, r: UdpRepr): number {
  v.emit(r.srcPort, r.dstPort, r.length);
  v.checksum = r.checksum;
  return UDP_HEADER_LEN;
}
