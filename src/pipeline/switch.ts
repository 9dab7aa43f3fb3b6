/**
 * The flatnet switch: one node's data plane over abstract ports (pods, the host, the overlay).
 * It does not know what backs a port. This file is its control side; the data path is the
 * pipeline (pipeline.ts and one module per stage).
 *
 * Control: ports are attached and detached, the peer set is replaced, and every change rebuilds
 * the derived tables (routes, static FDB entries, the flood list) from the whole set and swaps
 * them in: never patched piecemeal. Policy and service tables plug into their stages here.
 * The caller (the daemon's reconciler) has validated what it passes; the checks below are
 * invariants, thrown as RangeError when a caller breaks them.
 *
 * Running: start() watches every port and drains a readable one batch by batch (a bounded
 * number per wakeup, for fairness); with busy polling on (setBusyPoll, busy-poll.ts), a drain
 * that moved frames is followed by a spin that reads every port until nothing has arrived for
 * the budget. pump() drains in-process (tests, replay); trace() asks what the pipeline would do
 * with a frame, without doing any of it.
 */

import { Cidr } from '../fib/cidr.js';
import { Route as RouteEntry, RouteKind, RouteTable } from '../fib/route-table.js';
import { U32Map } from '../fib/u32-map.js';
import { type EncapSettings, Vtep, type VtepSpec } from '../fib/vtep.js';
import { formatIpv4, formatMac, BROADCAST_MAC } from '../wire/addr.js';
import { ARP_LEN, ArpOp, ArpView } from '../wire/arp.js';
import { EtherType } from '../wire/consts.js';
import { VXLAN_HEADROOM } from '../wire/encap.js';
import { ETH_HEADER_LEN, EthAddrWords, EthernetView } from '../wire/ethernet.js';
import { VIRTIO_NET_HDR_TNL_LEN } from '../wire/virtio-net-hdr.js';
import { BUSY_POLL_OFF, type BusyPollSetting, BusyPollStats, type MsClock, perfClock, SpareCore } from './busy-poll.js';
import { FrameContext } from './context.js';
import { Pipeline } from './pipeline.js';
import type { PolicyDirection, PolicyTable, Tracking } from './policy.js';
import type { Port } from './port.js';
import type { ServiceTable } from './service-nat.js';
import { SwitchState, SwitchMode, vtepAddresses, type SwitchOptions } from './state.js';
import { Framing, type OverlayAttach, type PortLayout, PortRole, SwitchPort } from './switch-port.js';
import { runTrace, type TraceInput } from './trace-run.js';
import type { TraceResult } from './trace.js';
import { SEGMENT_SPARE } from './transmit.js';

export { fdbMoveChannel, fdbRefusedChannel } from './bridge.js';
export { Framing, PortRole, SwitchPort, type OverlayAttach } from './switch-port.js';
export { SwitchMode, type SwitchOptions } from './state.js';

/** Slots for super-frames (TSO/GSO from a virtio port, UDP GRO reads): 64 KiB + headroom. */
const BIG_SLOT = 65536 + 128;
/** Batch size for ports with big slots (fewer, larger frames per read). */
const BIG_BATCH = 16;
/** Read batches per wakeup before yielding to the event loop (fairness between ports). */
const DRAIN_BUDGET = 16;
/** How often `busyPoll: auto` samples the machine's idle time (SpareCore). */
const SPARE_SAMPLE_MS = 1000;

