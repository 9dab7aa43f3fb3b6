/**
 * ReplayPort: the in-process port `flatnet replay` attaches for every pod, the host and the
 * overlay (a memory port specialised for replay; it needs no addon and no privileges).
 *
 * - Receive: the frames a capture holds for this port (a FrameStore, loaded before the run),
 *   handed out in order `passes` times over. read() copies each frame once, from the capture
 *   into the reader's slot (what a NIC's DMA does); nothing else is copied on the way in.
 * - Transmit: write() counts what the switch emits and, while a FrameCapture is attached
 *   (`--out`), copies each frame into it. Without a capture nothing is copied.
 * - Readiness is never signalled: replay drives the switch with Switch.pump().
 *
 * Why not MemoryPort.pair (src/io/memory-port.ts): a pair copies every frame twice, into the
 * peer's FrameQueue on write and out of it on read, and the frames the switch emits would have
 * to be read back (a third copy) or they fill the 256-frame queue and count as tx_busy drops.
 * Its copies also go through Buffer#copy, which allocates a Uint8Array per call on Node 20.
 *
 * Per frame, read() and write() allocate nothing: the frame views are made once at load time
 * and copied with TypedArray#set (a memmove); the capture copies through DataViews.
 */

import { Meta, META_STRIDE, MetaFlag, type Batch, type FrameList } from '../buf/batch.js';
import { FlatnetError } from '../errors.js';
import { Errno } from '../io/errno.js';
import { checkHeadroom, PortKind, PortStats, type Port } from '../pipeline/port.js';
import { EMPTY_DV, dataViewOf } from '../wire/bytes.js';

/** The frames of one ingress port, as windows into the capture file held in memory. */
export class FrameStore {
  /** One view per frame, created at load time (no view is created while replaying). */
  readonly views: Uint8Array[] = [];
  /** Per frame: MetaFlag.TRUNCATED when the capture holds less than was on the wire. */
  flags: Uint8Array = new Uint8Array(16);
  /** Bytes held (the sum of the views' lengths). */
  bytes = 0;

  get count(): number { return this.views.length; }

  /** add records data[off, off + len) (not copied); `cut` marks a frame the capture truncated. */
  add(data: Buffer, off: number, len: number, cut: boolean): void {
    const i = this.views.length;
    if (i === this.flags.length) {
      const f = new Uint8Array(this.flags.length * 2);
      f.set(this.flags);
      this.flags = f;
    }
    this.views.push(new Uint8Array(data.buffer, data.byteOffset + off, len));
    this.flags[i] = cut ? MetaFlag.TRUNCATED : 0;
    this.bytes += len;
  }
}

const EMPTY_STORE = new FrameStore();

/**
 * FrameCapture: what the switch emitted, copied into chunked arenas with one timestamp per
 * write() call, for `--out`. Allocates only when a chunk or the index fills (rarely).
 */
export class FrameCapture {
  private readonly chunkSize: number;
  private readonly chunks: Buffer[] = [];
  private cur: Buffer;
  private curDv: DataView;
  private used = 0;
  /** Per frame: chunk index, offset, length (Int32Array), and the time in ms since the epoch. */
  private index = new Int32Array(3 * 1024);
  private times = new Float64Array(1024);
  private n = 0;
  private srcBuf: Buffer | null = null;
  private srcDv: DataView = EMPTY_DV;

  constructor(chunkSize = 4 << 20) {
    this.chunkSize = chunkSize;
    this.cur = Buffer.alloc(chunkSize);
    this.curDv = dataViewOf(this.cur);
    this.chunks.push(this.cur);
  }

  /** Frames captured so far. */
  get count(): number { return this.n; }

  /** add copies frames [0, n) of `list`, all stamped `timeMs`. Frames outside the arena are skipped. */
  add(list: FrameList, n: number, timeMs: number): void {
    const arena = list.arena, m = list.meta;
    if (arena !== this.srcBuf) {
      this.srcBuf = arena;
      this.srcDv = new DataView(arena.buffer, arena.byteOffset, arena.byteLength);
    }
    for (let i = 0; i < n; i++) {
      const o = i * META_STRIDE;
      const start = m[o + Meta.START]!, end = m[o + Meta.END]!;
      if (start < 0 || end < start || end > arena.length) continue;
      this.push(start, end - start, timeMs);
    }
  }

  private push(start: number, len: number, timeMs: number): void {
    if (this.used + len > this.cur.length) {
      this.cur = Buffer.alloc(len > this.chunkSize ? len : this.chunkSize);
      this.curDv = new DataView(this.cur.buffer, this.cur.byteOffset, this.cur.byteLength);
      this.chunks.push(this.cur);
      this.used = 0;
    }
    copyBytes(this.srcDv, start, this.curDv, this.used, len);
    if (this.n === this.times.length) this.grow();
    const k = this.n * 3;
    this.index[k] = this.chunks.length - 1;
    this.index[k + 1] = this.used;
    this.index[k + 2] = len;
    this.times[this.n] = timeMs;
    this.n++;
    this.used += len;
  }

