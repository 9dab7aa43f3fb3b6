import { describe, expect, it } from 'vitest';
import { Cidr } from '../../src/fib/cidr.js';
import { Route, RouteKind, RouteTable } from '../../src/fib/route-table.js';
import { prng, slowLookup } from '../support/refs.js';

const r = (cidr: string, kind: RouteKind = RouteKind.HOST, port = -1): Route => new Route(Cidr.parse(cidr), kind, { port });

describe('RouteTable', () => {
  it('picks the longest matching prefix', () => {
    const t = new RouteTable([r('0.0.0.0/0'), r('10.244.0.0/16', RouteKind.BLACKHOLE), r('10.244.2.0/24', RouteKind.LOCAL, 1), r('10.244.2.7/32', RouteKind.LOCAL, 2)]);
    expect(t.lookup(Cidr.parse('10.244.2.7/32').network)?.port).toBe(2);
    expect(t.lookup(Cidr.parse('10.244.2.8/32').network)?.port).toBe(1);
    expect(t.lookup(Cidr.parse('10.244.9.1/32').network)?.kind).toBe(RouteKind.BLACKHOLE);
    expect(t.lookup(Cidr.parse('8.8.8.8/32').network)?.kind).toBe(RouteKind.HOST);
  });

  it('returns null with no default route', () => {
    expect(new RouteTable([r('10.244.1.0/24')]).lookup(0x0a0a0a0a)).toBeNull();
  });

  it('refuses two routes for the same prefix', () => {
    expect(() => new RouteTable([r('10.244.1.0/24'), r('10.244.1.0/24', RouteKind.LOCAL, 3)])).toThrow(expect.objectContaining({ code: 'ERR_ROUTE_DUPLICATE' }));
  });

  it.each([1, 2, 3])('agrees with a linear scan on random tables and addresses (seed %i)', (seed) => {
    const rnd = prng(seed);
    const routes: Route[] = [];
    const seen = new Set<string>();
    for (let i = 0; i < 2000; i++) {
      const len = [0, 8, 16, 20, 24, 24, 24, 28, 32][Math.floor(rnd() * 9)]!;
      const c = new Cidr(((rnd() * 2 ** 32) >>> 0) & (len === 0 ? 0 : (0xffffffff << (32 - len)) >>> 0), len);
      if (seen.has(c.toString())) continue;
      seen.add(c.toString());
      routes.push(new Route(c, RouteKind.LOCAL, { port: i }));
    }
    const t = new RouteTable(routes);
    for (let i = 0; i < 20000; i++) {
      // Half the probes inside a random route, half anywhere.
      const base = i % 2 === 0 ? routes[Math.floor(rnd() * routes.length)]!.cidr.network : 0;
      const probe = (base + Math.floor(rnd() * 256)) >>> 0;
      expect(t.lookup(probe)).toBe(slowLookup(routes, probe));
    }
  });
});
