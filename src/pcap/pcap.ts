/**
 * pcap files: read classic pcap (microsecond and nanosecond magic, either byte order) and
 * pcapng (SHB, IDB, EPB, SPB and the obsolete PB; other blocks are skipped), write classic
 * pcap that capinfos, tshark and tcpreplay accept.
 *
 * The reader holds the whole file in memory and hands out records as windows into it (no copy
 * per frame): a record's bytes are valid as long as the reader is. next() refills one record
 * object, so iterating allocates nothing per frame.
 */

import { closeSync, openSync, readFileSync, writeSync } from 'node:fs';
import { PcapError } from '../errors.js';

export const LinkType = { NULL: 0, ETHERNET: 1, RAW: 101, LINUX_SLL: 113, LINUX_SLL2: 276 } as const;

const PCAP_MAGIC_US = 0xa1b2c3d4;
const PCAP_MAGIC_NS = 0xa1b23c4d;
const PCAPNG_SHB = 0x0a0d0d0a;
const PCAPNG_BYTE_ORDER_MAGIC = 0x1a2b3c4d;
const PCAPNG_IDB = 1;
const PCAPNG_PB = 2; // obsolete Packet Block
const PCAPNG_SPB = 3;
const PCAPNG_EPB = 6;
const PCAP_GLOBAL_HEADER_LEN = 24;
const PCAP_RECORD_HEADER_LEN = 16;

/** One frame of a capture; refilled in place by PcapReader.next(). */
export class PcapRecord {
  /** The whole file; the frame is data[off, off + capLen). */
  data: Buffer = Buffer.alloc(0);
  off = 0;
  capLen = 0;
  /** Length on the wire (capLen is smaller when the capture was truncated by its snaplen). */
  origLen = 0;
  tsSec = 0;
  tsNsec = 0;
  linkType: number = LinkType.ETHERNET;
  /** Index of the record in the file, from 0. */
  index = -1;
}

interface Interface {
  linkType: number;
  /** Timestamp units per second. */
  unitsPerSec: number;
}

export type PcapFormat = 'pcap' | 'pcap-ns' | 'pcapng';

/** Reads every frame of a pcap or pcapng file held in memory. */
export class PcapReader {
  readonly format: PcapFormat;
  /** Link type of the first interface (pcapng files may have several). */
  readonly linkType: number;
  /** True when the file ended in the middle of a record (a capture cut short). */
  truncated = false;
  private readonly data: Buffer;
  private pos: number;
  private index = 0;
  private le = true;
  private readonly nsec: boolean;
  private interfaces: Interface[] = [];

  constructor(data: Buffer) {
    this.data = data;
    if (data.length < 12) throw new PcapError('ERR_PCAP_TRUNCATED', `file of ${data.length} bytes has no pcap header`);
    const magicLe = data.readUInt32LE(0);
    const magicBe = data.readUInt32BE(0);
    if (magicBe === PCAPNG_SHB) {
      this.format = 'pcapng';
      this.nsec = false;
      this.pos = 0;
      // Parse the first section header so that linkType is known before the first next().
      this.readPcapngBlocksUntilPacket(true);
      this.linkType = this.interfaces[0]?.linkType ?? LinkType.ETHERNET;
      this.pos = 0;
      this.interfaces = [];
      return;
    }
    if (magicLe === PCAP_MAGIC_US || magicLe === PCAP_MAGIC_NS) this.le = true;
    else if (magicBe === PCAP_MAGIC_US || magicBe === PCAP_MAGIC_NS) this.le = false;
    else throw new PcapError('ERR_PCAP_BAD_MAGIC', `not a pcap or pcapng file (magic 0x${magicBe.toString(16).padStart(8, '0')})`);
    if (data.length < PCAP_GLOBAL_HEADER_LEN) throw new PcapError('ERR_PCAP_TRUNCATED', 'pcap global header cut short');
    const magic = this.le ? magicLe : magicBe;
    this.nsec = magic === PCAP_MAGIC_NS;
    this.format = this.nsec ? 'pcap-ns' : 'pcap';
    this.linkType = this.u32(20) & 0x0fff_ffff; // the top bits carry the FCS length
    this.pos = PCAP_GLOBAL_HEADER_LEN;
  }

  static open(path: string): PcapReader {
    return new PcapReader(readFileSync(path));
  }

  private u32(o: number): number { return this.le ? this.data.readUInt32LE(o) : this.data.readUInt32BE(o); }
  private u16(o: number): number { return this.le ? this.data.readUInt16LE(o) : this.data.readUInt16BE(o); }

  /** next fills `rec` with the next frame and returns true, or returns false at the end. */
  next(rec: PcapRecord): boolean {
    return this.format === 'pcapng' ? this.nextPcapng(rec) : this.nextPcap(rec);
  }

