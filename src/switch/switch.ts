/**
 * The flatnet switch: one node's data plane over abstract ports (pods, the host, the overlay).
 * It does not know what backs a port.
 *
 * Flow, per readable wakeup of a port:
 *   1. read a batch into the port's slots, each frame at VXLAN_HEADROOM (room for the outer
 *      headers, so encapsulation never copies the frame)
 *   2. per frame, by ingress role:
 *        pod      classify -> anti-spoof (MAC, IP, ARP) -> ARP responder -> route / bridge
 *        host     classify -> ARP responder -> route / bridge
 *        overlay  known peer VTEP? -> decap (strict header checks) -> inner checks -> route / bridge
 *      route (L3, flannel-compatible): LPM on the destination IP -> local pod | host | VTEP,
 *      MACs rewritten, TTL decremented (TTL 1: drop + ICMP time exceeded);
 *      bridge (L2): FDB per VNI with learning, flood list for BUM (one copy per remote VTEP);
 *      each frame either goes to egress queues or is dropped with exactly one named reason.
 *   3. coalesce: TCP segments from the overlay bound for a port with virtio-net headers are
 *      merged into super-frames (software GRO);
 *   4. flush: one write per egress port per batch, before the batch's memory is reused.
 *
 * Offloads (ports with virtio-net headers: AF_PACKET with PACKET_VNET_HDR, TAP IFF_VNET_HDR):
 * each frame's header is read on ingress; a partial checksum or a TCP/UDP super-frame passes
 * unchanged to a local port that takes headers, is completed in software for one that does
 * not, and is segmented in software (src/mtu/segment.ts) toward the overlay: a train of VXLAN
 * datagrams sent with one UDP_SEGMENT call where the overlay socket has UDP GSO. What leaves on
 * the underlay is always ordinary VXLAN with complete inner frames.
 *
 * MTU: a frame whose inner IPv4 packet exceeds the underlay MTU - 50 is never sent fragmented
 * on the underlay: with DF it is answered with ICMP fragmentation-needed (the kernel's tunnel
 * PMTU reply), without DF its inner packet is fragmented before encapsulation, and anything
 * else is dropped as mtu_exceeded. Optional MSS clamping rewrites SYNs crossing the switch.
 *
 * Frames are (arena, start, end) windows: decapsulation moves `start`, encapsulation writes in
 * front of it. Frames derived from a batch (segments, fragments, coalesced super-frames) go to
 * the spare region of the same arena; replication copies and ICMP go to scratch slots.
 */

import { channel } from 'node:diagnostics_channel';
import { Batch, FrameList, META_STRIDE, Meta, MetaFlag } from '../buf/batch.js';
import { completeChecksum } from '../mtu/checksum-offload.js';
import { TcpCoalescer, coalesceOutputBound } from '../mtu/coalesce.js';
import { fragmentIpv4 } from '../mtu/fragment.js';
import { clampMss } from '../mtu/mss.js';
import { OversizeAction, buildFragNeeded, oversizeAction } from '../mtu/pmtu.js';
import { segmentGso } from '../mtu/segment.js';
import { MtuStatus } from '../mtu/status.js';
import { Cidr } from '../fib/cidr.js';
import { type Clock, MonotonicClock } from '../fib/clock.js';
import { Fdb, Learn } from '../fib/fdb.js';
import { U32Map } from '../fib/u32-map.js';
import { Route, RouteKind, RouteTable } from '../fib/route-table.js';
import { type EncapSettings, Vtep, type VtepSpec } from '../fib/vtep.js';
import { ARP_LEN, ArpOp, ArpView } from '../wire/arp.js';
import { EMPTY, EMPTY_DV, dataViewOf, dvPutU48, dvU48 } from '../wire/bytes.js';
import { EtherType, IpProto } from '../wire/consts.js';
import { DecapResult, Decapsulator, VniSet, applyEcnDecap } from '../wire/decap.js';
import { Drop } from '../wire/drop.js';
import { VXLAN_HEADROOM, VXLAN_OVERHEAD, OUTER_IP_OFF, VXLAN_OFF } from '../wire/encap.js';
import { VXLAN_HEADER_LEN, VxlanView } from '../wire/vxlan.js';
import { VirtioGso, VirtioNetFlag } from '../wire/virtio-net-hdr.js';
import { ETH_HEADER_LEN, EthernetView } from '../wire/ethernet.js';
import { Icmpv4Type, Icmpv4View, TimeExceededCode } from '../wire/icmpv4.js';
import { Ipv4View, ipv4HeaderChecksumOk, ipv4Validate } from '../wire/ipv4.js';
import { BROADCAST_MAC, formatIpv4, formatMac } from '../wire/addr.js';
import { TokenBucket, buildIcmpError, echoReplyInPlace, mayAnswerWithError } from './icmp.js';
import type { Port } from './port.js';
import { SwitchStats } from './stats.js';

export const PortRole = { POD: 'pod', HOST: 'host', OVERLAY: 'overlay' } as const;
export type PortRole = (typeof PortRole)[keyof typeof PortRole];

/**
 * What an overlay port carries: whole frames (memory, pcap), IPv4 packets (raw socket), UDP
 * payloads (UDP socket). Receive and transmit may differ (the daemon receives UDP payloads on a
 * UDP socket and sends IPv4 packets through a raw socket).
 */
export const Framing = { ETHERNET: 'ethernet', IP: 'ip', UDP: 'udp' } as const;
export type Framing = (typeof Framing)[keyof typeof Framing];

export const SwitchMode = { L3: 'l3', L2: 'l2' } as const;
export type SwitchMode = (typeof SwitchMode)[keyof typeof SwitchMode];

/** Diagnostics channels; published to only when someone subscribes (the daemon logs them). */
export const fdbMoveChannel = channel('flatnet:fdb:move');
export const fdbRefusedChannel = channel('flatnet:fdb:refused');

export interface SwitchOptions {
  readonly mode: SwitchMode;
  readonly vni: number;
  /** Our VTEP MAC: the inner source MAC toward peers and, in L3 mode, the pods' gateway MAC. */
  readonly vtepMac: number;
  /** The node's overlay address (flannel's 10.244.N.0/32), delivered to the host port. */
  readonly vtepIp: number;
  readonly podCidr: Cidr;
  /** All pod addresses: the host port's proxy-ARP scope. */
  readonly clusterCidr: Cidr;
  /** The pods' default gateway (10.244.N.1): answered by the switch's ARP responder and ping. */
  readonly gatewayIp: number;
  readonly underlayIp: number;
  /** VXLAN UDP destination port (4789; Linux's default is 8472). */
  readonly port: number;
  readonly encap: Omit<EncapSettings, 'localUnderlayIp'>;
  /** Drop frames with reserved VXLAN bits set (Linux). Default true. */
  readonly strict?: boolean;
  readonly gbp?: boolean;
  /** Accept VXLAN only from known peer underlay addresses. Default true. */
  readonly checkPeerSource?: boolean;
  /** L3: the inner source must lie in the sending peer's pod CIDR. Default true. */
  readonly checkInnerSource?: boolean;
  readonly fdbLimit?: number;
  readonly fdbAgeingMs?: number;
  readonly batchSize?: number;
  readonly slotSize?: number;
  readonly icmpRatePerSec?: number;
  readonly clock?: Clock;
  /** The underlay's MTU (largest outer IPv4 packet); default 1500. */
  readonly underlayMtu?: number;
  /** The pods' MTU (MSS clamping, segmenting for ports without offloads); default underlayMtu - 50. */
  readonly podMtu?: number;
  /** Clamp the MSS option of TCP SYNs crossing the switch to podMtu - 40 (iptables --clamp-mss-to-pmtu). */
  readonly mssClamp?: boolean;
}

