/**
 * `npm run fuzz -- [--frames N] [--seed S]`: the pipeline fuzz harness (harness.ts) from the
 * command line, for long runs (`--frames 100000000` nightly). Prints progress, the outcome
 * counts and, on a failure, the seed and index that replay it; exit status 1 on a failure.
 */

import { runFuzz } from './harness.js';

function arg(name: string): string | undefined {
  const i = process.argv.indexOf(name);
  return i >= 0 ? process.argv[i + 1] : undefined;
}

const frames = Number(arg('--frames') ?? 1_000_000);
const seed = Number(arg('--seed') ?? (Date.now() & 0x7fff_ffff));
if (!Number.isInteger(frames) || frames < 1 || !Number.isInteger(seed)) {
  process.stderr.write('usage: npm run fuzz -- [--frames N] [--seed S]\n');
  process.exit(2);
}
process.stderr.write(`fuzz: ${frames} frames, seed ${seed}\n`);
const rep = runFuzz({ seed, frames, progressEvery: 1_000_000, progress: (n) => process.stderr.write(`  ${n} frames\n`) });
const rate = Math.round(rep.frames / (rep.ms / 1000));
process.stdout.write(`fuzz: ${rep.frames} frames (seed ${seed}) in ${(rep.ms / 1000).toFixed(1)} s (${rate}/s): ${rep.forwarded} forwarded, ${rep.dropped} dropped, ${rep.exceptions} exceptions, FDB at most ${rep.maxFdb}\n`);
process.stdout.write(`  mutations: ${JSON.stringify(rep.byMutation)}\n  drops: ${JSON.stringify(rep.byReason)}\n`);
if (rep.failure !== null) {
  const f = rep.failure;
  process.stdout.write(`FAILED at frame ${f.index} (seed ${f.seed}; replay: npm run fuzz -- --seed ${f.seed} --frames ${f.index + 1}): ${f.what}\n  node ${f.node}, port ${f.port}, ${f.kind}, mutation ${f.mutation}\n  frame ${f.frameHex}\n`);
  process.exitCode = 1;
}
