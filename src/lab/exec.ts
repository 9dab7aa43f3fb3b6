/**
 * Running the lab's commands: iproute2, sysctl, ethtool, ping, iperf3, tshark, each either in
 * the current namespace (only ever to create, inspect or delete the lab's own namespaces) or
 * inside one of the lab's namespaces through `ip netns exec`. A failed command is a FlatnetError
 * ERR_LAB_COMMAND carrying the command line and its stderr.
 */

import { execFile, execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { FlatnetError } from '../errors.js';

export interface RunResult {
  readonly code: number | null;
  readonly signal: string | null;
  readonly stdout: string;
  readonly stderr: string;
}

function describe(cmd: string, args: readonly string[]): string {
  return [cmd, ...args].join(' ');
}

/** run executes a command synchronously and returns its stdout; throws ERR_LAB_COMMAND on failure. */
export function run(cmd: string, args: readonly string[], opts: { timeoutMs?: number; input?: string } = {}): string {
  try {
    return execFileSync(cmd, args, { encoding: 'utf8', timeout: opts.timeoutMs ?? 30_000, input: opts.input, stdio: ['pipe', 'pipe', 'pipe'] });
  } catch (e) {
    const err = e as { stderr?: string; message: string };
    const why = (err.stderr ?? '').trim() || err.message;
    throw new FlatnetError('ERR_LAB_COMMAND', `${describe(cmd, args)}: ${why}`, { cause: e });
  }
}

/** inNs runs a command inside namespace `ns` (synchronously). */
export function inNs(ns: string, cmd: string, args: readonly string[], opts: { timeoutMs?: number; input?: string } = {}): string {
  return run('ip', ['netns', 'exec', ns, cmd, ...args], opts);
}

/** ipNs runs `ip -n ns ARGS`. */
export function ipNs(ns: string, ...args: string[]): string {
  return run('ip', ['-n', ns, ...args]);
}

const NO_IPV6 = ['net.ipv6.conf.all.disable_ipv6=1', 'net.ipv6.conf.default.disable_ipv6=1'];

/** addNs creates a namespace with lo up and IPv6 off (no ND/MLD noise on any link made in it), and `sysctls` set. */
export function addNs(ns: string, sysctls: readonly string[] = []): void {
  run('ip', ['netns', 'add', ns]);
  ipNs(ns, 'link', 'set', 'lo', 'up');
  inNs(ns, 'sysctl', ['-qw', ...NO_IPV6, ...sysctls]);
}

/** runAsync executes a command without blocking and never throws for a non-zero exit. */
export function runAsync(cmd: string, args: readonly string[], opts: { timeoutMs?: number; input?: string } = {}): Promise<RunResult> {
  return new Promise((resolve) => {
    const child = execFile(cmd, args, { encoding: 'utf8', timeout: opts.timeoutMs ?? 60_000, maxBuffer: 64 << 20, killSignal: 'SIGKILL' }, (err, stdout, stderr) => {
      const e = err as (Error & { code?: number | string; signal?: string }) | null;
      const code = e === null ? 0 : typeof e.code === 'number' ? e.code : null;
      resolve({ code, signal: e?.signal ?? null, stdout, stderr: e !== null && typeof e.code === 'string' ? `${stderr}${e.message}` : stderr });
    });
    if (opts.input !== undefined) child.stdin?.end(opts.input);
  });
}

/** inNsAsync runs a command inside `ns` without blocking. */
export function inNsAsync(ns: string, cmd: string, args: readonly string[], opts: { timeoutMs?: number; input?: string } = {}): Promise<RunResult> {
  return runAsync('ip', ['netns', 'exec', ns, cmd, ...args], opts);
}

/** Every namespace name on the machine (`ip netns list`). */
export function listNamespaces(): string[] {
  return run('ip', ['netns', 'list']).split('\n').map((l) => l.split(' ')[0] ?? '').filter((n) => n !== '');
}

/** The pids of the processes inside namespace `ns` (empty when it is gone). */
export function nsPids(ns: string): number[] {
  try {
    return run('ip', ['netns', 'pids', ns]).split(/\s+/).filter(Boolean).map(Number);
  } catch {
    return [];
  }
}

/**
 * processState: the state letter of /proc/PID/stat (R, S, D, Z, ...) or null when there is no
 * such process. A zombie ('Z') has exited.
 */
export function processState(pid: number): string | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3);
  } catch {
    return null;
  }
}

export function isRunning(pid: number): boolean {
  const s = processState(pid);
  return s !== null && s !== 'Z' && s !== 'X';
}

/** The command line of PID as its arguments, or null when it is gone. */
export function cmdline(pid: number): string[] | null {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').filter((a) => a !== '');
  } catch {
    return null;
  }
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Runs `fns` with at most `limit` in flight; results in order. */
export async function pool<T>(limit: number, fns: readonly (() => Promise<T>)[]): Promise<T[]> {
  const out: T[] = new Array<T>(fns.length);
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < fns.length) {
      const i = next++;
      out[i] = await fns[i]!();
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, fns.length) }, worker));
  return out;
}
