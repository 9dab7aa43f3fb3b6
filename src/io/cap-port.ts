/**
 * CapPort: libpcap through the `cap` package, the portable fallback for the pod and host ports
 * and a capture tool. `cap` is an optional dependency, loaded on first use; without it open()
 * throws ERR_CAP_UNAVAILABLE.
 *
 * cap delivers each packet to a 'packet' callback after copying it into one Buffer of its own
 * (one memcpy per packet that cannot be avoided with cap). The port copies it on into a bounded
 * FrameQueue, and read() moves queued frames into the caller's slots. A full queue drops the
 * packet (counted in rxErrors and `queueDrops`). Readiness runs once per setImmediate turn
 * while frames wait. write() sends each frame with pcap_sendpacket, from a scratch buffer
 * (cap sends from offset 0 of a Buffer). A handle never captures the frames it injected itself.
 *
 * cap always opens in promiscuous mode and its poll handle keeps the event loop alive until
 * close(). Capture timestamps are not passed by cap.
 */

import { createRequire } from 'node:module';
import type { Batch, FrameList } from '../buf/batch.js';
import { FlatnetError } from '../errors.js';
import { checkHeadroom, PortKind, PortStats, type Port } from '../pipeline/port.js';
import { Errno } from './errno.js';
import { FrameQueue, QueueReadiness } from './frame-queue.js';

type CapModule = typeof import('cap');
type CapHandle = InstanceType<CapModule['Cap']>;

let capModule: CapModule | null = null;
let capError: Error | null = null;

/** loadCap returns the `cap` module or throws ERR_CAP_UNAVAILABLE. */
export function loadCap(): CapModule {
  if (capModule !== null) return capModule;
  if (capError !== null) throw capError;
  try {
    capModule = createRequire(import.meta.url)('cap') as CapModule;
    return capModule;
  } catch (e) {
    capError = new FlatnetError('ERR_CAP_UNAVAILABLE', `the optional package "cap" cannot be loaded: ${(e as Error).message}`, { cause: e });
    throw capError;
  }
}

/** Why CapPort cannot be used here, or null when it can. */
export function capUnavailableReason(): string | null {
  try {
    loadCap();
    return null;
  } catch (e) {
    return (e as Error).message;
  }
}

export interface CapPortOptions {
  /** pcap-filter expression (default: everything). */
  readonly filter?: string;
  /** libpcap's kernel buffer in bytes (default 16 MiB). */
  readonly bufferSize?: number;
  /** Frames held between cap's callback and read() (default 1024). */
  readonly queueLimit?: number;
  /** Largest frame kept whole in the queue (default 65535, cap's snaplen). */
  readonly maxFrameLen?: number;
}

const CAP_SNAPLEN = 65535;
/** Handles whose open() failed: never closed nor collected (see open()). */
const failedCaps: CapHandle[] = [];

export class CapPort implements Port {
  readonly kind = PortKind.CAP;
  readonly name: string;
  readonly vnetHdrLen = 0;
  readonly stats = new PortStats();
  /** Link type reported by libpcap ('ETHERNET' for the ports flatnet uses). */
  readonly linkType: string;
  /** Packets lost because the queue was full. */
  queueDrops = 0;
  private cap: CapHandle | null;
  private readonly capBuf: Buffer;
  private readonly txBuf = Buffer.alloc(CAP_SNAPLEN);
  private readonly rxq: FrameQueue;
  private readonly ready: QueueReadiness;

  private constructor(device: string, cap: CapHandle, capBuf: Buffer, linkType: string, rxq: FrameQueue) {
    this.name = device;
    this.cap = cap;
    this.capBuf = capBuf;
    this.linkType = linkType;
    this.rxq = rxq;
    this.ready = new QueueReadiness(rxq);
    cap.on('packet', (nbytes: number, truncated: boolean) => this.onPacket(nbytes, truncated));
  }