/** How an overlay port is attached: what it reads and writes, and which offloads it has. */
export interface OverlayAttach {
  readonly rx: Framing;
  readonly tx: Framing;
  /** The port sends UDP-GSO trains (GSO_SIZE in the metadata, START at the first VXLAN header). */
  readonly gso?: boolean;
  /** The port's reads may hold several datagrams of GSO_SIZE bytes each (UDP_GRO): 64 KiB slots. */
  readonly gro?: boolean;
}

/** A port attached to the switch, with its receive batch and egress queue. */
export class SwitchPort {
  readonly id: number;
  readonly role: PortRole;
  readonly port: Port;
  readonly name: string;
  /** Overlay: what read() yields. */
  readonly rxFraming: Framing;
  /** Overlay: what write() takes for ordinary (non-GSO) frames. */
  readonly txFraming: Framing;
  /** POD: the bound IP. */
  readonly ip: number;
  /** POD: the bound MAC. HOST: the host stack's MAC (taken from its frames when not given). */
  mac: number;
  readonly batch: Batch;
  readonly tx: FrameList;
  /** Overlay: UDP-GSO trains may be written. */
  readonly gso: boolean;
  /** Ports with virtio-net headers: decapsulated frames waiting to be coalesced. */
  readonly gro: FrameList | null;
  attached = true;
  constructor(id: number, role: PortRole, port: Port, name: string, rxFraming: Framing, txFraming: Framing, ip: number, mac: number, layout: PortLayout, gso: boolean) {
    this.id = id;
    this.role = role;
    this.port = port;
    this.name = name;
    this.rxFraming = rxFraming;
    this.txFraming = txFraming;
    this.ip = ip;
    this.mac = mac;
    this.batch = new Batch(layout.capacity, layout.slotSize, layout.spare);
    this.tx = new FrameList(Math.max(layout.capacity, 64));
    this.gso = gso;
    this.gro = port.vnetHdrLen > 0 ? new FrameList(GRO_LIST_LEN) : null;
  }
}

/** Receive batch geometry of one port. */
interface PortLayout { readonly capacity: number; readonly slotSize: number; readonly spare: number }

/** Slots for super-frames (TSO/GSO from a virtio port, UDP GRO reads): 64 KiB + headroom. */
const BIG_SLOT = 65536 + 128;
/** Batch size for ports with big slots (fewer, larger frames per read). */
const BIG_BATCH = 16;
/** Spare space for the segments of two 64 KiB super-frames (each ~47 x (50 + 1464) bytes). */
const SEGMENT_SPARE = 2 * 80 * 1024;
/** Decapsulated frames queued per port for coalescing before a merge is forced. */
const GRO_LIST_LEN = 1024;
/** Lengths of segments/fragments produced from one frame. */
const MAX_PIECES = 128;
/** Largest UDP payload of one UDP_SEGMENT send (65535 - 20 - 8), and the kernel's segment cap. */
const UDP_GSO_MAX_BYTES = 65507;
const UDP_GSO_MAX_SEGS = 64;

const SCRATCH_SLOTS = 64;
/** Scratch slots hold replication copies and ICMP replies: room for a jumbo frame. */
const SCRATCH_SLOT_SIZE = 16384;
/** Read batches per wakeup before yielding to the event loop (fairness between ports). */
const DRAIN_BUDGET = 16;

export class Switch {
  readonly opts: SwitchOptions;
  readonly stats = new SwitchStats();
  readonly clock: Clock;
  readonly mode: SwitchMode;
  readonly vni: number;
  readonly vtepMac: number;
  readonly fdb: Fdb;
  private readonly ports: (SwitchPort | null)[] = [];
  private overlay: SwitchPort | null = null;
  private host: SwitchPort | null = null;
  private podByMac = new Map<number, SwitchPort>();
  private peers: Vtep[] = [];
  private peerByIp = new U32Map<Vtep>();
  private table: RouteTable;
  private readonly decap: Decapsulator;
  private readonly res = new DecapResult();
  private readonly scratch: Batch;
  private scratchNext = 0;
  private readonly icmpBucket: TokenBucket;
  private readonly checkPeerSource: boolean;
  private readonly checkInnerSource: boolean;
  private readonly slotSize: number;
  private readonly batchSize: number;
  private sweepTimer: NodeJS.Timeout | null = null;
  // Flyweight views, re-pointed per frame.
  private readonly eth = new EthernetView();
  private readonly ip = new Ipv4View();
  private readonly arp = new ArpView();
  private readonly icmp = new Icmpv4View();
  private readonly vxlanHdr = new VxlanView();
  private readonly errViews = { eth: new EthernetView(), ip: new Ipv4View(), icmp: new Icmpv4View() };
  private lastBuf: Buffer = EMPTY;
  private dv: DataView = EMPTY_DV;
  /** The largest inner IPv4 packet that fits the underlay after encapsulation. */
  readonly maxInnerIpLen: number;
  readonly podMtu: number;
  private readonly mssClamp: boolean;
  // The virtio-net header of the frame being processed (zeros for ports without one).
  private vFlags = 0;
  private vGso = 0;
  private vHdrLen = 0;
  private vGsoSize = 0;
  private vCsumStart = 0;
  private vCsumOff = 0;
  /** True while processing a frame that came from the overlay (local deliveries coalesce). */
  private fromOverlayNow = false;
  // The work area for frames derived from the current batch: its spare region, else scratch's.
  private workBuf: Buffer = EMPTY;
  private workStart = 0;
  private workNext = 0;
  private workEnd = 0;
  private readonly lens = new Int32Array(MAX_PIECES);
  private readonly coalescers = new Map<number, TcpCoalescer>();
  private readonly coOut = new FrameList(GRO_LIST_LEN);

  constructor(opts: SwitchOptions) {
    this.opts = opts;
    this.mode = opts.mode;
    this.vni = opts.vni;
    this.vtepMac = opts.vtepMac;
    this.clock = opts.clock ?? new MonotonicClock();
    this.batchSize = opts.batchSize ?? 64;
    this.slotSize = opts.slotSize ?? 2048;
    this.checkPeerSource = opts.checkPeerSource ?? true;
    this.checkInnerSource = opts.checkInnerSource ?? true;
    this.fdb = new Fdb(opts.vni, { limit: opts.fdbLimit, ageingMs: opts.fdbAgeingMs });
    this.decap = new Decapsulator({
      port: opts.port, strict: opts.strict ?? true, gbp: opts.gbp ?? false, vnis: new VniSet([opts.vni]), ownMac: opts.vtepMac,
    });
    this.scratch = new Batch(SCRATCH_SLOTS, SCRATCH_SLOT_SIZE, SEGMENT_SPARE);
    const underlayMtu = opts.underlayMtu ?? 1500;
    this.maxInnerIpLen = underlayMtu - VXLAN_OVERHEAD;
    this.podMtu = opts.podMtu ?? this.maxInnerIpLen;
    if (this.podMtu > this.maxInnerIpLen) throw new RangeError(`pod MTU ${this.podMtu} does not fit the underlay MTU ${underlayMtu} after ${VXLAN_OVERHEAD} bytes of VXLAN`);
    this.mssClamp = opts.mssClamp ?? false;
    const rate = opts.icmpRatePerSec ?? 100;
    this.icmpBucket = new TokenBucket(rate, Math.max(1, Math.ceil(rate / 2)));
    this.table = this.buildRoutes();
  }

  // ---------------------------------------------------------------------------------------
  // Control plane: attach and detach ports, set peers. Every change rebuilds the derived
  // state (routes, FDB entries, flood list) from the whole desired state.

