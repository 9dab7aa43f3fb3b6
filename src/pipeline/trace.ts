/**
 * `flatnet trace`: what the pipeline would do with one packet, stage by stage (the idea of
 * `ovs-appctl ofproto/trace`). A trace runs every stage's decision on a private copy of the
 * frame and never its actions: counters, FDB learning and ageing, rate-limit tokens and queues
 * are untouched. Because the real pipeline and the trace call the same decide() of each stage,
 * the two cannot disagree on a verdict (test/pipeline/trace.test.ts replays frames through both).
 *
 * These are plain JSON-able values: the daemon's `trace` command returns a TraceResult, the CLI
 * renders it (src/trace/render.ts) or prints it with --json.
 */

/** The stages in pipeline order (ARCHITECTURE.md), as they appear in a trace. */
export const STAGE_NAMES = ['ingress', 'service-nat', 'policy-egress', 'route', 'bridge', 'policy-ingress', 'egress', 'transmit'] as const;
export type StageName = (typeof STAGE_NAMES)[number];

/** Something a stage matched: a route, an FDB entry, a binding, a peer, an MTU rule. */
export interface TraceMatch {
  /** What kind of entry: 'binding', 'route', 'neighbour', 'fdb', 'peer', 'vtep', 'mtu', 'arp', 'gateway', 'virtio', ... */
  readonly what: string;
  /** The entry as a person reads it, iproute2-style ("10.244.2.0/24 via 10.244.2.0 dev n2 onlink"). */
  readonly detail: string;
}

/** One line of a trace: a stage, what it looked at, what it matched, and its verdict. */
export interface TraceStep {
  readonly stage: StageName;
  /** The fields the stage read ("ipv4 10.244.1.10 > 10.244.2.10 ttl 64 proto udp"). */
  readonly looked: string;
  readonly matched: readonly TraceMatch[];
  /**
   * The stage's verdict: 'next', 'deliver PORT', 'tunnel PEER', 'flood', 'reply', 'drop REASON',
   * and for the egress stage how ('encapsulate', 'fragment into N', 'segment into N', ...).
   */
  readonly verdict: string;
}

/** One frame the packet would leave as (or a reply the switch would send back). */
export interface TraceFrame {
  /** Output port name and role ('pod', 'host', 'overlay'). */
  readonly port: string;
  readonly role: string;
  /** What the frame is: 'forwarded', 'reply' (ARP reply, echo reply), 'icmp-error', 'flood-copy', 'segment', 'fragment'. */
  readonly kind: string;
  /** Overlay: the underlay destination (address:port) the datagram is sent to. */
  readonly to: string | null;
  /** The bytes as written to the port (for the overlay: the whole outer frame, as a capture shows it). */
  readonly hex: string;
  readonly length: number;
}

export interface TraceResult {
  /** The ingress port as given (`--in`): its name and role. */
  readonly in: { readonly port: string; readonly role: string };
  /**
   * The packet as it entered (hex, and its length), and the virtio-net header it came with as
   * `flatnet trace --vnet` writes it (`needs-csum,gso=tcpv4,...`), or null for none.
   */
  readonly packet: { readonly hex: string; readonly length: number; readonly vnet: string | null };
  readonly steps: readonly TraceStep[];
  /** The final outcome: 'deliver', 'tunnel', 'flood', 'reply', 'drop'. */
  readonly outcome: 'deliver' | 'tunnel' | 'flood' | 'reply' | 'drop';
  /** The drop reason (counter name) and its help text, when the outcome is a drop. */
  readonly drop: { readonly reason: string; readonly help: string } | null;
  /** Frames that would leave (forwarded frames, replies, ICMP errors), in order. */
  readonly frames: readonly TraceFrame[];
  /**
   * A flood's outputs that would be dropped while the others go (`VTEP n2`, `pod port p2`),
   * each counted under its reason; empty for anything but a flood.
   */
  readonly droppedCopies: readonly { readonly to: string; readonly reason: string }[];
  /** What a trace cannot know: transmit-time outcomes (tx_busy, tx_error), rate limits, GRO. */
  readonly notes: readonly string[];
}