export class Switch {
  readonly opts: SwitchOptions;
  readonly mode: SwitchMode;
  readonly vni: number;
  readonly vtepMac: number;
  /** The forwarding state the stages read (and tests inspect). */
  readonly state: SwitchState;
  private readonly pipe: Pipeline;
  private readonly ctx = new FrameContext();
  private readonly slotSize: number;
  private readonly batchSize: number;
  private sweepTimer: NodeJS.Timeout | null = null;
  private readonly eth = new EthernetView();
  private readonly arp = new ArpView();
  /** Busy polling: the setting, its counters, the clock it reads, auto's decision. */
  private pollSetting: BusyPollSetting = BUSY_POLL_OFF;
  readonly pollStats = new BusyPollStats();
  private pollClock: MsClock = perfClock;
  private spare: SpareCore | null = null;
  private spareTimer: NodeJS.Timeout | null = null;
  /** Budget in ms (0: off), when the last frame was read (ms of pollClock), whether a spin runs. */
  private spinBudgetMs = 0;
  private lastFrameAt = 0;
  private spinning = false;
  private spinQueued = false;
  private running = false;
  private readonly spinLater = (): void => { this.spinQueued = false; if (this.running) this.spin(); };

  constructor(opts: SwitchOptions) {
    this.opts = opts;
    this.mode = opts.mode;
    this.vni = opts.vni;
    this.vtepMac = opts.vtepMac;
    this.batchSize = opts.batchSize ?? 64;
    this.slotSize = opts.slotSize ?? 2048;
    this.state = new SwitchState(opts);
    this.pipe = new Pipeline(this.state);
    this.state.routes = this.buildRoutes();
  }

  get stats(): SwitchState['stats'] { return this.state.stats; }
  get clock(): SwitchState['clock'] { return this.state.clock; }
  get fdb(): SwitchState['fdb'] { return this.state.fdb; }
  get routes(): RouteTable { return this.state.routes; }
  get peerList(): readonly Vtep[] { return this.state.peers; }
  get portList(): SwitchPort[] { return this.state.ports.filter((p): p is SwitchPort => p !== null); }
  /** The tunnel TAP (attachTunnelOffload), or null. Not in portList: transmit only, no id. */
  get tunnelPort(): SwitchPort | null { return this.state.tunnelTap; }
  /** portList and, last, the tunnel TAP when there is one: every port with counters (show ports, the error watch). */
  get allPorts(): SwitchPort[] {
    const t = this.state.tunnelTap;
    return t === null ? this.portList : [...this.portList, t];
  }
  /** The largest inner IPv4 packet that fits the underlay after encapsulation. */
  get maxInnerIpLen(): number { return this.state.maxInnerIpLen; }
  get podMtu(): number { return this.state.podMtu; }

  // ---------------------------------------------------------------------------------------
  // Control: ports, peers, policy and service tables.

  attachPod(port: Port, ip: number, mac: number, name = port.name): SwitchPort {
    const st = this.state;
    if (!st.podCidr.contains(ip) || ip === st.gatewayIp || ip === st.vtepIp) throw new RangeError(`pod IP ${formatIpv4(ip)} is not a pod address of ${st.podCidr}`);
    for (const p of st.ports) {
      if (p !== null && p.isPod && (p.ip === ip || p.mac === mac)) {
        throw new RangeError(`pod ${name}: IP ${formatIpv4(ip)} or MAC ${formatMac(mac)} already bound to ${p.name}`);
      }
    }
    const sp = this.add(PortRole.POD, port, name, Framing.ETHERNET, Framing.ETHERNET, ip, mac, this.layoutFor(port, false), false);
    st.podByMac.set(mac, sp);
    this.rebuild();
    return sp;
  }

  attachHost(port: Port, mac = 0, name = port.name): SwitchPort {
    if (this.state.host !== null) throw new RangeError('a host port is already attached');
    const sp = this.add(PortRole.HOST, port, name, Framing.ETHERNET, Framing.ETHERNET, 0, mac, this.layoutFor(port, false), false);
    this.state.host = sp;
    this.rebuild();
    return sp;
  }

