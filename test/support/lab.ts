/**
 * Support for the lab's namespace tests (test/lab/*.netns.test.ts): a unique lab name per file,
 * the skip reason, a fresh dist/ (the lab starts `dist/src/cli/main.js vtep` in each node), and
 * scapy inside a namespace.
 */

import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { addonPath } from '../../src/io/native.js';
import { netnsSkipReason } from './netns.js';

export const REPO_ROOT = fileURLToPath(new URL('../..', import.meta.url));
/** Debian's scapy is installed for the system interpreter only (see scapy.ts). */
export const SCAPY_PYTHON = process.env['FLATNET_SCAPY_PYTHON'] ?? '/usr/bin/python3';

const has = (cmd: string, args: string[]): boolean => {
  try {
    execFileSync(cmd, args, { stdio: 'ignore', timeout: 20_000 });
    return true;
  } catch {
    return false;
  }
};

/**
 * Why the lab tests cannot run here, or null. Missing tools (which .ci/setup installs) only skip
 * when FLATNET_REQUIRE_ORACLES is not 1; in CI they fail the tests instead.
 */
export function labSkipReason(needScapy = false): string | null {
  const ns = netnsSkipReason();
  if (ns !== null) return ns;
  if (addonPath() === null) return 'the native addon is not built (run .ci/setup)';
  if (process.env['FLATNET_REQUIRE_ORACLES'] === '1') return null;
  const missing: string[] = [];
  for (const [cmd, args] of [['tshark', ['--version']], ['dumpcap', ['--version']], ['iperf3', ['--version']], ['ethtool', ['--version']]] as const) {
    if (!has(cmd, [...args])) missing.push(cmd);
  }
  if (needScapy && !has(SCAPY_PYTHON, ['-c', 'import scapy.all'])) missing.push(`scapy for ${SCAPY_PYTHON}`);
  return missing.length === 0 ? null : `missing ${missing.join(', ')} (install with .ci/setup)`;
}

let seq = 0;
/** A lab name unique to this process: tag + pid + sequence, at most 12 characters. */
export function uniqueLabName(tag: string): string {
  seq++;
  return `${tag}${(process.pid % 1_000_000).toString(36)}${seq.toString(36)}`.slice(0, 12);
}

/** Rebuilds dist/ when a source file is newer than the executable (CI builds it in .ci/setup). */
export function ensureDist(): void {
  const main = join(REPO_ROOT, 'dist/src/cli/main.js');
  const newest = (dir: string): number => readdirSync(dir, { withFileTypes: true, recursive: true })
    .filter((e) => e.isFile() && e.name.endsWith('.ts'))
    .reduce((m, e) => Math.max(m, statSync(join(e.parentPath, e.name)).mtimeMs), 0);
  if (!existsSync(main) || statSync(main).mtimeMs < newest(join(REPO_ROOT, 'src'))) {
    execFileSync(join(REPO_ROOT, 'node_modules/.bin/tsc'), ['-p', join(REPO_ROOT, 'tsconfig.json')], { stdio: 'ignore' });
  }
}

/** scapy runs a Python script (scapy imported as `from scapy.all import *`) inside namespace `ns`. */
export function scapy(ns: string, script: string): string {
  const prelude = 'import logging\nlogging.getLogger("scapy.runtime").setLevel(logging.ERROR)\nfrom scapy.all import *\nimport struct\n';
  return execFileSync('ip', ['netns', 'exec', ns, SCAPY_PYTHON, '-'], { input: prelude + script, encoding: 'utf8', timeout: 60_000 });
}
