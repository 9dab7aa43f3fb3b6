/**
 * The Port interface: what the switch knows about a port. It does not know what backs it (a
 * TAP, an AF_PACKET socket on a veth, the overlay UDP socket, memory, a pcap file).
 *
 * Every call on the data path is batched and synchronous (non-blocking underneath), returns a
 * count or -errno, and never throws on packet content or transient I/O failure.
 */

import type { Batch, FrameList } from '../buf/batch.js';
import { FlatnetError } from '../errors.js';

export const PortKind = {
  TAP: 'tap',
  PACKET: 'packet',
  UDP: 'udp',
  MEMORY: 'memory',
  PCAP: 'pcap',
  CAP: 'cap',
  /** An AF_XDP socket (native/src/xdp.cc); the overlay's also keeps kernel sockets beside it. */
  AF_XDP: 'af_xdp',
} as const;
export type PortKind = (typeof PortKind)[keyof typeof PortKind];

/** Per-port counters; plain fields, incremented on the data path, read by `show` and /metrics. */
export class PortStats {
  rxPackets = 0;
  rxBytes = 0;
  /** read() calls that returned at least one frame: rxPackets / rxBatches = frames per syscall batch. */
  rxBatches = 0;
  rxErrors = 0;
  txPackets = 0;
  txBytes = 0;
  txBatches = 0;
  txErrors = 0;
  /** Frames handed to write() that the kernel did not take (queue full: EAGAIN/ENOBUFS). */
  txDropped = 0;

  /** add adds every counter of `o` to this one (a port over several sockets; cold path). */
  add(o: PortStats): this {
    this.rxPackets += o.rxPackets; this.rxBytes += o.rxBytes; this.rxBatches += o.rxBatches; this.rxErrors += o.rxErrors;
    this.txPackets += o.txPackets; this.txBytes += o.txBytes; this.txBatches += o.txBatches; this.txErrors += o.txErrors;
    this.txDropped += o.txDropped;
    return this;
  }
}

export interface Port {
  readonly name: string;
  readonly kind: PortKind;
  /**
   * Bytes of virtio-net header in front of each frame (0, 10 or 12). When non-zero, read() leaves
   * the header at [START - vnetHdrLen, START) and write() sends it from there.
   */
  readonly vnetHdrLen: number;
  readonly stats: PortStats;

  /**
   * read fills `batch` with up to batch.capacity frames, frame i starting at
   * batch.slotOff(i) + headroom, and sets batch.count. Returns the count (0 when nothing is
   * waiting) or -errno. The frames are valid until the next read into this batch.
   */
  read(batch: Batch, headroom: number): number;

  /**
   * write sends frames [0, list.count) of `list` in order and returns how many were accepted
   * (the rest are counted in stats.txDropped), or -errno when none could be.
   */
  write(list: FrameList): number;

  /** onReadable calls `cb` once per wakeup while frames may be waiting; null stops watching. */
  onReadable(cb: (() => void) | null): void;

  /** close stops watching, releases the descriptor; idempotent. */
  close(): void;

  /** ioInfo: backend details for `flatnet show ports` (AF_XDP ports; cold path). */
  ioInfo?(): Record<string, unknown>;

  /**
   * write() takes UDP-GSO trains in pieces (MetaFlag.SCATTER, FrameList.pushTrain): the overlay's
   * kernel UDP socket gathers them from an iovec per piece.
   */
  readonly scatter?: boolean;
}

/** A port whose kernel-side filter takes the peers' underlay addresses (XdpOverlayPort). */
export interface PeerFilter {
  setPeers(addrs: readonly number[]): number;
}

export function hasPeerFilter(p: Port): p is Port & PeerFilter {
  return typeof (p as Partial<PeerFilter>).setPeers === 'function';
}

/**
 * checkHeadroom throws ERR_IO_BAD_HEADROOM when `batch` cannot hold frames at `headroom` behind
 * `min` bytes (a port's virtio-net header): a programming error, not packet content.
 */
export function checkHeadroom(name: string, batch: Batch, headroom: number, min: number): void {
  if (!Number.isInteger(headroom) || headroom < min || headroom >= batch.slotSize) {
    throw new FlatnetError('ERR_IO_BAD_HEADROOM', `${name}: headroom ${headroom} must be in [${min}, ${batch.slotSize})`);
  }
}
