import { describe, expect, it } from 'vitest';
import { chiSquareUniform, gammaQ, UNIFORMITY_ALPHA } from './chi-square.js';

/** xorshift32: a seeded uniform draw in [0, 1). */
function prng(seed: number): () => number {
  let s = seed >>> 0 || 1;
  return () => { s ^= s << 13; s >>>= 0; s ^= s >>> 17; s ^= s << 5; s >>>= 0; return s / 2 ** 32; };
}
const draw = (n: number, weights: readonly number[], r: () => number): number[] => {
  const counts = weights.map(() => 0), total = weights.reduce((a, b) => a + b, 0);
  for (let i = 0; i < n; i++) {
    let x = r() * total, k = 0;
    while (x >= weights[k]! && k < weights.length - 1) x -= weights[k++]!;
    counts[k]!++;
  }
  return counts;
};

describe('chi-square test of uniformity', () => {
  it('matches known values: df 2 is exp(-x/2); the critical values of the tables', () => {
    for (const x of [0.1, 1, 5.991, 13.8155, 18.42, 40]) expect(gammaQ(1, x / 2)).toBeCloseTo(Math.exp(-x / 2), 12);
    // Upper 5 % and 0.1 % points: df 1: 3.841, 10.828; df 4: 9.488, 18.467; df 10: 18.307, 29.588.
    for (const [df, x, p] of [[1, 3.841, 0.05], [1, 10.828, 0.001], [4, 9.488, 0.05], [4, 18.467, 0.001], [10, 18.307, 0.05], [10, 29.588, 0.001]] as const) {
      expect(gammaQ(df / 2, x / 2)).toBeCloseTo(p, 4);
    }
    expect(chiSquareUniform([3334, 3333, 3333])).toMatchObject({ df: 2 });
    expect(chiSquareUniform([3334, 3333, 3333]).p).toBeGreaterThan(0.99);
  });

  it('rejects a skewed spread of 10,000 connections that a fair one of the same size passes', () => {
    // 36/32/32 %: a 3-point lean to one endpoint, over 10,000 draws.
    const skewed = draw(10_000, [36, 32, 32], prng(7));
    const r = chiSquareUniform(skewed);
    expect(r.p).toBeLessThan(UNIFORMITY_ALPHA);
    expect(chiSquareUniform([4000, 3000, 3000]).p).toBeCloseTo(Math.exp(-100), 50); // X^2 = 200
    expect(chiSquareUniform([10_000, 0, 0]).p).toBe(0);
    expect(chiSquareUniform(draw(10_000, [1, 1, 1], prng(7))).p).toBeGreaterThan(UNIFORMITY_ALPHA);
  });

  it('rejects a fair spread about as often as its significance says (2,000 seeded fair runs at 5 %)', () => {
    const r = prng(11);
    let rejected = 0;
    for (let i = 0; i < 2000; i++) if (chiSquareUniform(draw(3000, [1, 1, 1], r)).p < 0.05) rejected++;
    // Binomial(2000, 0.05): mean 100, sd 9.7.
    expect(rejected).toBeGreaterThan(60);
    expect(rejected).toBeLessThan(140);
  });

  it('refuses what it cannot test', () => {
    expect(() => chiSquareUniform([5])).toThrow(RangeError);
    expect(() => chiSquareUniform([0, 0, 0])).toThrow(RangeError);
  });
});