  attachPod(port: Port, ip: number, mac: number, name = port.name): SwitchPort {
    if (!this.opts.podCidr.contains(ip)) throw new RangeError(`pod IP ${formatIpv4(ip)} is outside the node's pod CIDR ${this.opts.podCidr}`);
    if (ip === this.opts.gatewayIp || ip === this.opts.vtepIp) throw new RangeError(`pod IP ${formatIpv4(ip)} is the gateway or VTEP address`);
    for (const p of this.ports) {
      if (p !== null && p.role === PortRole.POD && (p.ip === ip || p.mac === mac)) {
        throw new RangeError(`pod ${name}: IP ${formatIpv4(ip)} or MAC ${formatMac(mac)} already bound to ${p.name}`);
      }
    }
    const sp = this.add(PortRole.POD, port, name, Framing.ETHERNET, Framing.ETHERNET, ip, mac, this.layoutFor(port, false), false);
    this.podByMac.set(mac, sp);
    this.rebuild();
    return sp;
  }

  attachHost(port: Port, mac = 0, name = port.name): SwitchPort {
    if (this.host !== null) throw new RangeError('a host port is already attached');
    const sp = this.add(PortRole.HOST, port, name, Framing.ETHERNET, Framing.ETHERNET, 0, mac, this.layoutFor(port, false), false);
    this.host = sp;
    this.rebuild();
    return sp;
  }

  /** attachOverlay: `framing` for both directions, or an OverlayAttach with what differs. */
  attachOverlay(port: Port, framing: Framing | OverlayAttach, name = port.name): SwitchPort {
    if (this.overlay !== null) throw new RangeError('an overlay port is already attached');
    const a: OverlayAttach = typeof framing === 'string' ? { rx: framing, tx: framing } : framing;
    if (a.rx === Framing.IP) throw new RangeError('an overlay port cannot receive IPv4 packets: use UDP or Ethernet framing');
    if ((a.gso ?? false) && a.tx === Framing.ETHERNET) throw new RangeError('UDP-GSO trains need a UDP socket: not with Ethernet framing');
    const sp = this.add(PortRole.OVERLAY, port, name, a.rx, a.tx, 0, 0, this.layoutFor(port, a.gro ?? false), a.gso ?? false);
    this.overlay = sp;
    return sp;
  }

  /** detach removes a port (its routes and FDB entries go with it); the port is not closed. */
  detach(id: number): SwitchPort {
    const sp = this.ports[id];
    if (sp === undefined || sp === null) throw new RangeError(`no port ${id}`);
    this.flushPort(sp);
    sp.port.onReadable(null);
    sp.attached = false;
    this.ports[id] = null;
    if (sp === this.host) this.host = null;
    if (sp === this.overlay) this.overlay = null;
    if (sp.role === PortRole.POD) this.podByMac.delete(sp.mac);
    this.fdb.removeWhere((e) => e.port === id);
    this.rebuild();
    return sp;
  }

  /** setPeers replaces the set of remote VTEPs (reconciled, not patched). */
  setPeers(specs: readonly VtepSpec[]): void {
    const enc: EncapSettings = { ...this.opts.encap, localUnderlayIp: this.opts.underlayIp };
    const peers = specs.map((s) => new Vtep(s, enc));
    const byIp = new U32Map<Vtep>();
    for (const p of peers) {
      if (byIp.has(p.underlayIp)) throw new RangeError(`two peers with underlay address ${formatIpv4(p.underlayIp)}`);
      if (p.underlayIp === this.opts.underlayIp) throw new RangeError(`peer ${p.name} has this node's underlay address`);
      byIp.set(p.underlayIp, p);
    }
    // Carry counters over for peers that stay.
    for (const p of peers) {
      const old = this.peerByIp.get(p.underlayIp);
      if (old !== undefined) {
        p.txPackets = old.txPackets; p.txBytes = old.txBytes; p.rxPackets = old.rxPackets; p.rxBytes = old.rxBytes;
      }
    }
    const gone = new Set(this.peers.filter((p) => !byIp.has(p.underlayIp)));
    this.peers = peers;
    this.peerByIp = byIp;
    // Learned entries pointing at replaced Vtep objects are re-pointed or dropped.
    this.fdb.removeWhere((e) => e.vtep !== null && (gone.has(e.vtep) || byIp.get(e.vtep.underlayIp) !== e.vtep));
    this.rebuild();
  }

  get peerList(): readonly Vtep[] {
    return this.peers;
  }

  get routes(): RouteTable {
    return this.table;
  }

  get portList(): SwitchPort[] {
    return this.ports.filter((p): p is SwitchPort => p !== null);
  }

  /**
   * layoutFor: ports that can deliver super-frames (virtio-net headers, UDP GRO) get 64 KiB
   * slots and spare room for what is derived from them; the others the configured batch.
   */
  private layoutFor(port: Port, gro: boolean): PortLayout {
    if (gro) return { capacity: BIG_BATCH, slotSize: BIG_SLOT, spare: BIG_BATCH * BIG_SLOT };
    if (port.vnetHdrLen > 0) return { capacity: BIG_BATCH, slotSize: BIG_SLOT, spare: SEGMENT_SPARE };
    return { capacity: this.batchSize, slotSize: this.slotSize, spare: 0 };
  }

  private add(role: PortRole, port: Port, name: string, rx: Framing, tx: Framing, ip: number, mac: number, layout: PortLayout, gso: boolean): SwitchPort {
    let id = this.ports.indexOf(null);
    if (id < 0) id = this.ports.length;
    const sp = new SwitchPort(id, role, port, name, rx, tx, ip, mac, layout, gso);
    this.ports[id] = sp;
    return sp;
  }

  private rebuild(): void {
    this.table = this.buildRoutes();
    if (this.mode === SwitchMode.L2) {
      // Pods are static FDB entries on their ports; the flood list is every peer.
      const now = this.clock.tick();
      for (const sp of this.ports) if (sp !== null && sp.role === PortRole.POD) this.fdb.addStatic(sp.mac, sp.id, null, now);
      this.fdb.setFlood(this.peers);
    }
  }

  /** The L3 routes derived from the desired state (local pods, peers, the node, the default). */
  private buildRoutes(): RouteTable {
    const o = this.opts;
    const routes: Route[] = [];
    for (const sp of this.ports) {
      if (sp !== null && sp.role === PortRole.POD) routes.push(new Route(new Cidr(sp.ip, 32), RouteKind.LOCAL, { port: sp.id, mac: sp.mac }));
    }
    routes.push(new Route(new Cidr(o.vtepIp, 32), RouteKind.HOST));
    routes.push(new Route(o.podCidr, RouteKind.BLACKHOLE));
    for (const p of this.peers) if (p.podCidr !== null) routes.push(new Route(p.podCidr, RouteKind.VTEP, { vtep: p }));
    if (o.clusterCidr.len < o.podCidr.len) routes.push(new Route(o.clusterCidr, RouteKind.BLACKHOLE));
    routes.push(new Route(new Cidr(0, 0), RouteKind.HOST));
    return new RouteTable(routes);
  }

  // ---------------------------------------------------------------------------------------
  // Running: readiness callbacks, the FDB sweep timer.

  start(): void {
    for (const sp of this.ports) if (sp !== null) this.watch(sp);
    if (this.mode === SwitchMode.L2 && this.sweepTimer === null) {
      const every = Math.min(10_000, Math.max(100, this.fdb.ageingMs / 10));
      this.sweepTimer = setInterval(() => this.fdb.sweep(this.clock.tick()), every);
      this.sweepTimer.unref();
    }
  }

  /** watch starts draining a port (attached after start()). */
  watch(sp: SwitchPort): void {
    sp.port.onReadable(() => this.drain(sp));
  }

  stop(): void {
    for (const sp of this.ports) if (sp !== null) sp.port.onReadable(null);
    if (this.sweepTimer !== null) clearInterval(this.sweepTimer);
    this.sweepTimer = null;
  }

  /**
   * pump drains every port until none has frames (in-process use: tests, replay). Returns the
   * number of frames read.
   */
  pump(maxRounds = 1_000_000): number {
    let total = 0;
    for (let round = 0; round < maxRounds; round++) {
      let n = 0;
      for (const sp of this.ports) if (sp !== null) n += this.drainOnce(sp);
      if (n === 0) break;
      total += n;
    }
    return total;
  }

