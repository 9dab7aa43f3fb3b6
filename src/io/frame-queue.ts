/**
 * FrameQueue: a bounded FIFO of frames held in one preallocated arena of fixed slots (a ring,
 * like a NIC's descriptor ring), for ports whose frames arrive outside read(): the memory
 * port's peer writes, cap's capture callback. Nothing is allocated per frame: push copies
 * into the next free slot, pop copies into a reader's batch.
 *
 * Each queued frame keeps its per-frame metadata (ADDR, PORT, GSO_SIZE, FLAGS) and, for ports
 * with virtio-net headers, the `hdrLen` bytes that precede it.
 */

import type { Batch } from '../buf/batch.js';
import { Meta, META_STRIDE, MetaFlag } from '../buf/batch.js';
import type { PortStats } from '../pipeline/port.js';

const Q = { LEN: 0, ADDR: 1, PORT: 2, GSO_SIZE: 3, FLAGS: 4 } as const;
const Q_STRIDE = 5;

export class FrameQueue {
  readonly limit: number;
  /** Largest frame kept whole (plus hdrLen bytes of header); longer ones are cut and flagged. */
  readonly maxFrameLen: number;
  readonly hdrLen: number;
  private readonly slotLen: number;
  private readonly arena: Buffer;
  private readonly meta: Int32Array;
  private head = 0;
  private size = 0;

  constructor(limit: number, maxFrameLen: number, hdrLen = 0) {
    if (!Number.isInteger(limit) || limit < 1) throw new RangeError(`queue limit ${limit}`);
    if (!Number.isInteger(maxFrameLen) || maxFrameLen < 1) throw new RangeError(`max frame length ${maxFrameLen}`);
    this.limit = limit;
    this.maxFrameLen = maxFrameLen;
    this.hdrLen = hdrLen;
    this.slotLen = maxFrameLen + hdrLen;
    this.arena = Buffer.alloc(limit * this.slotLen);
    this.meta = new Int32Array(limit * Q_STRIDE);
  }

  get length(): number { return this.size; }
  get full(): boolean { return this.size === this.limit; }

  /**
   * push copies src[start - hdrLen, end) into the queue; false when the queue is full. A frame
   * longer than maxFrameLen is kept cut, with MetaFlag.TRUNCATED.
   */
  push(src: Buffer, start: number, end: number, addr = 0, port = 0, gsoSize = 0, flags = 0): boolean {
    if (this.size === this.limit) return false;
    const slot = (this.head + this.size) % this.limit;
    const len = end - start;
    const keep = len > this.maxFrameLen ? this.maxFrameLen : len;
    src.copy(this.arena, slot * this.slotLen, start - this.hdrLen, start + keep);
    const m = this.meta, o = slot * Q_STRIDE;
    m[o + Q.LEN] = keep;
    m[o + Q.ADDR] = addr;
    m[o + Q.PORT] = port;
    m[o + Q.GSO_SIZE] = gsoSize;
    m[o + Q.FLAGS] = keep < len ? flags | MetaFlag.TRUNCATED : flags;
    this.size++;
    return true;
  }

  /**
   * popInto moves up to batch.capacity frames into `batch` from slot 0 (frame at slotOff(i) +
   * headroom, header before it), sets batch.count and returns it. A frame longer than the
   * slot's room is cut and flagged TRUNCATED. A non-empty pop is counted in the reader's
   * `stats` (rxPackets, rxBytes, rxBatches; each truncated frame in rxErrors).
   */
  popInto(batch: Batch, headroom: number, stats: PortStats): number {
    const n = this.size < batch.capacity ? this.size : batch.capacity;
    const room = batch.slotSize - headroom;
    const bm = batch.meta, qm = this.meta, arena = batch.own();
    let bytes = 0, truncated = 0;
    for (let i = 0; i < n; i++) {
      const slot = this.head;
      const qo = slot * Q_STRIDE, bo = i * META_STRIDE;
      const len = qm[qo + Q.LEN]!;
      const keep = len > room ? room : len;
      const start = batch.slotOff(i) + headroom;
      const from = slot * this.slotLen;
      this.arena.copy(arena, start - this.hdrLen, from, from + this.hdrLen + keep);
      let flags = qm[qo + Q.FLAGS]!;
      if (keep < len) flags |= MetaFlag.TRUNCATED;
      if ((flags & MetaFlag.TRUNCATED) !== 0) truncated++;
      bm[bo + Meta.START] = start;
      bm[bo + Meta.END] = start + keep;
      bm[bo + Meta.ADDR] = qm[qo + Q.ADDR]!;
      bm[bo + Meta.PORT] = qm[qo + Q.PORT]!;
      bm[bo + Meta.GSO_SIZE] = qm[qo + Q.GSO_SIZE]!;
      bm[bo + Meta.FLAGS] = flags;
      bytes += keep;
      this.head = slot + 1 === this.limit ? 0 : slot + 1;
      this.size--;
    }
    batch.count = n;
    if (n > 0) {
      stats.rxPackets += n;
      stats.rxBytes += bytes;
      stats.rxBatches++;
      stats.rxErrors += truncated;
    }
    return n;
  }

  clear(): void {
    this.head = 0;
    this.size = 0;
  }
}

/**
 * QueueReadiness: level-triggered readiness for a port whose frames wait in a FrameQueue, as
 * uv_poll is for a descriptor: while frames are queued the callback runs on a later turn of the
 * event loop, again after each call that leaves frames unread, and never after set(null).
 */
export class QueueReadiness {
  private cb: (() => void) | null = null;
  private scheduled = false;
  private readonly fire = (): void => {
    this.scheduled = false;
    const cb = this.cb;
    if (cb === null || this.queue.length === 0) return;
    cb();
    if (this.queue.length > 0) this.schedule();
  };

  constructor(private readonly queue: FrameQueue) {}

  /** set installs (or with null removes) the callback; queued frames schedule it at once. */
  set(cb: (() => void) | null): void {
    this.cb = cb;
    if (cb !== null && this.queue.length > 0) this.schedule();
  }

  /** schedule: frames arrived; run the callback on a later turn (once, however many arrive). */
  schedule(): void {
    if (this.scheduled || this.cb === null) return;
    this.scheduled = true;
    setImmediate(this.fire);
  }
}
