/**
 * PolicyEnforcer: NetworkPolicy in the pipeline, stateful. It fills the two policy stages
 * (policy-egress for frames leaving a local pod, policy-ingress for frames about to reach one)
 * with one compiled PolicySet and one connection table (src/conntrack), shared with the
 * Services stage that follows.
 *
 * Per IPv4 packet of a pod:
 * - It belongs to a tracked connection (its tuple is in the table): a REPLY passes; an ORIGINAL
 *   packet passes when this stage already allowed the connection (a mark bit per stage), and is
 *   judged otherwise (the connection was opened by the other stage on this node).
 * - An ICMP error quoting a tracked connection's packet passes (netfilter's RELATED).
 * - Anything else opens a connection and is judged by the PolicySet: denied frames are dropped as
 *   policy_denied_ingress / policy_denied_egress; allowed ones create (or mark) the entry.
 *
 * A policy change recompiles the set and keeps the table: established connections keep flowing
 * until they close or time out, new ones are judged by the new policies (the behaviour of
 * conntrack-based enforcement such as Calico's iptables rules; Kubernetes leaves it open).
 *
 * Not judged: non-IPv4 frames (ARP, IPv6: the pod network is IPv4) and frames flooded by the L2
 * bridge. IPv4 fragments after the first carry no ports: they are judged with port 0, so a rule
 * that lists ports does not match them (the kernel reassembles first; flatnet does not).
 */

import { ConnTable, CtProto, CtRefuse, MARK_POLICY_EGRESS, MARK_POLICY_INGRESS, packPorts } from '../conntrack/table.js';
import { QuotedPacket, TRACKED_TCP_FLAGS } from '../conntrack/packet.js';
import { TCP_STATE_NAMES } from '../conntrack/tcp.js';
import { Verdict, type FrameContext } from '../pipeline/context.js';
import { Drop } from '../pipeline/drop.js';
import type { PolicyTable, Tracking } from '../pipeline/policy.js';
import type { TraceRecorder } from '../pipeline/trace-recorder.js';
import { formatIpv4 } from '../wire/addr.js';
import { PolicyReason, PolicySet, type Direction, type PolicyVerdict } from './engine.js';

const ICMP_ECHO_REPLY = 0, ICMP_ECHO_REQUEST = 8;

/** What deciding found, kept for act (decide and act run back to back for one frame). */
const Found = { NONE: 0, REPLY: 1, ALLOWED_BEFORE: 2, RELATED: 3, JUDGED: 4, NOT_JUDGED: 5 } as const;
type Found = (typeof Found)[keyof typeof Found];

export class PolicyEnforcer {
  set: PolicySet;
  readonly ct: ConnTable;
  readonly egress: PolicyTable;
  readonly ingress: PolicyTable;
  /** Connections refused because the table was full (also counted as conntrack_full drops). */
  refused = 0;

  /** `clock`: the switch's (milliseconds, read once per batch); the table sees whole milliseconds. */
  constructor(set: PolicySet, ct: ConnTable, clock: { readonly now: number }) {
    this.set = set;
    this.ct = ct;
    this.egress = new DirectionTable(this, 'egress', clock);
    this.ingress = new DirectionTable(this, 'ingress', clock);
  }

  /** update installs a recompiled policy set; tracked connections stay. */
  update(set: PolicySet): void {
    this.set = set;
  }

  /** install puts both directions into a switch's policy stages (and remove() takes them out). */
  install(sw: { setPolicy(direction: 'egress' | 'ingress', table: PolicyTable | null): void }): void {
    sw.setPolicy('egress', this.egress);
    sw.setPolicy('ingress', this.ingress);
  }
}

class DirectionTable implements PolicyTable {
  private readonly e: PolicyEnforcer;
  private readonly dir: Direction;
  private readonly bit: number;
  private readonly clock: { readonly now: number };
  readonly tracking: Tracking;
  // The packet's tuple and what decide found.
  private proto = 0;
  private ports = 0;
  private tcpFlags = 0;
  private node = -1;
  private found: Found = Found.NONE;
  private verdict: PolicyVerdict | null = null;
  private podIp = 0;
  private readonly quoted = new QuotedPacket();

