/**
 * FdPort: what the kernel-backed ports (TAP, AF_PACKET, UDP) share: a descriptor owned by the
 * addon, a uv_poll for readiness, the counters, and close().
 *
 * Readiness: onReadable(cb) starts a uv_poll on the descriptor; the addon calls back once per
 * wakeup (level-triggered: again on the next loop turn while frames wait). An active poll
 * keeps the event loop alive, like a Node socket; unref() lets the process exit anyway (tests,
 * tools) and ref() undoes it. close() stops the poll, then closes the descriptor; it is
 * idempotent, and afterwards read()/write() return -EBADF (counted) instead of touching a
 * descriptor number that may since belong to someone else.
 */

import type { Batch, FrameList } from '../buf/batch.js';
import { markTxFailed, Meta, META_STRIDE, MetaFlag } from '../buf/batch.js';
import { FlatnetError } from '../errors.js';
import { checkHeadroom, PortStats, type Port, type PortKind } from '../pipeline/port.js';
import { Errno } from './errno.js';
import { control, nativeError, Res, RES_LEN, type NativeAddon } from './native.js';

/** Delay before watching again after a socket error stopped the poll. */
const POLL_REARM_MS = 10;

export abstract class FdPort implements Port {
  abstract readonly kind: PortKind;
  readonly name: string;
  readonly vnetHdrLen: number;
  readonly stats = new PortStats();
  /** Errno (negative) of the last failed read or write, 0 if none: for diagnostics. */
  lastError = 0;
  protected fd: number;
  protected readonly native: NativeAddon;
  /** Filled by every batched write (Res layout); one per port, never reallocated. */
  protected readonly res = new Int32Array(RES_LEN);
  private rearm: NodeJS.Timeout | null = null;
  private pollId = -1;
  private polling = false;
  private keepAlive = true;
  private readableCb: (() => void) | null = null;

  protected constructor(native: NativeAddon, fd: number, name: string, vnetHdrLen: number) {
    this.native = native;
    this.fd = fd;
    this.name = name;
    this.vnetHdrLen = vnetHdrLen;
  }

  get closed(): boolean { return this.fd < 0; }

  /** The descriptor (for diagnostics and tests); -1 once closed. */
  get descriptor(): number { return this.fd; }

  abstract read(batch: Batch, headroom: number): number;
  abstract write(list: FrameList): number;

  /** checkHeadroom throws when a batch cannot hold frames at `headroom` (a programming error). */
  protected checkHeadroom(batch: Batch, headroom: number): void {
    checkHeadroom(this.name, batch, headroom, this.vnetHdrLen);
  }

  /** afterRead updates the counters and batch.count for a native read that returned `n`. */
  protected afterRead(batch: Batch, n: number): number {
    if (n <= 0) {
      batch.count = 0;
      if (n < 0) {
        this.stats.rxErrors++;
        this.lastError = n;
      }
      return n;
    }
    batch.count = n;
    const m = batch.meta, s = this.stats;
    let bytes = 0, truncated = 0;
    for (let i = 0, o = 0; i < n; i++, o += META_STRIDE) {
      bytes += m[o + Meta.END]! - m[o + Meta.START]!;
      if ((m[o + Meta.FLAGS]! & MetaFlag.TRUNCATED) !== 0) truncated++;
    }
    s.rxPackets += n;
    s.rxBytes += bytes;
    s.rxBatches++;
    // A truncated frame is handed over (flagged, for the switch to drop) and counted as an error.
    s.rxErrors += truncated;
    return n;
  }

  /** afterWrite updates the counters from `res` for a native write that returned `ret`. */
  protected afterWrite(ret: number): number {
    const r = this.res, s = this.stats;
    if (ret > 0) {
      s.txPackets += ret;
      s.txBytes += r[Res.BYTES]!;
      s.txBatches++;
    }
    s.txErrors += r[Res.ERRORS]!;
    s.txDropped += r[Res.DROPPED]!;
    if (r[Res.ERRNO]! !== 0) this.lastError = -r[Res.ERRNO]!;
    return ret;
  }

  /** closedRead / closedWrite: what read and write do after close(). */
  protected closedRead(batch: Batch): number {
    batch.count = 0;
    this.stats.rxErrors++;
    this.lastError = Errno.EBADF;
    return Errno.EBADF;
  }

  protected closedWrite(list: FrameList): number {
    this.stats.txErrors += list.count;
    markTxFailed(list, 0, list.count);
    this.lastError = Errno.EBADF;
    return list.count === 0 ? 0 : Errno.EBADF;
  }

  onReadable(cb: (() => void) | null): void {
    if (this.fd < 0) {
      if (cb !== null) throw new FlatnetError('ERR_IO_PORT_CLOSED', `${this.name}: port is closed`);
      return;
    }
    this.readableCb = cb;
    if (cb === null) {
      if (this.polling) {
        this.native.pollStop(this.pollId);
        this.polling = false;
      }
      return;
    }
    if (this.pollId < 0) {
      this.pollId = control(this.name, () => this.native.pollOpen(this.fd, (status) => this.onPoll(status)));
      this.native.pollRef(this.pollId, this.keepAlive);
    }
    if (!this.polling) {
      const r = this.native.pollStart(this.pollId);
      if (r < 0) throw nativeError(r, 'uv_poll_start', this.name);
      this.polling = true;
    }
  }

  private onPoll(status: number): void {
    if (status < 0) {
      // libuv stopped the poll (POLLERR): count it, hand over once so the reader sees the error.
      this.polling = false;
      this.stats.rxErrors++;
      this.lastError = status;
    }
    const cb = this.readableCb;
    if (cb !== null) cb();
    // A pending socket error (ENETDOWN while the link was down, ...) is consumed by that read;
    // watch again so that a port survives its link going down and up. A short delay keeps an
    // error that does not clear from spinning the loop.
    if (status < 0 && this.readableCb !== null && this.fd >= 0 && this.rearm === null) {
      this.rearm = setTimeout(() => {
        this.rearm = null;
        if (this.readableCb === null || this.fd < 0 || this.polling) return;
        if (this.native.pollStart(this.pollId) >= 0) this.polling = true;
      }, POLL_REARM_MS);
    }
  }

  /** ref: an active readiness watch keeps the event loop alive (the default, for a daemon). */
  ref(): this {
    this.keepAlive = true;
    if (this.pollId >= 0) this.native.pollRef(this.pollId, true);
    return this;
  }

  /** unref: the readiness watch does not keep the process alive (tests, one-shot tools). */
  unref(): this {
    this.keepAlive = false;
    if (this.pollId >= 0) this.native.pollRef(this.pollId, false);
    return this;
  }

  close(): void {
    if (this.fd < 0) return;
    if (this.rearm !== null) {
      clearTimeout(this.rearm);
      this.rearm = null;
    }
    if (this.pollId >= 0) {
      this.native.pollClose(this.pollId);
      this.pollId = -1;
    }
    this.polling = false;
    this.readableCb = null;
    this.native.close(this.fd);
    this.fd = -1;
  }
}
