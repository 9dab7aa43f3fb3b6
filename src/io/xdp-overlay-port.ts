/**
 * XdpOverlayPort: the overlay on an AF_XDP socket, with the kernel's sockets (OverlayPort: UDP +
 * raw IPv4) beside it for what the socket does not carry.
 *
 *   receive   the XDP program on the underlay interface redirects VXLAN to our address and
 *             port from the peers setPeers() names; each frame's outer Ethernet/IPv4/UDP headers
 *             are checked here as the kernel checks them before a UDP socket sees a datagram
 *             (IPv4 header and checksum, lengths, UDP checksum when non-zero); a frame that fails
 *             is counted in xdpRxInvalid and dropped, like the kernel's own drops on the socket
 *             path. The rest is presented exactly as the UDP socket presents a datagram: START at
 *             the VXLAN header, ADDR/PORT its source. Everything else (unknown sources, ARP, the
 *             node's own traffic) stays with the kernel, and datagrams the kernel delivers to the
 *             UDP socket are read from it as before;
 *   transmit  an ordinary frame (START at the outer IPv4 header) whose next hop's MAC is known
 *             (NextHops, from the kernel's route and neighbour tables) gets the outer Ethernet
 *             header written in front of it and goes to the TX ring; UDP-GSO trains, and frames
 *             whose next hop is not known yet, go through the kernel's sockets (the raw socket's
 *             packet is what makes the kernel resolve the neighbour).
 * So the switch sees the same framing as on OverlayPort (rx UDP, tx IP).
 */

import { copyTxFailed, FrameList, Meta, META_STRIDE, type Batch } from '../buf/batch.js';
import { PortKind, PortStats, type Port } from '../pipeline/port.js';
import { dataViewOf, EMPTY_DV } from '../wire/bytes.js';
import { fold16, pseudoHeaderSum } from '../wire/checksum.js';
import { EtherType, IpProto } from '../wire/consts.js';
import { ETH_HEADER_LEN } from '../wire/ethernet.js';
import { ipv4HeaderChecksumOk, ipv4Validate } from '../wire/ipv4.js';
import { UDP_HEADER_LEN, udpChecksumOk } from '../wire/udp.js';
import { WireDrop } from '../wire/drop.js';
import { getMac } from './link.js';
import { loadNative } from './native.js';
import { NextHops } from './next-hop.js';
import type { OverlayPort } from './overlay-port.js';
import { XdpPort } from './xdp-port.js';

export interface XdpOverlayOptions {
  /** Attach the program in generic (skb) XDP mode instead of the driver's (XdpPort). */
  readonly generic?: boolean;
  /**
   * Frames longer than this stay with the kernel's UDP socket (0: whatever fits a UMEM chunk).
   * The socket gets GRO-coalesced trains that the switch takes in one read; through the ring
   * every datagram is a frame of its own.
   */
  readonly maxRxLen?: number;
}

export class XdpOverlayPort implements Port {
  readonly kind = PortKind.AF_XDP;
  readonly vnetHdrLen = 0;
  /** Trains (GSO_SIZE > 0), in pieces too, go to the kernel's UDP socket. */
  readonly scatter = true;
  readonly name: string;
  readonly nextHops: NextHops;
  /** Frames the XDP program handed over whose outer headers failed the kernel's checks. */
  xdpRxInvalid = 0;
  /** Frames accepted with an unfinished (CHECKSUM_PARTIAL) outer UDP checksum from a veth peer. */
  xdpRxPartialCsum = 0;
  private readonly srcMacHi: number;
  private readonly srcMacLo: number;
  private readonly xrun = new FrameList(1024);
  private readonly krun = new FrameList(1024);
  /** The index in the write's list of each frame of xrun / krun (to report which were not sent). */
  private readonly xidx = new Int32Array(1024);
  private readonly kidx = new Int32Array(1024);
  private list: FrameList | null = null;
  private rxDv: DataView = EMPTY_DV;
  private rxBuf: Buffer | null = null;
  private txDv: DataView = EMPTY_DV;
  private txBuf: Buffer | null = null;
  /** Totals of the write in progress (flush adds to them). */
  private sent = 0;
  private err = 0;

  private constructor(readonly xsk: XdpPort, readonly kernel: OverlayPort, mac: number) {
    this.name = kernel.name;
    this.srcMacHi = Math.floor(mac / 0x1_0000_0000);
    this.srcMacLo = mac % 0x1_0000_0000;
    this.nextHops = new NextHops(loadNative(), xsk.ifindex, xsk.name);
  }