  /**
   * open starts a capture on `device` in the current namespace. Throws ERR_CAP_UNAVAILABLE
   * without the package, ERR_CAP_OPEN when libpcap refuses (no such device, no permission,
   * a bad filter), ERR_CAP_LINKTYPE for a device that is not Ethernet.
   */
  static open(device: string, opts: CapPortOptions = {}): CapPort {
    const { Cap } = loadCap();
    // Checked first because a failed open leaves cap's handle in a state it cannot recover from.
    if (!Cap.deviceList().some((d) => d.name === device)) {
      throw new FlatnetError('ERR_CAP_OPEN', `cap: cannot open ${device}: no such device`);
    }
    const cap = new Cap();
    const capBuf = Buffer.alloc(CAP_SNAPLEN);
    let linkType: string;
    try {
      linkType = cap.open(device, opts.filter ?? '', opts.bufferSize ?? 16 << 20, capBuf);
    } catch (e) {
      // cap 0.2.1 keeps the pcap handle of a failed open and its close() (also run by its
      // destructor at garbage collection) then stops a uv_poll it never initialised, which
      // crashes the process. Keep such handles referenced forever instead: a failed
      // pcap_activate has already released its descriptor; a bad filter leaks one.
      failedCaps.push(cap);
      throw new FlatnetError('ERR_CAP_OPEN', `cap: cannot open ${device}: ${(e as Error).message}`, { cause: e });
    }
    if (linkType !== 'ETHERNET') {
      cap.close();
      throw new FlatnetError('ERR_CAP_LINKTYPE', `cap: ${device} has link type ${linkType}, not Ethernet`);
    }
    const rxq = new FrameQueue(opts.queueLimit ?? 1024, opts.maxFrameLen ?? CAP_SNAPLEN);
    return new CapPort(device, cap, capBuf, linkType, rxq);
  }

  /** Frames waiting to be read. */
  get pending(): number { return this.rxq.length; }
  get closed(): boolean { return this.cap === null; }

  private onPacket(nbytes: number, truncated: boolean): void {
    if (!this.rxq.push(this.capBuf, 0, nbytes, 0, 0, 0, truncated ? 1 : 0)) {
      this.queueDrops++;
      this.stats.rxErrors++;
      return;
    }
    this.ready.schedule();
  }

  /** read moves up to batch.capacity captured frames into `batch`; -EBADF after close(). */
  read(batch: Batch, headroom: number): number {
    if (this.cap === null) {
      batch.count = 0;
      this.stats.rxErrors++;
      return Errno.EBADF;
    }
    checkHeadroom(this.name, batch, headroom, 0);
    return this.rxq.popInto(batch, headroom, this.stats);
  }

  /** write injects frames [0, list.count) with pcap_sendpacket; returns how many were sent. */
  write(list: FrameList): number {
    const cap = this.cap, s = this.stats;
    if (list.count === 0) return 0;
    if (cap === null) {
      s.txErrors += list.count;
      return Errno.EBADF;
    }
    const arena = list.arena, tx = this.txBuf;
    let sent = 0, bytes = 0, errors = 0;
    for (let i = 0; i < list.count; i++) {
      const start = list.start(i), end = list.end(i), len = end - start;
      if (start < 0 || len <= 0 || end > arena.length || len > tx.length) {
        errors++;
        continue;
      }
      arena.copy(tx, 0, start, end);
      try {
        cap.send(tx, len);
      } catch {
        errors++;
        continue;
      }
      sent++;
      bytes += len;
    }
    s.txErrors += errors;
    if (sent > 0) {
      s.txPackets += sent;
      s.txBytes += bytes;
      s.txBatches++;
      return sent;
    }
    return errors > 0 ? Errno.EIO : 0;
  }

  onReadable(cb: (() => void) | null): void {
    if (this.cap === null && cb !== null) throw new FlatnetError('ERR_IO_PORT_CLOSED', `${this.name}: port is closed`);
    this.ready.set(cb);
  }

  close(): void {
    const cap = this.cap;
    if (cap === null) return;
    this.cap = null;
    this.ready.set(null);
    cap.removeAllListeners('packet');
    cap.close();
    this.rxq.clear();
  }
}