  private drain(sp: SwitchPort): void {
    for (let k = 0; k < DRAIN_BUDGET; k++) {
      const n = this.drainOnce(sp);
      if (n < sp.batch.capacity) return;
    }
    // Still busy: give the other ports (and timers) a turn, then continue.
    setImmediate(() => { if (sp.attached) this.drain(sp); });
  }

  /** drainOnce reads one batch from `sp`, processes it and flushes; returns the frame count. */
  drainOnce(sp: SwitchPort): number {
    if (!sp.attached) return 0;
    const batch = sp.batch;
    const n = sp.port.read(batch, VXLAN_HEADROOM);
    if (n <= 0) return 0;
    this.clock.tick();
    this.processBatch(sp, batch, n);
    return n;
  }

  /** processBatch runs frames [0, n) of `batch` (read from `sp`) through the pipeline. */
  processBatch(sp: SwitchPort, batch: FrameList, n: number): void {
    const b = batch.arena;
    if (b !== this.lastBuf) {
      this.lastBuf = b;
      this.dv = dataViewOf(b);
    }
    // Derived frames go to the batch's own spare region (same arena: no extra flush, no copy
    // allocation); a batch without one borrows the scratch arena's.
    if (batch instanceof Batch && batch.spareLen > 0) this.setWork(b, batch.spareOff, batch.spareOff + batch.spareLen);
    else this.setWork(this.scratch.arena, this.scratch.spareOff, this.scratch.spareOff + this.scratch.spareLen);
    const m = batch.meta;
    const dv = this.dv;
    const vlen = sp.port.vnetHdrLen;
    const overlay = sp.role === PortRole.OVERLAY;
    this.fromOverlayNow = overlay;
    this.clearOffload();
    for (let i = 0; i < n; i++) {
      const o = i * META_STRIDE;
      const s = m[o + Meta.START]!, e = m[o + Meta.END]!;
      if ((m[o + Meta.FLAGS]! & MetaFlag.TRUNCATED) !== 0) { this.stats.rxFrames++; this.stats.drop(Drop.RX_TRUNCATED); continue; }
      let d: Drop;
      if (overlay) {
        const g = m[o + Meta.GSO_SIZE]!, addr = m[o + Meta.ADDR]! >>> 0;
        if (g > 0) {
          // A UDP_GRO read: datagrams of g bytes back to back (the last may be shorter).
          for (let ds = s; ds < e; ds += g) {
            this.stats.rxFrames++;
            const de = ds + g < e ? ds + g : e;
            const dd = this.fromOverlay(sp, b, ds, de, addr);
            if (dd !== Drop.NONE) this.stats.drop(dd);
          }
          continue;
        }
        this.stats.rxFrames++;
        d = this.fromOverlay(sp, b, s, e, addr);
      } else {
        this.stats.rxFrames++;
        if (vlen > 0) this.readOffload(dv, s - vlen);
        d = sp.role === PortRole.POD ? this.fromPod(sp, b, s, e) : this.fromHost(sp, b, s, e);
      }
      if (d !== Drop.NONE) this.stats.drop(d);
    }
    this.fromOverlayNow = false;
    this.clearOffload();
    if (overlay) this.coalesceAll();
    this.flushAll();
  }

  /** readOffload takes the virtio-net header at `h` as the current frame's offload state. */
  private readOffload(dv: DataView, h: number): void {
    this.vFlags = dv.getUint8(h);
    this.vGso = dv.getUint8(h + 1);
    this.vHdrLen = dv.getUint16(h + 2, true);
    this.vGsoSize = dv.getUint16(h + 4, true);
    this.vCsumStart = dv.getUint16(h + 6, true);
    this.vCsumOff = dv.getUint16(h + 8, true);
  }

  /** clearOffload: the current frame is complete (no partial checksum, not a super-frame). */
  private clearOffload(): void {
    this.vFlags = 0;
    this.vGso = 0;
    this.vHdrLen = 0;
    this.vGsoSize = 0;
    this.vCsumStart = 0;
    this.vCsumOff = 0;
  }

  /**
   * finishChecksum completes a partial checksum in place (the frame is about to leave where no
   * virtio header can carry it). Returns a Drop when the header's offsets do not fit the frame.
   */
  private finishChecksum(b: Buffer, s: number, e: number): Drop {
    if ((this.vFlags & VirtioNetFlag.NEEDS_CSUM) === 0) return Drop.NONE;
    if (completeChecksum(b, s, e, this.vCsumStart, this.vCsumOff) !== MtuStatus.OK) return Drop.OFFLOAD_INVALID;
    this.vFlags &= ~VirtioNetFlag.NEEDS_CSUM;
    return Drop.NONE;
  }

  // ---------------------------------------------------------------------------------------
  // Ingress handlers. Each returns Drop.NONE after staging the frame (or a reply), or the one
  // reason the frame was dropped.

  private fromPod(sp: SwitchPort, b: Buffer, s: number, e: number): Drop {
    const dv = this.dv;
    if (e - s < ETH_HEADER_LEN) return Drop.ETH_TRUNCATED;
    const type = dv.getUint16(s + 12);
    if (type === EtherType.VLAN || type === EtherType.QINQ) return Drop.VLAN_TAGGED;
    if (dvU48(dv, s + 6) !== sp.mac) return Drop.SPOOF_SRC_MAC;
    if (type === EtherType.ARP) return this.arpFromPod(sp, b, s, e);
    if (type !== EtherType.IPV4) return this.mode === SwitchMode.L2 ? this.bridge(sp, b, s, e) : Drop.ETHERTYPE_UNSUPPORTED;
    const ipOff = s + ETH_HEADER_LEN;
    const bad = ipv4Validate(dv, ipOff, e);
    if (bad !== Drop.NONE) return bad;
    if (dv.getUint32(ipOff + 12) !== sp.ip) return Drop.SPOOF_SRC_IP;
    if (this.isVxlanToVtep(dv, ipOff)) return Drop.POD_SENT_VXLAN;
    if (this.mode === SwitchMode.L2) return this.bridge(sp, b, s, e);
    const dmac = dvU48(dv, s);
    if (dmac === this.vtepMac) return this.route(sp, b, s, e);
    const peer = this.podByMac.get(dmac);
    if (peer !== undefined) {
      if (peer === sp) return Drop.HAIRPIN;
      return this.deliver(peer, b, s, e);
    }
    return (dv.getUint8(s) & 1) !== 0 ? Drop.L3_BROADCAST : Drop.UNKNOWN_DST_MAC;
  }

  private fromHost(sp: SwitchPort, b: Buffer, s: number, e: number): Drop {
    const dv = this.dv;
    if (e - s < ETH_HEADER_LEN) return Drop.ETH_TRUNCATED;
    const type = dv.getUint16(s + 12);
    if (type === EtherType.VLAN || type === EtherType.QINQ) return Drop.VLAN_TAGGED;
    const smac = dvU48(dv, s + 6);
    if (sp.mac !== smac && (dv.getUint8(s + 6) & 1) === 0) sp.mac = smac; // the host stack's MAC
    if (this.mode === SwitchMode.L2) return this.bridge(sp, b, s, e);
    if (type === EtherType.ARP) return this.arpFromHost(sp, b, s, e);
    if (type !== EtherType.IPV4) return Drop.ETHERTYPE_UNSUPPORTED;
    const bad = ipv4Validate(dv, s + ETH_HEADER_LEN, e);
    if (bad !== Drop.NONE) return bad;
    if (dvU48(dv, s) === this.vtepMac) return this.route(sp, b, s, e);
    return (dv.getUint8(s) & 1) !== 0 ? Drop.L3_BROADCAST : Drop.UNKNOWN_DST_MAC;
  }