  /** attachOverlay: `framing` for both directions, or an OverlayAttach with what differs. */
  attachOverlay(port: Port, framing: Framing | OverlayAttach, name = port.name): SwitchPort {
    if (this.state.overlay !== null) throw new RangeError('an overlay port is already attached');
    const a: OverlayAttach = typeof framing === 'string' ? { rx: framing, tx: framing } : framing;
    if (a.rx === Framing.IP) throw new RangeError('an overlay port cannot receive IPv4 packets: use UDP or Ethernet framing');
    if ((a.gso ?? false) && a.tx === Framing.ETHERNET) throw new RangeError('UDP-GSO trains need a UDP socket: not with Ethernet framing');
    const sp = this.add(PortRole.OVERLAY, port, name, a.rx, a.tx, 0, 0, this.layoutFor(port, a.gro ?? false), a.gso ?? false);
    this.state.overlay = sp;
    if (a.tunnel !== undefined) this.attachTunnelOffload(a.tunnel.port, a.tunnel.mac);
    return sp;
  }

  /**
   * attachTunnelOffload: TCP super-frames from pods and the host to a peer are then written whole
   * to `port`, a TAP opened with the 24-byte virtio-net header and UDP-tunnel GSO (TapPort with
   * `udpTunnel`), outer headers included, addressed to the TAP's MAC `tapMac`: the kernel takes
   * them in, forwards them to the underlay and segments them there (or carries them whole across
   * a veth, as its own VXLAN does). Transmit only: the switch never reads the port. Peers with
   * outer UDP checksums, inner IPv6 and frames the outer IPv4 length cannot describe keep the
   * software path. null removes it.
   */
  attachTunnelOffload(port: Port | null, tapMac = 0, name = port?.name ?? 'tunnel'): SwitchPort | null {
    const st = this.state;
    if (st.tunnelTap !== null) {
      this.pipe.tx.flushPort(st.tunnelTap);
      st.tunnelTap.attached = false;
      st.tunnelTap = null;
    }
    if (port === null) return null;
    if (port.vnetHdrLen !== VIRTIO_NET_HDR_TNL_LEN) throw new RangeError(`${name}: the tunnel TAP needs the ${VIRTIO_NET_HDR_TNL_LEN}-byte virtio-net header (it has ${port.vnetHdrLen})`);
    const sp = new SwitchPort(-1, PortRole.OVERLAY, port, name, Framing.ETHERNET, Framing.ETHERNET, 0, tapMac, { capacity: 1, slotSize: 64, spare: 0 }, false);
    st.tunnelTap = sp;
    st.tunnelTapMac = tapMac;
    return sp;
  }

  /** detach removes a port (its routes and FDB entries go with it); the port is not closed. */
  detach(id: number): SwitchPort {
    const st = this.state;
    const sp = st.ports[id];
    if (sp === undefined || sp === null) throw new RangeError(`no port ${id}`);
    this.pipe.tx.flushPort(sp);
    sp.port.onReadable(null);
    sp.attached = false;
    st.ports[id] = null;
    if (sp === st.host) st.host = null;
    if (sp === st.overlay) {
      st.overlay = null;
      this.attachTunnelOffload(null);
    }
    if (sp.isPod) st.podByMac.delete(sp.mac);
    st.fdb.removeWhere((e) => e.port === id);
    this.rebuild();
    return sp;
  }

  /** setPeers replaces the set of remote VTEPs (reconciled, not patched); counters of peers that stay carry over. */
  setPeers(specs: readonly VtepSpec[]): void {
    const st = this.state, o = this.opts;
    const enc: EncapSettings = { ...o.encap, localUnderlayIp: o.underlayIp };
    const peers = specs.map((s) => new Vtep(s, enc));
    const byIp = new U32Map<Vtep>();
    for (const p of peers) {
      if (byIp.has(p.underlayIp)) throw new RangeError(`two peers with underlay address ${formatIpv4(p.underlayIp)}`);
      if (p.underlayIp === o.underlayIp) throw new RangeError(`peer ${p.name} has this node's underlay address`);
      byIp.set(p.underlayIp, p);
    }
    for (const p of peers) {
      const old = st.peerByIp.get(p.underlayIp);
      if (old !== undefined) {
        p.txPackets = old.txPackets; p.txBytes = old.txBytes; p.txFailed = old.txFailed; p.rxPackets = old.rxPackets; p.rxBytes = old.rxBytes;
      }
    }
    const gone = new Set(st.peers.filter((p) => !byIp.has(p.underlayIp)));
    st.peers = peers;
    st.peerByIp = byIp;
    st.vtepAddrs = vtepAddresses(st, peers);
    // Learned entries pointing at replaced Vtep objects are re-pointed or dropped.
    st.fdb.removeWhere((e) => e.vtep !== null && (gone.has(e.vtep) || byIp.get(e.vtep.underlayIp) !== e.vtep));
    this.rebuild();
  }

