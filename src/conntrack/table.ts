/**
 * The connection-tracking table shared by NetworkPolicy (replies of allowed connections pass)
 * and Services (a connection keeps its backend; replies are translated back). After netfilter's
 * nf_conntrack: an entry holds two tuples, the ORIGINAL one (as the first packet travelled) and
 * the REPLY one (what a reply looks like, after any NAT), and both are indexed, so a packet
 * finds its connection and its direction with one lookup.
 *
 * Layout: structure-of-arrays over typed arrays sized once (`capacity` entries), so creating,
 * finding and refreshing connections allocates nothing on the data path. A tuple node is
 * `entry * 2 + dir`; buckets chain nodes through `next`. The hash is seeded per table (as the
 * kernel's `nf_conntrack_hash_rnd`) so that a pod cannot aim its flows at one chain.
 *
 * Time: the caller's coarse monotonic milliseconds (the pipeline's clock, read once per batch).
 * An entry expires `timeout(state)` after its last packet. Expired entries are invisible to
 * lookups at once and are reclaimed by sweep() (bounded work per call) or by create() when it
 * needs room.
 *
 * Bounded: at most `capacity` entries. When full, create() first reclaims an expired entry,
 * then early-drops the oldest entry that never saw a reply (not ASSURED) or is a TCP connection
 * that is closing (FIN_WAIT, CLOSE_WAIT, LAST_ACK, TIME_WAIT, CLOSE: the kernel's
 * tcp_can_early_drop, which its conntrack GC applies when the table is nearly full), looking at
 * the `EARLY_DROP_SCAN` least recently used entries; when none of those can go it refuses the
 * new connection and counts it (the kernel's "nf_conntrack: table full, dropping packet").
 */

import { FlatnetError } from '../errors.js';
import { loadNative, nativeUnavailableReason } from '../io/native.js';
import { formatIpv4 } from '../wire/addr.js';
import { CloseBits, Dir, TCP_STATE_NAMES, TcpFlag, TcpState, tcpNext, type TcpStep } from './tcp.js';

export const CtProto = { ICMP: 1, TCP: 6, UDP: 17, SCTP: 132 } as const;

/** Entry flag bits. */
export const CtFlag = {
  /** A packet travelled in the REPLY direction. */
  SEEN_REPLY: 1,
  /** The connection is established (TCP) or two-way with more than one exchange (UDP): early drop spares it. */
  ASSURED: 2,
} as const;

/** Timeouts in milliseconds; the defaults are nf_conntrack's (net.netfilter.nf_conntrack_*_timeout*). */
export interface CtTimeouts {
  readonly tcpSynSent: number;
  readonly tcpSynRecv: number;
  readonly tcpEstablished: number;
  readonly tcpFinWait: number;
  readonly tcpCloseWait: number;
  readonly tcpLastAck: number;
  readonly tcpTimeWait: number;
  readonly tcpClose: number;
  /** UDP before a reply (nf_conntrack_udp_timeout). */
  readonly udp: number;
  /** UDP once it is a two-way stream (nf_conntrack_udp_timeout_stream). */
  readonly udpStream: number;
  readonly icmp: number;
  /** Other protocols (SCTP included: no SCTP state machine here). */
  readonly generic: number;
}

const S = 1000;
export const DEFAULT_CT_TIMEOUTS: CtTimeouts = {
  tcpSynSent: 120 * S, tcpSynRecv: 60 * S, tcpEstablished: 432_000 * S, tcpFinWait: 120 * S,
  tcpCloseWait: 60 * S, tcpLastAck: 30 * S, tcpTimeWait: 120 * S, tcpClose: 10 * S,
  udp: 30 * S, udpStream: 120 * S, icmp: 30 * S, generic: 600 * S,
};

export const DEFAULT_CT_CAPACITY = 65_536;

/** Where prepass() finds a frame's (inner) Ethernet header: native/src/conntrack.cc Framing. */
export const PrepassFraming = {
  /** A pod's or the host's frame: the Ethernet header first. */
  POD: 0,
  /** The overlay socket's UDP payload: the VXLAN header first. */
  VXLAN_UDP: 1,
  /** A whole underlay frame: Ethernet, IPv4, UDP, VXLAN. */
  VXLAN_FRAME: 2,
} as const;
export type PrepassFraming = (typeof PrepassFraming)[keyof typeof PrepassFraming];