  private fromOverlay(sp: SwitchPort, b: Buffer, s: number, e: number, srcAddr: number): Drop {
    const res = this.res;
    let d: Drop;
    let peer: Vtep | undefined;
    if (sp.rxFraming === Framing.UDP) {
      peer = this.peerByIp.get(srcAddr);
      if (peer === undefined && this.checkPeerSource) return Drop.VTEP_UNKNOWN;
      d = this.decap.decapVxlan(b, s, e, res);
      res.outerTos = 0;
    } else {
      d = this.decap.decapFrame(b, s, e, res);
      if (d !== Drop.NONE) return d;
      peer = this.peerByIp.get(res.outerSrcIp);
      if (peer === undefined && this.checkPeerSource) return Drop.VTEP_UNKNOWN;
    }
    if (d !== Drop.NONE) return d;
    const is = res.innerStart, ie = res.innerEnd;
    const dv = this.dv;
    const type = dv.getUint16(is + 12);
    // RFC 7348 §6.1: decapsulated frames with an inner VLAN tag SHOULD be discarded.
    if (type === EtherType.VLAN || type === EtherType.QINQ) return Drop.VLAN_TAGGED;
    if (peer !== undefined) {
      peer.rxPackets++;
      peer.rxBytes += ie - is;
    }
    this.stats.decapsulated++;
    if (this.mode === SwitchMode.L2) {
      const r = this.fdb.learn(dvU48(dv, is + 6), -1, peer ?? null, this.clock.now);
      if (r !== Learn.REFRESHED && r !== Learn.NEW) {
        if (r === Learn.MOVED) this.onMove(dvU48(dv, is + 6), peer);
        else return this.onRefused(r, dvU48(dv, is + 6));
      }
      return this.bridge(sp, b, is, ie);
    }
    // L3: the inner frame is for our VTEP MAC and carries IPv4 from the peer's pod CIDR.
    if (dvU48(dv, is) !== this.vtepMac) return (dv.getUint8(is) & 1) !== 0 ? Drop.L3_BROADCAST : Drop.INNER_DST_MAC_NOT_OURS;
    if (type !== EtherType.IPV4) return Drop.ETHERTYPE_UNSUPPORTED;
    const ipOff = is + ETH_HEADER_LEN;
    const bad = ipv4Validate(dv, ipOff, ie);
    if (bad !== Drop.NONE) return bad;
    if (this.checkInnerSource && peer !== undefined && peer.podCidr !== null && !peer.podCidr.contains(dv.getUint32(ipOff + 12))) {
      return Drop.INNER_SRC_NOT_IN_PEER_CIDR;
    }
    if (res.outerTos !== 0) {
      const ecn = applyEcnDecap(this.ip, b, is, ie, res.outerTos);
      if (ecn !== Drop.NONE) return ecn;
    }
    return this.route(sp, b, is, ie);
  }

  /** True for UDP to the VXLAN port of a VTEP's underlay address: a pod injecting tunnel traffic. */
  private isVxlanToVtep(dv: DataView, ipOff: number): boolean {
    if (dv.getUint8(ipOff + 9) !== IpProto.UDP) return false;
    const l4 = ipOff + ((dv.getUint8(ipOff) & 0x0f) << 2);
    if (l4 + 4 > dv.byteLength) return false;
    if (dv.getUint16(l4 + 2) !== this.opts.port) return false;
    const dst = dv.getUint32(ipOff + 16);
    return dst === this.opts.underlayIp || this.peerByIp.has(dst);
  }

  // ---------------------------------------------------------------------------------------
  // L3: routing.

  /**
   * route forwards the IPv4 packet in the frame [s, e) (validated, addressed to the gateway
   * MAC) by longest-prefix match on its destination.
   */
  private route(ingress: SwitchPort, b: Buffer, s: number, e: number): Drop {
    const dv = this.dv;
    const ipOff = s + ETH_HEADER_LEN;
    // A router verifies the header checksum of what it forwards (RFC 1812 §5.2.2; Linux's
    // ip_rcv_core): TTL and ECN rewrites are incremental (RFC 1624) and would carry a bad sum on.
    if (!ipv4HeaderChecksumOk(dv, ipOff, (dv.getUint8(ipOff) & 0x0f) << 2)) return Drop.IPV4_BAD_CHECKSUM;
    const dst = dv.getUint32(ipOff + 16);
    if (dst === this.opts.gatewayIp) return this.toGateway(ingress, b, s, e);
    const r = this.table.lookup(dst);
    if (r === null || r.kind === RouteKind.BLACKHOLE) return Drop.NO_ROUTE;
    const ttl = dv.getUint8(ipOff + 8);
    if (ttl <= 1) {
      this.icmpError(ingress, b, s, e, Icmpv4Type.TIME_EXCEEDED, TimeExceededCode.TTL, 0);
      return Drop.TTL_EXCEEDED;
    }
    if (this.mssClamp && dv.getUint8(ipOff + 9) === IpProto.TCP) clampMss(b, s, e, this.podMtu);
    switch (r.kind) {
      case RouteKind.LOCAL: {
        const out = this.ports[r.port];
        if (out === null || out === undefined) return Drop.NO_ROUTE;
        if (out === ingress) return Drop.HAIRPIN;
        this.ip.reset(b, ipOff, e).decrementTtl();
        dvPutU48(dv, s, r.mac);
        dvPutU48(dv, s + 6, this.vtepMac);
        return this.deliver(out, b, s, e);
      }
      case RouteKind.HOST: {
        const out = this.host;
        if (out === null) return Drop.NO_ROUTE;
        if (out === ingress) return Drop.HAIRPIN;
        this.ip.reset(b, ipOff, e).decrementTtl();
        dvPutU48(dv, s, out.mac);
        dvPutU48(dv, s + 6, this.vtepMac);
        return this.deliver(out, b, s, e);
      }
      case RouteKind.VTEP: {
        if (ingress.role === PortRole.OVERLAY) return Drop.OVERLAY_LOOP;
        const vtep = r.vtep!;
        // Too big with DF: answer the packet as the pod sent it (its MACs and TTL), before the
        // rewrite below; fragmentation (no DF) happens after it, on the routed packet.
        if (this.vGso === VirtioGso.NONE && e - s - ETH_HEADER_LEN > this.maxInnerIpLen && oversizeAction(b, s, e, this.maxInnerIpLen) === OversizeAction.FRAG_NEEDED) {
          return this.fragNeeded(ingress, b, s, e);
        }
        this.ip.reset(b, ipOff, e).decrementTtl();
        dvPutU48(dv, s, vtep.mac);
        dvPutU48(dv, s + 6, this.vtepMac);
        return this.encapTo(ingress, vtep, b, s, e);
      }
      default:
        return Drop.NO_ROUTE;
    }
  }

  /** Packets for the gateway address: answer pings, drop the rest. */
  private toGateway(ingress: SwitchPort, b: Buffer, s: number, e: number): Drop {
    const ip = this.ip.reset(b, s + ETH_HEADER_LEN, e);
    if (ip.protocol !== IpProto.ICMP || !echoReplyInPlace(ip, this.icmp)) return Drop.NO_ROUTE;
    const dv = this.dv;
    dvPutU48(dv, s, dvU48(dv, s + 6));
    dvPutU48(dv, s + 6, this.vtepMac);
    this.clearOffload();
    this.stageLocal(ingress, b, s, ip.payloadEnd);
    return Drop.NONE;
  }

  // ---------------------------------------------------------------------------------------
  // Egress toward the overlay: offloads, MTU, encapsulation.

  /**
   * encapTo sends the frame [s, e) to `vtep`: a super-frame as a train of segments, a partial
   * checksum completed first, a packet too large for the underlay answered or fragmented, and
   * otherwise the outer headers written in front of it in place.
   */
  private encapTo(ingress: SwitchPort, vtep: Vtep, b: Buffer, s: number, e: number): Drop {
    const ov = this.overlay;
    if (ov === null) return Drop.NO_ROUTE;
    if (this.vGso !== VirtioGso.NONE) return this.encapSegments(ov, vtep, b, s, e);
    const bad = this.finishChecksum(b, s, e);
    if (bad !== Drop.NONE) return bad;
    if (e - s - ETH_HEADER_LEN > this.maxInnerIpLen) return this.oversize(ingress, ov, vtep, b, s, e);
    this.encapOne(ov, vtep, b, s, e);
    return Drop.NONE;
  }

