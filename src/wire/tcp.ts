/**
 * TCP header (RFC 9293), with the MSS option (kind 2) readable and rewritable in place.
 *
 *   0                   1                   2                   3
 *  +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 *  |          Source Port          |       Destination Port        |
 *  |                        Sequence Number                        |
 *  |                    Acknowledgment Number                      |
 *  |  Data |     |A|C|E|U|A|P|R|S|F|                               |
 *  | Offset| Rsvd|E|W|C|R|C|S|S|Y|I|            Window             |
 *  |       |     | |R|E|G|K|H|T|N|N|                               |
 *  |           Checksum            |         Urgent Pointer        |
 *  |                    Options                    |    Padding    |
 *  +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 */

import { WireError } from '../errors.js';
import { dvSum16, finish, fold16, pseudoHeaderSum, updateChecksum16 } from './checksum.js';
import { IpProto } from './consts.js';
import { View } from './view.js';

const F = { SRC_PORT: 0, DST_PORT: 2, SEQ: 4, ACK: 8, OFF_FLAGS: 12, WINDOW: 14, CHECKSUM: 16, URGENT: 18 } as const;
export const TCP_HEADER_LEN = F.URGENT + 2; // 20
export const TCP_MAX_HEADER_LEN = 60;

export const TcpFlag = {
  FIN: 0x001,
  SYN: 0x002,
  RST: 0x004,
  PSH: 0x008,
  ACK: 0x010,
  URG: 0x020,
  ECE: 0x040,
  CWR: 0x080,
  AE: 0x100, // formerly NS (RFC 3540, historic); AccECN reuses the bit
} as const;

export const TcpOption = { END: 0, NOP: 1, MSS: 2, WSCALE: 3, SACK_PERMITTED: 4, SACK: 5, TIMESTAMP: 8 } as const;
const MSS_OPTION_LEN = 4;

/** In-place view of one TCP header. The segment spans [off, end) (end = the IP payload end). */
export class TcpView extends View {
  /** True when the fixed header and the options its data offset announces are all present. */
  checkLen(): boolean {
    const avail = this.end - this.off;
    if (avail < TCP_HEADER_LEN) return false;
    const hl = this.headerLen;
    return hl >= TCP_HEADER_LEN && hl <= avail;
  }

  get srcPort(): number { return this.dv.getUint16(this.off + F.SRC_PORT); }
  get dstPort(): number { return this.dv.getUint16(this.off + F.DST_PORT); }
  get seq(): number { return this.dv.getUint32(this.off + F.SEQ); }
  set seq(v: number) { this.dv.setUint32(this.off + F.SEQ, v); }
  get ack(): number { return this.dv.getUint32(this.off + F.ACK); }
  /** Data offset in 32-bit words. */
  get dataOffset(): number { return this.dv.getUint8(this.off + F.OFF_FLAGS) >>> 4; }
  get headerLen(): number { return (this.dv.getUint8(this.off + F.OFF_FLAGS) >>> 4) << 2; }
  /** The nine flag bits (TcpFlag). */
  get flags(): number { return this.dv.getUint16(this.off + F.OFF_FLAGS) & 0x1ff; }
  set flags(v: number) {
    const o = this.off + F.OFF_FLAGS;
    this.dv.setUint16(o, (this.dv.getUint16(o) & ~0x1ff) | (v & 0x1ff));
  }
  get window(): number { return this.dv.getUint16(this.off + F.WINDOW); }
  get checksum(): number { return this.dv.getUint16(this.off + F.CHECKSUM); }
  set checksum(v: number) { this.dv.setUint16(this.off + F.CHECKSUM, v); }
  get urgent(): number { return this.dv.getUint16(this.off + F.URGENT); }
  get payloadOff(): number { return this.off + this.headerLen; }

  /**
   * mssOptionOff returns the offset of the MSS option's 16-bit value, or -1 when the options
   * hold none (or are malformed: a length below 2 or running past the header). Requires checkLen().
   */
  mssOptionOff(): number {
    const dv = this.dv;
    let i = this.off + TCP_HEADER_LEN;
    const end = this.off + this.headerLen;
    while (i < end) {
      const kind = dv.getUint8(i);
      if (kind === TcpOption.END) return -1;
      if (kind === TcpOption.NOP) { i++; continue; }
      if (i + 1 >= end) return -1;
      const len = dv.getUint8(i + 1);
      if (len < 2 || i + len > end) return -1;
      if (kind === TcpOption.MSS) return len === MSS_OPTION_LEN ? i + 2 : -1;
      i += len;
    }
    return -1;
  }

  /** The MSS option's value, or -1 when absent. Requires checkLen(). */
  mss(): number {
    const o = this.mssOptionOff();
    return o < 0 ? -1 : this.dv.getUint16(o);
  }

