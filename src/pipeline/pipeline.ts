/**
 * The pipeline: one node's data path as a chain of stages over one reusable FrameContext.
 *
 *   1 ingress          classify, anti-spoof, ARP responder; decapsulation for the overlay
 *   2 service-nat      ClusterIP load balancing (src/service; pass-through without Services)
 *   3 policy-egress    NetworkPolicy for the sending pod (src/policy; pass-through without policies)
 *   4 route | bridge   L3: LPM to a local pod, the host or a peer VTEP; L2: learning bridge
 *   5 policy-ingress   NetworkPolicy for the receiving pod
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
 * queue flushed before the batch's memory is read into again. With a policy or service table
 * installed, the connection table's pre-pass (ConnTable.prepass) runs over the batch first:
 * the packets of established connections reach the stages already found and counted, the
 * policy stages that would pass them are skipped, and so is the NAT stage for the packets it
 * already translated (a Service connection's packets, both ways) and for those of connections
 * no Service translates; the stages do not look up a packet it found no connection for.
 */

import { type FrameList, META_STRIDE, Meta, MetaFlag } from '../buf/batch.js';
import { MARK_NAT, PREPASS_NAT, PREPASS_PASS_EGRESS, PREPASS_PASS_INGRESS, PrepassFraming } from '../conntrack/table.js';
import { Errno } from '../io/errno.js';
import { EMPTY, EMPTY_DV, dataViewOf } from '../wire/bytes.js';
import { formatIpv4 } from '../wire/addr.js';
import { ArpResponder } from './arp.js';
import { Bridge } from './bridge.js';
import { Reply, Verdict, type FrameContext } from './context.js';
import { Drop, DROP_NAMES } from './drop.js';
import { Egress } from './egress.js';
import { explainBridge, explainEgress, explainIngress, explainRoute, planText } from './explain.js';
import { Gro } from './gro.js';
import { IcmpReplies } from './icmp.js';
import { Ingress } from './ingress.js';
import { OverlayIngress } from './ingress-overlay.js';
import { PolicyDirection, PolicyStage, type Tracking } from './policy.js';
import { Route } from './route.js';
import { ServiceNatStage } from './service-nat.js';
import type { SwitchState } from './state.js';
import { Framing, type SwitchPort } from './switch-port.js';
import type { StageName } from './trace.js';
import { Transmit } from './transmit.js';
import { Tunnel } from './tunnel.js';

/** The smallest batch the connection table's pre-pass runs on. */
const PREPASS_MIN = 4;

export class Pipeline {
  private readonly st: SwitchState;
  readonly tx: Transmit;
  readonly tunnel: Tunnel;
  readonly icmp: IcmpReplies;
  readonly arp: ArpResponder;
  readonly ingress: Ingress;
  readonly policyEgress = new PolicyStage(PolicyDirection.EGRESS);
  readonly serviceNat: ServiceNatStage;
  readonly route: Route;
  readonly bridge: Bridge;
  readonly policyIngress = new PolicyStage(PolicyDirection.INGRESS);
  readonly egress: Egress;
  readonly gro: Gro;
  /** A policy or service table is installed (Switch.setPolicy/setServices keep it). */
  hooks = false;
  /** The connection table every installed table tracks in, or null (Switch keeps it): the batches' pre-pass. */
  tracking: Tracking | null = null;
  /** The pre-pass's node per frame of the batch (ConnTable.prepass). */
  private hints = new Int32Array(64);
  private lastBuf: Buffer = EMPTY;
  private lastDv: DataView = EMPTY_DV;