  constructor(e: PolicyEnforcer, dir: Direction, clock: { readonly now: number }) {
    this.e = e;
    this.dir = dir;
    // Which stage of this node allowed the connection's ORIGINAL direction.
    this.bit = dir === 'egress' ? MARK_POLICY_EGRESS : MARK_POLICY_INGRESS;
    this.clock = clock;
    this.tracking = { ct: e.ct, clock };
  }

  /** The time as a whole number of milliseconds (a Smi: passing it on allocates nothing). */
  private now(): number {
    return Math.floor(this.clock.now);
  }

  decide(c: FrameContext): void {
    this.found = Found.NOT_JUDGED;
    this.verdict = null;
    if (c.ipVersion !== 4) return;
    if (this.dir === 'egress' ? !c.ingress.isPod : c.verdict !== Verdict.DELIVER || c.out === null || !c.out.isPod) return;
    this.tuple(c);
    const ct = this.e.ct, now = this.now();
    // The NAT stage (before this one) may have found or opened the connection already, or the
    // pre-pass found none (ctMissed; a packet the NAT stage translated has ctNode set by then).
    let n = c.ctNode >= 0 ? c.ctNode : c.ctMissed ? -1 : ct.lookup(this.proto, c.srcIp | 0, c.dstIp | 0, this.ports, now);
    // A SYN on the tuple of a closed connection is a new connection: judged afresh (ConnTable.reopens).
    if (n >= 0 && c.ctNode < 0 && ct.reopens(n, this.tcpFlags)) { c.ctReopen = n; n = -1; }
    this.node = n;
    if (n >= 0) {
      if ((n & 1) === 1) { this.found = Found.REPLY; return; }
      if ((ct.mark(n) & this.bit) !== 0) { this.found = Found.ALLOWED_BEFORE; return; }
    } else if (this.proto === CtProto.ICMP && this.related(c, now)) {
      this.found = Found.RELATED;
      return;
    }
    this.found = Found.JUDGED;
    this.podIp = this.dir === 'egress' ? c.srcIp : c.dstIp;
    const peer = this.dir === 'egress' ? c.dstIp : c.srcIp;
    const v = this.e.set.check(this.dir, this.podIp, peer, this.proto, this.proto === CtProto.ICMP ? 0 : this.ports & 0xffff);
    this.verdict = v;
    if (!v.allowed) c.dropWith(this.dir === 'egress' ? Drop.POLICY_DENIED_EGRESS : Drop.POLICY_DENIED_INGRESS);
  }

  act(c: FrameContext): void {
    const found = this.found;
    if (found === Found.NOT_JUDGED || found === Found.RELATED) return;
    const ct = this.e.ct, now = this.now();
    const len = c.ipEnd - c.l3Off;
    if (found === Found.REPLY || found === Found.ALLOWED_BEFORE) {
      this.refresh(c, this.node, len, now);
      return;
    }
    const v = this.verdict!;
    this.e.set.count(this.dir, this.podIp, v);
    if (c.ctReopen >= 0) { ct.remove(c.ctReopen); c.ctReopen = -1; }
    const n = this.node;
    if (!v.allowed) {
      // Opened by this very packet (the NAT stage, or this node's egress stage): a denied
      // connection leaves no entry behind.
      if (n >= 0 && c.ctNew) ct.remove(n);
      return;
    }
    if (n >= 0) {
      ct.setMark(n, ct.mark(n) | this.bit);
      this.refresh(c, n, len, now);
      return;
    }
    const r = ct.create(this.proto, c.srcIp | 0, c.dstIp | 0, this.ports, c.dstIp | 0, c.srcIp | 0, swapPorts(this.proto, this.ports), this.tcpFlags, len, now);
    if (r >= 0) { ct.setMark(r, this.bit); c.ctNode = r; c.ctSeen = true; c.ctNew = true; return; }
    if (r === CtRefuse.FULL) { this.e.refused++; c.dropWith(Drop.CONNTRACK_FULL); }
    // CLASH or INVALID (a lone SYN/ACK or RST, a tuple in use): passed as the policy allowed it, untracked.
  }

