/**
 * `npm run bench`: the in-process benchmarks, one after another, each in its own Node process
 * with the flags its allocation figures need (--expose-gc, a large young generation). They need
 * no root and send no packets. The namespace benchmarks are separate commands (root):
 * `npm run bench:io` (ports) and `npm run bench:e2e` (kernel VXLAN vs flatnet vs veth).
 */

import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const BENCHES = ['wire/codec.bench.js', 'offload/offload.bench.js', 'replay/replay.bench.js'];
const FLAGS = ['--expose-gc', '--max-semi-space-size=64'];

let failed = 0;
for (const b of BENCHES) {
  const file = join(here, b);
  if (!existsSync(file)) {
    process.stderr.write(`bench: ${b} is not built (run \`npm run build:ts\`)\n`);
    failed++;
    continue;
  }
  process.stdout.write(`\n=== ${b.replace(/\.js$/, '')} ===\n`);
  const r = spawnSync(process.execPath, [...FLAGS, file, ...process.argv.slice(2)], { stdio: 'inherit' });
  if (r.status !== 0) failed++;
}
process.exitCode = failed === 0 ? 0 : 1;