  /** setPolicy installs (or, with null, removes) the policy table of one direction. */
  setPolicy(direction: PolicyDirection, table: PolicyTable | null): void {
    (direction === 'egress' ? this.pipe.policyEgress : this.pipe.policyIngress).table = table;
    this.hooksChanged();
  }

  /** setServices installs (or, with null, removes) the service table of the NAT stage. */
  setServices(table: ServiceTable | null): void {
    this.pipe.serviceNat.table = table;
    this.hooksChanged();
  }

  private hooksChanged(): void {
    const p = this.pipe;
    p.hooks = p.policyEgress.table !== null || p.policyIngress.table !== null || p.serviceNat.table !== null;
    // One pre-pass for the batch needs one table and one clock behind every installed table.
    let tr: Tracking | null = null;
    for (const t of [p.serviceNat.table, p.policyEgress.table, p.policyIngress.table]) {
      if (t === null) continue;
      const x = t.tracking;
      if (x === undefined || (tr !== null && (x.ct !== tr.ct || x.clock !== tr.clock))) { tr = null; break; }
      tr = x;
    }
    p.tracking = tr;
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
    const ports = this.state.ports;
    let id = ports.indexOf(null);
    if (id < 0) id = ports.length;
    const sp = new SwitchPort(id, role, port, name, rx, tx, ip, mac, layout, gso);
    ports[id] = sp;
    return sp;
  }

  private rebuild(): void {
    const st = this.state;
    st.routes = this.buildRoutes();
    if (st.l2) {
      // Pods are static FDB entries on their ports; the flood list is every peer.
      const now = st.clock.tick();
      for (const sp of st.ports) if (sp !== null && sp.isPod) st.fdb.addStatic(sp.mac, sp.id, null, now);
      st.fdb.setFlood(st.peers);
    }
  }

  /** The L3 routes derived from the desired state (local pods, peers, the node, the default). */
  private buildRoutes(): RouteTable {
    const o = this.opts, st = this.state;
    const routes: RouteEntry[] = [];
    for (const sp of st.ports) {
      if (sp !== null && sp.isPod) routes.push(new RouteEntry(new Cidr(sp.ip, 32), RouteKind.LOCAL, { port: sp.id, mac: sp.mac, l2: new EthAddrWords(sp.mac, o.vtepMac) }));
    }
    routes.push(new RouteEntry(new Cidr(o.vtepIp, 32), RouteKind.HOST));
    routes.push(new RouteEntry(o.podCidr, RouteKind.BLACKHOLE));
    for (const p of st.peers) if (p.podCidr !== null) routes.push(new RouteEntry(p.podCidr, RouteKind.VTEP, { vtep: p, l2: new EthAddrWords(p.mac, o.vtepMac) }));
    if (o.clusterCidr.len < o.podCidr.len) routes.push(new RouteEntry(o.clusterCidr, RouteKind.BLACKHOLE));
    routes.push(new RouteEntry(new Cidr(0, 0), RouteKind.HOST));
    return new RouteTable(routes);
  }

