/**
 * XdpPort: an AF_XDP socket on queue 0 of one interface (native/src/xdp.cc), with flatnet's XDP
 * program attached to the interface in one of two modes (native/bpf/flatnet_xdp.c):
 *   ALL    a pod's veth host end: every frame the interface receives goes to the socket, and
 *          the read finishes the TCP/UDP checksums the pod's stack left partial (its TX
 *          checksum offload: a veth hands XDP no csum_start; native/src/xdp.cc);
 *   VXLAN  the underlay: only VXLAN to our address and port from known peers (setPeers), the
 *          rest stays with the kernel (XdpOverlayPort builds on this).
 * The node's sockets share one UMEM (Umem, below): read() lends it to the batch as its arena,
 * frame i where the kernel wrote it (no copy), and the chunks stay the batch's until the next
 * read. write() posts a frame that lies in such a chunk as it is, so a frame read on one port
 * and sent on another of the same UMEM is never copied (zeroCopyTx); any other frame is copied
 * into a free chunk (copiedTx). One addon call each, the kernel woken only when it asks
 * (need_wakeup). Readiness: the socket's fd through the same uv_poll as every other port
 * (FdPort).
 *
 * Attach modes: the driver's XDP ('native', no skb before the program) or generic XDP (an skb
 * first). On a veth the choice matters beyond cost: a native program on one end makes the
 * other end give up GSO (veth_fix_features), so a peer's UDP-GSO trains arrive cut into
 * datagrams; in generic mode they arrive whole, and the program leaves any frame longer than a
 * UMEM chunk to the kernel (its UDP socket takes the train in one piece, with GRO).
 *
 * No virtio-net header: an XDP program sees single frames, and a veth whose peer runs XDP
 * stops offering TSO, so the pod's stack segments before the frame reaches us.
 *
 * Each socket takes a share of its UMEM: 4096 chunks of 2 KB (8 MB) on the underlay,
 * POD_UMEM_FRAMES (4 MB) on a pod's veth; three quarters of them stay in its fill ring
 * (native/src/xdp.cc).
 *
 * open() throws NativeError when AF_XDP cannot be used here (no program object, no CAP_BPF,
 * an old kernel, a driver refusing XDP); callers fall back to PacketPort (src/daemon/host.ts).
 */

import type { Batch, FrameList } from '../buf/batch.js';
import { FlatnetError } from '../errors.js';
import { PortKind } from '../pipeline/port.js';
import { FdPort } from './fd-port.js';
import { checkIfName, ifIndex } from './link.js';
import { control, loadNative, xdpObjectPath, XdpMode, type UmemStats, type XskOpenResult, type XskStats } from './native.js';

/**
 * A UMEM: `chunks` chunks of 2 KB, pinned, shared by the AF_XDP sockets that join it (each takes
 * its `frames`), and one Buffer over it that reads lend to their batches. Which sockets joined
 * and what they took, the addon keeps (stats()).
 */
export class Umem {
  readonly id: number;
  readonly buffer: Buffer;
  readonly chunks: number;

  private constructor(id: number, buffer: Buffer, chunks: number) {
    this.id = id;
    this.buffer = buffer;
    this.chunks = chunks;
  }

  /** create maps a UMEM of `chunks` chunks (64 to 65536); freed when no socket uses it and it is unreachable. */
  static create(chunks: number): Umem {
    const r = control(`umem(${chunks})`, () => loadNative().umemCreate(chunks));
    return new Umem(r.id, r.buffer, chunks);
  }

  /**
   * stats: chunks free in the pool (the others are in fill rings, in batches, on TX rings),
   * reserved by the sockets, and the sockets (cold path: show, tests).
   */
  stats(): UmemStats { return loadNative().umemStats(this.id); }

  /** fits: whether a socket of `frames` chunks can join (cold path: opening a port). */
  fits(frames: number): boolean { return this.stats().reserved + frames <= this.chunks; }
}

/**
 * Chunks of the UMEM a process's ports share by default: the underlay's 4096 and six pods'
 * 2048 (32 MB). A seventh pod's socket starts another (its frames are copied to and from the
 * underlay's UMEM; it shares with the pods after it).
 */
export const SHARED_UMEM_CHUNKS = 16384;
const sharedUmems: Umem[] = [];

/** forget drops a shared UMEM no socket uses (collectable once no batch holds its Buffer). */
function forget(u: Umem): void {
  const i = sharedUmems.indexOf(u);
  if (i >= 0 && u.stats().sockets === 0) sharedUmems.splice(i, 1);
}

/** sharedUmem: the first shared UMEM with room for `frames`, or a new one. */
function sharedUmem(frames: number): Umem {
  for (const u of sharedUmems) if (u.fits(frames)) return u;
  const u = Umem.create(Math.max(SHARED_UMEM_CHUNKS, frames));
  sharedUmems.push(u);
  return u;
}

export interface XdpPortFeatures {
  /** How the kernel runs the program: 'native' (the driver's XDP) or 'generic' (skb). */
  readonly attach: string;
  /** Attached through a BPF link: the kernel detaches it when the process ends, however it ends. */
  readonly link: boolean;
  readonly zerocopy: boolean;
}

