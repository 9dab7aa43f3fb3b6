/**
 * UdpPort: the overlay socket. A kernel UDP socket bound to an address and port (4789 for
 * VXLAN), with large buffers, read and written in batches (recvmmsg/sendmmsg) through the addon.
 * A frame here is a UDP payload (a VXLAN packet): the kernel adds the outer IPv4/UDP headers.
 *
 *   read():  datagram i at batch.slotOff(i) + headroom; meta ADDR/PORT = its source, GSO_SIZE =
 *            the segment size when UDP_GRO coalesced several same-size datagrams into it (else
 *            0; the reader splits), FLAGS TRUNCATED on MSG_TRUNC.
 *   write(): frame i to ADDR:PORT of its meta. GSO_SIZE > 0 marks a frame holding several
 *            datagrams of that size (the last may be shorter): one UDP_SEGMENT message when the
 *            kernel does GSO, else one datagram each. Same bytes on the wire either way.
 *
 * Features are probed at open and fall back one by one: UDP_SEGMENT (4.18+), UDP_GRO (trusted
 * from 5.12). If sendmmsg reports EIO for a GSO message (the route's device cannot do checksum
 * offload, so no UDP GSO), GSO is turned off for this port and the rest of the batch is resent
 * without it (wireguard-go does the same). `features` says what is in use.
 *
 * GRO is opt-in (`gro: true`) because it changes what a read returns (coalesced frames); its
 * batches need slots that hold 64 KiB after the headroom.
 */

import type { Batch, FrameList } from '../buf/batch.js';
import { FlatnetError } from '../errors.js';
import { PortKind } from '../pipeline/port.js';
import { formatIpv4, parseIpv4 } from '../wire/addr.js';
import { FdPort } from './fd-port.js';
import { control, loadNative, Res, ResFlag, UdpFlag } from './native.js';

export interface UdpPortOptions {
  /** Local IPv4 address to bind (default 0.0.0.0). */
  readonly address?: string;
  /** Local port (default 0: the kernel picks one; see `localPort`). */
  readonly port?: number;
  /** Bytes; default 8 MiB each (SO_*BUFFORCE as root, else capped by net.core.[rw]mem_max). */
  readonly rcvbuf?: number;
  readonly sndbuf?: number;
  /** Use UDP_SEGMENT for frames with GSO_SIZE when the kernel has it (default true). */
  readonly gso?: boolean;
  /** Ask for UDP_GRO-coalesced reads (default false; needs 64 KiB slots). */
  readonly gro?: boolean;
  /** SO_REUSEPORT, for one socket per worker (default false). */
  readonly reusePort?: boolean;
  /** IP_PMTUDISC_DO: never fragment on the underlay (default true; RFC 7348 4.3). */
  readonly dontFragment?: boolean;
  /** SO_NO_CHECK: send a zero UDP checksum (RFC 7348 §5's SHOULD; default false, the kernel computes it). */
  readonly noChecksum?: boolean;
}

export interface UdpPortFeatures {
  /** UDP_SEGMENT in use for GSO frames (false after an EIO fallback). */
  gso: boolean;
  /** UDP_GRO enabled on the socket. */
  readonly gro: boolean;
  readonly rcvbuf: number;
  readonly sndbuf: number;
}

/** Largest read a UDP_GRO socket can return (the kernel coalesces up to 64 KiB). */
export const UDP_GRO_MAX_LEN = 65535;
const DEFAULT_SOCKBUF = 8 << 20;

export class UdpPort extends FdPort {
  readonly kind = PortKind.UDP;
  /** write() gathers trains in pieces (MetaFlag.SCATTER) from an iovec per piece. */
  readonly scatter = true;
  readonly localAddress: string;
  readonly localPort: number;
  readonly features: UdpPortFeatures;
  /** Times GSO was turned off after EIO (0 or 1). */
  gsoFallbacks = 0;

  private constructor(fd: number, address: string, port: number, features: UdpPortFeatures) {
    super(loadNative(), fd, `udp:${address}:${port}`, 0);
    this.localAddress = address;
    this.localPort = port;
    this.features = features;
  }

  /** open binds the socket in the current namespace. Throws NativeError (EADDRINUSE, EACCES...). */
  static open(opts: UdpPortOptions = {}): UdpPort {
    const n = loadNative();
    const address = opts.address ?? '0.0.0.0';
    const addr = parseIpv4(address);
    const port = opts.port ?? 0;
    if (!Number.isInteger(port) || port < 0 || port > 65535) throw new FlatnetError('ERR_IO_BAD_PORT', `not a UDP port: ${port}`);
    let flags = 0;
    if (opts.gso ?? true) flags |= UdpFlag.GSO;
    if (opts.gro ?? false) flags |= UdpFlag.GRO;
    if (opts.reusePort ?? false) flags |= UdpFlag.REUSE_PORT;
    if (opts.dontFragment ?? true) flags |= UdpFlag.DONT_FRAGMENT;
    if (opts.noChecksum ?? false) flags |= UdpFlag.NO_CHECK;
    const what = `${address}:${port}`;
    const r = control(what, () => n.udpOpen(addr, port, flags, opts.rcvbuf ?? DEFAULT_SOCKBUF, opts.sndbuf ?? DEFAULT_SOCKBUF));
    return new UdpPort(r.fd, formatIpv4(addr), r.port, { gso: r.gso, gro: r.gro, rcvbuf: r.rcvbuf, sndbuf: r.sndbuf });
  }

  /** probe reports what this kernel supports, without opening a port. */
  static probe(): { gso: boolean; gro: boolean } {
    return control('probe', () => loadNative().udpProbe());
  }

  /**
   * read fills `batch` with up to batch.capacity datagrams (see the module comment for meta).
   * Returns the count or -errno. Valid until the next read into this batch.
   */
  read(batch: Batch, headroom: number): number {
    if (this.fd < 0) return this.closedRead(batch);
    this.checkHeadroom(batch, headroom);
    if (this.features.gro && batch.slotSize - headroom < UDP_GRO_MAX_LEN) {
      throw new FlatnetError('ERR_IO_SLOT_TOO_SMALL', `${this.name}: UDP_GRO reads need ${UDP_GRO_MAX_LEN} bytes after the headroom, the batch has ${batch.slotSize - headroom}`);
    }
    const n = this.native.udpRecv(this.fd, batch.own(), batch.slotSize, headroom, batch.meta, batch.capacity);
    return this.afterRead(batch, n);
  }

  /**
   * write sends frames [0, list.count) to their ADDR:PORT; returns how many frames the kernel
   * took (a GSO frame counts once), or -errno when none.
   */
  write(list: FrameList): number {
    if (this.fd < 0) return this.closedWrite(list);
    if (list.count === 0) return 0;
    let from = 0, total = 0, r = 0;
    for (;;) {
      r = this.native.udpSend(this.fd, list.arena, list.meta, from, list.count, this.features.gso ? 1 : 0, this.res);
      if (r > 0) total += r;
      this.afterWrite(r > 0 ? r : 0);
      if ((this.res[Res.FLAGS]! & ResFlag.GSO_EIO) === 0) break;
      // No UDP GSO on this route: turn it off for good and resend from the refused frame.
      this.features.gso = false;
      this.gsoFallbacks++;
      from = this.res[Res.NEXT]!;
    }
    return total > 0 ? total : r;
  }
}
