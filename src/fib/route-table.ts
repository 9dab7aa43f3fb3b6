/**
 * The route table: pod CIDR -> next hop, longest-prefix match on uint32 keys.
 *
 * A table is immutable: the control plane builds a new one from the desired state (local pods,
 * peers, the host) and swaps it in, so a lookup never sees half an update (Calico #7281: patch
 * by events alone and stale entries survive). Lookup walks the prefix lengths present, longest
 * first, with one Map probe per length; a node's table has three or four lengths (/32 pods,
 * /24 peers, /16 cluster, /0 default). bench/fib/lpm.bench.ts measures 100/1k/10k routes.
 */

import { ConfigError } from '../errors.js';
import type { Cidr } from './cidr.js';
import { U32Map } from './u32-map.js';
import type { Vtep } from './vtep.js';
import type { EthAddrWords } from '../wire/ethernet.js';

export const RouteKind = {
  /** A pod on this node: deliver to its port. */
  LOCAL: 'local',
  /** The node's own stack: deliver to the host port. */
  HOST: 'host',
  /** A remote node's pods: encapsulate to its VTEP. */
  VTEP: 'vtep',
  /** Known but unreachable: drop (counted as no_route). */
  BLACKHOLE: 'blackhole',
} as const;
export type RouteKind = (typeof RouteKind)[keyof typeof RouteKind];

export class Route {
  readonly cidr: Cidr;
  readonly kind: RouteKind;
  /** LOCAL: the pod's port id; otherwise -1. */
  readonly port: number;
  /** LOCAL: the pod's MAC; otherwise 0. */
  readonly mac: number;
  /** VTEP: the remote node; otherwise null. */
  readonly vtep: Vtep | null;
  /**
   * LOCAL and VTEP: the Ethernet addresses a routed frame leaves with (the next hop's MAC, ours
   * as the source), precomputed as the kernel's neighbour entries cache their hardware header;
   * null for the others.
   */
  readonly l2: EthAddrWords | null;

  constructor(cidr: Cidr, kind: RouteKind, opts: { port?: number; mac?: number; vtep?: Vtep; l2?: EthAddrWords } = {}) {
    this.cidr = cidr;
    this.kind = kind;
    this.port = opts.port ?? -1;
    this.mac = opts.mac ?? 0;
    this.vtep = opts.vtep ?? null;
    this.l2 = opts.l2 ?? null;
  }

  describe(): string {
    switch (this.kind) {
      case RouteKind.LOCAL: return `${this.cidr} dev port${this.port}`;
      case RouteKind.HOST: return `${this.cidr} dev host`;
      case RouteKind.VTEP: return `${this.cidr} via ${this.vtep?.toString() ?? '?'}`;
      case RouteKind.BLACKHOLE: return `blackhole ${this.cidr}`;
    }
  }
}

export class RouteTable {
  readonly routes: readonly Route[];
  /** Prefix lengths present, longest first, with their masks and maps (parallel arrays). */
  private readonly lens: number[] = [];
  private readonly masks: number[] = [];
  private readonly maps: U32Map<Route>[] = [];
  /**
   * Per length, the smallest and largest network (uint32) of its routes: a key outside that
   * range cannot match, and the map is not probed. A node's /32 routes are its own pods, all
   * in one /24, so traffic to other nodes skips that probe (bench/replay, pod-to-remote).
   */
  private lo = new Float64Array(0);
  private hi = new Float64Array(0);

  /** Builds a table; throws ERR_ROUTE_DUPLICATE when two routes have the same prefix. */
  constructor(routes: readonly Route[]) {
    this.routes = routes;
    const byLen = new Map<number, U32Map<Route>>();
    for (const r of routes) {
      let m = byLen.get(r.cidr.len);
      if (m === undefined) byLen.set(r.cidr.len, (m = new U32Map()));
      if (m.has(r.cidr.network)) {
        throw new ConfigError('ERR_ROUTE_DUPLICATE', '', `two routes for ${r.cidr}: ${m.get(r.cidr.network)!.describe()} and ${r.describe()}`);
      }
      m.set(r.cidr.network, r);
    }
    const lens = [...byLen.keys()].sort((a, b) => b - a);
    this.lo = new Float64Array(lens.length);
    this.hi = new Float64Array(lens.length);
    lens.forEach((len, i) => {
      const m = byLen.get(len)!;
      const nets = [...m.values()].map((r) => r.cidr.network >>> 0);
      this.lens.push(len);
      this.masks.push(len === 0 ? 0 : (0xffff_ffff << (32 - len)) >>> 0);
      this.maps.push(m);
      this.lo[i] = Math.min(...nets);
      this.hi[i] = Math.max(...nets);
    });
  }

  /** lookup returns the longest-prefix route for `ip`, or null. Allocates nothing. */
  lookup(ip: number): Route | null {
    const n = this.lens.length, lo = this.lo, hi = this.hi;
    for (let i = 0; i < n; i++) {
      const k = (ip & this.masks[i]!) >>> 0;
      if (k < lo[i]! || k > hi[i]!) continue;
      const r = this.maps[i]!.get(k);
      if (r !== undefined) return r;
    }
    return null;
  }

  get size(): number {
    return this.routes.length;
  }
}