  /** refresh applies the packet to its connection once, whichever stage gets there first. */
  private refresh(c: FrameContext, n: number, len: number, now: number): void {
    c.ctNode = n;
    if (c.ctSeen) return;
    c.ctSeen = true;
    this.e.ct.seen(n, this.tcpFlags, len, now);
  }

  explain(c: FrameContext, t: TraceRecorder): void {
    const ct = this.e.ct;
    switch (this.found) {
      case Found.NOT_JUDGED:
        t.look(c.ipVersion !== 4 ? 'not IPv4: not judged' : this.dir === 'egress' ? 'not from a pod: not judged' : 'not to a local pod: not judged');
        return;
      case Found.REPLY:
        t.look(`reply of a tracked connection (${this.stateText(this.node)}): passes`);
        return;
      case Found.ALLOWED_BEFORE:
        t.look(`tracked connection (${this.stateText(this.node)}), allowed when it opened: passes`);
        return;
      case Found.RELATED:
        t.look('ICMP error about a tracked connection (related): passes');
        return;
      default: break;
    }
    const v = this.verdict!;
    const who = `${this.dir === 'egress' ? 'from' : 'to'} pod ${formatIpv4(this.podIp)}`;
    if (v.reason === PolicyReason.NOT_ISOLATED) t.look(`new connection ${who}: no policy isolates it for ${this.dir}`);
    else if (v.reason === PolicyReason.UNKNOWN_POD) t.look(`new connection ${who}: no Pod object has this address (not isolated)`);
    else if (v.reason === PolicyReason.FROM_NODE) t.look(`new connection ${who} from its own node: always allowed`);
    else if (v.reason === PolicyReason.SELF) t.look(`new connection ${who} from itself: always allowed`);
    else if (v.rule !== null) t.look(`new connection ${who}: allowed by networkpolicy ${v.rule.policy.namespace}/${v.rule.policy.name} ${this.dir}[${v.rule.index}]`);
    else t.look(`new connection ${who}: isolated for ${this.dir} and no rule of its policies allows it`);
    if (ct.size >= ct.capacity) t.note('the connection table is full: a new connection may be refused (conntrack_full) when it is created');
  }

  private stateText(n: number): string {
    const ct = this.e.ct;
    return this.proto === CtProto.TCP ? TCP_STATE_NAMES[ct.tcpState(n)]! : (ct.entryFlags(n) & 1) !== 0 ? 'replied' : 'unreplied';
  }

  /** tuple reads the packet's protocol, ports key and TCP flags. */
  private tuple(c: FrameContext): void {
    const proto = c.proto;
    this.proto = proto;
    this.ports = 0;
    this.tcpFlags = 0;
    const dv = c.dv, l4 = c.l4Off, room = c.ipEnd - l4;
    if ((c.flagsFrag & 0x1fff) !== 0) return; // a later fragment: no transport header
    if (proto === CtProto.TCP || proto === CtProto.UDP || proto === CtProto.SCTP) {
      if (room < 4) return;
      this.ports = dv.getInt32(l4);
      if (proto === CtProto.TCP && room >= 14) this.tcpFlags = dv.getUint8(l4 + 13) & TRACKED_TCP_FLAGS;
      return;
    }
    if (proto === CtProto.ICMP && room >= 8) {
      const type = dv.getUint8(l4);
      // Echo request and reply share a tuple: the identifier, addresses swapped for the reply.
      if (type === ICMP_ECHO_REQUEST || type === ICMP_ECHO_REPLY) this.ports = dv.getUint16(l4 + 4) << 16;
    }
  }

  /** related: an ICMP error whose quoted packet belongs to a tracked connection. */
  private related(c: FrameContext, now: number): boolean {
    const q = this.quoted;
    return q.read(c.dv, c.l4Off, c.ipEnd) && this.e.ct.lookup(q.proto, q.src, q.dst, q.ports, now) >= 0;
  }

}

/** The ports key of the reply direction. */
function swapPorts(proto: number, ports: number): number {
  if (proto === CtProto.ICMP) return ports;
  return packPorts(ports & 0xffff, ports >>> 16);
}
