import { describe, expect, it } from 'vitest';
import { Cidr } from '../../src/fib/cidr.js';
import { Fdb, FdbKind, Learn } from '../../src/fib/fdb.js';
import { Vtep } from '../../src/fib/vtep.js';

const vtep = (n: number): Vtep => new Vtep(
  { name: `n${n}`, underlayIp: 0xc6336400 + n, mac: 0x0e00_0af4_0000 + n, vni: 1, port: 4789, podCidr: Cidr.parse(`10.244.${n}.0/24`) },
  { localUnderlayIp: 0xc6336401, localUnderlayMac: 2, nextHopMac: 4, ttl: 64, df: 'unset', udpChecksum: false, srcPortRange: [49152, 65535] },
);

describe('Fdb', () => {
  it('learns, refreshes and moves learned entries', () => {
    const f = new Fdb(1);
    const a = vtep(2), b = vtep(3);
    expect(f.learn(0xaa, -1, a, 10)).toBe(Learn.NEW);
    expect(f.learn(0xaa, -1, a, 20)).toBe(Learn.REFRESHED);
    expect(f.peek(0xaa)?.updated).toBe(20);
    expect(f.learn(0xaa, -1, b, 30)).toBe(Learn.MOVED);
    expect(f.peek(0xaa)?.vtep).toBe(b);
    expect(f.moves).toBe(1);
  });

  it('never moves a static entry', () => {
    const f = new Fdb(1);
    f.addStatic(0xbb, 3, null, 0);
    expect(f.learn(0xbb, -1, vtep(2), 1)).toBe(Learn.STATIC_CONFLICT);
    expect(f.peek(0xbb)?.port).toBe(3);
    expect(f.refusedStatic).toBe(1);
  });

  it('refuses to learn beyond its limit but keeps refreshing known entries', () => {
    const f = new Fdb(1, { limit: 3 });
    for (let i = 1; i <= 3; i++) expect(f.learn(i, 0, null, 0)).toBe(Learn.NEW);
    expect(f.learn(4, 0, null, 0)).toBe(Learn.FULL);
    expect(f.learn(1, 0, null, 5)).toBe(Learn.REFRESHED);
    expect([f.size, f.refusedFull]).toEqual([3, 1]);
    expect(() => f.addStatic(9, 0, null, 0)).toThrow(expect.objectContaining({ code: 'ERR_FDB_FULL' }));
  });

  it('ages learned entries by last refresh, never static ones', () => {
    const f = new Fdb(1, { ageingMs: 1000 });
    f.addStatic(1, 0, null, 0);
    f.learn(2, 0, null, 0);
    f.learn(3, 0, null, 0);
    f.learn(3, 0, null, 900);
    expect(f.sweep(1500)).toBe(1);
    expect([f.peek(1)?.kind, f.peek(2), f.peek(3)?.kind]).toEqual([FdbKind.STATIC, undefined, FdbKind.LEARNED]);
  });

  it('lookup marks entries used only when the time changed', () => {
    const f = new Fdb(1);
    f.learn(5, 1, null, 0);
    expect(f.lookup(5, 7)?.used).toBe(7);
    expect(f.lookup(6, 7)).toBeUndefined();
  });

  it('keeps one copy per VTEP on the flood list and refuses the all-zeros MAC as an entry', () => {
    const f = new Fdb(1);
    const a = vtep(2);
    f.setFlood([a, vtep(3), a]);
    expect(f.floodList.map((v) => v.name)).toEqual(['n2', 'n3']);
    expect(() => f.addStatic(0, 1, null, 0)).toThrow(expect.objectContaining({ code: 'ERR_FDB_ALL_ZEROS' }));
  });

  it('removes every entry pointing at a peer', () => {
    const f = new Fdb(1);
    const a = vtep(2), b = vtep(3);
    f.learn(1, -1, a, 0); f.learn(2, -1, a, 0); f.learn(3, -1, b, 0);
    expect(f.removeWhere((e) => e.vtep === a)).toBe(2);
    expect(f.entries().map((e) => e.mac)).toEqual([3]);
  });
});
