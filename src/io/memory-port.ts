/**
 * MemoryPort: an in-process pair of ports, like a veth pair without a kernel (wireguard-go's
 * tuntest.ChannelTUN). Frames written to one end are queued on the other and copied into the
 * reader's slots by its read(). It needs no addon and no privileges, so the unit suite can run
 * the switch over it: the one in-memory port double of the project (tests drive a port with
 * inject() and take(), which act as its peer would).
 *
 * - Each end has a bounded receive queue (`queueLimit` frames of up to `maxFrameLen` bytes);
 *   a write to a full queue counts the rest of the batch in txDropped, as a full NIC ring.
 * - Meta ADDR, PORT and GSO_SIZE travel with the frame unchanged (a memory link, not a UDP
 *   socket: the reader sees what the writer put there). FLAGS start clear; a frame cut to
 *   maxFrameLen or to the reader's slot is flagged TRUNCATED.
 * - With `vnetHdrLen`, both ends carry that many header bytes before START, copied as well.
 * - Readiness: while a callback is set and frames wait, it runs once per setImmediate turn.
 * - close() on one end makes the other end's writes fail with -EPIPE (counted in txErrors).
 */

import { Batch, FrameList, markTxFailed, Meta, META_STRIDE, MetaFlag, SCATTER_HDR_SHIFT } from '../buf/batch.js';
import { FlatnetError } from '../errors.js';
import { checkHeadroom, PortKind, PortStats, type Port } from '../pipeline/port.js';
import { Errno } from './errno.js';
import { FrameQueue, QueueReadiness } from './frame-queue.js';

export interface MemoryPortOptions {
  /** Frames each end can hold unread (default 256). */
  readonly queueLimit?: number;
  /** Largest frame kept whole (default 2048; raise it for GSO super-frames). */
  readonly maxFrameLen?: number;
  /** virtio-net header bytes before each frame (default 0). */
  readonly vnetHdrLen?: number;
  /**
   * write() takes UDP-GSO trains in pieces (MetaFlag.SCATTER) and queues each gathered into one
   * frame, as the kernel's UDP socket gathers it (default false: the switch then sends trains
   * whole, as it does to a port without this).
   */
  readonly scatter?: boolean;
}

/** A frame as inject() takes it and take() hands it back, with its metadata. */
export interface WireFrame {
  readonly frame: Buffer;
  /** Meta ADDR (UDP: the peer's address) and PORT. */
  readonly addr: number;
  readonly port: number;
  /** Meta GSO_SIZE (a UDP-GSO train when > 0). */
  readonly gsoSize: number;
  /** The virtio-net header in front of the frame (ends with vnetHdrLen > 0), else null. */
  readonly vnet: Buffer | null;
}

export class MemoryPort implements Port {
  readonly kind = PortKind.MEMORY;
  readonly name: string;
  readonly vnetHdrLen: number;
  readonly scatter: boolean;
  readonly stats = new PortStats();
  /** Errno (negative) of the last failed read or write, 0 if none (as FdPort's). */
  lastError = 0;
  private readonly rxq: FrameQueue;
  private peer: MemoryPort | null = null;
  private closedFlag = false;
  private readonly ready: QueueReadiness;

  private constructor(name: string, opts: MemoryPortOptions) {
    this.name = name;
    this.vnetHdrLen = opts.vnetHdrLen ?? 0;
    this.scatter = opts.scatter ?? false;
    if (!Number.isInteger(this.vnetHdrLen) || this.vnetHdrLen < 0) throw new FlatnetError('ERR_IO_BAD_VNET_HDR', `vnetHdrLen ${this.vnetHdrLen}`);
    this.rxq = new FrameQueue(opts.queueLimit ?? 256, opts.maxFrameLen ?? 2048, this.vnetHdrLen);
    this.ready = new QueueReadiness(this.rxq);
  }

  /** pair makes two connected ends: what `a` writes, `b` reads, and the other way round. */
  static pair(nameA: string, nameB: string, opts: MemoryPortOptions = {}): [MemoryPort, MemoryPort] {
    const a = new MemoryPort(nameA, opts);
    const b = new MemoryPort(nameB, opts);
    a.peer = b;
    b.peer = a;
    return [a, b];
  }

  get closed(): boolean { return this.closedFlag; }
  /** Frames waiting to be read on this end. */
  get pending(): number { return this.rxq.length; }

  /**
   * read moves up to batch.capacity queued frames into `batch` (frame i at slotOff(i) +
   * headroom) and returns the count, 0 when none wait, -EBADF after close().
   */
  read(batch: Batch, headroom: number): number {
    if (this.closedFlag) {
      batch.count = 0;
      this.stats.rxErrors++;
      return Errno.EBADF;
    }
    checkHeadroom(this.name, batch, headroom, this.vnetHdrLen);
    return this.rxq.popInto(batch, headroom, this.stats);
  }