/** How many of the least recently used entries create() looks at for one to early-drop. */
export const EARLY_DROP_SCAN = 16;

/**
 * What create() returns when it cannot: no room (all candidates ASSURED), a tuple already in
 * use by another connection, or a first packet that cannot open a connection (a lone TCP
 * SYN/ACK or RST: the kernel's INVALID).
 */
export const CtRefuse = { FULL: -1, CLASH: -2, INVALID: -3 } as const;

/** A copy of one entry, for `show conntrack` and tests (cold path). */
export interface CtEntryInfo {
  readonly id: number;
  readonly proto: number;
  readonly state: string;
  readonly flags: readonly string[];
  /** Seconds until it expires. */
  readonly expiresInS: number;
  readonly original: CtTupleInfo;
  readonly reply: CtTupleInfo;
  readonly mark: number;
}
export interface CtTupleInfo { readonly src: string; readonly dst: string; readonly sport: number; readonly dport: number; readonly packets: number; readonly bytes: number }

export interface CtStats {
  entries: number;
  /** Connections created. */
  inserted: number;
  /** Entries removed because they timed out. */
  expired: number;
  /** Unreplied entries dropped early to make room. */
  earlyDropped: number;
  /** New connections refused: full of ASSURED entries (counted by the caller's drop reason too). */
  refused: number;
  /** Tuples that would have shadowed another entry's. */
  clashes: number;
  /** First packets that cannot open a connection (TCP SYN/ACK or RST without an entry). */
  invalid: number;
  /** Entries removed on request (policy, endpoint or flush). */
  removed: number;
  /** Packets the batch pre-pass counted on their established connections (prepass()). */
  prepassed: number;
  /** Of those, packets it also translated (a Service's, to its backend or back: MARK_PREPASS_DNAT, MARK_PREPASS_REPLY). */
  prepassTranslated: number;
}

const NIL = -1;
/** How many releases between a pre-pass and the end of its batch take() tells apart (more: every node counts as released). */
const RELEASE_LOG = 16;
/**
 * A prepass() slot: the tuple node in these bits (capacity is at most 2^24: nodes below 2^25);
 * bit 30 (PREPASS_TOUCH) set when the entry is to move to the LRU tail (native/src/conntrack.cc
 * kTouch), bit 29 PREPASS_NAT, bits 27 and 28 PREPASS_PASS_EGRESS and PREPASS_PASS_INGRESS.
 */
export const PREPASS_NODE = 0x07ff_ffff;
const PREPASS_TOUCH = 1 << 30;
/**
 * Mark bits of the policy stages (src/policy/enforcer.ts): this node's egress (ingress) stage
 * allowed the connection's ORIGINAL direction.
 */
export const MARK_POLICY_EGRESS = 1;
export const MARK_POLICY_INGRESS = 2;
/** The mark bit of a connection a Service translated (src/service/nat.ts). */
export const MARK_NAT = 4;
/**
 * A prepass() slot's bits: the packet is a reply, or its entry carries MARK_POLICY_EGRESS
 * (MARK_POLICY_INGRESS): the policy stage of that direction passes it as it is, and the pipeline
 * skips that stage (src/pipeline/policy.ts PolicyTable; native/src/conntrack.cc kPassShift).
 */
export const PREPASS_PASS_EGRESS = MARK_POLICY_EGRESS << 27;
export const PREPASS_PASS_INGRESS = MARK_POLICY_INGRESS << 27;
/**
 * A prepass() slot: a TCP or UDP packet (ports read) whose tuple had no live connection at the
 * pass (native/src/conntrack.cc kMiss): the stages need not look it up while missed() holds.
 */
export const PREPASS_MISS = -2;
/** A prepass() slot's bit: the pre-pass translated the packet (native/src/conntrack.cc kNat; see MARK_PREPASS_DNAT and MARK_PREPASS_REPLY). */
export const PREPASS_NAT = 1 << 29;
/**
 * Mark bits (setMark) that let the pre-pass translate a translated connection's packets:
 * MARK_PREPASS_DNAT its original direction, MARK_PREPASS_REPLY its replies. A packet gets the
 * other tuple's addresses and ports, inverted, and its checksums change by its node's aux word
 * (src/service/nat.ts natSums, natApply). The ingress stage checks the translated packet
 * afterwards, with the source it had (FrameContext.preNatSrc): set only where its checks would
 * come out the same (src/service/nat.ts act).
 */