  private grow(): void {
    const index = new Int32Array(this.index.length * 2);
    index.set(this.index);
    this.index = index;
    const times = new Float64Array(this.times.length * 2);
    times.set(this.times);
    this.times = times;
  }

  /** forEach calls `fn` for every captured frame, in order (cold path: writing --out). */
  forEach(fn: (buf: Buffer, off: number, len: number, timeMs: number) => void): void {
    for (let i = 0; i < this.n; i++) {
      const k = i * 3;
      fn(this.chunks[this.index[k]!]!, this.index[k + 1]!, this.index[k + 2]!, this.times[i]!);
    }
  }
}

/**
 * copyBytes copies `len` bytes between two DataViews, four at a time. It allocates nothing,
 * where Buffer#copy allocates a Uint8Array per call on Node 20 (see the module comment).
 */
export function copyBytes(src: DataView, from: number, dst: DataView, to: number, len: number): void {
  const end4 = from + (len & ~3), end = from + len;
  while (from < end4) {
    dst.setInt32(to, src.getInt32(from));
    from += 4;
    to += 4;
  }
  while (from < end) dst.setUint8(to++, src.getUint8(from++));
}

export class ReplayPort implements Port {
  readonly kind = PortKind.MEMORY;
  readonly name: string;
  readonly vnetHdrLen = 0;
  readonly stats = new PortStats();
  /** While set, every frame written is copied into it (`--out`). */
  capture: FrameCapture | null = null;
  private store: FrameStore = EMPTY_STORE;
  private next = 0;
  private passesLeft = 0;
  private closedFlag = false;

  constructor(name: string) {
    this.name = name;
  }

  /** load queues `passes` passes over `store` (replacing what was left). */
  load(store: FrameStore, passes: number): void {
    if (!Number.isInteger(passes) || passes < 0) throw new FlatnetError('ERR_REPLAY_BAD_LOOPS', `passes must be a non-negative integer, not ${passes}`);
    this.store = store;
    this.next = passes === 0 ? store.count : 0;
    this.passesLeft = passes === 0 ? 0 : passes - 1;
  }

  /** Frames still to be read. */
  get remaining(): number {
    return this.store.count - this.next + this.passesLeft * this.store.count;
  }

  /**
   * read copies up to batch.capacity frames into `batch` (frame i at slotOff(i) + headroom) and
   * returns the count, 0 when none are left, -EBADF after close(). A frame longer than the
   * slot's room is not copied: it is passed on empty and flagged TRUNCATED (the switch counts
   * rx_truncated), as is a frame the capture cut short.
   */
  read(batch: Batch, headroom: number): number {
    if (this.closedFlag) {
      batch.count = 0;
      this.stats.rxErrors++;
      return Errno.EBADF;
    }
    checkHeadroom(this.name, batch, headroom, 0);
    const views = this.store.views, flags = this.store.flags, count = views.length;
    const cap = batch.capacity, arena = batch.own(), m = batch.meta, room = batch.slotSize - headroom;
    let n = 0, bytes = 0, cut = 0, next = this.next, left = this.passesLeft;
    while (n < cap) {
      if (next === count) {
        if (left === 0 || count === 0) break;
        left--;
        next = 0;
      }
      const v = views[next]!;
      let f = flags[next]!;
      let len = v.length;
      const start = batch.slotOff(n) + headroom;
      if (len > room) {
        len = 0;
        f |= MetaFlag.TRUNCATED;
      } else {
        arena.set(v, start);
      }
      if (f !== 0) cut++;
      const o = n * META_STRIDE;
      m[o + Meta.START] = start;
      m[o + Meta.END] = start + len;
      m[o + Meta.ADDR] = 0;
      m[o + Meta.PORT] = 0;
      m[o + Meta.GSO_SIZE] = 0;
      m[o + Meta.FLAGS] = f;
      bytes += len;
      next++;
      n++;
    }
    this.next = next;
    this.passesLeft = left;
    batch.count = n;
    if (n > 0) {
      const s = this.stats;
      s.rxPackets += n;
      s.rxBytes += bytes;
      s.rxBatches++;
      s.rxErrors += cut;
    }
    return n;
  }

  /** write accepts frames [0, list.count): counts them and copies them into the capture if any. */
  write(list: FrameList): number {
    const n = list.count, s = this.stats;
    if (n === 0) return 0;
    if (this.closedFlag) {
      s.txErrors += n;
      return Errno.EBADF;
    }
    const m = list.meta;
    let bytes = 0;
    for (let i = 0; i < n; i++) {
      const o = i * META_STRIDE;
      bytes += m[o + Meta.END]! - m[o + Meta.START]!;
    }
    if (this.capture !== null) this.capture.add(list, n, performance.timeOrigin + performance.now());
    s.txPackets += n;
    s.txBytes += bytes;
    s.txBatches++;
    return n;
  }

  onReadable(cb: (() => void) | null): void {
    if (this.closedFlag && cb !== null) throw new FlatnetError('ERR_IO_PORT_CLOSED', `${this.name}: port is closed`);
    // Replay pumps the switch itself: readiness is never signalled.
  }

  close(): void {
    this.closedFlag = true;
    this.capture = null;
  }
}
