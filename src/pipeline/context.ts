/**
 * The per-frame context: one object, reused for every frame, filled once at ingress and read by
 * every stage after it. It holds the frame's window (buf, start, end), where it came from, its
 * offload state (the virtio-net header), its parsed headers (MACs, the IP/L4 layout, addresses
 * and ports), and the decisions the stages take about it: the verdict, the output port or peer,
 * the egress plan, a reply to send back, the one drop reason.
 *
 * Stages decide first and act second (pipeline.ts). Deciding only reads the frame and the
 * forwarding state and writes here; acting rewrites the frame, learns, counts, takes rate-limit
 * tokens and queues. A trace runs the decisions alone, so everything a later stage needs to
 * know about an earlier decision lives in this object, never in the frame.
 *
 * Nothing here is allocated per frame: the fields are overwritten. Addresses and MACs are
 * numbers (uint32, 48-bit); object fields hold them without boxing per store.
 */

import { DecapResult } from '../wire/decap.js';
import { EthAddrWords } from '../wire/ethernet.js';
import type { FdbEntry } from '../fib/fdb.js';
import type { Route } from '../fib/route-table.js';
import type { Vtep } from '../fib/vtep.js';
import { FrameLayout } from '../mtu/layout.js';
import { Drop } from './drop.js';
import type { SwitchPort } from './switch-port.js';
import type { TraceRecorder } from './trace-recorder.js';

/** A stage's verdict on the frame. DELIVER, TUNNEL and FLOOD are forwarding decisions that later stages may still veto; REPLY and DROP end the pipeline. */
export const Verdict = {
  /** No forwarding decision yet: a later stage decides. */
  NEXT: 0,
  /** To a local port (a pod or the host): `out`. */
  DELIVER: 1,
  /** Encapsulated to a remote VTEP: `vtep`. */
  TUNNEL: 2,
  /** L2 broadcast, multicast or unknown unicast: every local port but the ingress, and the flood list. */
  FLOOD: 3,
  /** The switch answers the frame itself (ARP reply, echo reply) back out of the ingress port. */
  REPLY: 4,
  /** Dropped, with exactly one reason (`drop`), maybe after an ICMP error to the sender (`reply`). */
  DROP: 5,
} as const;
export type Verdict = (typeof Verdict)[keyof typeof Verdict];

/** How the egress stage sends a forwarded frame (decided per output). */
export const Plan = {
  NONE: 0,
  /** Write it as it is (a local port without virtio headers, a complete frame). */
  PLAIN: 1,
  /** To a port with virtio headers: the frame's own offload state goes along in the header. */
  PASS: 2,
  /** From the overlay to a port with virtio headers: queued for TCP coalescing (GRO). */
  GRO: 3,
  /** A super-frame to a local port without virtio headers: segmented to the pod MTU (`pieces`). */
  SEGMENT: 4,
  /** Encapsulated in place: the outer headers are written in front of it. */
  ENCAP: 5,
  /** A super-frame to the overlay: segmented, each segment encapsulated (`pieces`). */
  ENCAP_SEGMENTS: 6,
  /** A super-frame to an overlay port with UDP GSO: segmented into VXLAN trains (`pieces`). */
  ENCAP_TRAIN: 7,
  /** Too big for the underlay, DF clear: fragmented, each fragment encapsulated (`pieces`). */
  ENCAP_FRAGMENTS: 8,
  /** A TCP super-frame encapsulated whole and written to the tunnel TAP: the kernel segments it (UDP-tunnel GSO, `pieces`). */
  ENCAP_OFFLOAD: 9,
} as const;
export type Plan = (typeof Plan)[keyof typeof Plan];

/** What the switch sends back to the frame's sender. */
export const Reply = {
  NONE: 0,
  /** ARP reply: "tpa is-at replyMac" (REPLY verdict). */
  ARP: 1,
  /** ICMP echo reply from the gateway (REPLY verdict). */
  ECHO: 2,
  /** ICMP error (icmpType, icmpCode, icmpRest) about a dropped frame: time exceeded. */
  ICMP_ERROR: 3,
  /** ICMP fragmentation needed about a dropped DF frame (the kernel's tunnel PMTU reply). */
  FRAG_NEEDED: 4,
} as const;
export type Reply = (typeof Reply)[keyof typeof Reply];