export const MARK_PREPASS_DNAT = 8;
export const MARK_PREPASS_REPLY = 16;

export class ConnTable {
  readonly capacity: number;
  readonly timeouts: CtTimeouts;
  readonly stats: CtStats = { entries: 0, inserted: 0, expired: 0, earlyDropped: 0, refused: 0, clashes: 0, invalid: 0, removed: 0, prepassed: 0, prepassTranslated: 0 };

  // Per tuple node (entry * 2 + dir). Addresses and ports are kept as int32 (an address above
  // 127.255.255.255 or a source port above 32767 as a uint32 would be a heap number, allocated
  // whenever it is passed to a function that is not inlined).
  private readonly src: Int32Array;
  private readonly dst: Int32Array;
  /** sport << 16 | dport as an int32 (ICMP echo: id << 16). */
  private readonly ports: Int32Array;
  private readonly next: Int32Array;
  private readonly packets: Float64Array;
  private readonly bytes: Float64Array;
  /** A word the connection's user keeps per direction (the Service NAT: its checksum changes); 0 when created. */
  private readonly aux: Int32Array;
  // Per entry.
  private readonly proto: Uint8Array;
  private readonly state: Uint8Array;
  private readonly close: Uint8Array;
  private readonly flags: Uint8Array;
  private readonly used: Uint8Array;
  private readonly expires: Float64Array;
  private readonly marks: Int32Array;
  // Least-recently-used order of live entries (head: oldest).
  private readonly lruPrev: Int32Array;
  private readonly lruNext: Int32Array;
  private lruHead = NIL;
  private lruTail = NIL;
  private readonly free: Int32Array;
  private freeTop: number;
  private readonly buckets: Int32Array;
  private readonly mask: number;
  private readonly seed: number;
  private sweepAt = 0;
  private readonly step: TcpStep = { state: TcpState.NONE, close: 0 };
  /** The native pre-pass's handle on these arrays (prepass()); undefined until first used, null without the addon. */
  private bound: unknown = undefined;
  /**
   * Entries released since the last prepass() (the first RELEASE_LOG of them; relCount counts
   * all): a pre-pass node of one of them no longer names the packet's connection.
   */
  private relCount = 0;
  private readonly relLog = new Int32Array(RELEASE_LOG);
  /** stats.inserted at the last prepass() that wrote its slots, or -1 (missed()). */
  private insertedAtPass = -1;

  /**
   * `prepass: false` keeps the table out of the native pre-pass (prepass() takes nothing): the
   * tests run the same traffic both ways and compare.
   */
  constructor(opts: { capacity?: number; timeouts?: Partial<CtTimeouts>; seed?: number; prepass?: boolean } = {}) {
    const cap = opts.capacity ?? DEFAULT_CT_CAPACITY;
    if (!Number.isInteger(cap) || cap < 1 || cap > 1 << 24) throw new FlatnetError('ERR_CONNTRACK_CAPACITY', `conntrack capacity must be an integer in 1..16777216, got ${cap}`);
    this.capacity = cap;
    this.timeouts = { ...DEFAULT_CT_TIMEOUTS, ...opts.timeouts };
    this.src = new Int32Array(cap * 2);
    this.dst = new Int32Array(cap * 2);
    this.ports = new Int32Array(cap * 2);
    this.next = new Int32Array(cap * 2);
    this.packets = new Float64Array(cap * 2);
    this.bytes = new Float64Array(cap * 2);
    this.aux = new Int32Array(cap * 2);
    this.proto = new Uint8Array(cap);
    this.state = new Uint8Array(cap);
    this.close = new Uint8Array(cap);
    this.flags = new Uint8Array(cap);
    this.used = new Uint8Array(cap);
    this.expires = new Float64Array(cap);
    this.marks = new Int32Array(cap);
    this.lruPrev = new Int32Array(cap);
    this.lruNext = new Int32Array(cap);
    this.free = new Int32Array(cap);
    for (let i = 0; i < cap; i++) this.free[i] = cap - 1 - i;
    this.freeTop = cap;
    let nb = 1;
    while (nb < cap) nb <<= 1;
    this.buckets = new Int32Array(nb).fill(NIL);
    this.mask = nb - 1;
    this.seed = (opts.seed ?? (Math.random() * 0x1_0000_0000)) >>> 0;
    if (opts.prepass === false) this.bound = null;
  }

