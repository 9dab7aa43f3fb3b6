/**
 * TestPort: a Port double for switch unit tests (wireguard-go's tuntest.ChannelTUN idea).
 * `inject()` queues frames to be read; `sent` collects copies of everything written.
 */

import { META_STRIDE, Meta, type Batch, type FrameList } from '../../src/buf/batch.js';
import { PortStats, type Port, type PortKind } from '../../src/pipeline/port.js';

export interface SentFrame {
  readonly frame: Buffer;
  readonly addr: number;
  readonly port: number;
  /** GSO_SIZE of the entry (a UDP-GSO train when > 0). */
  readonly gsoSize: number;
  /** The virtio-net header in front of the frame (ports with vnetHdrLen > 0), else null. */
  readonly vnet: Buffer | null;
}

export class TestPort implements Port {
  readonly kind: PortKind = 'memory';
  readonly stats = new PortStats();
  readonly inbox: { frame: Buffer; addr: number; port: number; gsoSize: number; vnet: Buffer | null }[] = [];
  readonly sent: SentFrame[] = [];
  /** When set, write() accepts at most this many frames per call (to test TX_BUSY). */
  writeLimit = Number.POSITIVE_INFINITY;
  closed = false;

  /** `vnetHdrLen` > 0: frames carry a virtio-net header (read() puts it before START). */
  constructor(readonly name: string, readonly vnetHdrLen = 0) {}

  /** inject queues a frame; `vnet` is its virtio-net header (zeros when omitted on a vnet port). */
  inject(frame: Buffer, addr = 0, port = 0, opts: { vnet?: Buffer; gsoSize?: number } = {}): this {
    const vnet = this.vnetHdrLen > 0 ? Buffer.from(opts.vnet ?? Buffer.alloc(this.vnetHdrLen)) : null;
    this.inbox.push({ frame: Buffer.from(frame), addr, port, gsoSize: opts.gsoSize ?? 0, vnet });
    return this;
  }

  read(batch: Batch, headroom: number): number {
    let n = 0;
    while (n < batch.capacity && this.inbox.length > 0) {
      const f = this.inbox.shift()!;
      const start = batch.slotOff(n) + headroom;
      if (f.frame.length > batch.slotSize - headroom) throw new Error(`TestPort: a ${f.frame.length}-byte frame does not fit a ${batch.slotSize}-byte slot`);
      f.frame.copy(batch.arena, start);
      if (f.vnet !== null) f.vnet.copy(batch.arena, start - this.vnetHdrLen);
      const o = n * META_STRIDE;
      batch.meta[o + Meta.START] = start;
      batch.meta[o + Meta.END] = start + f.frame.length;
      batch.meta[o + Meta.ADDR] = f.addr | 0;
      batch.meta[o + Meta.PORT] = f.port;
      batch.meta[o + Meta.GSO_SIZE] = f.gsoSize;
      batch.meta[o + Meta.FLAGS] = 0;
      n++;
    }
    batch.count = n;
    this.stats.rxPackets += n;
    return n;
  }

  write(list: FrameList): number {
    const n = Math.min(list.count, this.writeLimit);
    for (let i = 0; i < n; i++) {
      const o = i * META_STRIDE;
      const start = list.meta[o + Meta.START]!;
      this.sent.push({
        frame: Buffer.from(list.arena.subarray(start, list.meta[o + Meta.END]!)),
        addr: list.meta[o + Meta.ADDR]! >>> 0,
        port: list.meta[o + Meta.PORT]!,
        gsoSize: list.meta[o + Meta.GSO_SIZE]!,
        vnet: this.vnetHdrLen > 0 ? Buffer.from(list.arena.subarray(start - this.vnetHdrLen, start)) : null,
      });
    }
    this.stats.txPackets += n;
    return n;
  }

  onReadable(): void {}

  close(): void {
    this.closed = true;
  }

  /** take returns and clears what was sent. */
  take(): SentFrame[] {
    return this.sent.splice(0);
  }
}
