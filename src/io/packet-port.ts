/**
 * PacketPort: an AF_PACKET socket on one interface, typically the host end of a pod's veth.
 * Frames the interface receives (what the pod sends) are read; frames written are transmitted
 * on it (to the pod). Our own transmissions, and anything else leaving through the interface,
 * are never read back (PACKET_IGNORE_OUTGOING, or an equivalent BPF filter on old kernels).
 *
 * Options: `vnetHdr` (PACKET_VNET_HDR: a 10-byte virtio-net header at [START - 10, START), so
 * GSO super-frames from the pod arrive whole), `qdiscBypass` (PACKET_QDISC_BYPASS: transmit
 * straight to the driver, default on), `promisc` (receive frames for any MAC, default on: a
 * switch port must), socket buffer sizes (SO_*BUFFORCE as root). VLAN tags, which the kernel
 * takes off before packet sockets see a frame, are put back, as libpcap does.
 *
 * read(): recvmmsg into the batch's slots; write(): sendmmsg. One addon call each.
 */

import type { Batch, FrameList } from '../buf/batch.js';
import { PortKind } from '../pipeline/port.js';
import { VIRTIO_NET_HDR_LEN } from '../wire/virtio-net-hdr.js';
import { FdPort } from './fd-port.js';
import { checkIfName, ifIndex, ifName } from './link.js';
import { control, loadNative, PacketFlag } from './native.js';

export interface PacketPortOptions {
  readonly vnetHdr?: boolean;
  /** Default true. */
  readonly qdiscBypass?: boolean;
  /** Default true. */
  readonly promisc?: boolean;
  /** Bytes; default 8 MiB each. */
  readonly rcvbuf?: number;
  readonly sndbuf?: number;
  /** Use the BPF filter to ignore outgoing frames even where PACKET_IGNORE_OUTGOING exists (tests). */
  readonly forceBpfOutgoingFilter?: boolean;
}

export interface PacketPortFeatures {
  /** How outgoing frames are kept out: the socket option (Linux 4.20+) or a BPF filter. */
  readonly ignoreOutgoing: 'sockopt' | 'bpf';
  readonly qdiscBypass: boolean;
  /** Socket buffer sizes as the kernel reports them (twice what was set: its bookkeeping). */
  readonly rcvbuf: number;
  readonly sndbuf: number;
}

const DEFAULT_SOCKBUF = 8 << 20;

export class PacketPort extends FdPort {
  readonly kind = PortKind.PACKET;
  readonly ifindex: number;
  readonly features: PacketPortFeatures;

  private constructor(fd: number, name: string, vnetHdrLen: number, ifindex: number, features: PacketPortFeatures) {
    super(loadNative(), fd, name, vnetHdrLen);
    this.ifindex = ifindex;
    this.features = features;
  }

  /**
   * open binds a packet socket to interface `iface` (a name or an ifindex) in the current
   * namespace. Throws NativeError: ENODEV for a missing interface, EPERM without CAP_NET_RAW.
   */
  static open(iface: string | number, opts: PacketPortOptions = {}): PacketPort {
    const n = loadNative();
    let index: number, name: string;
    if (typeof iface === 'number') {
      index = iface;
      name = ifName(iface);
    } else {
      checkIfName(iface);
      name = iface;
      index = ifIndex(iface);
    }
    let flags = 0;
    if (opts.vnetHdr ?? false) flags |= PacketFlag.VNET_HDR;
    if (opts.qdiscBypass ?? true) flags |= PacketFlag.QDISC_BYPASS;
    if (opts.promisc ?? true) flags |= PacketFlag.PROMISC;
    if (opts.forceBpfOutgoingFilter ?? false) flags |= PacketFlag.FORCE_BPF_OUTGOING;
    const r = control(name, () => n.packetOpen(index, flags, opts.rcvbuf ?? DEFAULT_SOCKBUF, opts.sndbuf ?? DEFAULT_SOCKBUF));
    const features: PacketPortFeatures = { ignoreOutgoing: r.ignoreOutgoing, qdiscBypass: r.qdiscBypass, rcvbuf: r.rcvbuf, sndbuf: r.sndbuf };
    return new PacketPort(r.fd, name, (opts.vnetHdr ?? false) ? VIRTIO_NET_HDR_LEN : 0, index, features);
  }

  /**
   * read fills `batch` from slot 0, frame i at batch.slotOff(i) + headroom (its virtio-net
   * header, if any, just before); a frame longer than the slot is cut and flagged TRUNCATED.
   * Returns the count or -errno (ENETDOWN after the interface went away). Valid until the next
   * read into this batch.
   */
  read(batch: Batch, headroom: number): number {
    if (this.fd < 0) return this.closedRead(batch);
    this.checkHeadroom(batch, headroom);
    const n = this.native.packetRecv(this.fd, batch.own(), batch.slotSize, headroom, batch.meta, batch.capacity, this.vnetHdrLen);
    return this.afterRead(batch, n);
  }

  /** write transmits frames [0, list.count) in order; returns how many the kernel took, or -errno. */
  write(list: FrameList): number {
    if (this.fd < 0) return this.closedWrite(list);
    if (list.count === 0) return 0;
    const r = this.native.packetSend(this.fd, list.arena, list.meta, list.count, this.vnetHdrLen, this.res);
    return this.afterWrite(r);
  }
}