  get size(): number {
    return this.stats.entries;
  }

  private hash(proto: number, src: number, dst: number, ports: number): number {
    let h = Math.imul(src ^ this.seed, 0x85ebca6b);
    h = Math.imul(h ^ (h >>> 13) ^ dst, 0xc2b2ae35);
    h = Math.imul(h ^ (h >>> 16) ^ ports, 0x27d4eb2f);
    h ^= proto + (h >>> 15);
    h = Math.imul(h, 0x165667b1);
    return (h ^ (h >>> 16)) & this.mask;
  }

  /**
   * lookup returns the tuple node (entry * 2 + direction) of the live connection this packet
   * belongs to, or -1. Pure: it changes nothing (a trace and a policy decision may call it).
   * `ports` is packPorts(sport, dport); for ICMP echo, packPorts(id, 0). Addresses may be given
   * as uint32 or int32 (callers on the data path pass int32: `x | 0`).
   */
  lookup(proto: number, src: number, dst: number, ports: number, now: number): number {
    src |= 0; dst |= 0; ports |= 0;
    for (let n = this.buckets[this.hash(proto, src, dst, ports)]!; n !== NIL; n = this.next[n]!) {
      if (this.src[n] === src && this.dst[n] === dst && this.ports[n] === ports && this.proto[n >> 1] === proto) {
        return this.expires[n >> 1]! > now ? n : NIL;
      }
    }
    return NIL;
  }

  /**
   * create adds a connection whose first packet had tuple (src, dst, ports) and whose replies
   * will carry (rsrc, rdst, rports) (the first tuple reversed, unless NAT rewrote it), and
   * applies that first packet (`tcpFlags`, `len` bytes). Returns the ORIGINAL tuple node, or
   * a CtRefuse code (each counted).
   */
  create(proto: number, src: number, dst: number, ports: number, rsrc: number, rdst: number, rports: number, tcpFlags: number, len: number, now: number): number {
    if (proto === CtProto.TCP && !tcpNext(TcpState.NONE, 0, Dir.ORIGINAL, tcpFlags, this.step)) {
      this.stats.invalid++;
      return CtRefuse.INVALID;
    }
    if (this.lookupAny(proto, src, dst, ports, now) !== NIL || this.lookupAny(proto, rsrc, rdst, rports, now) !== NIL) {
      this.stats.clashes++;
      return CtRefuse.CLASH;
    }
    if (this.freeTop === 0 && !this.makeRoom(now)) {
      this.stats.refused++;
      return CtRefuse.FULL;
    }
    const e = this.free[--this.freeTop]!;
    const o = e * 2, r = o + 1;
    this.proto[e] = proto;
    this.state[e] = TcpState.NONE;
    this.close[e] = 0;
    this.flags[e] = 0;
    this.marks[e] = 0;
    this.used[e] = 1;
    this.setTuple(o, proto, src, dst, ports);
    this.setTuple(r, proto, rsrc, rdst, rports);
    this.packets[o] = 0; this.bytes[o] = 0; this.packets[r] = 0; this.bytes[r] = 0;
    this.aux[o] = 0; this.aux[r] = 0;
    this.lruAppend(e);
    this.stats.entries++;
    this.stats.inserted++;
    this.seen(o, tcpFlags, len, now);
    return o;
  }