/** The underlay socket's share of its UMEM: 3,072 chunks for receive, 1,024 for transmit (8 MB). */
export const UNDERLAY_UMEM_FRAMES = 4096;
/**
 * A pod socket's share of its UMEM (4 MB): 1,536 chunks for receive, what a pod's TCP sends
 * while the daemon is not scheduled. With 512 (2 MB in all, half for transmit) the fill ring ran
 * empty under one iperf3 stream (10,628 frames dropped in 3 s, as many retransmits); with 1,536
 * none. Shared UMEMs of SHARED_UMEM_CHUNKS hold six pods beside the underlay, then eight each.
 */
export const POD_UMEM_FRAMES = 2048;

export class XdpPort extends FdPort {
  readonly kind = PortKind.AF_XDP;
  readonly ifindex: number;
  readonly features: XdpPortFeatures;
  readonly umem: Umem;
  /** This socket's share of the UMEM (chunks). */
  readonly frames: number;
  private xsk: number;

  private constructor(r: XskOpenResult, name: string, ifindex: number, umem: Umem, frames: number) {
    super(loadNative(), r.fd, name, 0);
    this.xsk = r.id;
    this.ifindex = ifindex;
    this.features = { attach: r.attach, link: r.link, zerocopy: r.zerocopy };
    this.umem = umem;
    this.frames = frames;
  }

  /**
   * open attaches the program (every frame to us) and binds a socket on interface `name`.
   * `generic`: the kernel's generic (skb) XDP instead of the driver's (see XdpAttach); `frames`:
   * its share of the UMEM, a power of two from 64 to 4096; `umem`: the UMEM to join (default: the
   * process's shared one with room for it).
   */
  static open(name: string, generic = false, frames = POD_UMEM_FRAMES, umem?: Umem): XdpPort {
    return XdpPort.openXsk(name, XdpMode.ALL, 0, 0, generic, 0, frames, umem);
  }

  /**
   * openVxlan attaches the program in VXLAN mode on `name` (the underlay): VXLAN to
   * `localIp`:`port` from the addresses given to setPeers() comes to the socket, the rest to the
   * kernel. XdpOverlayPort builds the overlay on it. `maxLen`: longer frames stay with the
   * kernel too (0: whatever fits a UMEM chunk).
   */
  static openVxlan(name: string, port: number, localIp: number, generic = false, maxLen = 0, umem?: Umem): XdpPort {
    return XdpPort.openXsk(name, XdpMode.VXLAN, port, localIp, generic, maxLen, UNDERLAY_UMEM_FRAMES, umem);
  }

  /** openXsk: the native socket and program; `port`/`localIp` for the VXLAN mode. */
  private static openXsk(name: string, mode: number, port: number, localIp: number, generic: boolean, maxLen: number, frames: number, umem: Umem | undefined): XdpPort {
    checkIfName(name);
    const n = loadNative();
    const obj = xdpObjectPath();
    if (obj === null) throw new FlatnetError('ERR_XDP_UNAVAILABLE', `${name}: the XDP program is not built (native/build/Release/flatnet_xdp.o: clang, libbpf-dev; run .ci/setup)`);
    const index = ifIndex(name);
    const u = umem ?? sharedUmem(frames);
    let r: XskOpenResult;
    try {
      r = control(name, () => n.xskOpen(index, obj, mode, port, localIp, generic, maxLen, frames, u.id));
    } catch (e) {
      forget(u);
      throw e;
    }
    return new XdpPort(r, name, index, u, frames);
  }

  /**
   * read: frames [0, n) where the kernel wrote them in the UMEM, which becomes the batch's
   * arena (Batch.own() takes it back); valid until the next read of this port.
   */
  read(batch: Batch, headroom: number): number {
    if (this.fd < 0) return this.closedRead(batch);
    this.checkHeadroom(batch, headroom);
    batch.arena = this.umem.buffer;
    const n = this.native.xskRecv(this.xsk, batch.meta, batch.capacity, headroom);
    return this.afterRead(batch, n);
  }

  /** write posts frames [0, list.count) on the TX ring; returns how many were taken, or -errno. */
  write(list: FrameList): number {
    if (this.fd < 0) return this.closedWrite(list);
    if (list.count === 0) return 0;
    return this.afterWrite(this.native.xskSend(this.xsk, list.arena, list.meta, list.count, 0, this.res));
  }

  /** ioInfo: what `flatnet show ports` says about this port's I/O (cold path). */
  ioInfo(): Record<string, unknown> {
    const f = this.features;
    return { backend: 'af_xdp', attach: f.attach, link: f.link, zerocopy: f.zerocopy, umem: this.umem.id, xsk: this.xdpStats() };
  }

  /** xdpStats: the socket's kernel counters (XDP_STATISTICS), for show and tests. */
  xdpStats(): XskStats | null {
    return this.fd < 0 ? null : this.native.xskStats(this.xsk);
  }

  /** setPeers: the sources (host-order IPv4) whose VXLAN the program hands to us (VXLAN mode). */
  setPeers(addrs: readonly number[]): number {
    return this.fd < 0 ? 0 : this.native.xskSetPeers(this.xsk, Int32Array.from(addrs, (a) => a | 0));
  }

  override close(): void {
    if (this.fd < 0) return;
    super.close(); // stops the poll (the addon does not own this fd: its close() is a no-op)
    this.native.xskClose(this.xsk);
    this.xsk = -1;
    forget(this.umem);
  }
}
