import { describe, expect, it } from 'vitest';
import { DROP_HELP, DROP_NAMES, Drop } from '../../src/wire/drop.js';

describe('Drop reasons', () => {
  const entries = Object.entries(Drop);

  it('are counter indexes 0..n-1, with NONE = 0', () => {
    expect(Drop.NONE).toBe(0);
    expect(entries.map(([, v]) => v).sort((a, b) => a - b)).toEqual([...entries.keys()]);
  });

  it('have one snake_case counter label each, indexed by value', () => {
    for (const [k, v] of entries) expect(DROP_NAMES[v]).toBe(k.toLowerCase());
    expect(DROP_NAMES).toHaveLength(entries.length);
    expect(new Set(DROP_NAMES).size).toBe(entries.length);
  });

  it('have a help line each (all but NONE)', () => {
    for (const [k, v] of entries) {
      if (v === Drop.NONE) continue;
      expect((DROP_HELP as Record<number, string>)[v], k).toMatch(/\S/);
    }
    expect(Object.keys(DROP_HELP)).toHaveLength(entries.length - 1);
  });

  it('keep their published numbers (counters are append-only)', () => {
    expect(Drop).toMatchObject({ ETH_TRUNCATED: 1, IPV4_BAD_CHECKSUM: 7, UDP_PORT_MISMATCH: 13, VXLAN_NO_I_FLAG: 15, VXLAN_RESERVED_SET: 16, ECN_CE_NOT_ECT: 21 });
  });
});
