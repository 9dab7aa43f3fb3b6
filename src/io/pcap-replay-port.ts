/**
 * PcapReplayPort: a read-only port that hands out the frames of a pcap or pcapng file, in file
 * order, `loops` times over (Infinity: forever). `done` turns true once the last pass is
 * exhausted. Frames whose capture was cut by the snaplen (capLen < origLen) are flagged
 * TRUNCATED; records of a link type other than Ethernet are skipped and counted in rxErrors.
 * Needs no addon: pcap replay benchmarks and tests run anywhere.
 *
 * Readiness: while a callback is set and frames remain, it runs once per setImmediate turn.
 * write() is not supported: it returns -EOPNOTSUPP and counts the frames in txErrors.
 */

import { readFileSync } from 'node:fs';
import type { Batch, FrameList } from '../buf/batch.js';
import { Meta, META_STRIDE, MetaFlag } from '../buf/batch.js';
import { FlatnetError, PcapError } from '../errors.js';
import { LinkType, PcapReader, PcapRecord } from '../pcap/pcap.js';
import { checkHeadroom, PortKind, PortStats, type Port } from '../pipeline/port.js';
import { Errno } from './errno.js';

export interface PcapReplayOptions {
  /** Passes over the file (default 1; Infinity to loop forever). */
  readonly loops?: number;
  /** Port name (default: "pcap:" + path). */
  readonly name?: string;
}

export class PcapReplayPort implements Port {
  readonly kind = PortKind.PCAP;
  readonly name: string;
  readonly vnetHdrLen = 0;
  readonly stats = new PortStats();
  readonly loops: number;
  /** True once every pass has been read. */
  done = false;
  /** Passes started so far (1 during the first). */
  pass = 1;
  private readonly data: Buffer;
  private reader: PcapReader;
  private readonly rec = new PcapRecord();
  private framesThisPass = 0;
  private closedFlag = false;
  private readableCb: (() => void) | null = null;
  private scheduled = false;
  private readonly fire = (): void => this.fireReadable();

  constructor(data: Buffer, opts: PcapReplayOptions = {}) {
    const loops = opts.loops ?? 1;
    if (!(loops === Number.POSITIVE_INFINITY || (Number.isInteger(loops) && loops >= 1))) {
      throw new FlatnetError('ERR_IO_BAD_LOOPS', `loops must be a positive integer or Infinity, not ${loops}`);
    }
    this.loops = loops;
    this.data = data;
    this.reader = new PcapReader(data);
    if (this.reader.linkType !== LinkType.ETHERNET && this.reader.format !== 'pcapng') {
      throw new PcapError('ERR_PCAP_LINKTYPE', `link type ${this.reader.linkType} is not Ethernet`);
    }
    this.name = opts.name ?? 'pcap';
  }

  /** open reads a whole capture file; throws PcapError for a file that is not a capture. */
  static open(path: string, opts: PcapReplayOptions = {}): PcapReplayPort {
    return new PcapReplayPort(readFileSync(path), { name: `pcap:${path}`, ...opts });
  }

  /**
   * read copies up to batch.capacity frames into `batch` (frame i at slotOff(i) + headroom) and
   * returns the count; 0 once done; -EBADF after close().
   */
  read(batch: Batch, headroom: number): number {
    if (this.closedFlag) {
      batch.count = 0;
      this.stats.rxErrors++;
      return Errno.EBADF;
    }
    checkHeadroom(this.name, batch, headroom, 0);
    const room = batch.slotSize - headroom, m = batch.meta, rec = this.rec, s = this.stats;
    let n = 0, bytes = 0;
    while (n < batch.capacity && !this.done) {
      if (!this.reader.next(rec)) {
        this.nextPass();
        continue;
      }
      if (rec.linkType !== LinkType.ETHERNET) {
        s.rxErrors++;
        continue;
      }
      this.framesThisPass++;
      const keep = rec.capLen > room ? room : rec.capLen;
      const start = batch.slotOff(n) + headroom, o = n * META_STRIDE;
      rec.data.copy(batch.arena, start, rec.off, rec.off + keep);
      m[o + Meta.START] = start;
      m[o + Meta.END] = start + keep;
      m[o + Meta.ADDR] = 0;
      m[o + Meta.PORT] = 0;
      m[o + Meta.GSO_SIZE] = 0;
      const cut = keep < rec.capLen || rec.capLen < rec.origLen;
      m[o + Meta.FLAGS] = cut ? MetaFlag.TRUNCATED : 0;
      if (cut) s.rxErrors++;
      bytes += keep;
      n++;
    }
    batch.count = n;
    if (n > 0) {
      s.rxPackets += n;
      s.rxBytes += bytes;
      s.rxBatches++;
    }
    return n;
  }

  private nextPass(): void {
    // A pass without a single Ethernet frame would loop forever: stop instead.
    if (this.pass >= this.loops || this.framesThisPass === 0) {
      this.done = true;
      return;
    }
    this.pass++;
    this.framesThisPass = 0;
    this.reader = new PcapReader(this.data);
  }

  write(list: FrameList): number {
    this.stats.txErrors += list.count;
    return list.count === 0 ? 0 : Errno.EOPNOTSUPP;
  }

  onReadable(cb: (() => void) | null): void {
    if (this.closedFlag && cb !== null) throw new FlatnetError('ERR_IO_PORT_CLOSED', `${this.name}: port is closed`);
    this.readableCb = cb;
    this.schedule();
  }

  private schedule(): void {
    if (this.scheduled || this.readableCb === null || this.done || this.closedFlag) return;
    this.scheduled = true;
    setImmediate(this.fire);
  }

  private fireReadable(): void {
    this.scheduled = false;
    const cb = this.readableCb;
    if (cb === null || this.done || this.closedFlag) return;
    cb();
    this.schedule();
  }

  close(): void {
    this.closedFlag = true;
    this.readableCb = null;
  }
}