  /**
   * seen applies one packet of the connection at tuple node `n` (from lookup or create):
   * counters, direction flags, TCP state, expiry, LRU position. Returns false (and changes
   * nothing but the counters) for a TCP packet that does not fit the connection's state.
   */
  seen(n: number, tcpFlags: number, len: number, now: number): boolean {
    const e = n >> 1, dir = (n & 1) as Dir;
    this.packets[n]!++;
    this.bytes[n]! += len;
    const proto = this.proto[e]!;
    let f = this.flags[e]!;
    if (dir === Dir.REPLY) f |= CtFlag.SEEN_REPLY;
    let timeout: number;
    const t = this.timeouts;
    if (proto === CtProto.TCP) {
      const s = this.state[e] as TcpState;
      if (s === TcpState.ESTABLISHED && (tcpFlags & (TcpFlag.SYN | TcpFlag.FIN | TcpFlag.RST)) === 0) {
        // Most packets of a connection: an ACK (or data) while ESTABLISHED. tcpNext would keep
        // the state and the close bits (none while ESTABLISHED: the first FIN leaves it), so
        // it is skipped.
        f |= CtFlag.ASSURED;
        timeout = t.tcpEstablished;
      } else {
        const step = this.step;
        if (!tcpNext(s, this.close[e]!, dir, tcpFlags, step)) return false;
        this.state[e] = step.state;
        this.close[e] = step.close;
        if (step.state === TcpState.ESTABLISHED) f |= CtFlag.ASSURED;
        timeout = tcpTimeout(t, step.state);
      }
    } else if (proto === CtProto.UDP) {
      // Assured once a reply was seen and the original side spoke again (the kernel's "stream").
      if ((f & CtFlag.SEEN_REPLY) !== 0 && dir === Dir.ORIGINAL) f |= CtFlag.ASSURED;
      timeout = (f & CtFlag.ASSURED) !== 0 ? t.udpStream : t.udp;
    } else {
      if ((f & CtFlag.SEEN_REPLY) !== 0) f |= CtFlag.ASSURED;
      timeout = proto === CtProto.ICMP ? t.icmp : t.generic;
    }
    this.flags[e] = f;
    // The expiry and the LRU position move at most once per millisecond (and whenever the
    // timeout changes): the other packets of a busy flow in the same millisecond skip them.
    const exp = now + timeout;
    if (this.expires[e] !== exp) {
      this.expires[e] = exp;
      this.lruTouch(e);
    }
    return true;
  }

  /**
   * reopens tells whether a packet with `tcpFlags` at tuple node `n` starts a new connection on
   * the tuple of a closed one: a SYN without ACK, in the original direction, on a TCP connection
   * in TIME_WAIT or CLOSE (a client reusing its port). The kernel deletes such an entry and looks
   * again (nf_conntrack_proto_tcp's reopen), so the new connection is judged by policy and given
   * a backend afresh; the stages do the same: they take the entry as absent when they decide and
   * remove it when they act (FrameContext.ctReopen). Pure.
   */
  reopens(n: number, tcpFlags: number): boolean {
    if ((n & 1) !== Dir.ORIGINAL || (tcpFlags & (TcpFlag.SYN | TcpFlag.ACK | TcpFlag.RST)) !== TcpFlag.SYN) return false;
    const e = n >> 1, s = this.state[e];
    return this.proto[e] === CtProto.TCP && (s === TcpState.TIME_WAIT || s === TcpState.CLOSE);
  }

  /** remove deletes the connection at tuple node `n` (either direction); counted as removed. */
  remove(n: number): void {
    const e = n >> 1;
    if (this.used[e] !== 1) return;
    this.release(e);
    this.stats.removed++;
  }

  /**
   * removeWhere deletes every connection for which `pred(node)` (given the ORIGINAL node) is
   * true and returns how many (cold path: an endpoint removed, a policy change, a flush).
   */
  removeWhere(pred: (original: number) => boolean): number {
    let k = 0;
    for (let e = this.lruHead; e !== NIL;) {
      const nx = this.lruNext[e]!;
      if (pred(e * 2)) { this.release(e); k++; }
      e = nx;
    }
    this.stats.removed += k;
    return k;
  }

  /**
   * sweep reclaims expired entries, looking at no more than `budget` slots from where the last
   * sweep stopped (the owner calls it on a timer: bounded work per call, whole table in turn).
   * Returns how many it reclaimed.
   */
  sweep(now: number, budget = 1024): number {
    let k = 0, i = this.sweepAt;
    const cap = this.capacity;
    for (let seen = 0; seen < budget && seen < cap; seen++) {
      if (this.used[i] === 1 && this.expires[i]! <= now) { this.release(i); this.stats.expired++; k++; }
      if (++i === cap) i = 0;
    }
    this.sweepAt = i;
    return k;
  }