  /**
   * write queues frames [0, list.count) on the peer in order. Returns how many were queued
   * (the rest: txDropped when the peer's queue is full, txErrors for frames outside the
   * arena), -EPIPE when the peer is closed, -EBADF when this end is.
   */
  write(list: FrameList): number {
    const s = this.stats;
    if (list.count === 0) return 0;
    if (this.closedFlag) {
      s.txErrors += list.count;
      markTxFailed(list, 0, list.count);
      return (this.lastError = Errno.EBADF);
    }
    const peer = this.peer;
    if (peer === null || peer.closedFlag) {
      s.txErrors += list.count;
      markTxFailed(list, 0, list.count);
      return (this.lastError = Errno.EPIPE);
    }
    const q = peer.rxq, arena = list.arena, hdr = this.vnetHdrLen;
    let sent = 0, bytes = 0, errors = 0;
    for (let i = 0; i < list.count; i++) {
      const start = list.start(i), end = list.end(i);
      if (start - hdr < 0 || end < start || end > arena.length) {
        errors++;
        markTxFailed(list, i, i + 1);
        continue;
      }
      const m = list.meta, o = i * META_STRIDE;
      const g = this.scatter && (m[o + Meta.FLAGS]! & MetaFlag.SCATTER) !== 0 ? gather(arena, m, o) : null;
      if (g === null ? !q.push(arena, start, end, m[o + Meta.ADDR]!, m[o + Meta.PORT]!, m[o + Meta.GSO_SIZE]!)
        : !q.push(g, 0, g.length, m[o + Meta.ADDR]!, m[o + Meta.PORT]!, m[o + Meta.GSO_SIZE]!)) {
        s.txDropped += list.count - i;
        markTxFailed(list, i, list.count);
        break;
      }
      sent++;
      bytes += g === null ? end - start : g.length;
    }
    s.txErrors += errors;
    if (sent > 0) {
      s.txPackets += sent;
      s.txBytes += bytes;
      s.txBatches++;
      peer.ready.schedule();
    }
    if (errors > 0) this.lastError = Errno.EINVAL;
    return sent === 0 && errors > 0 ? Errno.EINVAL : sent;
  }

  /**
   * inject queues `frame` for this end to read, as if its peer had written it (tests, tools;
   * cold path: allocates). `vnet` is its virtio-net header (zeros when omitted on an end with
   * headers). Throws ERR_IO_INJECT when the frame could not be queued (a full queue, a closed
   * end): a caller that wants to see that uses write().
   */
  inject(frame: Buffer, addr = 0, port = 0, opts: { readonly vnet?: Buffer; readonly gsoSize?: number } = {}): this {
    const peer = this.peer;
    if (peer === null) throw new FlatnetError('ERR_IO_NO_PEER', `${this.name}: no peer to inject from`);
    const hdr = this.vnetHdrLen;
    const b = Buffer.alloc(hdr + frame.length);
    if (hdr > 0 && opts.vnet !== undefined) opts.vnet.copy(b, 0, 0, hdr);
    frame.copy(b, hdr);
    const list = new FrameList(1);
    list.push(b, hdr, b.length, addr, port, opts.gsoSize ?? 0);
    const n = peer.write(list);
    if (n !== 1) throw new FlatnetError('ERR_IO_INJECT', `${this.name}: the frame was not queued (${n})`);
    return this;
  }

  /**
   * take returns, and removes, every frame this end wrote that its peer has not read, as the
   * peer would read them (copies; cold path).
   */
  take(): WireFrame[] {
    const peer = this.peer;
    if (peer === null) return [];
    const q = peer.rxq, hdr = this.vnetHdrLen, out: WireFrame[] = [];
    const batch = new Batch(1, (q.maxFrameLen + hdr + 64 + 7) & ~7);
    const scratch = new PortStats();
    while (q.length > 0) {
      q.popInto(batch, hdr + 64, scratch);
      const s = batch.start(0), e = batch.end(0), m = batch.meta;
      out.push({
        frame: Buffer.from(batch.arena.subarray(s, e)),
        addr: m[Meta.ADDR]! >>> 0,
        port: m[Meta.PORT]!,
        gsoSize: m[Meta.GSO_SIZE]!,
        vnet: hdr > 0 ? Buffer.from(batch.arena.subarray(s - hdr, s)) : null,
      });
    }
    return out;
  }

  onReadable(cb: (() => void) | null): void {
    if (this.closedFlag && cb !== null) throw new FlatnetError('ERR_IO_PORT_CLOSED', `${this.name}: port is closed`);
    this.ready.set(cb);
  }

  close(): void {
    if (this.closedFlag) return;
    this.closedFlag = true;
    this.ready.set(null);
    this.rxq.clear();
  }
}

/** gather: a SCATTER train's datagrams as one buffer, header k then payload k (cold path: allocates). */
function gather(arena: Buffer, m: Int32Array, o: number): Buffer {
  const start = m[o + Meta.START]!, end = m[o + Meta.END]!, hl = (m[o + Meta.FLAGS]! >> SCATTER_HDR_SHIFT) & 0xff;
  const seg = m[o + Meta.GSO_SIZE]! - hl, pay = m[o + Meta.AUX]!, payLen = m[o + Meta.TOS]!;
  const parts: Buffer[] = [];
  for (let k = 0, h = start; h < end; k++, h += hl) {
    parts.push(arena.subarray(h, h + hl), arena.subarray(pay + k * seg, pay + Math.min((k + 1) * seg, payLen)));
  }
  return Buffer.concat(parts);
}
