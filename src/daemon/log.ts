/**
 * Daemon logging: pino, structured, never per packet. Every line is written when it is logged
 * (synchronously: a log that matters is the one of a daemon that just crashed or was killed, and
 * lines are rare, so there is no buffer to lose), and a line never carries a key twice: the
 * logger's base keys (`node`) are dropped from the object of a call that repeats them.
 * Repeated events (a peer sending junk, a
 * MAC migrating back and forth) go through RateLimitedLog, which logs the first `burst` of a
 * key per window and then one "suppressed N" summary, as the kernel's net_ratelimit does
 * (burst 10 per 5 s).
 */

import { pino, type Logger } from 'pino';

export function createLogger(level: string, base: Record<string, unknown>, fd = 1): Logger {
  const baseKeys = Object.keys(base);
  return pino({
    level,
    base,
    formatters: {
      // pino writes base keys and the call's object side by side; a key given again would be
      // written twice ("node" in 'vtep up' did), which JSON readers resolve differently.
      log: (obj) => {
        if (!baseKeys.some((k) => k in obj)) return obj;
        const o = { ...obj };
        for (const k of baseKeys) delete o[k];
        return o;
      },
    },
  }, pino.destination({ dest: fd, sync: true }));
}

/** Flushes a logger created by createLogger (on exit). */
export function flushLogger(log: Logger): void {
  try {
    (log as Logger & { flush?: () => void }).flush?.();
  } catch {
    /* best effort at exit */
  }
}

interface Window { start: number; logged: number; suppressed: number; last: Record<string, unknown> }

export class RateLimitedLog {
  private readonly windows = new Map<string, Window>();
  private readonly timer: NodeJS.Timeout;

  constructor(
    private readonly log: Logger,
    private readonly opts: { burst?: number; windowMs?: number; maxKeys?: number; now?: () => number } = {},
  ) {
    // Summaries for keys that went quiet are written by a periodic flush.
    this.timer = setInterval(() => this.flush(), this.windowMs);
    this.timer.unref();
  }

  private get windowMs(): number { return this.opts.windowMs ?? 5000; }
  private get burst(): number { return this.opts.burst ?? 10; }
  private now(): number { return this.opts.now?.() ?? performance.now(); }

  /** warn logs `msg` for `key` unless the key is over its budget for this window. */
  warn(key: string, obj: Record<string, unknown>, msg: string): void {
    const now = this.now();
    let w = this.windows.get(key);
    if (w !== undefined && now - w.start >= this.windowMs) {
      this.summarize(key, w);
      w = undefined;
    }
    if (w === undefined) {
      // Bounded: a flood of distinct keys cannot grow this map without limit.
      if (this.windows.size >= (this.opts.maxKeys ?? 1024)) this.flush(true);
      w = { start: now, logged: 0, suppressed: 0, last: obj };
      this.windows.set(key, w);
    }
    if (w.logged < this.burst) {
      w.logged++;
      this.log.warn({ ...obj, event: key }, msg);
    } else {
      w.suppressed++;
      w.last = obj;
    }
  }

  /** flush writes summaries for finished windows (all windows with `all`). */
  flush(all = false): void {
    const now = this.now();
    for (const [key, w] of this.windows) {
      if (all || now - w.start >= this.windowMs) this.summarize(key, w);
    }
  }

  private summarize(key: string, w: Window): void {
    if (w.suppressed > 0) this.log.warn({ ...w.last, event: key, suppressed: w.suppressed }, `suppressed ${w.suppressed} similar messages`);
    this.windows.delete(key);
  }

  close(): void {
    this.flush(true);
    clearInterval(this.timer);
  }
}