  /**
   * prepass applies a batch's packets of established connections to their entries before the
   * pipeline runs the batch (native/src/conntrack.cc). `out` gets one slot per packet, in the
   * order the pipeline loads them (none for a truncated frame; one per datagram of an overlay
   * frame read with UDP GRO): the tuple node the packet was counted on; PREPASS_MISS for a TCP
   * or UDP packet no live connection has (see missed()); or -1 for a packet left to the stages
   * (a new connection, a TCP packet that may move the state, anything but plain
   * IPv4 TCP or UDP, every later packet of a connection one of the batch's packets was left
   * to, a source other than `podIp` when it is not 0, a VXLAN header the overlay would not
   * take for `vni`), with a bit for the LRU move take() makes, and PREPASS_NAT when it also
   * translated the packet (a Service's packet, its entry marked MARK_PREPASS_DNAT or
   * MARK_PREPASS_REPLY for its direction; `vlen`: the virtio-net header's length in front of
   * each pod frame, 0 for none), and PREPASS_PASS_EGRESS / PREPASS_PASS_INGRESS when the packet
   * is a reply or its entry carries MARK_POLICY_EGRESS / MARK_POLICY_INGRESS. The pipeline hands
   * a slot to take() when it gets to the packet, and the stages take its node as found and seen
   * (FrameContext.ctNode, ctSeen), its translation as done (FrameContext.natted) and the policy
   * stages it passes as passed (ctPassEgress, ctPassIngress). `framing`: PrepassFraming.
   * Returns how many packets it took, 0 when it took none (then wroteSlots says whether `out`
   * holds the batch's slots: -1 or PREPASS_MISS each, or all -1 when the table has fewer free
   * entries than the batch has packets; not without the addon, where every packet goes the
   * stages' way), or -errno: EINVAL (bad arguments), ENOSPC (`out` has fewer slots than the
   * batch's packets; nothing was done).
   */
  prepass(arena: Buffer, meta: Int32Array, n: number, now: number, framing: PrepassFraming, vni: number, podIp: number, vlen: number, out: Int32Array): number {
    this.relCount = 0;
    this.insertedAtPass = -1;
    let b = this.bound;
    if (b === undefined) b = this.bind();
    if (b === null) return 0;
    const r = loadNative().ctPrepass(b, arena, meta, n, now, framing, vni, podIp | 0, vlen, out, this.freeTop);
    if (r >= 0) this.insertedAtPass = this.stats.inserted;
    if (r > 0) this.stats.prepassed += r;
    return r;
  }

  /** The last prepass() wrote a slot for each of the batch's packets (it returned 0 or more with the addon). */
  get wroteSlots(): boolean {
    return this.insertedAtPass >= 0;
  }

  /**
   * missed: the slot is PREPASS_MISS and still true: no connection was created since the
   * pre-pass (the only way a tuple becomes one a lookup finds), so looking the packet up would
   * find nothing. A packet after one that opened a connection in the same batch is looked up.
   */
  missed(slot: number): boolean {
    return slot === PREPASS_MISS && this.stats.inserted === this.insertedAtPass;
  }

  /**
   * take: the tuple node of a prepass() slot, once the pipeline gets to its packet, or -1 (the
   * packet goes the stages' way). The entry moves to the LRU tail now when the pre-pass moved
   * its expiry (so the LRU order is the packets' order), and a node whose entry was released
   * since the pre-pass (its slot may hold another connection by now) is -1 (a packet the
   * pre-pass translated stays translated: the caller reads PREPASS_NAT off the slot).
   */
  take(slot: number): number {
    if (slot < 0) return NIL;
    const n = slot & PREPASS_NODE;
    if ((slot & PREPASS_NAT) !== 0) this.stats.prepassTranslated++;
    if (this.relCount !== 0 && this.releasedSince(n)) return NIL;
    if ((slot & PREPASS_TOUCH) !== 0) this.lruTouch(n >> 1);
    return n;
  }

  /** releasedSince: the entry of tuple node `n` was released after the last prepass(). */
  private releasedSince(n: number): boolean {
    const k = this.relCount;
    if (k > RELEASE_LOG) return true;
    const e = n >> 1, log = this.relLog;
    for (let i = 0; i < k; i++) if (log[i] === e) return true;
    return false;
  }

