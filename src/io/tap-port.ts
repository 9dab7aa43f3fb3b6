/**
 * TapPort: a TAP device (`/dev/net/tun`, IFF_TAP | IFF_NO_PI), the host's own stack as a port.
 * Frames written to the port are received by the kernel on the TAP interface; frames the
 * kernel transmits on it are read by the port.
 *
 * With `vnetHdr`, every frame carries a virtio-net header (IFF_VNET_HDR, 10 or 12 bytes) at
 * [START - vnetHdrLen, START), and TUNSETOFFLOAD tells the kernel which offloads we take
 * (checksum, TSO4/6, USO): those that the kernel accepts are in `offload`. The device is
 * created in the calling thread's network namespace (see netns.ts), set to `mtu` and brought
 * up; it disappears when the port closes (not persistent), unless it existed before.
 *
 * read(): one addon call drains up to batch.capacity frames (one read() each until EAGAIN).
 * write(): one addon call writes the list (one write() each); a full queue counts txDropped.
 */

import type { Batch, FrameList } from '../buf/batch.js';
import { FlatnetError } from '../errors.js';
import { PortKind } from '../pipeline/port.js';
import { VIRTIO_NET_HDR_LEN, VIRTIO_NET_HDR_MRG_LEN, VIRTIO_NET_HDR_TNL_LEN } from '../wire/virtio-net-hdr.js';
import { FdPort } from './fd-port.js';
import { checkIfName, ifIndex, setLinkUp, setMtu } from './link.js';
import { control, loadNative, TapFlag, TunOffload } from './native.js';

export interface TapOffloads {
  /** The kernel may hand us frames with a partial checksum (VIRTIO_NET_HDR_F_NEEDS_CSUM). */
  readonly csum: boolean;
  readonly tso4: boolean;
  readonly tso6: boolean;
  /** UDP segmentation offload (Linux 6.2+). */
  readonly uso: boolean;
  /** UDP-tunnel GSO (Linux 6.17+; needs the 24-byte tunnel form of the virtio-net header). */
  readonly udpTunnel?: boolean;
}

export interface TapPortOptions {
  /** Carry virtio-net headers: true (10 bytes), or 10 / 12 (the mergeable-buffers form) / 24 (the UDP-tunnel form). */
  readonly vnetHdr?: boolean | 10 | 12 | 24;
  /** Offloads to request (only with vnetHdr); default all of them. What was accepted is in `offload`. */
  readonly offload?: Partial<TapOffloads>;
  /** MTU to set (default: leave the kernel's, 1500). */
  readonly mtu?: number;
  /** Bring the link up (default true). */
  readonly up?: boolean;
  /** IFF_MULTI_QUEUE: several ports may attach to one device (one queue each). */
  readonly multiQueue?: boolean;
}

const NO_OFFLOAD: TapOffloads = { csum: false, tso4: false, tso6: false, uso: false };

export class TapPort extends FdPort {
  readonly kind = PortKind.TAP;
  readonly ifindex: number;
  readonly offload: TapOffloads;

  private constructor(fd: number, name: string, vnetHdrLen: number, ifindex: number, offload: TapOffloads) {
    super(loadNative(), fd, name, vnetHdrLen);
    this.ifindex = ifindex;
    this.offload = offload;
  }