  /**
   * announceGateway sends each pod (or only `only`) a gratuitous ARP: the gateway address is at
   * our VTEP MAC. Pods that cached another MAC for the gateway (the VTEP MAC changed across a
   * restart) update it at once instead of losing traffic until the entry expires. L3 only.
   */
  announceGateway(only: SwitchPort | null = null): number {
    const st = this.state;
    if (st.l2) return 0;
    const tx = this.pipe.tx, sb = tx.scratch.arena;
    let n = 0;
    for (const sp of st.ports) {
      if (sp === null || !sp.isPod || (only !== null && sp !== only)) continue;
      const base = tx.scratchSlot() + VXLAN_HEADROOM;
      const len = ETH_HEADER_LEN + ARP_LEN;
      this.eth.reset(sb, base, base + len).emit(BROADCAST_MAC, st.vtepMac, EtherType.ARP);
      this.arp.reset(sb, base + ETH_HEADER_LEN, base + len).emit(ArpOp.REQUEST, st.vtepMac, st.gatewayIp, 0, st.gatewayIp);
      tx.stageLocal(sp, sb, tx.scratchDv, base, base + len);
      n++;
    }
    tx.flushAll();
    return n;
  }

  // ---------------------------------------------------------------------------------------
  // Running: readiness callbacks, the FDB sweep timer.

  start(): void {
    const st = this.state;
    this.running = true;
    this.startSpareSampling();
    for (const sp of st.ports) if (sp !== null) this.watch(sp);
    if (st.l2 && this.sweepTimer === null) {
      const every = Math.min(10_000, Math.max(100, st.fdb.ageingMs / 10));
      this.sweepTimer = setInterval(() => st.fdb.sweep(st.clock.tick()), every);
      this.sweepTimer.unref();
    }
  }

  /** watch starts draining a port (attached after start()). */
  watch(sp: SwitchPort): void {
    sp.port.onReadable(() => {
      this.pollStats.wakeups++;
      this.drain(sp);
    });
  }

  stop(): void {
    this.running = false;
    for (const sp of this.state.ports) if (sp !== null) sp.port.onReadable(null);
    if (this.sweepTimer !== null) clearInterval(this.sweepTimer);
    this.sweepTimer = null;
    if (this.spareTimer !== null) clearInterval(this.spareTimer);
    this.spareTimer = null;
  }

  /**
   * setBusyPoll sets the poll mode (busy-poll.ts); `clock` and `spare` are for tests (a fake
   * clock; a SpareCore over canned /proc/stat text). May be called while running.
   */
  setBusyPoll(setting: BusyPollSetting, opts: { clock?: MsClock; spare?: SpareCore } = {}): void {
    if (setting.mode !== 'off' && !(Number.isFinite(setting.budgetUs) && setting.budgetUs > 0)) throw new RangeError(`busy poll budget ${setting.budgetUs} µs`);
    this.pollSetting = setting;
    this.pollClock = opts.clock ?? perfClock;
    this.spare = setting.mode === 'auto' ? (opts.spare ?? new SpareCore()) : null;
    if (this.spareTimer !== null) clearInterval(this.spareTimer);
    this.spareTimer = null;
    this.applySpare();
    if (this.running) this.startSpareSampling();
  }

  get busyPoll(): BusyPollSetting { return this.pollSetting; }
  /** Whether a drain that moved frames spins now (off, or auto without a spare core: false). */
  get spinEnabled(): boolean { return this.spinBudgetMs > 0; }
  /** auto's last sample: spare cores (-1 before two samples), or null when not auto. */
  get spareCores(): number | null { return this.spare === null ? null : this.spare.spareCores; }
  /** auto: how often the decision changed. */
  get spareChanges(): number { return this.spare === null ? 0 : this.spare.changes; }

  /** sampleSpareCore takes one auto sample now (the timer's job; tests call it). */
  sampleSpareCore(): void {
    if (this.spare === null) return;
    this.spare.sample(this.pollStats.spinMs);
    this.applySpare();
  }

