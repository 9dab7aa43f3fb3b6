/**
 * Two builds of flatnet side by side on the policy bench's cases (policy.bench.ts): each case in
 * its own process, the two builds back to back, alternating which goes first, `--runs` times;
 * per case the medians, the minimums and the median of the paired ratios (new / old) with its
 * quartiles. Each directory is a built checkout (its dist/bench/policy/policy.bench.js).
 * Run: node dist/bench/policy/compare.js --old DIR --new DIR [--runs 8] [--seconds 2] [--cases pod-ip,policy-1000]
 */

import { execFileSync } from 'node:child_process';
import { join } from 'node:path';

const arg = (name: string, dflt: string): string => {
  const i = process.argv.indexOf(name);
  return i > 0 && process.argv[i + 1] !== undefined ? process.argv[i + 1]! : dflt;
};

function one(dir: string, c: string, seconds: string): number {
  const out = execFileSync(process.execPath, ['--expose-gc', '--max-semi-space-size=64', join(dir, 'dist/bench/policy/policy.bench.js'), '--case', c, '--seconds', seconds], { encoding: 'utf8' });
  return (JSON.parse(out) as { nsPerFrame: number }).nsPerFrame;
}

const sorted = (v: readonly number[]): number[] => [...v].sort((a, b) => a - b);
const at = (v: readonly number[], p: number): number => sorted(v)[Math.floor((v.length - 1) * p)]!;

function main(): void {
  const oldDir = arg('--old', ''), newDir = arg('--new', '');
  if (oldDir === '' || newDir === '') throw new Error('usage: compare.js --old DIR --new DIR [--runs 8] [--seconds 2] [--cases a,b]');
  const runs = Number(arg('--runs', '8')), seconds = arg('--seconds', '2');
  const cases = arg('--cases', 'pod-ip,policy-1000,service-1000').split(',');
  const res = new Map(cases.map((c) => [c, { old: [] as number[], new: [] as number[] }]));
  for (let r = 0; r < runs; r++) {
    for (const c of cases) {
      const x = res.get(c)!;
      const order: Array<'old' | 'new'> = r % 2 === 0 ? ['old', 'new'] : ['new', 'old'];
      for (const which of order) x[which].push(one(which === 'old' ? oldDir : newDir, c, seconds));
    }
    process.stderr.write(`run ${r + 1}/${runs} done\n`);
  }
  const lines = ['| case | old: ns/frame (median; min) | new (median; min) | paired new / old (quartiles) | runs old | runs new |', '|---|---:|---:|---:|---|---|'];
  for (const [c, x] of res) {
    const paired = x.new.map((v, i) => v / x.old[i]!);
    const f = (v: number): string => v.toFixed(1);
    lines.push(`| ${c} | ${f(at(x.old, 0.5))}; ${f(Math.min(...x.old))} | ${f(at(x.new, 0.5))}; ${f(Math.min(...x.new))} | ${at(paired, 0.5).toFixed(3)} (${at(paired, 0.25).toFixed(3)}-${at(paired, 0.75).toFixed(3)}) | ${x.old.map((v) => v.toFixed(0)).join(', ')} | ${x.new.map((v) => v.toFixed(0)).join(', ')} |`);
  }
  process.stdout.write(`${lines.join('\n')}\n`);
}

main();