  /** Iterates with a fresh record per frame (convenient, allocates; use next() on hot paths). */
  *[Symbol.iterator](): Iterator<PcapRecord> {
    for (;;) {
      const r = new PcapRecord();
      if (!this.next(r)) return;
      yield r;
    }
  }

  private nextPcap(rec: PcapRecord): boolean {
    const d = this.data;
    if (this.pos >= d.length) return false;
    if (this.pos + PCAP_RECORD_HEADER_LEN > d.length) { this.truncated = true; this.pos = d.length; return false; }
    const p = this.pos;
    const capLen = this.u32(p + 8);
    if (p + PCAP_RECORD_HEADER_LEN + capLen > d.length) { this.truncated = true; this.pos = d.length; return false; }
    rec.data = d;
    rec.tsSec = this.u32(p);
    rec.tsNsec = this.nsec ? this.u32(p + 4) : this.u32(p + 4) * 1000;
    rec.capLen = capLen;
    rec.origLen = this.u32(p + 12);
    rec.off = p + PCAP_RECORD_HEADER_LEN;
    rec.linkType = this.linkType;
    rec.index = this.index++;
    this.pos = rec.off + capLen;
    return true;
  }

  private nextPcapng(rec: PcapRecord): boolean {
    const r = this.readPcapngBlocksUntilPacket(false);
    if (r < 0) return false;
    const d = this.data, p = r;
    const type = this.u32(p);
    let ifIndex: number, tsHi: number, tsLo: number, capLen: number, origLen: number, dataOff: number;
    if (type === PCAPNG_EPB || type === PCAPNG_PB) {
      ifIndex = type === PCAPNG_EPB ? this.u32(p + 8) : this.u16(p + 8);
      tsHi = this.u32(p + 12);
      tsLo = this.u32(p + 16);
      capLen = this.u32(p + 20);
      origLen = this.u32(p + 24);
      dataOff = p + 28;
    } else {
      ifIndex = 0;
      tsHi = 0;
      tsLo = 0;
      origLen = this.u32(p + 8);
      const blockLen = this.u32(p + 4);
      capLen = Math.min(origLen, blockLen - 16);
      dataOff = p + 12;
    }
    const ifc = this.interfaces[ifIndex];
    if (ifc === undefined) throw new PcapError('ERR_PCAP_MALFORMED', `packet block ${this.index} names interface ${ifIndex}, which was not described`);
    if (dataOff + capLen > p + this.u32(p + 4) - 4) throw new PcapError('ERR_PCAP_MALFORMED', `packet block ${this.index} is shorter than its captured length`);
    rec.data = d;
    rec.off = dataOff;
    rec.capLen = capLen;
    rec.origLen = origLen;
    splitTimestamp(tsHi, tsLo, ifc.unitsPerSec, rec);
    rec.linkType = ifc.linkType;
    rec.index = this.index++;
    return true;
  }

  /**
   * Walks pcapng blocks from `pos`, absorbing section and interface blocks, and returns the
   * offset of the next packet block (advancing past it), or -1 at the end. With `headerOnly`
   * it stops after the first interface description.
   */
  private readPcapngBlocksUntilPacket(headerOnly: boolean): number {
    const d = this.data;
    for (;;) {
      const p = this.pos;
      if (p >= d.length) return -1;
      if (p + 12 > d.length) { this.truncated = true; this.pos = d.length; return -1; }
      const typeBe = d.readUInt32BE(p);
      if (typeBe === PCAPNG_SHB) {
        const bom = d.readUInt32LE(p + 8);
        if (bom === PCAPNG_BYTE_ORDER_MAGIC) this.le = true;
        else if (d.readUInt32BE(p + 8) === PCAPNG_BYTE_ORDER_MAGIC) this.le = false;
        else throw new PcapError('ERR_PCAP_BAD_MAGIC', `pcapng section at ${p} has no byte-order magic`);
        this.interfaces = [];
      }
      const type = this.u32(p);
      const len = this.u32(p + 4);
      if (len < minBlockLen(type) || len % 4 !== 0) throw new PcapError('ERR_PCAP_MALFORMED', `pcapng block at ${p} (type ${type}) has length ${len}`);
      if (p + len > d.length) { this.truncated = true; this.pos = d.length; return -1; }
      this.pos = p + len;
      if (type === PCAPNG_IDB) {
        this.interfaces.push({ linkType: this.u16(p + 8), unitsPerSec: this.tsResolution(p + 16, p + len - 4) });
        if (headerOnly) return p;
      } else if (type === PCAPNG_EPB || type === PCAPNG_SPB || type === PCAPNG_PB) {
        return p;
      }
    }
  }