  /**
   * setMss rewrites an existing MSS option and patches the checksum incrementally (RFC 1624),
   * also when the option sits at an odd offset and its value straddles two checksum words.
   * Returns false when there is no MSS option. Requires checkLen().
   */
  setMss(v: number): boolean {
    const o = this.mssOptionOff();
    if (o < 0) return false;
    const dv = this.dv;
    let c = this.checksum;
    if (((o - this.off) & 1) === 0) {
      const old = dv.getUint16(o);
      dv.setUint16(o, v);
      c = updateChecksum16(c, old, v);
    } else {
      const w0 = o - 1, w1 = o + 1;
      const old0 = dv.getUint16(w0), old1 = dv.getUint16(w1);
      dv.setUint16(o, v);
      c = updateChecksum16(c, old0, dv.getUint16(w0));
      c = updateChecksum16(c, old1, dv.getUint16(w1));
    }
    dv.setUint16(this.off + F.CHECKSUM, c);
    return true;
  }

  /** verifyChecksum over the whole segment [off, end) with the IPv4 pseudo-header. */
  verifyChecksum(src: number, dst: number): boolean {
    const len = this.end - this.off;
    return fold16(dvSum16(this.dv, this.off, len, pseudoHeaderSum(src, dst, IpProto.TCP, len))) === 0xffff;
  }

  fillChecksum(src: number, dst: number): void {
    const len = this.end - this.off;
    this.dv.setUint16(this.off + F.CHECKSUM, 0);
    this.dv.setUint16(this.off + F.CHECKSUM, finish(dvSum16(this.dv, this.off, len, pseudoHeaderSum(src, dst, IpProto.TCP, len))));
  }

  /** emit writes a 20-byte header without options and a zero checksum. */
  emit(srcPort: number, dstPort: number, seq: number, ack: number, flags: number, window: number): number {
    const dv = this.dv, o = this.off;
    dv.setUint16(o + F.SRC_PORT, srcPort);
    dv.setUint16(o + F.DST_PORT, dstPort);
    dv.setUint32(o + F.SEQ, seq);
    dv.setUint32(o + F.ACK, ack);
    dv.setUint16(o + F.OFF_FLAGS, (5 << 12) | (flags & 0x1ff));
    dv.setUint16(o + F.WINDOW, window);
    dv.setUint16(o + F.CHECKSUM, 0);
    dv.setUint16(o + F.URGENT, 0);
    return TCP_HEADER_LEN;
  }
}

export interface TcpRepr {
  readonly srcPort: number;
  readonly dstPort: number;
  readonly seq: number;
  readonly ack: number;
  readonly dataOffset: number;
  /** The three reserved bits between data offset and flags (zero on the wire). */
  readonly reserved: number;
  readonly flags: number;
  readonly window: number;
  readonly checksum: number;
  readonly urgent: number;
  /** Option bytes as hex, '' when none. */
  readonly options: string;
  /** The MSS option's value when present. */
  readonly mss?: number;
}

export function parseTcpHeader(v: TcpView): TcpRepr {
  if (!v.checkLen()) throw new WireError('ERR_WIRE_TRUNCATED', `tcp: ${v.end - v.off} bytes, data offset ${v.end - v.off >= 13 ? v.headerLen : '?'}`);
  const mss = v.mss();
  return {
    srcPort: v.srcPort,
    dstPort: v.dstPort,
    seq: v.seq,
    ack: v.ack,
    dataOffset: v.dataOffset,
    reserved: (v.dv.getUint8(v.off + F.OFF_FLAGS) >>> 1) & 0x7,
    flags: v.flags,
    window: v.window,
    checksum: v.checksum,
    urgent: v.urgent,
    options: v.buf.toString('hex', v.off + TCP_HEADER_LEN, v.off + v.headerLen),
    ...(mss >= 0 ? { mss } : {}),
  };
}

/** emitTcpHeader writes `r` with its options and `r.checksum` as is; returns the header length. */
export function emitTcpHeader(v: TcpView, r: TcpRepr): number {
  const opts = Buffer.from(r.options, 'hex');
  const hl = TCP_HEADER_LEN + opts.length;
  if (hl % 4 !== 0 || hl > TCP_MAX_HEADER_LEN || r.dataOffset * 4 !== hl) {
    throw new WireError('ERR_WIRE_MALFORMED', `tcp: data offset ${r.dataOffset} does not match ${opts.length} option bytes`);
  }
  const dv = v.dv, o = v.off;
  v.emit(r.srcPort, r.dstPort, r.seq, r.ack, r.flags, r.window);
  dv.setUint16(o + F.OFF_FLAGS, (r.dataOffset << 12) | ((r.reserved & 7) << 9) | (r.flags & 0x1ff));
  dv.setUint16(o + F.CHECKSUM, r.checksum);
  dv.setUint16(o + F.URGENT, r.urgent);
  opts.copy(v.buf, o + TCP_HEADER_LEN);
  return hl;
}

export function tcpFlagsString(flags: number): string {
  const names: [number, string][] = [
    [TcpFlag.SYN, 'SYN'], [TcpFlag.FIN, 'FIN'], [TcpFlag.RST, 'RST'], [TcpFlag.PSH, 'PSH'],
    [TcpFlag.ACK, 'ACK'], [TcpFlag.URG, 'URG'], [TcpFlag.ECE, 'ECE'], [TcpFlag.CWR, 'CWR'], [TcpFlag.AE, 'AE'],
  ];
  const out = names.filter(([bit]) => (flags & bit) !== 0).map(([, n]) => n);
  return out.length === 0 ? '<none>' : out.join(',');
}