  /** bind hands the table's arrays to the addon once (cold). */
  private bind(): unknown {
    if (nativeUnavailableReason() !== null || typeof loadNative().ctBind !== 'function') return (this.bound = null);
    const t = this.timeouts;
    this.bound = loadNative().ctBind(this.src, this.dst, this.ports, this.next, this.packets, this.bytes, this.proto, this.state, this.flags,
      this.expires, this.buckets, new Float64Array([t.udp, t.udpStream, t.tcpEstablished]), this.marks, this.aux, this.seed);
    return this.bound;
  }

  // --- per-node accessors (the data path reads a connection's other tuple for NAT) -----------

  /** The tuple's source address (uint32). */
  nodeSrc(n: number): number { return this.src[n]! >>> 0; }
  nodeDst(n: number): number { return this.dst[n]! >>> 0; }
  /** The tuple's ports as packPorts made them (int32): `>>> 16` is the source, `& 0xffff` the destination. */
  nodePorts(n: number): number { return this.ports[n]!; }
  /** The tuple node's user word (setNodeAux; 0 after create). */
  nodeAux(n: number): number { return this.aux[n]!; }
  setNodeAux(n: number, v: number): void { this.aux[n] = v; }
  /** The connection's mark (a Service or policy may store an index here). */
  mark(n: number): number { return this.marks[n >> 1]!; }
  setMark(n: number, v: number): void { this.marks[n >> 1] = v; }
  entryFlags(n: number): number { return this.flags[n >> 1]!; }
  protoOf(n: number): number { return this.proto[n >> 1]!; }
  tcpState(n: number): TcpState { return this.state[n >> 1] as TcpState; }

  /** Every live entry, oldest first (cold path). */
  list(now: number): CtEntryInfo[] {
    const out: CtEntryInfo[] = [];
    for (let e = this.lruHead; e !== NIL; e = this.lruNext[e]!) {
      if (this.expires[e]! <= now) continue;
      out.push(this.info(e, now));
    }
    return out;
  }

  private info(e: number, now: number): CtEntryInfo {
    const f = this.flags[e]!, proto = this.proto[e]!;
    const tuple = (n: number): CtTupleInfo => ({
      src: formatIpv4(this.src[n]! >>> 0), dst: formatIpv4(this.dst[n]! >>> 0),
      sport: this.ports[n]! >>> 16, dport: this.ports[n]! & 0xffff, packets: this.packets[n]!, bytes: this.bytes[n]!,
    });
    const flags: string[] = [];
    if ((f & CtFlag.SEEN_REPLY) === 0) flags.push('UNREPLIED');
    if ((f & CtFlag.ASSURED) !== 0) flags.push('ASSURED');
    return {
      id: e, proto, state: proto === CtProto.TCP ? TCP_STATE_NAMES[this.state[e]!]! : '',
      flags, expiresInS: Math.max(0, Math.ceil((this.expires[e]! - now) / 1000)),
      original: tuple(e * 2), reply: tuple(e * 2 + 1), mark: this.marks[e]!,
    };
  }

  // --- internals ---------------------------------------------------------------------------

  /** lookupAny: like lookup, but also finds expired entries that still hold the tuple (and reclaims them). */
  private lookupAny(proto: number, src: number, dst: number, ports: number, now: number): number {
    src |= 0; dst |= 0; ports |= 0;
    for (let n = this.buckets[this.hash(proto, src, dst, ports)]!; n !== NIL; n = this.next[n]!) {
      if (this.src[n] === src && this.dst[n] === dst && this.ports[n] === ports && this.proto[n >> 1] === proto) {
        if (this.expires[n >> 1]! > now) return n;
        this.release(n >> 1);
        this.stats.expired++;
        return NIL;
      }
    }
    return NIL;
  }

  private setTuple(n: number, proto: number, src: number, dst: number, ports: number): void {
    src |= 0; dst |= 0; ports |= 0;
    this.src[n] = src;
    this.dst[n] = dst;
    this.ports[n] = ports;
    const b = this.hash(proto, src, dst, ports);
    this.next[n] = this.buckets[b]!;
    this.buckets[b] = n;
  }

  private unlinkTuple(n: number): void {
    const b = this.hash(this.proto[n >> 1]!, this.src[n]!, this.dst[n]!, this.ports[n]!);
    let p = this.buckets[b]!;
    if (p === n) { this.buckets[b] = this.next[n]!; return; }
    while (p !== NIL) {
      const nx = this.next[p]!;
      if (nx === n) { this.next[p] = this.next[n]!; return; }
      p = nx;
    }
  }