  /** Reads if_tsresol (option 9) from an IDB's options; default 10^6 units per second. */
  private tsResolution(start: number, end: number): number {
    let o = start;
    while (o + 4 <= end) {
      const code = this.u16(o);
      const len = this.u16(o + 2);
      if (code === 0) break;
      if (code === 9 && len >= 1) {
        const v = this.data[o + 4]!;
        return (v & 0x80) !== 0 ? 2 ** (v & 0x7f) : 10 ** v;
      }
      o += 4 + ((len + 3) & ~3);
    }
    return 1e6;
  }
}

/**
 * The smallest total length of a block of this type: 12 bytes of framing plus the fixed fields
 * its readers access (the SHB's byte-order magic, version and section length; the IDB's link
 * type and snaplen; a packet block's interface, timestamps and lengths).
 */
function minBlockLen(type: number): number {
  switch (type) {
    case PCAPNG_SHB: return 28;
    case PCAPNG_IDB: return 20;
    case PCAPNG_EPB: return 32;
    case PCAPNG_PB: return 32;
    case PCAPNG_SPB: return 16;
    default: return 12;
  }
}

/**
 * splitTimestamp converts a 64-bit count of `unitsPerSec` units (hi, lo) into seconds and
 * nanoseconds without BigInt: long division in 16-bit limbs keeps every step below 2^53.
 */
export function splitTimestamp(hi: number, lo: number, unitsPerSec: number, out: { tsSec: number; tsNsec: number }): void {
  let q = 0, r = 0;
  for (let i = 0; i < 4; i++) {
    const limb = i === 0 ? hi >>> 16 : i === 1 ? hi & 0xffff : i === 2 ? lo >>> 16 : lo & 0xffff;
    const cur = r * 65536 + limb;
    const qi = Math.floor(cur / unitsPerSec);
    r = cur - qi * unitsPerSec;
    q = q * 65536 + qi;
  }
  out.tsSec = q;
  out.tsNsec = unitsPerSec === 1e9 ? r : Math.floor((r * 1e9) / unitsPerSec);
}

export interface PcapWriterOptions {
  /** Nanosecond timestamps (magic 0xa1b23c4d); default false (microseconds, the most portable). */
  readonly nanosecond?: boolean;
  readonly linkType?: number;
  readonly snapLen?: number;
}

/**
 * Writes classic pcap. Frames are copied into a buffer and flushed in large writes; close()
 * flushes the rest and closes the file.
 */
export class PcapWriter {
  private fd: number;
  private readonly nsec: boolean;
  private readonly snapLen: number;
  private buf = Buffer.allocUnsafe(1 << 20);
  private used = 0;
  count = 0;

  constructor(path: string, opts: PcapWriterOptions = {}) {
    this.nsec = opts.nanosecond ?? false;
    this.snapLen = opts.snapLen ?? 262144;
    this.fd = openSync(path, 'w');
    const h = Buffer.alloc(PCAP_GLOBAL_HEADER_LEN);
    h.writeUInt32LE(this.nsec ? PCAP_MAGIC_NS : PCAP_MAGIC_US, 0);
    h.writeUInt16LE(2, 4);
    h.writeUInt16LE(4, 6);
    h.writeInt32LE(0, 8); // thiszone
    h.writeUInt32LE(0, 12); // sigfigs
    h.writeUInt32LE(this.snapLen, 16);
    h.writeUInt32LE(opts.linkType ?? LinkType.ETHERNET, 20);
    writeSync(this.fd, h);
  }

  /** write appends b[off, off + len) as one record; `origLen` defaults to len. */
  write(b: Buffer, off: number, len: number, tsSec = 0, tsNsec = 0, origLen = len): void {
    if (this.fd < 0) throw new PcapError('ERR_PCAP_CLOSED', 'write after close');
    const cap = Math.min(len, this.snapLen);
    if (this.used + PCAP_RECORD_HEADER_LEN + cap > this.buf.length) {
      this.flush();
      if (PCAP_RECORD_HEADER_LEN + cap > this.buf.length) this.buf = Buffer.allocUnsafe(PCAP_RECORD_HEADER_LEN + cap);
    }
    const o = this.used;
    const sub = this.nsec ? tsNsec : Math.floor(tsNsec / 1000);
    this.buf.writeUInt32LE(tsSec >>> 0, o);
    this.buf.writeUInt32LE(sub >>> 0, o + 4);
    this.buf.writeUInt32LE(cap, o + 8);
    this.buf.writeUInt32LE(origLen, o + 12);
    b.copy(this.buf, o + PCAP_RECORD_HEADER_LEN, off, off + cap);
    this.used = o + PCAP_RECORD_HEADER_LEN + cap;
    this.count++;
  }

  flush(): void {
    let done = 0;
    while (done < this.used) done += writeSync(this.fd, this.buf, done, this.used - done);
    this.used = 0;
  }

  close(): void {
    if (this.fd < 0) return;
    this.flush();
    closeSync(this.fd);
    this.fd = -1;
  }
}
