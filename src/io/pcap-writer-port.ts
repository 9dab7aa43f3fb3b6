/**
 * PcapWriterPort: a write-only port that appends every frame written to it to a classic pcap
 * file (src/pcap PcapWriter), stamped from a clock read once per batch. For captures of what
 * the switch sends, and as the far end of replay benchmarks. Needs no addon.
 *
 * read() is not supported: it returns -EOPNOTSUPP (counted in rxErrors) and readiness never
 * fires. close() flushes and closes the file; writes after it return -EBADF.
 */

import type { Batch, FrameList } from '../buf/batch.js';
import { FlatnetError } from '../errors.js';
import { LinkType, PcapWriter } from '../pcap/pcap.js';
import { PortKind, PortStats, type Port } from '../pipeline/port.js';
import { Errno } from './errno.js';

const NS_PER_SEC = 1_000_000_000n;

export interface PcapWriterPortOptions {
  /** Nanoseconds since the epoch, read once per write() (default: the wall clock at create(), advanced by hrtime). */
  readonly clock?: () => bigint;
  /** Nanosecond timestamps (default false: microseconds, the most portable). */
  readonly nanosecond?: boolean;
  readonly snapLen?: number;
  /** Port name (default: "pcap:" + path). */
  readonly name?: string;
}

/** A nanosecond wall clock: Date.now() once, then the monotonic hrtime (no jumps mid-capture). */
function wallClockNs(): () => bigint {
  const origin = BigInt(Date.now()) * 1_000_000n, hr0 = process.hrtime.bigint();
  return () => origin + (process.hrtime.bigint() - hr0);
}

export class PcapWriterPort implements Port {
  readonly kind = PortKind.PCAP;
  readonly name: string;
  readonly vnetHdrLen = 0;
  readonly stats = new PortStats();
  private writer: PcapWriter | null;
  private readonly clock: () => bigint;

  private constructor(path: string, opts: PcapWriterPortOptions) {
    this.writer = new PcapWriter(path, { nanosecond: opts.nanosecond ?? false, snapLen: opts.snapLen ?? 262144, linkType: LinkType.ETHERNET });
    this.clock = opts.clock ?? wallClockNs();
    this.name = opts.name ?? `pcap:${path}`;
  }

  /** create truncates or creates `path` and writes the pcap header. */
  static create(path: string, opts: PcapWriterPortOptions = {}): PcapWriterPort {
    return new PcapWriterPort(path, opts);
  }

  /** Frames written so far. */
  get count(): number { return this.stats.txPackets; }

  read(batch: Batch, _headroom: number): number {
    batch.count = 0;
    this.stats.rxErrors++;
    return Errno.EOPNOTSUPP;
  }

  /** write appends frames [0, list.count) and returns the count (-EBADF after close()). */
  write(list: FrameList): number {
    const w = this.writer, s = this.stats;
    if (list.count === 0) return 0;
    if (w === null) {
      s.txErrors += list.count;
      return Errno.EBADF;
    }
    const ns = this.clock();
    const sec = Number(ns / NS_PER_SEC);
    const nsec = Number(ns % NS_PER_SEC);
    const arena = list.arena;
    let bytes = 0, sent = 0;
    for (let i = 0; i < list.count; i++) {
      const start = list.start(i), end = list.end(i);
      if (start < 0 || end < start || end > arena.length) {
        s.txErrors++;
        continue;
      }
      w.write(arena, start, end - start, sec, nsec);
      bytes += end - start;
      sent++;
    }
    if (sent > 0) {
      s.txPackets += sent;
      s.txBytes += bytes;
      s.txBatches++;
    }
    return sent === 0 ? Errno.EINVAL : sent;
  }

  onReadable(cb: (() => void) | null): void {
    if (this.writer === null && cb !== null) throw new FlatnetError('ERR_IO_PORT_CLOSED', `${this.name}: port is closed`);
    // Nothing is ever readable here.
  }

  /** flush writes buffered records to the file. */
  flush(): void {
    this.writer?.flush();
  }

  close(): void {
    if (this.writer === null) return;
    this.writer.close();
    this.writer = null;
  }
}