/**
 * The context is the frame's layout too (it extends FrameLayout): the frame's window (buf, dv,
 * start, end) and its IP/transport offsets live in the same object, so that the MTU and offload
 * functions, which take a FrameLayout, take the context itself, and no stage loads the layout
 * through another object.
 */
const NO_ADDRS = new EthAddrWords(0, 0);

export class FrameContext extends FrameLayout {
  /** The port it arrived on (set by load()). */
  ingress!: SwitchPort;
  /** Overlay: the underlay address the datagram came from (UDP framing) or its outer source (Ethernet framing). */
  srcAddr = 0;
  /** Overlay, UDP framing: the datagram's outer IPv4 TOS byte, as the socket reported it (IP_RECVTOS). */
  srcTos = 0;

  // ---- offload state: the frame's virtio-net header (all zeros: a complete frame).
  vFlags = 0;
  vGso = 0;
  vHdrLen = 0;
  vGsoSize = 0;
  vCsumStart = 0;
  vCsumOff = 0;

  // ---- parsed headers (of the inner frame, for the overlay), filled by the ingress stage.
  dstMac = 0;
  srcMac = 0;
  etherType = 0;
  // The IP and transport layout, addresses and ports are FrameLayout's fields: ipVersion is 0
  // when the frame carries no (valid) IP packet.

  // ---- overlay receive
  /** The peer VTEP the frame came from (known underlay address), or null. */
  peer: Vtep | null = null;
  /** The outer header fields of a decapsulated frame. */
  readonly outer = new DecapResult();

  // ---- decisions
  verdict: Verdict = Verdict.NEXT;
  /** The verdict is REPLY or DROP: no later stage runs (kept by the setters below). */
  done = false;
  drop: Drop = Drop.NONE;
  /** DELIVER: the local port. */
  out: SwitchPort | null = null;
  /** TUNNEL: the remote VTEP. */
  vtep: Vtep | null = null;
  /** The route or FDB entry that decided (trace, and the route's MAC). */
  route: Route | null = null;
  fdbEntry: FdbEntry | null = null;
  /** L3 forwarding: decrement the TTL and set the MACs to `l2` (next hop <- our VTEP MAC) when the frame leaves. */
  routed = false;
  l2: EthAddrWords = NO_ADDRS;
  /** L2: the ingress source MAC is to be learned (act), with this outcome (fib/fdb.ts Learn); -1: nothing to learn. */
  learn = -1;
  /** Host port: its frame's source MAC becomes the host stack's MAC (act). */
  learnHostMac = false;
  /** Overlay: the frame passed decapsulation (the peer's receive counters count it, act). */
  decapsulated = false;
  /** The egress plan for the output being sent, the pieces it makes, and a partial checksum to finish first. */
  plan: Plan = Plan.NONE;
  pieces = 0;
  completeCsum = false;
  /** A reply to the sender: what, and its parameters. */
  reply: Reply = Reply.NONE;
  /** The connection-table node (entry * 2 + direction) the NAT or a policy stage found or made for this packet, or -1. */
  ctNode = -1;
  /** A stage has refreshed the packet's connection (one refresh per packet, whichever stage). */
  ctSeen = false;
  /**
   * The batch's pre-pass found this packet's connection, and the policy-egress (ingress) table
   * passes it (the pre-pass's slot says so: PREPASS_PASS_EGRESS, PREPASS_PASS_INGRESS; see
   * PolicyTable.tracking): the stage is skipped.
   */
  ctPassEgress = false;
  ctPassIngress = false;
  /**
   * The batch's pre-pass found this packet's connection and no Service translates it (its mark
   * has no MARK_NAT): the NAT stage, which would leave it as it is, is skipped.
   */
  ctPassNat = false;
  /**
   * The batch's pre-pass found no connection for this packet's tuple, and none was opened
   * since (ConnTable.missed): the stages do not look it up (ctNode stays -1 until one opens it).
   */
  ctMissed = false;
  /** The packet's connection was opened by this packet (a later stage that denies it removes it). */
  ctNew = false;
  /**
   * A closed connection (TIME_WAIT, CLOSE) on this packet's tuple that this SYN reopens
   * (ConnTable.reopens), or -1: the stages decide as if it were absent, and the first one
   * that acts removes it.
   */
  ctReopen = -1;
  /**
   * The service-nat stage translates this packet (a hairpin through a Service may go back out
   * its own port), or the connection table's pre-pass already did, before the ingress stage.
   */
  natted = false;
  /** natted by the pre-pass: the packet's source address before it (the ingress stage checks that one). */
  preNatSrc = 0;
  replyMac = 0;
  icmpType = 0;
  icmpCode = 0;
  icmpRest = 0;

