/**
 * Network-namespace helpers for the root-only `netns` test project, the lab and benchmarks.
 *
 * Safety rules (DEVELOPERS.md): packets only inside namespaces we create; never an address,
 * route or firewall rule in the root namespace; a unique name prefix per run; everything
 * deleted afterwards, also on failure. A Netns object tracks what it created; destroy() removes
 * it all and is safe to call twice. Addresses: 198.51.100.0/24 underlay, 10.244.0.0/16 pods.
 */

import { execFileSync, spawn, type ChildProcess, type SpawnOptions } from 'node:child_process';

export const isRoot = (): boolean => process.getuid?.() === 0;

/** Why netns tests cannot run here, or null when they can. */
export function netnsSkipReason(): string | null {
  if (!isRoot()) return 'needs root (network namespaces); run `npm test` as root';
  try {
    execFileSync('ip', ['-V'], { stdio: 'ignore' });
  } catch {
    return 'iproute2 (`ip`) is not installed';
  }
  return null;
}

let seq = 0;
/** A prefix unique to this process and call, short enough for 15-char interface names. */
export function uniquePrefix(tag = 'fn'): string {
  seq++;
  return `${tag}${(process.pid % 100000).toString(36)}${seq.toString(36)}`;
}

export function sh(cmd: string, args: string[], opts: { input?: string; timeoutMs?: number } = {}): string {
  return execFileSync(cmd, args, { encoding: 'utf8', input: opts.input, timeout: opts.timeoutMs ?? 30_000, stdio: ['pipe', 'pipe', 'pipe'] });
}

/** One set of namespaces created by a test; destroy() removes them (and their veths). */
export class Netns {
  readonly prefix: string;
  private readonly names: string[] = [];
  private readonly procs: ChildProcess[] = [];

  constructor(tag = 'fn') {
    this.prefix = uniquePrefix(tag);
  }

  /** add creates namespace `${prefix}-${suffix}` with lo up and returns its name. */
  add(suffix: string): string {
    const name = `${this.prefix}-${suffix}`;
    sh('ip', ['netns', 'add', name]);
    this.names.push(name);
    this.ip(name, 'link', 'set', 'lo', 'up');
    return name;
  }

  /** noIpv6 turns IPv6 off in each namespace (no ND/MLD frames on the links the tests watch). */
  noIpv6(...namespaces: string[]): void {
    for (const ns of namespaces) this.exec(ns, 'sysctl', ['-qw', 'net.ipv6.conf.all.disable_ipv6=1', 'net.ipv6.conf.default.disable_ipv6=1']);
  }

  /** ip runs `ip -n ns ...args`. */
  ip(ns: string, ...args: string[]): string {
    return sh('ip', ['-n', ns, ...args]);
  }

  /** exec runs a command inside a namespace and returns its stdout (throws on failure). */
  exec(ns: string, cmd: string, args: string[] = [], opts: { input?: string; timeoutMs?: number } = {}): string {
    return sh('ip', ['netns', 'exec', ns, cmd, ...args], opts);
  }

  /** spawn starts a long-running process inside a namespace; destroy() kills it. */
  spawn(ns: string, cmd: string, args: string[] = [], opts: SpawnOptions = {}): ChildProcess {
    const p = spawn('ip', ['netns', 'exec', ns, cmd, ...args], { stdio: ['ignore', 'pipe', 'pipe'], ...opts });
    this.procs.push(p);
    return p;
  }

  /** veth creates a pair with one end in each namespace (names must be <= 15 chars). */
  veth(nsA: string, ifA: string, nsB: string, ifB: string): void {
    sh('ip', ['link', 'add', ifA, 'netns', nsA, 'type', 'veth', 'peer', 'name', ifB, 'netns', nsB]);
  }

  /** addr assigns an address and brings the link up. */
  addr(ns: string, ifname: string, cidr: string): void {
    this.ip(ns, 'addr', 'add', cidr, 'dev', ifname);
    this.ip(ns, 'link', 'set', ifname, 'up');
  }

  get namespaces(): readonly string[] {
    return this.names;
  }

  destroy(): void {
    for (const p of this.procs) {
      if (p.exitCode === null && p.signalCode === null) {
        try { p.kill('SIGKILL'); } catch { /* already gone */ }
      }
    }
    this.procs.length = 0;
    for (const n of this.names.splice(0).reverse()) {
      try {
        // Kill anything still running inside, then remove the namespace (its veths go with it).
        const pids = execFileSync('ip', ['netns', 'pids', n], { encoding: 'utf8' }).split(/\s+/).filter(Boolean);
        for (const pid of pids) {
          try { process.kill(Number(pid), 'SIGKILL'); } catch { /* gone */ }
        }
      } catch { /* namespace already gone */ }
      try { execFileSync('ip', ['netns', 'del', n], { stdio: 'ignore' }); } catch { /* already gone */ }
    }
  }
}

/** Every namespace on the machine whose name starts with `prefix` (for leak checks). */
export function listNetns(prefix: string): string[] {
  const out = execFileSync('ip', ['netns', 'list'], { encoding: 'utf8' });
  return out.split('\n').map((l) => l.split(' ')[0] ?? '').filter((n) => n.startsWith(prefix));
}
