/**
 * Busy polling for the switch's drain loop: after a drain that moved frames, keep reading every
 * port without going back to sleep in epoll, for up to `budgetUs` microseconds since the last
 * frame (the idea of the kernel's SO_BUSY_POLL / net.core.busy_poll, in user space). A reply
 * that comes back within the window is read at once instead of after a wake-up of the sleeping
 * process, which costs 40-130 µs on a VM (bench/README.md, "AF_XDP (issue 15)").
 *
 * Settings (config `busyPoll`):
 *   off      never spin (the default): every frame waits for a readiness callback;
 *   N        spin up to N µs after traffic, always;
 *   auto     spin up to `budgetUs` only while the machine has a spare core (SpareCore below).
 *
 * Bounds: one spin runs synchronously for at most `budgetUs` in all; if frames were still
 * arriving when that ran out, the spin continues on the next event-loop turn (setImmediate), so
 * timers, signals and the control socket wait at most one budget. Nothing here allocates per
 * frame or per poll round: counters are plain numbers, the clock a function returning ms.
 */

import { readFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { performance } from 'node:perf_hooks';

/** The `busyPoll` setting as the daemon compiles it. */
export interface BusyPollSetting {
  /** 'off', 'always' (a number in the config) or 'auto' (only with a spare core). */
  readonly mode: 'off' | 'always' | 'auto';
  /** The window: spin until this long has passed without a frame (µs). 0 with mode 'off'. */
  readonly budgetUs: number;
}

export const BUSY_POLL_OFF: BusyPollSetting = { mode: 'off', budgetUs: 0 };
/** The budget of `busyPoll: "auto"`: long enough to catch the reply of a pod on the next node (bench/latency). */
export const AUTO_BUDGET_US = 50;
/** The largest budget the config accepts: a spin blocks timers and the control socket this long. */
export const MAX_BUDGET_US = 10_000;

/** A monotonic clock in milliseconds (fractional). Tests pass a fake one. */
export type MsClock = () => number;
export const perfClock: MsClock = () => performance.now();

/** Counters of the poll loop, read by `flatnet show counters`, status and /metrics. */
export class BusyPollStats {
  /** Readiness callbacks (epoll wake-ups that reached the switch). */
  wakeups = 0;
  /** Spins started (a drain moved frames and the mode let it spin). */
  spins = 0;
  /** Rounds of reading every port inside spins. */
  rounds = 0;
  /** Frames read while spinning (each one saved a wake-up, or arrived with others that did). */
  frames = 0;
  /** Time spent spinning, in ms (CPU the spin costs: it never sleeps). */
  spinMs = 0;
  /** Spins that ran out of their budget with frames still coming and went on after an event-loop turn. */
  yields = 0;
}

/**
 * SpareCore decides `auto`: spin only while a core is spare. Sampled at most once a second from
 * /proc/stat (the whole machine's idle time; namespaces do not change it):
 *   spare cores = idle cores over the last interval + the cores this process spent spinning
 * (its own spin would be idle time if it did not spin, so it does not count against it).
 * Hysteresis: spinning turns on when spare >= ON_CORES and off when spare < OFF_CORES, so one
 * noisy second does not make it flap.
 */
export class SpareCore {
  static readonly ON_CORES = 1.0;
  static readonly OFF_CORES = 0.5;
  /** The decision in effect (starts on: a daemon starts on an idle machine more often than not; the first sample corrects it). */
  allowed = true;
  /** The last sample's spare cores, -1 before the second sample. */
  spareCores = -1;
  /** Times the decision changed. */
  changes = 0;
  private lastIdle = -1;
  private lastTotal = -1;
  private lastSpinMs = 0;
  private readonly cores: number;

  /** `readStat` returns the text of /proc/stat (tests pass canned text). */
  constructor(private readonly readStat: () => string = () => readFileSync('/proc/stat', 'utf8'), cores = availableParallelism()) {
    this.cores = cores;
  }

  /** sample reads the counters once; `spinMs` is this process's total spin time so far. Returns the decision. */
  sample(spinMs: number): boolean {
    const t = parseCpuLine(this.readStat());
    if (t === null) return this.allowed;
    const [idle, total] = t;
    if (this.lastTotal >= 0 && total > this.lastTotal) {
      const frac = (idle - this.lastIdle) / (total - this.lastTotal);
      const intervalMs = ((total - this.lastTotal) / this.cores) * 10; // jiffies at USER_HZ 100, per core
      const spun = intervalMs > 0 ? Math.min(1, (spinMs - this.lastSpinMs) / intervalMs) : 0;
      this.spareCores = Math.round((frac * this.cores + spun) * 100) / 100;
      const next = this.allowed ? this.spareCores >= SpareCore.OFF_CORES : this.spareCores >= SpareCore.ON_CORES;
      if (next !== this.allowed) this.changes++;
      this.allowed = next;
    }
    this.lastIdle = idle;
    this.lastTotal = total;
    this.lastSpinMs = spinMs;
    return this.allowed;
  }
}

/** parseCpuLine: [idle + iowait, total] jiffies from /proc/stat's aggregate `cpu` line, or null. */
export function parseCpuLine(stat: string): [number, number] | null {
  const nl = stat.indexOf('\n');
  const line = nl < 0 ? stat : stat.slice(0, nl);
  if (!line.startsWith('cpu ')) return null;
  const f = line.slice(4).trim().split(/\s+/).map(Number);
  if (f.length < 4 || f.some((x) => !Number.isFinite(x))) return null;
  // user nice system idle iowait irq softirq steal (guest and guest_nice are inside user and nice)
  let total = 0;
  for (let i = 0; i < Math.min(f.length, 8); i++) total += f[i]!;
  return [f[3]! + (f[4] ?? 0), total];
}
