/**
 * OverlayPort: the overlay as one switch port over two sockets.
 *   receive  the UDP socket bound to the VXLAN port: datagrams arrive as UDP payloads (the
 *            kernel has checked the outer IPv4 and UDP headers), with the peer address in meta;
 *   transmit a raw IPv4 socket for ordinary frames (START at the outer IPv4 header we built), and
 *            the UDP socket for UDP-GSO trains (GSO_SIZE > 0, START at the first VXLAN header).
 * Without a raw socket (no CAP_NET_RAW) everything goes through the UDP socket, and the kernel
 * chooses the outer header: source port = the bound port, its own checksum and DF policy.
 */

import { copyTxFailed, FrameList, markTxFailed, META_STRIDE, Meta, type Batch } from '../buf/batch.js';
import { PortKind, PortStats, type Port } from '../pipeline/port.js';
import type { RawIpPort } from './raw-ip-port.js';
import type { UdpPort } from './udp-port.js';

export class OverlayPort implements Port {
  readonly kind = PortKind.UDP;
  readonly vnetHdrLen = 0;
  /** Trains (GSO_SIZE > 0), in pieces too, go to the UDP socket. */
  readonly scatter = true;
  readonly name: string;
  private readonly run: FrameList;

  constructor(readonly udp: UdpPort, readonly raw: RawIpPort | null, name = udp.name) {
    this.name = name;
    this.run = new FrameList(1024);
  }

  /** True when ordinary frames leave as whole IPv4 packets through the raw socket. */
  get sendsIp(): boolean {
    return this.raw !== null;
  }

  /** Counters of both sockets (cold path: show, metrics). */
  get stats(): PortStats {
    const s = new PortStats().add(this.udp.stats);
    return this.raw === null ? s : s.add(this.raw.stats);
  }

  read(batch: Batch, headroom: number): number {
    return this.udp.read(batch, headroom);
  }

  /**
   * write sends frames in order, each run of consecutive frames to the socket its kind needs.
   * Returns how many were accepted, or -errno when none were.
   */
  write(list: FrameList): number {
    if (this.raw === null) return this.udp.write(list);
    const m = list.meta, n = list.count;
    let total = 0, err = 0;
    for (let i = 0; i < n;) {
      const gso = m[i * META_STRIDE + Meta.GSO_SIZE]! > 0;
      let j = i + 1;
      while (j < n && (m[j * META_STRIDE + Meta.GSO_SIZE]! > 0) === gso) j++;
      const r = this.writeRun(list, i, j, gso ? this.udp : this.raw);
      if (r > 0) total += r;
      else if (r < 0) err = r;
      i = j;
    }
    return total > 0 || err === 0 ? total : err;
  }

  private writeRun(list: FrameList, from: number, to: number, port: Port): number {
    if (from === 0 && to === list.count) return port.write(list);
    const run = this.run;
    run.clear();
    run.arena = list.arena;
    const src = list.meta, dst = run.meta;
    let sent = 0;
    for (let i = from; i < to;) {
      const k = Math.min(to - i, run.capacity);
      dst.set(src.subarray(i * META_STRIDE, (i + k) * META_STRIDE), 0);
      run.count = k;
      const r = port.write(run);
      if (r !== k) copyTxFailed(run, list, i); // failures only: which frames were not sent
      if (r < 0) {
        markTxFailed(list, i + k, to); // not tried
        return sent > 0 ? sent : r;
      }
      sent += r;
      i += k;
    }
    return sent;
  }

  onReadable(cb: (() => void) | null): void {
    this.udp.onReadable(cb);
  }

  close(): void {
    this.udp.close();
    this.raw?.close();
  }
}