  /** encapOne writes the outer headers in front of [s, e) (room required) and queues the frame. */
  private encapOne(ov: SwitchPort, vtep: Vtep, b: Buffer, s: number, e: number): void {
    const o = vtep.template.encap(b, s, e);
    const from = ov.txFraming === Framing.UDP ? o + VXLAN_OFF : ov.txFraming === Framing.IP ? o + OUTER_IP_OFF : o;
    this.stage(ov, b, from, e, vtep.underlayIp, vtep.port, 0);
    vtep.txPackets++;
    vtep.txBytes += e - s;
    this.stats.encapsulated++;
  }

  /**
   * encapSegments segments the super-frame [s, e) (current offload state) into frames that fit
   * the underlay and sends them to `vtep`: as UDP-GSO trains (a VXLAN header in front of each
   * segment, one send per <= 64 KiB) when the overlay can, else one encapsulated frame each.
   */
  private encapSegments(ov: SwitchPort, vtep: Vtep, b: Buffer, s: number, e: number): Drop {
    const train = ov.gso;
    const prefix = train ? VXLAN_HEADER_LEN : VXLAN_HEADROOM;
    const at = this.workTake(e - s + MAX_PIECES * (prefix + 128));
    if (at < 0) return Drop.GSO_UNSUPPORTED;
    const lens = this.lens;
    const n = segmentGso(this.vGso, this.vGsoSize, this.maxInnerIpLen, b, s, e, this.workBuf, at, prefix, lens);
    if (n < 0) return n === MtuStatus.GSO_TYPE_UNSUPPORTED || n === MtuStatus.DATAGRAM_TOO_BIG || n === MtuStatus.TOO_MANY_SEGMENTS ? Drop.GSO_UNSUPPORTED : Drop.OFFLOAD_INVALID;
    const w = this.workBuf;
    const stride = prefix + lens[0]!;
    this.workNext = at + (n - 1) * stride + prefix + lens[n - 1]!;
    if (!train) {
      for (let k = 0; k < n; k++) {
        const fs = at + k * stride + prefix;
        this.encapOne(ov, vtep, w, fs, fs + lens[k]!);
      }
      return Drop.NONE;
    }
    const vx = this.vxlanHdr;
    const perSend = Math.min(UDP_GSO_MAX_SEGS, Math.floor(UDP_GSO_MAX_BYTES / stride));
    for (let k = 0; k < n; k++) vx.reset(w, at + k * stride, at + k * stride + VXLAN_HEADER_LEN).emit(vtep.vni);
    for (let k = 0; k < n; k += perSend) {
      const last = Math.min(k + perSend, n) - 1;
      // Every chunk goes as a UDP_SEGMENT send (even a single datagram), so START is its first
      // VXLAN header and GSO_SIZE the datagram size.
      this.stage(ov, w, at + k * stride, at + last * stride + prefix + lens[last]!, vtep.underlayIp, vtep.port, stride);
    }
    let bytes = 0;
    for (let k = 0; k < n; k++) bytes += lens[k]!;
    vtep.txPackets += n;
    vtep.txBytes += bytes;
    this.stats.encapsulated += n;
    this.stats.gsoSegments += n;
    return Drop.NONE;
  }

  /**
   * oversize handles a frame whose inner IPv4 packet does not fit the underlay: DF -> ICMP
   * fragmentation needed back to the sender (rate-limited; the frame counts as mtu_exceeded),
   * no DF -> the inner packet is fragmented and each fragment encapsulated, else dropped.
   */
  private oversize(ingress: SwitchPort, ov: SwitchPort, vtep: Vtep, b: Buffer, s: number, e: number): Drop {
    const mtu = this.maxInnerIpLen;
    const action = oversizeAction(b, s, e, mtu);
    if (action === OversizeAction.FRAGMENT) {
      const at = this.workTake(e - s + MAX_PIECES * (VXLAN_HEADROOM + 128));
      if (at < 0) return Drop.MTU_EXCEEDED;
      const lens = this.lens;
      const n = fragmentIpv4(b, s, e, mtu, this.workBuf, at, VXLAN_HEADROOM, lens);
      if (n < 0) return Drop.MTU_EXCEEDED;
      const stride = VXLAN_HEADROOM + lens[0]!;
      this.workNext = at + (n - 1) * stride + VXLAN_HEADROOM + lens[n - 1]!;
      for (let k = 0; k < n; k++) {
        const fs = at + k * stride + VXLAN_HEADROOM;
        this.encapOne(ov, vtep, this.workBuf, fs, fs + lens[k]!);
      }
      this.stats.fragmented++;
      return Drop.NONE;
    }
    if (action === OversizeAction.FRAG_NEEDED) return this.fragNeeded(ingress, b, s, e);
    return Drop.MTU_EXCEEDED;
  }

  /**
   * fragNeeded answers the frame [s, e) (as its sender sent it: addresses unchanged) with the
   * kernel's tunnel PMTU reply, rate-limited, and counts the frame as mtu_exceeded.
   */
  private fragNeeded(ingress: SwitchPort, b: Buffer, s: number, e: number): Drop {
    if (ingress.role === PortRole.OVERLAY) return Drop.MTU_EXCEEDED;
    if (!this.icmpBucket.take(this.clock.now)) {
      this.stats.icmpSuppressed++;
      return Drop.MTU_EXCEEDED;
    }
    const base = this.scratchSlot() + VXLAN_HEADROOM;
    const len = buildFragNeeded(b, s, e, this.maxInnerIpLen, this.scratch.arena, base, this.errViews);
    if (len > 0) {
      this.stats.icmpSent++;
      this.stats.fragNeededSent++;
      this.clearOffload();
      this.stageLocal(ingress, this.scratch.arena, base, base + len);
    }
    return Drop.MTU_EXCEEDED;
  }

  // ---------------------------------------------------------------------------------------
  // Egress toward local ports (pods, the host).

  /**
   * deliver queues the frame [s, e) (current offload state) to a local port. A port with
   * virtio-net headers takes it as it is (its header passed through) or, from the overlay,
   * through the coalescer; a port without must get complete frames: checksums finished,
   * super-frames segmented to the pod MTU.
   */
  private deliver(out: SwitchPort, b: Buffer, s: number, e: number): Drop {
    const vl = out.port.vnetHdrLen;
    if (vl > 0) {
      if (this.fromOverlayNow) {
        const q = out.gro!;
        if (q.arena !== b && q.count > 0) this.coalesceFor(out);
        if (!q.push(b, s, e)) {
          this.coalesceFor(out);
          q.push(b, s, e);
        }
        return Drop.NONE;
      }
      this.writeOffloadHeader(b, s - vl, vl);
      this.stage(out, b, s, e, 0, 0, 0);
      return Drop.NONE;
    }
    if (this.vGso !== VirtioGso.NONE) {
      const at = this.workTake(e - s + MAX_PIECES * 128);
      if (at < 0) return Drop.GSO_UNSUPPORTED;
      const lens = this.lens;
      const n = segmentGso(this.vGso, this.vGsoSize, this.podMtu, b, s, e, this.workBuf, at, 0, lens);
      if (n < 0) return n === MtuStatus.GSO_TYPE_UNSUPPORTED || n === MtuStatus.DATAGRAM_TOO_BIG ? Drop.GSO_UNSUPPORTED : Drop.OFFLOAD_INVALID;
      let fs = at;
      for (let k = 0; k < n; k++) {
        this.stage(out, this.workBuf, fs, fs + lens[k]!, 0, 0, 0);
        fs += lens[k]!;
      }
      this.workNext = fs;
      return Drop.NONE;
    }
    const bad = this.finishChecksum(b, s, e);
    if (bad !== Drop.NONE) return bad;
    this.stage(out, b, s, e, 0, 0, 0);
    return Drop.NONE;
  }