  private release(e: number): void {
    this.unlinkTuple(e * 2);
    this.unlinkTuple(e * 2 + 1);
    this.lruUnlink(e);
    this.used[e] = 0;
    this.expires[e] = 0;
    this.free[this.freeTop++] = e;
    this.stats.entries--;
    if (this.relCount < RELEASE_LOG) this.relLog[this.relCount] = e;
    this.relCount++;
  }

  /** makeRoom frees one entry: an expired one, else the oldest unreplied or closing one of the LRU head's EARLY_DROP_SCAN. */
  private makeRoom(now: number): boolean {
    let candidate = NIL, k = 0;
    for (let e = this.lruHead; e !== NIL && k < EARLY_DROP_SCAN; e = this.lruNext[e]!, k++) {
      if (this.expires[e]! <= now) { this.release(e); this.stats.expired++; return true; }
      if (candidate === NIL && ((this.flags[e]! & CtFlag.ASSURED) === 0 || this.state[e]! >= TcpState.FIN_WAIT)) candidate = e;
    }
    if (candidate === NIL) return false;
    this.release(candidate);
    this.stats.earlyDropped++;
    return true;
  }

  private lruAppend(e: number): void {
    this.lruPrev[e] = this.lruTail;
    this.lruNext[e] = NIL;
    if (this.lruTail !== NIL) this.lruNext[this.lruTail] = e; else this.lruHead = e;
    this.lruTail = e;
  }

  private lruUnlink(e: number): void {
    const p = this.lruPrev[e]!, nx = this.lruNext[e]!;
    if (p !== NIL) this.lruNext[p] = nx; else this.lruHead = nx;
    if (nx !== NIL) this.lruPrev[nx] = p; else this.lruTail = p;
  }

  private lruTouch(e: number): void {
    if (this.lruTail === e) return;
    this.lruUnlink(e);
    this.lruAppend(e);
  }
}

function tcpTimeout(t: CtTimeouts, s: TcpState): number {
  switch (s) {
    case TcpState.SYN_SENT: return t.tcpSynSent;
    case TcpState.SYN_RECV: return t.tcpSynRecv;
    case TcpState.ESTABLISHED: return t.tcpEstablished;
    case TcpState.FIN_WAIT: return t.tcpFinWait;
    case TcpState.CLOSE_WAIT: return t.tcpCloseWait;
    case TcpState.LAST_ACK: return t.tcpLastAck;
    case TcpState.TIME_WAIT: return t.tcpTimeWait;
    default: return t.tcpClose;
  }
}

/** packPorts: the `ports` key of a tuple (an int32: a Smi, never a heap number). */
export const packPorts = (sport: number, dport: number): number => (sport << 16) | dport;

const PROTO_NAMES: Readonly<Record<number, string>> = { 1: 'icmp', 6: 'tcp', 17: 'udp', 132: 'sctp' };

/**
 * formatEntry renders one entry the way `conntrack -L` does:
 * `tcp      6 431999 ESTABLISHED src=... dst=... sport=... dport=... src=... ... [ASSURED] mark=0`.
 */
export function formatEntry(i: CtEntryInfo): string {
  const name = PROTO_NAMES[i.proto] ?? 'unknown';
  const t = (x: CtTupleInfo, p: number): string => p === CtProto.ICMP
    ? `src=${x.src} dst=${x.dst} id=${x.sport}`
    : `src=${x.src} dst=${x.dst} sport=${x.sport} dport=${x.dport}`;
  const unreplied = i.flags.includes('UNREPLIED') ? ' [UNREPLIED]' : '';
  const assured = i.flags.includes('ASSURED') ? ' [ASSURED]' : '';
  const state = i.state === '' ? '' : ` ${i.state}`;
  return `${name.padEnd(8)} ${i.proto} ${i.expiresInS}${state} ${t(i.original, i.proto)} packets=${i.original.packets} bytes=${i.original.bytes}${unreplied} ${t(i.reply, i.proto)} packets=${i.reply.packets} bytes=${i.reply.bytes}${assured} mark=${i.mark}`;
}

export { CloseBits, Dir, TcpState };
