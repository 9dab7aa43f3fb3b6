/**
 * The pipeline: one node's data path as a chain of stages over one reusable FrameContext.
 *
 *   1 ingress          classify, anti-spoof, ARP responder; decapsulation for the overlay
 *   2 policy-egress    NetworkPolicy for the sending pod (pass-through today)
 *   3 service-nat      ClusterIP load balancing (pass-through today)
 *   4 route | bridge   L3: LPM to a local pod, the host or a peer VTEP; L2: learning bridge
 *   5 policy-ingress   NetworkPolicy for the receiving pod (pass-through today)
 *   6 egress           how it leaves: encapsulation, segments, fragments, frag-needed, GRO
 *   7 transmit         egress queues, one write per port per batch
 *
 * Each stage decides first (reads the frame and the tables, writes only the context) and then
 * acts (rewrites, learns, counts, takes rate-limit tokens, queues). A frame's verdict is NEXT
 * until a stage decides where it goes; forwarding decisions (DELIVER, TUNNEL, FLOOD) can still
 * be vetoed by a later stage; REPLY and DROP end the chain. Exactly one drop reason is counted
 * for a dropped frame. A trace (Switch.trace) runs the same decide() of every stage with the
 * acts switched off and a recorder in the context; on the data path the recorder is null and
 * each hook costs one null check.
 *
 * Per batch (processBatch): the frames of one read, in order; their offload state from the
 * virtio-net header in front of each; decapsulated TCP coalesced per port at the end; every
 * queue flushed before the batch's memory is read into again.
 */

import { type FrameList, META_STRIDE, Meta, MetaFlag } from '../buf/batch.js';
import { EMPTY, EMPTY_DV, dataViewOf } from '../wire/bytes.js';
import { formatIpv4 } from '../wire/addr.js';
import { ArpResponder } from './arp.js';
import { Bridge } from './bridge.js';
import { Reply, Verdict, type FrameContext } from './context.js';
import { Drop, DROP_NAMES } from './drop.js';
import { Egress, planText } from './egress.js';
import { Gro } from './gro.js';
import { IcmpReplies } from './icmp.js';
import { Ingress } from './ingress.js';
import { OverlayIngress } from './ingress-overlay.js';
import { PolicyDirection, PolicyStage } from './policy.js';
import { Route } from './route.js';
import { ServiceNatStage } from './service-nat.js';
import type { SwitchState } from './state.js';
import { PortRole, type SwitchPort } from './switch-port.js';
import { Transmit } from './transmit.js';
import { Tunnel } from './tunnel.js';

export class Pipeline {
  private readonly st: SwitchState;
  readonly tx: Transmit;
  readonly tunnel: Tunnel;
  readonly icmp: IcmpReplies;
  readonly arp: ArpResponder;
  readonly ingress: Ingress;
  readonly policyEgress = new PolicyStage(PolicyDirection.EGRESS);
  readonly serviceNat = new ServiceNatStage();
  readonly route: Route;
  readonly bridge: Bridge;
  readonly policyIngress = new PolicyStage(PolicyDirection.INGRESS);
  readonly egress: Egress;
  readonly gro: Gro;
  private lastBuf: Buffer = EMPTY;
  private lastDv: DataView = EMPTY_DV;

  constructor(st: SwitchState) {
    this.st = st;
    this.tx = new Transmit(st);
    this.tunnel = new Tunnel(st, this.tx);
    this.icmp = new IcmpReplies(st, this.tx, this.tunnel);
    this.arp = new ArpResponder(st, this.tx);
    const overlay = new OverlayIngress(st);
    this.ingress = new Ingress(st, this.arp, overlay);
    overlay.ingress = this.ingress;
    this.route = new Route(st, this.icmp);
    this.bridge = new Bridge(st);
    this.gro = new Gro(st, this.tx);
    this.egress = new Egress(st, this.tx, this.tunnel, this.gro, this.icmp);
  }