  /**
   * open attaches the program to `iface` (the underlay interface, in the current namespace) for
   * VXLAN to `localIp`:`port`, binds the socket and takes `kernel` (already open) as its
   * companion (see XdpOverlayOptions). Throws NativeError /
   * FlatnetError when AF_XDP cannot be used; `kernel` is then left open for the caller.
   */
  static open(iface: string, localIp: number, port: number, kernel: OverlayPort, opts: XdpOverlayOptions = {}): XdpOverlayPort {
    const mac = getMac(iface);
    const xsk = XdpPort.openVxlan(iface, port, localIp, opts.generic ?? false, opts.maxRxLen ?? 0);
    const p = new XdpOverlayPort(xsk, kernel, mac);
    try {
      p.nextHops.watch();
    } catch (e) {
      p.nextHops.close();
      xsk.close();
      throw e;
    }
    return p;
  }

  /** setPeers: the underlay addresses whose VXLAN the program redirects to the socket. */
  setPeers(addrs: readonly number[]): number {
    return this.xsk.setPeers(addrs);
  }

  /** Counters of the AF_XDP socket and the kernel's sockets together (cold path: show, metrics). */
  get stats(): PortStats {
    return new PortStats().add(this.xsk.stats).add(this.kernel.stats);
  }

  /**
   * read: datagrams from the kernel's UDP socket first (UDP-GRO trains the program left to the
   * kernel: a flow's train arrives before the single frames that follow it, and reading it
   * first keeps them in order), then frames from the AF_XDP socket (outer headers checked and
   * skipped). Valid until the next read into `batch`.
   */
  read(batch: Batch, headroom: number): number {
    const k = this.kernel.read(batch, headroom);
    if (k !== 0) return k;
    return this.readXsk(batch, headroom);
  }

  private readXsk(batch: Batch, headroom: number): number {
    const n = this.xsk.read(batch, headroom);
    if (n <= 0) return n;
    if (batch.arena !== this.rxBuf) {
      this.rxBuf = batch.arena;
      this.rxDv = dataViewOf(batch.arena);
    }
    const dv = this.rxDv, m = batch.meta;
    let out = 0;
    for (let i = 0; i < n; i++) {
      const o = i * META_STRIDE;
      const s = m[o + Meta.START]!, e = m[o + Meta.END]!;
      // Ethernet (the program let only IPv4 through), IPv4 as ip_rcv_core checks it, UDP as udp_rcv.
      if (e - s < ETH_HEADER_LEN || dv.getUint16(s + 12) !== EtherType.IPV4) { this.xdpRxInvalid++; continue; }
      const ip = s + ETH_HEADER_LEN;
      if (ipv4Validate(dv, ip, e) !== WireDrop.NONE) { this.xdpRxInvalid++; continue; }
      const hl = (dv.getUint8(ip) & 0x0f) << 2;
      if (!ipv4HeaderChecksumOk(dv, ip, hl) || dv.getUint8(ip + 9) !== IpProto.UDP) { this.xdpRxInvalid++; continue; }
      const ipEnd = ip + dv.getUint16(ip + 2), udp = ip + hl;
      if (ipEnd - udp < UDP_HEADER_LEN) { this.xdpRxInvalid++; continue; }
      const udpLen = dv.getUint16(udp + 4);
      if (udpLen < UDP_HEADER_LEN || udpLen > ipEnd - udp) { this.xdpRxInvalid++; continue; }
      const src = dv.getUint32(ip + 12);
      if (!udpChecksumOk(dv, udp, udpLen, src, dv.getUint32(ip + 16))) {
        // A sender on a veth with TX checksum offload (a UDP-GSO train, the kernel's VXLAN)
        // hands over CHECKSUM_PARTIAL: the field holds the pseudo-header sum, to be finished by
        // a NIC that a veth does not have. The kernel trusts such a frame on its socket path;
        // XDP cannot see the skb's flag, so the unfinished form is recognised by value.
        if (dv.getUint16(udp + 6) !== fold16(pseudoHeaderSum(src, dv.getUint32(ip + 16), IpProto.UDP, udpLen))) { this.xdpRxInvalid++; continue; }
        this.xdpRxPartialCsum++;
      }
      const d = out * META_STRIDE;
      m[d + Meta.START] = udp + UDP_HEADER_LEN;
      m[d + Meta.END] = udp + udpLen;
      m[d + Meta.ADDR] = src | 0;
      m[d + Meta.PORT] = dv.getUint16(udp);
      m[d + Meta.GSO_SIZE] = 0;
      m[d + Meta.FLAGS] = m[o + Meta.FLAGS]!;
      m[d + Meta.TOS] = dv.getUint8(ip + 1); // as the UDP socket reports it (IP_RECVTOS)
      out++;
    }
    batch.count = out;
    return out;
  }

