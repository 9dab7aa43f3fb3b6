/**
 * RawIpPort: a send-only IPv4 raw socket (IPPROTO_RAW, so IP_HDRINCL) for the overlay's transmit
 * side. Each frame in the list is a whole IPv4 packet we built (EncapTemplate's outer IPv4 + UDP
 * + VXLAN + inner frame), sent to its ADDR with one sendmmsg per batch; the kernel routes it,
 * fills the IPv4 checksum and resolves the next hop's MAC. What goes on the wire is therefore
 * our header byte for byte: the UDP source port from the inner flow hash (ECMP entropy, as the
 * kernel's vxlan does), per-packet ECN/DSCP and DF policy, and a zero or computed UDP checksum
 * as configured — none of which a bound UDP socket lets us choose per packet.
 * read() never returns frames: receive on the UDP socket (UdpPort).
 */

import type { Batch, FrameList } from '../buf/batch.js';
import { PortKind } from '../pipeline/port.js';
import { FdPort } from './fd-port.js';
import { control, loadNative } from './native.js';

export interface RawIpPortOptions {
  /** Bytes; default 8 MiB (SO_SNDBUFFORCE as root). */
  readonly sndbuf?: number;
}

export class RawIpPort extends FdPort {
  readonly kind = PortKind.UDP;
  readonly sndbuf: number;

  private constructor(fd: number, name: string, sndbuf: number) {
    super(loadNative(), fd, name, 0);
    this.sndbuf = sndbuf;
  }

  /** open creates the socket in the current namespace; NativeError EPERM without CAP_NET_RAW. */
  static open(name = 'raw-ipv4', opts: RawIpPortOptions = {}): RawIpPort {
    const n = loadNative();
    const r = control(`${name}: raw socket`, () => n.rawOpen(opts.sndbuf ?? 8 << 20));
    return new RawIpPort(r.fd, name, r.sndbuf);
  }

  read(batch: Batch): number {
    batch.count = 0;
    return 0;
  }

  /** write sends each frame (an IPv4 packet) to its ADDR; returns how many the kernel took, or -errno. */
  write(list: FrameList): number {
    if (this.fd < 0) return this.closedWrite(list);
    if (list.count === 0) return 0;
    const r = this.native.udpSend(this.fd, list.arena, list.meta, 0, list.count, 0, this.res);
    return this.afterWrite(r);
  }
}