  /**
   * stageLocal queues a frame the switch made or rewrote (ARP reply, ICMP, echo reply): no
   * offload state, so a virtio header, if the port takes one, is all zeros.
   */
  private stageLocal(out: SwitchPort, b: Buffer, s: number, e: number): void {
    const vl = out.port.vnetHdrLen;
    if (vl > 0) this.writeOffloadHeader(b, s - vl, vl);
    this.stage(out, b, s, e, 0, 0, 0);
  }

  /** writeOffloadHeader writes the current offload state as a virtio-net header at `h`. */
  private writeOffloadHeader(b: Buffer, h: number, vl: number): void {
    const dv = b === this.lastBuf ? this.dv : dataViewOf(b);
    dv.setUint8(h, this.vFlags);
    dv.setUint8(h + 1, this.vGso);
    dv.setUint16(h + 2, this.vHdrLen, true);
    dv.setUint16(h + 4, this.vGsoSize, true);
    dv.setUint16(h + 6, this.vCsumStart, true);
    dv.setUint16(h + 8, this.vCsumOff, true);
    if (vl > 10) dv.setUint16(h + 10, 1, true); // num_buffers
  }

  /** coalesceAll merges what the overlay batch queued for each port with virtio-net headers. */
  private coalesceAll(): void {
    for (const sp of this.ports) if (sp !== null && sp.gro !== null && sp.gro.count > 0) this.coalesceFor(sp);
  }

  /**
   * coalesceFor runs the queued decapsulated frames of `out` through the coalescer: runs of
   * in-order TCP segments become super-frames with a GSO virtio header; the rest pass with an
   * all-zero header. Without room, or when the coalescer refuses, every frame passes as is.
   */
  private coalesceFor(out: SwitchPort): void {
    const q = out.gro!;
    const vl = out.port.vnetHdrLen;
    const co = this.coalescerFor(vl);
    const need = coalesceOutputBound(q, vl);
    const at = q.arena === this.workBuf ? this.workTake(need) : -1;
    const res = this.coOut;
    const cs = co.stats, supers = cs.superFrames, merged = cs.segmentsMerged;
    const r = at < 0 ? -1 : co.coalesce(q, this.workBuf, at, res);
    if (r >= 0) {
      this.workNext = at + need;
      for (let i = 0; i < res.count; i++) this.stage(out, res.arena, res.start(i), res.end(i), 0, 0, 0);
      this.stats.groSuperFrames += cs.superFrames - supers;
      this.stats.groSegmentsMerged += cs.segmentsMerged - merged;
    } else {
      this.clearOffload();
      for (let i = 0; i < q.count; i++) this.stageLocal(out, q.arena, q.start(i), q.end(i));
    }
    res.clear();
    q.clear();
  }

  private coalescerFor(vl: number): TcpCoalescer {
    let c = this.coalescers.get(vl);
    if (c === undefined) {
      c = new TcpCoalescer({ maxFrames: GRO_LIST_LEN, vnetHdrLen: vl });
      this.coalescers.set(vl, c);
    }
    return c;
  }

  /** setWork points the work area at buf[start, end). */
  private setWork(buf: Buffer, start: number, end: number): void {
    this.workBuf = buf;
    this.workStart = start;
    this.workNext = start;
    this.workEnd = end;
  }

  /**
   * workTake returns where `len` bytes of the work area start (the caller advances workNext
   * by what it used), flushing every queue first when the rest of the area is too small; -1
   * when even an empty area is.
   */
  private workTake(len: number): number {
    if (this.workNext + len > this.workEnd) {
      this.flushAll();
      if (this.workStart + len > this.workEnd) return -1;
    }
    return this.workNext;
  }

  // ---------------------------------------------------------------------------------------
  // ARP responder (L3): no ARP crosses the overlay. Replies are built in place.

  private arpFromPod(sp: SwitchPort, b: Buffer, s: number, e: number): Drop {
    const arp = this.arp.reset(b, s + ETH_HEADER_LEN, e);
    if (!arp.checkLen() || !arp.isEthernetIpv4()) return Drop.ARP_MALFORMED;
    // Anti-spoof: the sender must be the pod (0.0.0.0 is an RFC 5227 probe).
    const spa = arp.spa;
    if (arp.sha !== sp.mac || (spa !== sp.ip && spa !== 0)) return Drop.ARP_SPOOF;
    if (this.mode === SwitchMode.L2) return this.bridge(sp, b, s, e);
    if (arp.oper !== ArpOp.REQUEST) return Drop.ARP_UNANSWERED;
    const tpa = arp.tpa;
    if (tpa === spa) return Drop.ARP_UNANSWERED; // gratuitous ARP for its own address: nothing to answer
    let answer = -1;
    if (tpa === this.opts.gatewayIp || tpa === this.opts.vtepIp) answer = this.vtepMac;
    else {
      const r = this.table.lookup(tpa);
      if (r !== null && r.kind === RouteKind.LOCAL) answer = r.port === sp.id ? -1 : r.mac;
      else if (r !== null && r.kind === RouteKind.VTEP) answer = this.vtepMac;
    }
    if (answer < 0) return Drop.ARP_UNANSWERED;
    this.arpReply(sp, b, s, answer);
    return Drop.NONE;
  }

  private arpFromHost(sp: SwitchPort, b: Buffer, s: number, e: number): Drop {
    const arp = this.arp.reset(b, s + ETH_HEADER_LEN, e);
    if (!arp.checkLen() || !arp.isEthernetIpv4()) return Drop.ARP_MALFORMED;
    if (arp.oper !== ArpOp.REQUEST) return Drop.ARP_UNANSWERED;
    const tpa = arp.tpa;
    // The host reaches every pod (local or remote) through the switch as its router.
    if (tpa === this.opts.vtepIp || !(this.opts.clusterCidr.contains(tpa) || tpa === this.opts.gatewayIp)) return Drop.ARP_UNANSWERED;
    const r = tpa === this.opts.gatewayIp ? null : this.table.lookup(tpa);
    if (r !== null && (r.kind === RouteKind.BLACKHOLE || r.kind === RouteKind.HOST)) return Drop.ARP_UNANSWERED;
    this.arpReply(sp, b, s, this.vtepMac);
    return Drop.NONE;
  }

  /** arpReply turns the request at s (checked) into the reply "tpa is-at mac" and sends it back. */
  private arpReply(sp: SwitchPort, b: Buffer, s: number, mac: number): void {
    const arp = this.arp;
    const sha = arp.sha, spa = arp.spa, tpa = arp.tpa;
    arp.emit(ArpOp.REPLY, mac, tpa, sha, spa);
    this.eth.reset(b, s, s + ETH_HEADER_LEN).emit(sha, mac, EtherType.ARP);
    this.stageLocal(sp, b, s, s + ETH_HEADER_LEN + 28);
    this.stats.arpReplies++;
  }

  /**
   * announceGateway sends each pod (or only `only`) a gratuitous ARP: the gateway address is at
   * our VTEP MAC. Pods that cached another MAC for the gateway (the VTEP MAC changed across a
   * restart) update it at once instead of losing traffic until the entry expires. L3 only.
   */
  announceGateway(only: SwitchPort | null = null): number {
    if (this.mode !== SwitchMode.L3) return 0;
    let n = 0;
    for (const sp of this.ports) {
      if (sp === null || sp.role !== PortRole.POD || (only !== null && sp !== only)) continue;
      const base = this.scratchSlot() + VXLAN_HEADROOM;
      const sb = this.scratch.arena;
      const len = ETH_HEADER_LEN + ARP_LEN;
      this.eth.reset(sb, base, base + len).emit(BROADCAST_MAC, this.vtepMac, EtherType.ARP);
      this.arp.reset(sb, base + ETH_HEADER_LEN, base + len).emit(ArpOp.REQUEST, this.vtepMac, this.opts.gatewayIp, 0, this.opts.gatewayIp);
      this.clearOffload();
      this.stageLocal(sp, sb, base, base + len);
      n++;
    }
    this.flushAll();
    return n;
  }

