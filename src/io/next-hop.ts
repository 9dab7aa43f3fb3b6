/**
 * NextHops: the underlay next hop's MAC for each peer, from the kernel's own tables, for a port
 * that writes the outer Ethernet header itself (XdpOverlayPort).
 *
 *   mac(ip)    hot path: a Map lookup; a miss (-1) means "send this frame through the kernel"
 *              (the raw socket: the kernel routes it and resolves the neighbour with ARP, which
 *              is the one packet that makes the next lookup succeed) and queues a lookup
 *   lookups    on the control path, off the frame loop (setImmediate): RTM_GETROUTE for the
 *              peer (output interface, gateway), then RTM_GETNEIGH for the gateway or the peer
 *              itself on the underlay interface; a usable entry (reachable, stale, delay, probe,
 *              permanent) is cached
 *   changes    an rtnetlink socket subscribed to route, neighbour and link changes: any message
 *              empties the cache and looks every known peer up again (Open vSwitch's tunnel
 *              neighbour cache follows the kernel the same way)
 * Peers routed out of another interface than ours stay with the kernel (counted: otherDevice).
 */

import type { NativeAddon } from './native.js';
import { control } from './native.js';

/** Counters (cold path: show ports, tests). */
export class NextHopStats {
  /** Route + neighbour lookups done. */
  lookups = 0;
  /** Lookups that found a usable neighbour entry. */
  resolved = 0;
  /** Frames sent through the kernel because their next hop was not known yet. */
  viaKernel = 0;
  /** Peers the kernel has no route to (their frames go through the kernel, which drops them). */
  noRoute = 0;
  /** Peers routed through another interface than the port's. */
  otherDevice = 0;
  /** Change notifications that emptied the cache. */
  invalidations = 0;
}

/** Lookups of one address at most this often while it stays unresolved. */
const RETRY_MS = 20;

const macOf = (b: Buffer): number => b.readUInt16BE(0) * 0x1_0000_0000 + b.readUInt32BE(2);

export class NextHops {
  readonly stats = new NextHopStats();
  private readonly macs = new Map<number, number>();
  private readonly wanted = new Set<number>();
  private readonly lastTry = new Map<number, number>();
  private scheduled: NodeJS.Immediate | null = null;
  private retry: NodeJS.Timeout | null = null;
  private monitorFd = -1;
  private lookupFd = -1;
  private pollId = -1;

  constructor(private readonly native: NativeAddon, readonly ifindex: number, readonly name: string) {}

  /**
   * watch opens the lookup socket and the change monitor in the current namespace (call it
   * where the port lives: both answer for that namespace from then on). Throws NativeError.
   */
  watch(): void {
    if (this.monitorFd >= 0) return;
    const n = this.native;
    this.lookupFd = control(`${this.name}: rtnetlink`, () => n.nlOpen());
    this.monitorFd = control(`${this.name}: rtnetlink monitor`, () => n.nlMonitorOpen());
    this.pollId = n.pollOpen(this.monitorFd, () => this.onChange());
    n.pollRef(this.pollId, false);
    n.pollStart(this.pollId);
  }

  /**
   * mac: the next hop's MAC for peer `ip` (48-bit number), or -1 (then a lookup is queued).
   * `ip` is the IPv4 address as an int32 (as meta ADDR holds it): a uint32 above 2^31 would be
   * a heap number, allocated for every lookup (16 bytes per frame in bench/io/xdp.bench.ts).
   */
  mac(ip: number): number {
    const m = this.macs.get(ip);
    if (m !== undefined) return m;
    this.stats.viaKernel++;
    if (!this.wanted.has(ip)) {
      this.wanted.add(ip);
      this.schedule();
    } else if (this.scheduled === null && this.retry === null) {
      this.schedule();
    }
    return -1;
  }

  /** known: the peers resolved now (for tests and show). */
  get size(): number { return this.macs.size; }

  private schedule(): void {
    if (this.scheduled !== null) return;
    this.scheduled = setImmediate(() => {
      this.scheduled = null;
      this.resolveWanted();
    });
    this.scheduled.unref?.();
  }

  private resolveWanted(): void {
    const now = Date.now();
    let waiting = false;
    for (const ip of this.wanted) {
      const last = this.lastTry.get(ip);
      if (last !== undefined && now - last < RETRY_MS) { waiting = true; continue; }
      this.lastTry.set(ip, now);
      if (this.lookup(ip)) {
        this.wanted.delete(ip);
        this.lastTry.delete(ip);
      }
    }
    if (waiting && this.retry === null) {
      this.retry = setTimeout(() => { this.retry = null; this.resolveWanted(); }, RETRY_MS);
      this.retry.unref();
    }
  }

  /** lookup asks the kernel for `ip`'s route and neighbour; true when the MAC is now cached. */
  private lookup(ip: number): boolean {
    const s = this.stats, n = this.native;
    s.lookups++;
    if (this.lookupFd < 0) return false;
    let route;
    try {
      route = n.routeGet(this.lookupFd, ip >>> 0);
    } catch {
      s.noRoute++;
      return false;
    }
    if (route.ifindex !== this.ifindex) {
      s.otherDevice++;
      return false;
    }
    const hop = route.gateway !== 0 ? route.gateway : ip >>> 0;
    let neigh;
    try {
      neigh = n.neighGet(this.lookupFd, this.ifindex, hop);
    } catch {
      return false;
    }
    if (neigh.mac === null) return false;
    this.macs.set(ip, macOf(neigh.mac));
    s.resolved++;
    return true;
  }

  private onChange(): void {
    if (this.monitorFd < 0) return;
    const got = this.native.nlDrain(this.monitorFd);
    if (got <= 0) return;
    this.stats.invalidations++;
    for (const ip of this.macs.keys()) this.wanted.add(ip);
    this.macs.clear();
    this.lastTry.clear();
    this.schedule();
  }

  close(): void {
    if (this.scheduled !== null) clearImmediate(this.scheduled);
    if (this.retry !== null) clearTimeout(this.retry);
    this.scheduled = null;
    this.retry = null;
    if (this.pollId >= 0) this.native.pollClose(this.pollId);
    if (this.monitorFd >= 0) this.native.close(this.monitorFd);
    if (this.lookupFd >= 0) this.native.close(this.lookupFd);
    this.pollId = -1;
    this.monitorFd = -1;
    this.lookupFd = -1;
    this.macs.clear();
    this.wanted.clear();
  }
}