  constructor(st: SwitchState) {
    this.st = st;
    this.tx = new Transmit(st);
    this.tunnel = new Tunnel(st, this.tx);
    this.icmp = new IcmpReplies(st, this.tx, this.tunnel);
    this.serviceNat = new ServiceNatStage(this.icmp);
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
   * run takes the frame loaded into `c` through the stages. A trace (c.trace set) runs the
   * decisions only, each stage's decision explained to the recorder; otherwise each stage acts
   * after it decides. Every stage is called by name (one monomorphic call site each), and the
   * trace's words live in explain.ts, not in the stages, so the data path carries no trace code.
   */
  run(c: FrameContext): void {
    const dry = c.trace !== null;
    // Module constants read once: after each stage call V8 would load and check them again.
    const NEXT = Verdict.NEXT, TUNNEL = Verdict.TUNNEL;
    // One flag for the stages that pass everything until a table is installed.
    const hooks = this.hooks || dry;
    this.ingress.decide(c);
    if (dry) this.explain('ingress', c); else this.ingress.act(c);
    if (c.done) return;

    // The NAT and policy stages are called only when a table is installed (or a trace wants
    // their line): without one they pass every frame, and the data path pays one load each.
    // Service NAT comes first so that egress policy judges the backend a Service chose, as
    // kube-proxy's DNAT (PREROUTING) runs before the filter rules NetworkPolicy lives in.
    // It also sees frames between two local pods (DELIVER, L3 mode): a local backend answers
    // its client on the link, and that reply must be translated back (what br_netfilter does
    // for a Linux bridge); only routed frames (NEXT) open new translations.
    // On the data path the tables are called here, not through the stage objects: V8 inlined
    // the stages' small wrappers (about 200 bytes of bytecode) into this function, out of its
    // inlining budget (max_inlined_bytecode_size_cumulative, 920), and the ingress stage's
    // fromPod and the egress stage's encapOne and planTunnel were left as calls; without the
    // wrappers there is room for one of them (which one depends on the call counts a process
    // collects; --trace-turbo-inlining). The tables' decide and act are too big to inline
    // (over 460 bytes): one call each, as through the wrappers.
    if (dry) {
      if (c.verdict === NEXT || c.verdict === Verdict.DELIVER) {
        this.serviceNat.decide(c);
        this.explain('service-nat', c);
        if (c.done) return;
      }
      if (c.ingress.isPod) {
        this.policyEgress.decide(c);
        this.explain('policy-egress', c);
        if (c.done) return;
      }
    } else if (hooks && c.ipVersion !== 0) {
      const nat = this.serviceNat.table;
      // natted already: the pre-pass translated it (a Service connection's packet); ctPassNat:
      // the pre-pass found its connection, which no Service translates.
      if (nat !== null && !c.natted && !c.ctPassNat && (c.verdict === NEXT || c.verdict === Verdict.DELIVER)) {
        nat.decide(c);
        nat.act(c);
        if (c.done) {
          if ((c.verdict as Verdict) === Verdict.DROP && c.reply === Reply.ICMP_ERROR) this.serviceNat.sendError(c);
          return;
        }
      }
      const pe = this.policyEgress.table;
      if (pe !== null && c.ingress.isPod && c.verdict < Verdict.REPLY && !c.ctPassEgress) {
        pe.decide(c);
        pe.act(c);
        if (c.done) return;
      }
    }

    if (c.verdict === NEXT) {
      if (this.st.l2) {
        this.bridge.decide(c);
        if (dry) this.explain('bridge', c); else this.bridge.act(c);
      } else {
        this.route.decide(c);
        if (dry) this.explain('route', c); else this.route.act(c);
      }
      if (c.done) return;
    }

    if (hooks && c.verdict !== TUNNEL) {
      if (dry) {
        this.policyIngress.decide(c);
        this.explain('policy-ingress', c);
        if (c.done) return;
      } else {
        const pi = this.policyIngress.table;
        if (pi !== null && c.ipVersion !== 0 && c.verdict < Verdict.REPLY && !c.ctPassIngress) {
          pi.decide(c);
          pi.act(c);
          if (c.done) return;
        }
      }
    }

    this.egress.decide(c);
    if (dry) this.explain('egress', c); else this.egress.act(c);
  }

  /** explain records one stage's step of a trace (cold: only `run(c, true)` calls it). */
  private explain(stage: StageName, c: FrameContext): void {
    const t = c.trace!, st = this.st;
    t.begin(stage);
    switch (stage) {
      case 'ingress': explainIngress(st, c, t); break;
      case 'policy-egress': case 'policy-ingress': {
        const ps = stage === 'policy-egress' ? this.policyEgress : this.policyIngress;
        if (ps.table === null) t.look('no policy engine installed: every frame passes');
        else ps.table.explain(c, t);
        break;
      }
      case 'service-nat':
        if (this.serviceNat.table === null) t.look('no service table installed: no translation');
        else this.serviceNat.table.explain(c, t);
        break;
      case 'route': explainRoute(st, c, t); break;
      case 'bridge': explainBridge(st, c, t); break;
      case 'egress': explainEgress(st, this.egress, c, t); break;
      default: break;
    }
    t.end(stage === 'egress' && c.verdict !== Verdict.DROP && c.verdict !== Verdict.FLOOD ? planText(c) : verdictText(c));
    if (stage !== 'egress' || c.verdict === Verdict.DROP) return;
    t.begin('transmit');
    if (c.verdict === Verdict.DELIVER) t.look(`queue of ${c.out!.role} port ${c.out!.name}`);
    else if (c.verdict === Verdict.TUNNEL) t.look(`queue of overlay port ${st.overlay!.name}, to ${formatIpv4(c.vtep!.underlayIp)}:${c.vtep!.port}`);
    else t.look('the queues of every output above');
    t.end('queued: one write per port per batch');
    t.note('transmit-time outcomes (tx_busy, tx_error: the port refusing the write) cannot be traced');
  }

  /** one runs the loaded frame through the stages and counts it (and its drop, if any). */
  private one(c: FrameContext): void {
    const stats = this.st.stats;
    stats.rxFrames++;
    this.run(c);
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
    c.batch(sp, b, dv);
    const m = batch.meta;
    const vlen = sp.vnetHdrLen;
    const overlay = sp.isOverlay;
    // The connection table's pre-pass: the batch's packets of established connections found
    // and counted in one native call (ConnTable.prepass), handed to the stages as found and
    // seen, one slot per packet loaded below (`k`). Not for a frame or two: the call costs
    // more than it saves.
    const tr = this.tracking;
    let hints: Int32Array | null = null, k = 0;
    if (tr !== null && n >= PREPASS_MIN) hints = this.prepass(tr, sp, batch, n);
    c.clearOffload();
    for (let i = 0; i < n; i++) {
      const o = i * META_STRIDE;
      const s = m[o + Meta.START]!, e = m[o + Meta.END]!;
      if ((m[o + Meta.FLAGS]! & MetaFlag.TRUNCATED) !== 0) { stats.rxFrames++; stats.drop(Drop.RX_TRUNCATED); continue; }
      if (!overlay) {
        c.load(s, e, 0);
        if (vlen > 0) c.readOffload(s - vlen);
        if (hints !== null) this.hint(c, hints[k++]!);
        this.one(c);
        continue;
      }
      const g = m[o + Meta.GSO_SIZE]!, addr = m[o + Meta.ADDR]! >>> 0;
      c.srcTos = m[o + Meta.TOS]!;
      if (g === 0) {
        c.load(s, e, addr);
        if (hints !== null) this.hint(c, hints[k++]!);
        this.one(c);
        // A partial checksum or a super-frame took offload state (ingress-overlay.ts): not the next frame's.
        if (c.vFlags !== 0) c.clearOffload();
        continue;
      }
      // A UDP_GRO read: datagrams of g bytes back to back (the last may be shorter).
      for (let ds = s; ds < e; ds += g) {
        c.load(ds, ds + g < e ? ds + g : e, addr);
        if (hints !== null) this.hint(c, hints[k++]!);
        this.one(c);
        if (c.vFlags !== 0) c.clearOffload();
      }
    }
    c.clearOffload();
    if (overlay) this.gro.finishBatch();
    this.tx.flushAll();
  }

  /** prepass runs the connection table's pre-pass over a batch: its slots, or null when it wrote none. */
  private prepass(tr: Tracking, sp: SwitchPort, batch: FrameList, n: number): Int32Array | null {
    const framing = !sp.isOverlay ? PrepassFraming.POD
      : sp.rxFraming === Framing.UDP ? PrepassFraming.VXLAN_UDP
      : sp.rxFraming === Framing.ETHERNET ? PrepassFraming.VXLAN_FRAME : -1;
    if (framing < 0) return null;
    const podIp = sp.isPod ? sp.ip : 0, now = Math.floor(tr.clock.now), vlen = sp.isOverlay ? 0 : sp.vnetHdrLen;
    for (;;) {
      const r = tr.ct.prepass(batch.arena, batch.meta, n, now, framing as PrepassFraming, this.st.vni, podIp, vlen, this.hints);
      if (r > 0 || (r === 0 && tr.ct.wroteSlots)) return this.hints;
      // More packets than slots (UDP GRO reads): room for 64 datagrams per frame, then again.
      if (r !== Errno.ENOSPC || this.hints.length >= n * 64) return null;
      this.hints = new Int32Array(n * 64);
    }
  }

  /**
   * hint hands the stages a packet's pre-pass slot when the pipeline gets to the packet: its
   * connection, found and seen; whether the pre-pass translated it, with its source from before
   * for the ingress stage's checks (the tuple it was found by; none if that entry went since,
   * and the overlay's check drops it); whether each policy stage passes it (see
   * PolicyTable.tracking), and whether the NAT stage does (a connection no Service translates:
   * the stage would leave the packet as it is, a pre-passed packet being no SYN). Or, for a
   * packet no connection has, that the stages need not look for one (ConnTable.missed). Done
   * here, not in run(), whose inlining budget is spent on the stages (see run).
   */
  private hint(c: FrameContext, slot: number): void {
    const ct = this.tracking!.ct;
    if (slot < 0) {
      c.ctMissed = ct.missed(slot);
      return;
    }
    const node = ct.take(slot);
    if ((slot & PREPASS_NAT) !== 0) {
      c.natted = true;
      c.preNatSrc = node >= 0 ? ct.nodeSrc(node) : 0;
    }
    if (node < 0) return;
    c.ctNode = node;
    c.ctSeen = true;
    c.ctPassEgress = this.policyEgress.table !== null && (slot & PREPASS_PASS_EGRESS) !== 0;
    c.ctPassIngress = this.policyIngress.table !== null && (slot & PREPASS_PASS_INGRESS) !== 0;
    c.ctPassNat = (ct.mark(node) & MARK_NAT) === 0;
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
