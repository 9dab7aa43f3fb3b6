import { describe, expect, it } from 'vitest';
import { maglevPick, maglevTable } from '../../src/service/maglev.js';

const backends = (n: number, from = 0): string[] => Array.from({ length: n }, (_, i) => `10.244.${1 + ((from + i) >> 8)}.${(from + i) & 0xff}:8080`);
/** How many slots each name owns. */
const shares = (t: Int32Array, names: readonly string[]): Map<string, number> => {
  const m = new Map<string, number>();
  for (const i of t) m.set(names[i]!, (m.get(names[i]!) ?? 0) + 1);
  return m;
};
/** The fraction of slots whose owner (by name) differs between two tables. */
const moved = (a: Int32Array, an: readonly string[], b: Int32Array, bn: readonly string[], skip: (name: string) => boolean): number => {
  let k = 0, total = 0;
  for (let s = 0; s < a.length; s++) {
    if (skip(an[a[s]!]!)) continue;
    total++;
    if (an[a[s]!] !== bn[b[s]!]) k++;
  }
  return k / total;
};

describe('Maglev consistent hashing', () => {
  it.each([1, 3, 10, 100])('%i backends share the 16381 slots evenly (counts differ by at most one)', (n) => {
    const names = backends(n);
    const t = maglevTable(names);
    const counts = [...shares(t, names).values()];
    expect(counts.length).toBe(n);
    expect(Math.max(...counts) - Math.min(...counts)).toBeLessThanOrEqual(1);
    expect(counts.reduce((a, b) => a + b, 0)).toBe(16381);
  });

  it('removing one of 10 backends moves only its own slots and a few more (under 5% of the others)', () => {
    const before = backends(10), after = before.filter((b) => b !== before[3]);
    const f = moved(maglevTable(before), before, maglevTable(after), after, (name) => name === before[3]);
    expect(f).toBeLessThan(0.05);
  });

  it('adding an 11th backend takes about 1/11 of the slots from the others, not more than 1/11 + 5%', () => {
    const before = backends(10), after = backends(11);
    const f = moved(maglevTable(before), before, maglevTable(after), after, () => false);
    expect(f).toBeGreaterThan(1 / 11 - 0.02);
    expect(f).toBeLessThan(1 / 11 + 0.05);
  });

  it('depends on the set of backends, not the order they were learned in', () => {
    const names = backends(7), shuffled = [names[4]!, names[0]!, names[6]!, names[2]!, names[1]!, names[5]!, names[3]!];
    const a = maglevTable(names), b = maglevTable(shuffled);
    for (let s = 0; s < a.length; s += 97) expect(shuffled[b[s]!]).toBe(names[a[s]!]);
  });

  it('picks by flow hash; no backends gives -1; the size must be prime', () => {
    const t = maglevTable(backends(3), 251);
    expect(maglevPick(t, 0xdeadbeef)).toBe(t[0xdeadbeef % 251]);
    expect(maglevPick(maglevTable([], 251), 5)).toBe(-1);
    expect(() => maglevTable(backends(2), 250)).toThrow(RangeError);
  });
});