  // ---------------------------------------------------------------------------------------
  // L2: a learning bridge per VNI across the overlay (frames are forwarded unchanged).

  private bridge(ingress: SwitchPort, b: Buffer, s: number, e: number): Drop {
    const dv = this.dv;
    const now = this.clock.now;
    if (ingress.role !== PortRole.OVERLAY) {
      const smac = dvU48(dv, s + 6);
      if ((dv.getUint8(s + 6) & 1) === 0 && smac !== 0) {
        const r = this.fdb.learn(smac, ingress.id, null, now);
        if (r === Learn.MOVED) this.onMove(smac, undefined);
        else if (r === Learn.STATIC_CONFLICT || r === Learn.FULL) return this.onRefused(r, smac);
      }
    }
    if (this.mssClamp) this.clampIfTcp(dv, b, s, e);
    if ((dv.getUint8(s) & 1) !== 0) return this.flood(ingress, b, s, e);
    const ent = this.fdb.lookup(dvU48(dv, s), now);
    if (ent === undefined) return this.flood(ingress, b, s, e);
    if (ent.vtep !== null) {
      if (ingress.role === PortRole.OVERLAY) return Drop.OVERLAY_LOOP;
      return this.encapTo(ingress, ent.vtep, b, s, e);
    }
    const out = this.ports[ent.port];
    if (out === null || out === undefined) return Drop.NO_ROUTE;
    if (out === ingress) return Drop.HAIRPIN;
    return this.deliver(out, b, s, e);
  }

  /** clampIfTcp: MSS clamping for an untagged IPv4 TCP frame (L2 frames are not validated yet). */
  private clampIfTcp(dv: DataView, b: Buffer, s: number, e: number): void {
    if (e - s < ETH_HEADER_LEN + 20 || dv.getUint16(s + 12) !== EtherType.IPV4) return;
    if (dv.getUint8(s + ETH_HEADER_LEN + 9) === IpProto.TCP) clampMss(b, s, e, this.podMtu);
  }

  /**
   * flood sends a BUM frame to every local port but the ingress and, unless it came from the
   * overlay, one copy to each VTEP of the flood list (head-end replication). The first VTEP
   * gets the frame in place; the others get copies in scratch slots.
   */
  private flood(ingress: SwitchPort, b: Buffer, s: number, e: number): Drop {
    let localVnet = false;
    for (const sp of this.ports) {
      if (sp === null || sp === ingress || sp.role === PortRole.OVERLAY) continue;
      const d = this.deliver(sp, b, s, e);
      if (d !== Drop.NONE) this.stats.drop(d);
      if (sp.port.vnetHdrLen > 0) localVnet = true;
    }
    if (ingress.role === PortRole.OVERLAY) return Drop.NONE; // never flooded back into the overlay
    const list = this.fdb.floodList;
    // A super-frame is segmented from the original without touching it: no copies needed.
    if (this.vGso !== VirtioGso.NONE) {
      for (let i = 0; i < list.length; i++) {
        const d = this.encapTo(ingress, list[i]!, b, s, e);
        if (d !== Drop.NONE) this.stats.drop(d);
      }
      return Drop.NONE;
    }
    // The first VTEP takes the frame in place (its outer header goes in front of it), unless a
    // local copy's virtio header already sits there; every other VTEP gets a copy.
    const len = e - s;
    const inPlace = localVnet ? 0 : 1;
    for (let i = inPlace; i < list.length; i++) {
      if (len > SCRATCH_SLOT_SIZE - VXLAN_HEADROOM) { this.stats.drop(Drop.MTU_EXCEEDED); continue; }
      const base = this.scratchSlot() + VXLAN_HEADROOM;
      b.copy(this.scratch.arena, base, s, e);
      this.stats.floodCopies++;
      const d = this.encapTo(ingress, list[i]!, this.scratch.arena, base, base + len);
      if (d !== Drop.NONE) this.stats.drop(d);
    }
    if (inPlace === 1 && list.length > 0) return this.encapTo(ingress, list[0]!, b, s, e);
    return Drop.NONE;
  }

  private onMove(mac: number, to: Vtep | undefined): void {
    this.stats.fdbMoved++;
    if (fdbMoveChannel.hasSubscribers) fdbMoveChannel.publish({ mac: formatMac(mac), to: to?.name ?? 'local' });
  }

  private onRefused(r: Learn, mac: number): Drop {
    if (fdbRefusedChannel.hasSubscribers) fdbRefusedChannel.publish({ mac: formatMac(mac), reason: r === Learn.FULL ? 'fdb_full' : 'static_conflict' });
    return r === Learn.FULL ? Drop.FDB_FULL : Drop.FDB_STATIC_CONFLICT;
  }

  // ---------------------------------------------------------------------------------------
  // Switch-originated ICMP errors.

  /** icmpError answers the IPv4 packet in [s, e) from `ingress` with an ICMP error, rate limited. */
  private icmpError(ingress: SwitchPort, b: Buffer, s: number, e: number, type: number, code: number, rest: number): void {
    const orig = this.ip.reset(b, s + ETH_HEADER_LEN, e);
    if (!mayAnswerWithError(orig)) return;
    if (!this.icmpBucket.take(this.clock.now)) { this.stats.icmpSuppressed++; return; }
    const src = ingress.role === PortRole.POD ? this.opts.gatewayIp : this.opts.vtepIp;
    const base = this.scratchSlot() + VXLAN_HEADROOM;
    // The error goes back to the frame's sender: its source MAC (a pod, the host, or a peer VTEP).
    const dstMac = dvU48(this.dv, s + 6);
    const len = buildIcmpError(this.scratch.arena, base, dstMac, this.vtepMac, src, type, code, rest, orig, this.errViews);
    this.stats.icmpSent++;
    this.clearOffload();
    if (ingress.role === PortRole.OVERLAY) {
      // Back through the tunnel to the sender's node: route by the new destination.
      const r = this.table.lookup(orig.src);
      if (r !== null && r.kind === RouteKind.VTEP && this.overlay !== null) {
        const sb = this.scratch.arena;
        dvPutU48(dataViewOf(sb), base, r.vtep!.mac);
        this.encapOne(this.overlay, r.vtep!, sb, base, base + len);
      }
      return;
    }
    this.stageLocal(ingress, this.scratch.arena, base, base + len);
  }

  private scratchSlot(): number {
    if (this.scratchNext === SCRATCH_SLOTS) {
      this.flushAll();
      this.scratchNext = 0;
    }
    return this.scratch.slotOff(this.scratchNext++);
  }

  // ---------------------------------------------------------------------------------------
  // Egress queues.

  private stage(out: SwitchPort, b: Buffer, start: number, end: number, addr: number, port: number, gsoSize: number): void {
    const q = out.tx;
    if (!q.push(b, start, end, addr, port, gsoSize)) {
      this.flushPort(out);
      q.push(b, start, end, addr, port, gsoSize);
    }
  }

  private flushPort(sp: SwitchPort): void {
    const q = sp.tx;
    const n = q.count;
    if (n === 0) return;
    const sent = sp.port.write(q);
    if (sent < 0) this.stats.drops[Drop.TX_ERROR]! += n;
    else {
      this.stats.txFrames += sent;
      if (sent < n) this.stats.drops[Drop.TX_BUSY]! += n - sent;
    }
    q.clear();
  }

  private flushAll(): void {
    for (const sp of this.ports) if (sp !== null) this.flushPort(sp);
    this.scratchNext = 0;
    this.workNext = this.workStart;
  }
}