  private applySpare(): void {
    const s = this.pollSetting;
    const on = s.mode === 'always' || (s.mode === 'auto' && this.spare !== null && this.spare.allowed);
    this.spinBudgetMs = on ? s.budgetUs / 1000 : 0;
  }

  private startSpareSampling(): void {
    if (this.spare === null || this.spareTimer !== null) return;
    this.sampleSpareCore();
    this.spareTimer = setInterval(() => this.sampleSpareCore(), SPARE_SAMPLE_MS);
    this.spareTimer.unref();
  }

  /**
   * pump drains every port until none has frames (in-process use: tests, replay). Returns the
   * number of frames read.
   */
  pump(maxRounds = 1_000_000): number {
    const ports = this.state.ports;
    let total = 0;
    for (let round = 0; round < maxRounds; round++) {
      let n = 0;
      for (let i = 0; i < ports.length; i++) {
        const sp = ports[i];
        if (sp !== null && sp !== undefined) n += this.drainOnce(sp);
      }
      if (n === 0) break;
      total += n;
    }
    return total;
  }

  private drain(sp: SwitchPort): void {
    let moved = 0;
    for (let k = 0; k < DRAIN_BUDGET; k++) {
      const n = this.drainOnce(sp);
      moved += n;
      if (n < sp.batch.capacity) {
        if (moved > 0 && this.spinBudgetMs > 0) {
          this.lastFrameAt = this.pollClock();
          this.pollStats.spins++;
          this.spin();
        }
        return;
      }
    }
    // Still busy: give the other ports (and timers) a turn, then continue.
    setImmediate(() => { if (sp.attached) this.drain(sp); });
  }

  /**
   * spin reads every port, round after round, without sleeping, until `spinBudgetMs` has passed
   * since the last frame (then the ports' readiness callbacks take over again). One call runs
   * for at most the budget in all: if frames were still coming when it ran out, the spin goes
   * on after one event-loop turn (timers, signals, the control socket), from the same last
   * frame. A drain inside the spin does not start another (the `spinning` flag).
   */
  private spin(): void {
    if (this.spinning || this.spinBudgetMs <= 0) return;
    this.spinning = true;
    const ports = this.state.ports, clock = this.pollClock, budget = this.spinBudgetMs, st = this.pollStats;
    const start = clock();
    let t = start, caught = 0, rounds = 0, last = this.lastFrameAt;
    for (;;) {
      let n = 0;
      for (let i = 0; i < ports.length; i++) {
        const sp = ports[i];
        if (sp !== null && sp !== undefined) n += this.drainOnce(sp);
      }
      rounds++;
      t = clock();
      if (n > 0) { caught += n; last = t; }
      if (t - last >= budget) break;
      if (t - start >= budget) {
        // Frames still coming: let the event loop run once, then go on.
        st.yields++;
        if (!this.spinQueued) { this.spinQueued = true; setImmediate(this.spinLater); }
        break;
      }
    }
    this.lastFrameAt = last;
    st.rounds += rounds;
    st.frames += caught;
    st.spinMs += t - start;
    this.spinning = false;
  }

  /** drainOnce reads one batch from `sp`, processes it and flushes; returns the frame count. */
  drainOnce(sp: SwitchPort): number {
    if (!sp.attached) return 0;
    const batch = sp.batch;
    const n = sp.port.read(batch, sp.headroom);
    if (n <= 0) return 0;
    this.state.clock.tick();
    this.pipe.processBatch(this.ctx, sp, batch, n);
    return n;
  }

  // ---------------------------------------------------------------------------------------
  // Trace.

  /**
   * trace: what the pipeline would do with `input.frame` arriving on `input.port` (a port of
   * this switch): every stage's decision, and the frames that would leave. Nothing is changed:
   * no counter, no FDB entry or timestamp, no rate-limit token, no queue.
   */
  trace(input: TraceInput): TraceResult {
    return runTrace(this.state, this.pipe, input);
  }
}
