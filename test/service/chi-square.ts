/**
 * Pearson's chi-square test of a set of counts against the uniform distribution, for the
 * Service tests' "spread over the endpoints" (test/service/kube-proxy-kernel.netns.test.ts).
 *
 *   X^2 = sum (O_i - E)^2 / E,  E = N / k,  df = k - 1,  p = Q(df / 2, X^2 / 2)
 *
 * where Q is the regularized upper incomplete gamma function (Numerical Recipes' gammq: a series
 * below a + 1, a continued fraction above). For df = 2, p = exp(-X^2 / 2) exactly.
 */

export interface ChiSquare {
  readonly statistic: number;
  readonly df: number;
  /** The probability of a spread at least this uneven if every endpoint were equally likely. */
  readonly p: number;
}

/** ln Gamma(x), x > 0 (Lanczos, g = 7, nine terms: about 15 digits). */
function lnGamma(x: number): number {
  const c = [0.99999999999980993, 676.5203681218851, -1259.1392167224028, 771.32342877765313, -176.61502916214059,
    12.507343278686905, -0.13857109526572012, 9.9843695780195716e-6, 1.5056327351493116e-7];
  if (x < 0.5) return Math.log(Math.PI / Math.sin(Math.PI * x)) - lnGamma(1 - x);
  x -= 1;
  let a = c[0]!;
  const t = x + 7.5;
  for (let i = 1; i < 9; i++) a += c[i]! / (x + i);
  return 0.5 * Math.log(2 * Math.PI) + (x + 0.5) * Math.log(t) - t + Math.log(a);
}

/** Q(a, x) = Gamma(a, x) / Gamma(a), the regularized upper incomplete gamma function. */
export function gammaQ(a: number, x: number): number {
  if (x <= 0) return 1;
  const lead = -x + a * Math.log(x) - lnGamma(a);
  if (x < a + 1) {
    let sum = 1 / a, term = sum;
    for (let n = 1; n < 1000 && Math.abs(term) > Math.abs(sum) * 1e-15; n++) { term *= x / (a + n); sum += term; }
    return 1 - sum * Math.exp(lead);
  }
  // Lentz's continued fraction for Gamma(a, x).
  const tiny = 1e-300;
  let b = x + 1 - a, c = 1 / tiny, d = 1 / b, h = d;
  for (let i = 1; i < 1000; i++) {
    const an = -i * (i - a);
    b += 2;
    d = an * d + b; if (Math.abs(d) < tiny) d = tiny;
    c = b + an / c; if (Math.abs(c) < tiny) c = tiny;
    d = 1 / d;
    const del = d * c;
    h *= del;
    if (Math.abs(del - 1) < 1e-15) break;
  }
  return Math.exp(lead) * h;
}

/** chiSquareUniform tests `counts` (one per category, at least two) against equal shares. */
export function chiSquareUniform(counts: readonly number[]): ChiSquare {
  if (counts.length < 2) throw new RangeError('a chi-square test needs at least two categories');
  const n = counts.reduce((a, b) => a + b, 0);
  if (n === 0) throw new RangeError('no observations');
  const e = n / counts.length;
  const statistic = counts.reduce((s, o) => s + (o - e) ** 2 / e, 0);
  const df = counts.length - 1;
  return { statistic, df, p: gammaQ(df / 2, statistic / 2) };
}

/**
 * The significance the Service tests reject at: a fair spread is rejected once in 10,000 runs
 * of one check, so a run's two checks (flatnet's node and the kernel's) fail a fair data path
 * less than once in 1,000 runs (2 x 1e-4).
 */
export const UNIFORMITY_ALPHA = 1e-4;