  /** Set while tracing: the stages record what they matched. null on the data path. */
  trace: TraceRecorder | null = null;

  /** batch points the context at the batch a port's frames are read into (once per batch). */
  batch(ingress: SwitchPort, buf: Buffer, dv: DataView): void {
    this.ingress = ingress;
    this.buf = buf;
    this.dv = dv;
  }

  /**
   * load points the context at a new frame of the batch and clears the decisions that stages
   * read before they are sure to have written them (verdict, done, reply, routed, the IP
   * layout). Everything else is written by the stage that decides it before anything reads it
   * (out and vtep with their verdict, drop with DROP, plan by the egress stage, the ingress
   * stage's flags by the ingress stage): a few stores per frame fewer (bench/replay).
   * reset() clears all of it (traces).
   */
  load(start: number, end: number, srcAddr: number): void {
    this.start = start;
    this.end = end;
    this.srcAddr = srcAddr;
    this.verdict = Verdict.NEXT;
    this.done = false;
    this.reply = Reply.NONE;
    this.routed = false;
    this.ipVersion = 0;
    this.ctNode = -1;
    this.ctSeen = false;
    this.ctPassEgress = false;
    this.ctPassIngress = false;
    this.ctPassNat = false;
    this.ctMissed = false;
    this.ctNew = false;
    this.ctReopen = -1;
    this.natted = false;
  }

  /** reset clears every decision and parsed field (cold paths: a trace starts from here). */
  reset(): void {
    this.peer = null;
    this.learnHostMac = false;
    this.decapsulated = false;
    this.drop = Drop.NONE;
    this.out = null;
    this.vtep = null;
    this.route = null;
    this.fdbEntry = null;
    this.learn = -1;
    this.plan = Plan.NONE;
    this.pieces = 0;
    this.completeCsum = false;
    this.srcIp = 0;
    this.dstIp = 0;
    this.srcPort = 0;
    this.dstPort = 0;
    this.clearOffload();
  }

  /** readOffload takes the virtio-net header at `h` as the frame's offload state. */
  readOffload(h: number): void {
    const dv = this.dv;
    this.vFlags = dv.getUint8(h);
    this.vGso = dv.getUint8(h + 1);
    this.vHdrLen = dv.getUint16(h + 2, true);
    this.vGsoSize = dv.getUint16(h + 4, true);
    this.vCsumStart = dv.getUint16(h + 6, true);
    this.vCsumOff = dv.getUint16(h + 8, true);
  }

  /** clearOffload: the frame is complete (no partial checksum, not a super-frame). */
  clearOffload(): void {
    this.vFlags = 0;
    this.vGso = 0;
    this.vHdrLen = 0;
    this.vGsoSize = 0;
    this.vCsumStart = 0;
    this.vCsumOff = 0;
  }

  /** dropWith ends the pipeline for this frame with one reason. */
  dropWith(reason: Drop): void {
    this.verdict = Verdict.DROP;
    this.done = true;
    this.drop = reason;
  }

  /** replyWith ends the pipeline: the switch answers the frame itself (ARP or echo reply). */
  replyWith(reply: Reply): void {
    this.verdict = Verdict.REPLY;
    this.done = true;
    this.reply = reply;
  }

  /** flood decides L2 flooding. */
  flood(): void {
    this.verdict = Verdict.FLOOD;
  }

  /** deliverTo decides a local output port. */
  deliverTo(out: SwitchPort): void {
    this.verdict = Verdict.DELIVER;
    this.out = out;
  }

  /** tunnelTo decides a remote VTEP. */
  tunnelTo(vtep: Vtep): void {
    this.verdict = Verdict.TUNNEL;
    this.vtep = vtep;
  }
}
