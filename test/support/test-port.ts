/**
 * TestPort: a Port double for switch unit tests (wireguard-go's tuntest.ChannelTUN idea).
 * `inject()` queues frames to be read; `sent` collects copies of everything written.
 */

import { META_STRIDE, Meta, type Batch, type FrameList } from '../../src/buf/batch.js';
import { PortStats, type Port, type PortKind } from '../../src/switch/port.js';

export interface SentFrame {
  readonly frame: Buffer;
  readonly addr: number;
  readonly port: number;
}

export class TestPort implements Port {
  readonly kind: PortKind = 'memory';
  readonly vnetHdrLen = 0;
  readonly stats = new PortStats();
  readonly inbox: { frame: Buffer; addr: number; port: number }[] = [];
  readonly sent: SentFrame[] = [];
  /** When set, write() accepts at most this many frames per call (to test TX_BUSY). */
  writeLimit = Number.POSITIVE_INFINITY;
  closed = false;

  constructor(readonly name: string) {}

  inject(frame: Buffer, addr = 0, port = 0): this {
    this.inbox.push({ frame: Buffer.from(frame), addr, port });
    return this;
  }

  read(batch: Batch, headroom: number): number {
    let n = 0;
    while (n < batch.capacity && this.inbox.length > 0) {
      const f = this.inbox.shift()!;
      const start = batch.slotOff(n) + headroom;
      f.frame.copy(batch.arena, start);
      const o = n * META_STRIDE;
      batch.meta[o + Meta.START] = start;
      batch.meta[o + Meta.END] = start + f.frame.length;
      batch.meta[o + Meta.ADDR] = f.addr | 0;
      batch.meta[o + Meta.PORT] = f.port;
      batch.meta[o + Meta.GSO_SIZE] = 0;
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
      this.sent.push({
        frame: Buffer.from(list.arena.subarray(list.meta[o + Meta.START]!, list.meta[o + Meta.END]!)),
        addr: list.meta[o + Meta.ADDR]! >>> 0,
        port: list.meta[o + Meta.PORT]!,
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
