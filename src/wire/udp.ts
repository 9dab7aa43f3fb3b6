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
import { dvSum16, finish, fold16, pseudoHeaderSum } from './checksum.js';
import { IpProto } from './consts.js';
import { View } from './view.js';

const F = { SRC_PORT: 0, DST_PORT: 2, LENGTH: 4, CHECKSUM: 6 } as const;
export const UDP_HEADER_LEN = F.CHECKSUM + 2; // 8

/** Checksum status as Wireshark reports it. */
export const ChecksumStatus = { NONE: 'none', GOOD: 'good', BAD: 'bad' } as const;
export type ChecksumStatus = (typeof ChecksumStatus)[keyof typeof ChecksumStatus];

/** udpChecksumOk: true when the checksum at dv[off + 6] is zero (none) or verifies over `len` bytes. */
export function udpChecksumOk(dv: DataView, off: number, len: number, src: number, dst: number): boolean {
  if (dv.getUint16(off + F.CHECKSUM) === 0) return true;
  return fold16(dvSum16(dv, off, len, pseudoHeaderSum(src, dst, IpProto.UDP, len))) === 0xffff;
}

/** In-place view of one UDP header; the datagram spans [off, off + length). */
export class UdpView extends View {
  checkLen(): boolean { return this.end - this.off >= UDP_HEADER_LEN; }

  get srcPort(): number { return this.dv.getUint16(this.off + F.SRC_PORT); }
  set srcPort(v: number) { this.dv.setUint16(this.off + F.SRC_PORT, v); }
  get dstPort(): number { return this.dv.getUint16(this.off + F.DST_PORT); }
  set dstPort(v: number) { this.dv.setUint16(this.off + F.DST_PORT, v); }
  get length(): number { return this.dv.getUint16(this.off + F.LENGTH); }
  set length(v: number) { this.dv.setUint16(this.off + F.LENGTH, v); }
  get checksum(): number { return this.dv.getUint16(this.off + F.CHECKSUM); }
  set checksum(v: number) { this.dv.setUint16(this.off + F.CHECKSUM, v); }
  get payloadOff(): number { return this.off + UDP_HEADER_LEN; }

  /** verifyChecksum: true when the checksum is zero (none) or verifies over `length` bytes. */
  verifyChecksum(src: number, dst: number): boolean {
    return udpChecksumOk(this.dv, this.off, this.length, src, dst);
  }

  checksumStatus(src: number, dst: number): ChecksumStatus {
    if (this.checksum === 0) return ChecksumStatus.NONE;
    return this.verifyChecksum(src, dst) ? ChecksumStatus.GOOD : ChecksumStatus.BAD;
  }

  /** fillChecksum computes the checksum over `length` bytes; a result of 0 is sent as 0xffff. */
  fillChecksum(src: number, dst: number): void {
    const len = this.length;
    this.dv.setUint16(this.off + F.CHECKSUM, 0);
    const c = finish(dvSum16(this.dv, this.off, len, pseudoHeaderSum(src, dst, IpProto.UDP, len)));
    this.dv.setUint16(this.off + F.CHECKSUM, c === 0 ? 0xffff : c);
  }

  /** emit writes all 8 bytes with a zero (absent) checksum. */
  emit(srcPort: number, dstPort: number, length: number): number {
    const dv = this.dv, o = this.off;
    dv.setUint16(o + F.SRC_PORT, srcPort);
    dv.setUint16(o + F.DST_PORT, dstPort);
    dv.setUint16(o + F.LENGTH, length);
    dv.setUint16(o + F.CHECKSUM, 0);
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