  /**
   * run takes the frame loaded into `c` through the stages. `dry`: decisions only (a trace).
   * Every stage is called by name (one monomorphic call site each, which V8 inlines).
   */
  run(c: FrameContext, dry: boolean): void {
    const t = c.trace;
    if (t !== null) t.begin('ingress');
    this.ingress.decide(c);
    if (t !== null) t.end(verdictText(c));
    if (!dry) this.ingress.act(c);
    if (c.verdict >= Verdict.REPLY) return;

    // The policy and NAT stages are called only when a table is installed (or a trace wants
    // their line): without one they pass every frame, and the data path pays one load each.
    if (c.ingress.role === PortRole.POD && (this.policyEgress.table !== null || t !== null)) {
      if (t !== null) t.begin('policy-egress');
      this.policyEgress.decide(c);
      if (t !== null) t.end(verdictText(c));
      if (!dry) this.policyEgress.act(c);
      if (c.verdict >= Verdict.REPLY) return;
    }

    if (c.verdict === Verdict.NEXT) {
      if (this.serviceNat.table !== null || t !== null) {
        if (t !== null) t.begin('service-nat');
        this.serviceNat.decide(c);
        if (t !== null) t.end(verdictText(c));
        if (!dry) this.serviceNat.act(c);
        if (c.verdict >= Verdict.REPLY) return;
      }
      if (this.st.l2) {
        if (t !== null) t.begin('bridge');
        this.bridge.decide(c);
        if (t !== null) t.end(verdictText(c));
        if (!dry) this.bridge.act(c);
      } else {
        if (t !== null) t.begin('route');
        this.route.decide(c);
        if (t !== null) t.end(verdictText(c));
        if (!dry) this.route.act(c);
      }
      if (c.verdict >= Verdict.REPLY) return;
    }

    if (c.verdict !== Verdict.TUNNEL && (this.policyIngress.table !== null || t !== null)) {
      if (t !== null) t.begin('policy-ingress');
      this.policyIngress.decide(c);
      if (t !== null) t.end(verdictText(c));
      if (!dry) this.policyIngress.act(c);
      if (c.verdict >= Verdict.REPLY) return;
    }

    if (t !== null) t.begin('egress');
    this.egress.decide(c);
    if (t !== null) t.end(c.verdict === Verdict.DROP ? verdictText(c) : c.verdict === Verdict.FLOOD ? 'flood' : planText(c));
    if (!dry) this.egress.act(c);
    if (t !== null) this.transmitStep(c);
  }

  /** transmitStep: the trace's last line, naming the queue(s) the frame would go to. */
  private transmitStep(c: FrameContext): void {
    const t = c.trace!;
    if (c.verdict === Verdict.DROP) return;
    t.begin('transmit');
    if (c.verdict === Verdict.DELIVER) t.look(`queue of ${c.out!.role} port ${c.out!.name}`);
    else if (c.verdict === Verdict.TUNNEL) t.look(`queue of overlay port ${this.st.overlay!.name}, to ${formatIpv4(c.vtep!.underlayIp)}:${c.vtep!.port}`);
    else t.look('the queues of every output above');
    t.end('queued: one write per port per batch');
    t.note('transmit-time outcomes (tx_busy, tx_error: the port refusing the write) cannot be traced');
  }

  /** one runs the loaded frame through the stages and counts it (and its drop, if any). */
  private one(c: FrameContext): void {
    const stats = this.st.stats;
    stats.rxFrames++;
    this.run(c, false);
    if (c.verdict === Verdict.DROP) stats.drop(c.drop);
  }

  /**
   * processBatch runs frames [0, n) of `batch` (read from `sp`) through the pipeline, then
   * coalesces what the overlay queued and flushes every queue.
   */
  processBatch(c: FrameContext, sp: SwitchPort, batch: FrameList, n: number): void {
    const b = batch.arena;
    if (b !== this.lastBuf) {
      this.lastBuf = b;
      this.lastDv = dataViewOf(b);
    }
    const dv = this.lastDv, stats = this.st.stats;
    this.tx.beginBatch(batch, dv);
    const m = batch.meta;
    const vlen = sp.vnetHdrLen;
    const overlay = sp.role === PortRole.OVERLAY;
    c.clearOffload();
    for (let i = 0; i < n; i++) {
      const o = i * META_STRIDE;
      const s = m[o + Meta.START]!, e = m[o + Meta.END]!;
      if ((m[o + Meta.FLAGS]! & MetaFlag.TRUNCATED) !== 0) { stats.rxFrames++; stats.drop(Drop.RX_TRUNCATED); continue; }
      if (!overlay) {
        c.load(sp, b, dv, s, e, 0);
        if (vlen > 0) c.readOffload(s - vlen);
        this.one(c);
        continue;
      }
      const g = m[o + Meta.GSO_SIZE]!, addr = m[o + Meta.ADDR]! >>> 0;
      if (g === 0) {
        c.load(sp, b, dv, s, e, addr);
        this.one(c);
        continue;
      }
      // A UDP_GRO read: datagrams of g bytes back to back (the last may be shorter).
      for (let ds = s; ds < e; ds += g) {
        c.load(sp, b, dv, ds, ds + g < e ? ds + g : e, addr);
        this.one(c);
      }
    }
    c.clearOffload();
    if (overlay) this.gro.finishBatch();
    this.tx.flushAll();
  }
}

/** verdictText: a stage's verdict as a trace line says it. */
function verdictText(c: FrameContext): string {
  switch (c.verdict) {
    case Verdict.NEXT: return 'next';
    case Verdict.DELIVER: return `deliver to ${c.out!.role} port ${c.out!.name}`;
    case Verdict.TUNNEL: return `tunnel to ${c.vtep!.name} (${formatIpv4(c.vtep!.underlayIp)})`;
    case Verdict.FLOOD: return 'flood';
    case Verdict.REPLY: return c.reply === Reply.ARP ? 'reply: ARP reply from the switch' : 'reply: ICMP echo reply from the gateway';
    default: {
      const extra = c.reply === Reply.ICMP_ERROR ? ' (ICMP error to the sender)' : c.reply === Reply.FRAG_NEEDED ? ' (ICMP fragmentation needed to the sender)' : '';
      return `drop ${DROP_NAMES[c.drop]}${extra}`;
    }
  }
}