  /**
   * write: frames with a known next hop to the TX ring (outer Ethernet header written in front
   * of START), the others to the kernel's sockets, in order: each run of consecutive frames of
   * one kind goes out before the next (a flow's segments must not overtake each other). Returns
   * how many were accepted, or -errno when none were.
   */
  write(list: FrameList): number {
    const n = list.count;
    if (n === 0) return 0;
    if (this.xsk.closed) return this.kernel.write(list);
    const b = list.arena, m = list.meta, x = this.xrun, k = this.krun, hops = this.nextHops;
    if (b !== this.txBuf) {
      this.txBuf = b;
      this.txDv = dataViewOf(b);
    }
    const dv = this.txDv;
    x.clear(); k.clear();
    x.arena = b; k.arena = b;
    const xm = x.meta, km = k.meta;
    this.sent = 0;
    this.err = 0;
    this.list = list;
    for (let i = 0; i < n; i++) {
      const o = i * META_STRIDE;
      const s = m[o + Meta.START]!;
      const mac = m[o + Meta.GSO_SIZE]! > 0 || s < ETH_HEADER_LEN ? -1 : hops.mac(m[o + Meta.ADDR]!);
      if (mac < 0) {
        if (x.count > 0) this.flush(x, this.xsk);
        const d = k.count * META_STRIDE;
        for (let j = 0; j < META_STRIDE; j++) km[d + j] = m[o + j]!; // no subarray: no object per frame
        this.kidx[k.count] = i;
        if (++k.count === k.capacity) this.flush(k, this.kernel);
        continue;
      }
      if (k.count > 0) this.flush(k, this.kernel);
      const h = s - ETH_HEADER_LEN;
      dv.setUint16(h, Math.floor(mac / 0x1_0000_0000));
      dv.setUint32(h + 2, mac % 0x1_0000_0000);
      dv.setUint16(h + 6, this.srcMacHi);
      dv.setUint32(h + 8, this.srcMacLo);
      dv.setUint16(h + 12, EtherType.IPV4);
      const d = x.count * META_STRIDE;
      xm[d + Meta.START] = h;
      xm[d + Meta.END] = m[o + Meta.END]!;
      xm[d + Meta.FLAGS] = 0;
      this.xidx[x.count] = i;
      if (++x.count === x.capacity) this.flush(x, this.xsk);
    }
    if (x.count > 0) this.flush(x, this.xsk);
    if (k.count > 0) this.flush(k, this.kernel);
    return this.sent > 0 || this.err === 0 ? this.sent : this.err;
  }

  /** flush writes `run` to `port`, adds to this write's totals and empties the run. */
  private flush(run: FrameList, port: Port): void {
    const r = port.write(run);
    if (r > 0) this.sent += r;
    else if (r < 0) this.err = r;
    if (r !== run.count) copyTxFailed(run, this.list!, 0, run === this.xrun ? this.xidx : this.kidx); // failures only
    run.count = 0;
  }

  onReadable(cb: (() => void) | null): void {
    this.xsk.onReadable(cb);
    this.kernel.onReadable(cb);
  }

  /** ioInfo: what `flatnet show ports` says about this port's I/O (cold path). */
  ioInfo(): Record<string, unknown> {
    const f = this.xsk.features;
    return {
      backend: 'af_xdp', attach: f.attach, link: f.link, zerocopy: f.zerocopy, umem: this.xsk.umem.id, xdpRxInvalid: this.xdpRxInvalid, xdpRxPartialCsum: this.xdpRxPartialCsum,
      nextHop: { ...this.nextHops.stats, known: this.nextHops.size }, xsk: this.xsk.xdpStats(),
      kernel: { rxPackets: this.kernel.stats.rxPackets, txPackets: this.kernel.stats.txPackets },
    };
  }

  close(): void {
    this.nextHops.close();
    this.xsk.close();
    this.kernel.close();
  }
}
