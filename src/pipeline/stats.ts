/**
 * Switch counters: one Float64Array slot per drop reason (exact, cheap to bump, exported at
 * scrape time) and named event counters. Never a Map keyed by something a packet controls.
 */

import { DROP_COUNT, DROP_NAMES } from './drop.js';
import type { Drop } from './drop.js';

export class SwitchStats {
  readonly drops = new Float64Array(DROP_COUNT);
  rxFrames = 0;
  txFrames = 0;
  /** Frames encapsulated toward a VTEP (each flood copy counts). */
  encapsulated = 0;
  /** Frames decapsulated from the overlay and accepted. */
  decapsulated = 0;
  /** Extra copies made for head-end replication. */
  floodCopies = 0;
  arpReplies = 0;
  icmpSent = 0;
  /** ICMP errors not sent because of the rate limit. */
  icmpSuppressed = 0;
  fdbMoved = 0;
  /** Segments made from super-frames toward the overlay (software GSO). */
  gsoSegments = 0;
  /** Of those, segments sent in pieces: headers from the work area, the payload where it lay (no copy). */
  gsoSegmentsInPlace = 0;
  /**
   * Super-frames handed whole to the kernel through the tunnel TAP (UDP-tunnel GSO), and the
   * segments they stand for (the kernel cuts them, or carries them whole across a veth).
   */
  tunnelGsoFrames = 0;
  tunnelGsoSegments = 0;
  /** Super-frames from the overlay (a peer's UDP-tunnel GSO carried whole) taken as TSO frames. */
  overlaySuperFrames = 0;
  /** Frames from the overlay with a partial inner checksum (checksum offload on a veth underlay), passed on as such. */
  overlayPartialChecksums = 0;
  /** Inner packets fragmented before encapsulation (no DF, larger than the underlay allows). */
  fragmented = 0;
  /** ICMP fragmentation-needed replies sent (part of icmpSent). */
  fragNeededSent = 0;
  /** Super-frames built by the coalescer, and the segments merged into them (software GRO). */
  groSuperFrames = 0;
  groSegmentsMerged = 0;

  drop(reason: Drop): void {
    this.drops[reason]!++;
  }

  totalDrops(): number {
    let n = 0;
    for (let i = 1; i < this.drops.length; i++) n += this.drops[i]!;
    return n;
  }

  /** Non-zero drop counters by name. */
  dropsByName(): Record<string, number> {
    const out: Record<string, number> = {};
    for (let i = 1; i < this.drops.length; i++) if (this.drops[i]! > 0) out[DROP_NAMES[i]!] = this.drops[i]!;
    return out;
  }
}
