/**
 * Every error counter that rises says why: once a second the daemon compares each port's error
 * counters (rxErrors, txErrors, txDropped, and the kernel's drops when the port reports them)
 * with the last look, and for each one that rose writes a rate-limited warning naming the port,
 * the counter, how much it rose, and the port's last errno (EBADF, ENOBUFS, EMSGSIZE...). The
 * counters themselves are `show ports` / /metrics'; this is the log line that explains them.
 *
 * Every watched counter counts from 0 when its port opens (the port's own stats, its socket's
 * drops, its interface's drops since the port first sampled them: kernel-drops.ts), so a port
 * seen for the first time is compared with 0: a pod attached a moment before a flood, between
 * two checks, has its loss logged like any other port's.
 */

import { errnoName } from '../io/native.js';
import type { RateLimitedLog } from './log.js';

/** What the watch reads of a port (a SwitchPort's `port`, and its name and role). */
export interface WatchedPort {
  readonly name: string;
  readonly role: string;
  readonly port: {
    readonly stats: { readonly rxErrors: number; readonly txErrors: number; readonly txDropped: number };
    /** Errno (negative) of the last failed call, 0 or absent if none. */
    readonly lastError?: number;
  };
}

/** The counters watched, with the event name each logs under. */
const COUNTERS = [
  ['rxErrors', 'rx_error', 'receive errors'],
  ['txErrors', 'tx_error', 'transmit errors'],
  ['txDropped', 'tx_dropped', 'frames the kernel did not take (queue full)'],
] as const;

export class ErrorWatch {
  private readonly last = new Map<string, number>();

  constructor(
    private readonly rl: RateLimitedLog,
    /** Extra per-port counters that only rise on loss (the kernel's drops): counter -> value. */
    private readonly extra: (sp: WatchedPort) => Readonly<Record<string, number>> | null = () => null,
  ) {}

  /** check logs one warning per counter that rose since the last check (since the port opened, for a new port). */
  check(ports: readonly WatchedPort[]): void {
    const seen = new Set<string>();
    for (const sp of ports) {
      const s = sp.port.stats;
      const errno = sp.port.lastError ?? 0;
      for (const [field, event, what] of COUNTERS) this.look(seen, sp, event, s[field], errno, what);
      const ex = this.extra(sp);
      if (ex !== null) for (const [k, v] of Object.entries(ex)) this.look(seen, sp, k, v, 0, 'dropped by the kernel before flatnet read them');
    }
    // Ports that went away: forget them, so a new port of the same name starts from its own 0.
    for (const k of this.last.keys()) if (!seen.has(k)) this.last.delete(k);
  }

  private look(seen: Set<string>, sp: WatchedPort, event: string, value: number, errno: number, what: string): void {
    const key = `${sp.name}\u0000${event}`;
    seen.add(key);
    const before = this.last.get(key) ?? 0;
    this.last.set(key, value);
    if (value <= before) return;
    const fields: Record<string, unknown> = { port: sp.name, role: sp.role, counter: event, rose: value - before, total: value };
    if (errno !== 0) fields['errno'] = errnoName(errno);
    this.rl.warn(`${event}:${sp.name}`, fields, `${event} on ${sp.name}: ${value - before} ${what}${errno !== 0 ? ` (last errno ${errnoName(errno)})` : ''}`);
  }
}