  /**
   * open creates (or attaches to) TAP device `name` in the current namespace. A name with "%d"
   * lets the kernel pick the number; the port's `name` is the actual one. Throws NativeError
   * (EPERM without CAP_NET_ADMIN, EBUSY when a non-multi-queue device is already attached).
   */
  static open(name: string, opts: TapPortOptions = {}): TapPort {
    checkIfName(name);
    const n = loadNative();
    const vnet = opts.vnetHdr ?? false;
    const hdrSz = vnet === false ? 0 : vnet === true ? VIRTIO_NET_HDR_LEN : vnet;
    if (hdrSz !== 0 && hdrSz !== VIRTIO_NET_HDR_LEN && hdrSz !== VIRTIO_NET_HDR_MRG_LEN && hdrSz !== VIRTIO_NET_HDR_TNL_LEN) {
      throw new FlatnetError('ERR_IO_BAD_VNET_HDR', `virtio-net header length ${hdrSz} (10, 12 or 24)`);
    }
    if ((opts.offload?.udpTunnel ?? false) && hdrSz !== VIRTIO_NET_HDR_TNL_LEN) {
      throw new FlatnetError('ERR_IO_OFFLOAD_NEEDS_VNET_HDR', `${name}: UDP-tunnel GSO needs the 24-byte virtio-net header`);
    }
    if (hdrSz === 0 && opts.offload !== undefined && Object.values(opts.offload).some(Boolean)) {
      // Without headers the kernel could not tell us that a checksum is still to be done.
      throw new FlatnetError('ERR_IO_OFFLOAD_NEEDS_VNET_HDR', `${name}: offloads need vnetHdr`);
    }
    const want = opts.offload ?? { csum: true, tso4: true, tso6: true, uso: true };
    let bits = 0;
    if (want.csum ?? false) bits |= TunOffload.CSUM;
    // TSO and USO require checksum offload (the kernel refuses them without it).
    if ((want.csum ?? false) && (want.tso4 ?? false)) bits |= TunOffload.TSO4;
    if ((want.csum ?? false) && (want.tso6 ?? false)) bits |= TunOffload.TSO6;
    if ((want.csum ?? false) && (want.uso ?? false)) bits |= TunOffload.USO4 | TunOffload.USO6;
    if ((want.csum ?? false) && (want.udpTunnel ?? false)) bits |= TunOffload.UDP_TUNNEL_GSO | TunOffload.UDP_TUNNEL_GSO_CSUM;
    let flags = 0;
    if (hdrSz !== 0) flags |= TapFlag.VNET_HDR;
    if (opts.multiQueue ?? false) flags |= TapFlag.MULTI_QUEUE;

    const r = control(name, () => n.tapOpen(name, flags, hdrSz, bits));
    try {
      if (opts.mtu !== undefined) setMtu(r.name, opts.mtu);
      if (opts.up ?? true) setLinkUp(r.name, true);
      const offload: TapOffloads = hdrSz === 0 ? NO_OFFLOAD : {
        csum: (r.offload & TunOffload.CSUM) !== 0,
        tso4: (r.offload & TunOffload.TSO4) !== 0,
        tso6: (r.offload & TunOffload.TSO6) !== 0,
        uso: (r.offload & (TunOffload.USO4 | TunOffload.USO6)) === (TunOffload.USO4 | TunOffload.USO6),
        udpTunnel: (r.offload & TunOffload.UDP_TUNNEL_GSO) !== 0,
      };
      return new TapPort(r.fd, r.name, r.vnetHdrLen, ifIndex(r.name), offload);
    } catch (e) {
      n.close(r.fd);
      throw e;
    }
  }

  /**
   * persist makes the device outlive this port (TUNSETPERSIST) with its addresses and routes,
   * for a daemon restart (`flatnet vtep --keep`); persist(false) undoes it. Throws NativeError.
   */
  persist(on: boolean): void {
    if (this.fd < 0) throw new FlatnetError('ERR_IO_CLOSED', `${this.name}: port is closed`);
    control(`${this.name}: ioctl(TUNSETPERSIST)`, () => this.native.tapSetPersist(this.fd, on));
  }

  /**
   * read fills `batch` from slot 0, frame i at batch.slotOff(i) + headroom (its virtio-net
   * header, if any, just before). Returns the count (0 if none waiting) or -errno. The frames
   * are valid until the next read into this batch.
   */
  read(batch: Batch, headroom: number): number {
    if (this.fd < 0) return this.closedRead(batch);
    this.checkHeadroom(batch, headroom);
    const n = this.native.tapRead(this.fd, batch.own(), batch.slotSize, headroom, batch.meta, batch.capacity, this.vnetHdrLen);
    return this.afterRead(batch, n);
  }

  /** write sends frames [0, list.count) in order; returns how many the kernel took, or -errno. */
  write(list: FrameList): number {
    if (this.fd < 0) return this.closedWrite(list);
    if (list.count === 0) return 0;
    const r = this.native.tapWrite(this.fd, list.arena, list.meta, list.count, this.vnetHdrLen, this.res);
    return this.afterWrite(r);
  }
}
