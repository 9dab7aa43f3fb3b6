/** Slow, obviously-correct reference implementations for differential tests. */

import type { Route } from '../../src/fib/route-table.js';

/** SlowRouter: longest-prefix match by scanning every route (wireguard-go's allowedips test idea). */
export function slowLookup(routes: readonly Route[], ip: number): Route | null {
  let best: Route | null = null;
  for (const r of routes) {
    if (r.cidr.contains(ip) && (best === null || r.cidr.len > best.cidr.len)) best = r;
  }
  return best;
}

/** checksumRef: RFC 1071 over 16-bit big-endian words, one at a time, folded at the end. */
export function checksumRef(b: Uint8Array, off: number, len: number): number {
  let s = 0;
  for (let i = 0; i < len; i += 2) s += (b[off + i]! << 8) | (i + 1 < len ? b[off + i + 1]! : 0);
  while (s > 0xffff) s = (s & 0xffff) + Math.floor(s / 0x10000);
  return s;
}

/** A seeded PRNG (mulberry32): deterministic test data, reproducible from the seed. */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
