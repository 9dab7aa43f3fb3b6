/**
 * A prefix of the store kept in memory: list it, then watch it from the revision after the
 * list, and hand every settled state to a callback.
 *
 *   - Events are applied to the in-memory map as they come and the callback is called once per
 *     burst (after `settleMs` without a new event, at most every `maxDelayMs` during a long
 *     burst): 5,000 joins are one reconcile, not 5,000.
 *   - A broken stream (etcd down, a member killed) is resumed by the client from the last
 *     revision it saw, with backoff (etcd.ts), so no event is lost and nothing is re-listed.
 *   - A watch etcd cancels (its revision was compacted away) or that cannot be created is
 *     replaced by a full re-list and a new watch, with backoff (250 ms doubling to 5 s) while
 *     etcd does not answer. The re-listed map replaces the old one; the callback gets the whole
 *     state, and the reconciler applies only what differs, so a resync moves no route that did
 *     not change.
 * While etcd is away the last state stays in force: nothing is removed because etcd is silent.
 */

import type { Etcd3, Watcher } from 'etcd3';
import type { Logger } from 'pino';
import { errorText, rawOf } from './etcd.js';
import type { RawRecord } from './records.js';

export type WatchState = 'listing' | 'watching' | 'disconnected' | 'resyncing' | 'stopped';

export interface WatchStatus {
  readonly prefix: string;
  readonly state: WatchState;
  /** The store revision the map reflects. */
  readonly revision: number;
  readonly keys: number;
  readonly events: number;
  /** Full re-lists after the first (compaction, a watch that could not be resumed). */
  readonly resyncs: number;
  readonly disconnects: number;
  readonly lastError: string | null;
  readonly lastErrorAgoMs: number | null;
  /** Since when the watch is not connected, ms (null while connected). */
  readonly downForMs: number | null;
}

export interface WatchOptions {
  readonly log?: Logger;
  readonly settleMs?: number;
  readonly maxDelayMs?: number;
  /** Called on state changes (for metrics and tests). */
  readonly onState?: (s: WatchState) => void;
}

export class PrefixWatcher {
  private readonly kvs = new Map<string, RawRecord>();
  private watcher: Watcher | null = null;
  private st: WatchState = 'listing';
  private revision = 0;
  private events = 0;
  private resyncs = 0;
  private disconnects = 0;
  private lastError: string | null = null;
  private lastErrorAt: number | null = null;
  private downSince: number | null = Date.now();
  private settle: NodeJS.Timeout | null = null;
  private firstPending: number | null = null;
  private retryTimer: NodeJS.Timeout | null = null;
  private backoffMs = 250;
  /** Failed list/watch attempts in a row (logged on the first and every tenth). */
  private failures = 0;
  private closed = false;
  private generation = 0;

  constructor(
    private readonly client: Etcd3,
    readonly prefix: string,
    private readonly onChange: (kvs: ReadonlyMap<string, RawRecord>, revision: number) => void,
    private readonly opts: WatchOptions = {},
  ) {}

  /** start lists and watches in the background; it never throws (failures are retried). */
  start(): void {
    void this.sync(false);
  }

  /** The current map (as last listed and watched). */
  get current(): ReadonlyMap<string, RawRecord> {
    return this.kvs;
  }

  private setState(s: WatchState): void {
    if (this.st === s) return;
    this.st = s;
    if (s === 'watching') this.downSince = null;
    else if (this.downSince === null && s !== 'stopped') this.downSince = Date.now();
    this.opts.onState?.(s);
  }

  private fail(e: unknown): void {
    this.lastError = errorText(e);
    this.lastErrorAt = Date.now();
  }

  /** sync: list the prefix, hand it over, watch from the next revision. */
  private async sync(resync: boolean): Promise<void> {
    if (this.closed) return;
    const gen = ++this.generation;
    this.setState(resync ? 'resyncing' : 'listing');
    try {
      const res = await this.client.getAll().prefix(this.prefix).exec();
      if (this.closed || gen !== this.generation) return;
      const rev = Number(res.header.revision);
      this.kvs.clear();
      for (const kv of res.kvs) this.kvs.set(kv.key.toString(), rawOf(kv));
      this.revision = rev;
      if (resync) this.resyncs++;
      this.emitNow();
      const w = await this.client.watch().prefix(this.prefix).startRevision(String(rev + 1)).create();
      if (this.closed || gen !== this.generation) { void w.cancel(); return; }
      this.attach(w, gen);
      this.backoffMs = 250;
      if (this.failures > 0) this.opts.log?.info({ prefix: this.prefix, revision: this.revision, failedAttempts: this.failures }, 'etcd list/watch works again');
      this.failures = 0;
      this.setState('watching');
    } catch (e) {
      if (this.closed || gen !== this.generation) return;
      this.fail(e);
      this.setState('disconnected');
      this.failures++;
      if (this.failures === 1 || this.failures % 10 === 0) {
        this.opts.log?.warn({ prefix: this.prefix, err: this.lastError, retryInMs: this.backoffMs, attempts: this.failures }, 'etcd list/watch failed; keeping the last known state, retrying');
      }
      this.retryLater();
    }
  }

  private retryLater(): void {
    if (this.closed || this.retryTimer !== null) return;
    const d = this.backoffMs;
    this.backoffMs = Math.min(this.backoffMs * 2, 5000);
    this.retryTimer = setTimeout(() => {
      this.retryTimer = null;
      void this.sync(true);
    }, d);
    this.retryTimer.unref();
  }

  private attach(w: Watcher, gen: number): void {
    this.watcher = w;
    w.on('data', (res) => {
      if (gen !== this.generation) return;
      for (const ev of res.events) {
        const key = ev.kv.key.toString();
        if (ev.type === 'Delete') this.kvs.delete(key);
        else this.kvs.set(key, rawOf(ev.kv));
        this.events++;
      }
      this.revision = Math.max(this.revision, Number(res.header.revision));
      if (res.events.length > 0) this.schedule();
    });
    w.on('disconnected', (e: unknown) => {
      if (gen !== this.generation) return;
      this.disconnects++;
      this.fail(e);
      if (this.st === 'watching') this.opts.log?.warn({ prefix: this.prefix, err: this.lastError, revision: this.revision }, 'etcd watch disconnected; keeping the last known state, resuming from the last revision');
      this.setState('disconnected');
    });
    w.on('connected', () => {
      if (gen !== this.generation) return;
      if (this.st !== 'watching') this.opts.log?.info({ prefix: this.prefix, revision: this.revision }, 'etcd watch resumed');
      this.setState('watching');
    });
    w.on('error', (e: unknown) => {
      if (gen !== this.generation) return;
      // Canceled by etcd (typically: the revision was compacted). Re-list.
      this.fail(e);
      this.opts.log?.warn({ prefix: this.prefix, err: this.lastError, revision: this.revision }, 'etcd watch canceled; re-listing');
      this.watcher = null;
      void w.cancel().catch(() => undefined);
      this.setState('resyncing');
      this.retryLater();
    });
  }

  private schedule(): void {
    const now = Date.now();
    this.firstPending ??= now;
    if (this.settle !== null) clearTimeout(this.settle);
    const wait = now - this.firstPending >= (this.opts.maxDelayMs ?? 200) ? 0 : (this.opts.settleMs ?? 20);
    this.settle = setTimeout(() => this.emitNow(), wait);
  }

  private emitNow(): void {
    if (this.settle !== null) clearTimeout(this.settle);
    this.settle = null;
    this.firstPending = null;
    if (this.closed) return;
    this.onChange(this.kvs, this.revision);
  }

  status(): WatchStatus {
    return {
      prefix: this.prefix, state: this.st, revision: this.revision, keys: this.kvs.size, events: this.events,
      resyncs: this.resyncs, disconnects: this.disconnects, lastError: this.lastError,
      lastErrorAgoMs: this.lastErrorAt === null ? null : Date.now() - this.lastErrorAt,
      downForMs: this.downSince === null ? null : Date.now() - this.downSince,
    };
  }

  async close(): Promise<void> {
    this.closed = true;
    this.generation++;
    if (this.settle !== null) clearTimeout(this.settle);
    if (this.retryTimer !== null) clearTimeout(this.retryTimer);
    this.setState('stopped');
    const w = this.watcher;
    this.watcher = null;
    // A cancel needs etcd's answer; with etcd unreachable, stop waiting after a second (the
    // client is closed next anyway), so that a daemon's SIGTERM is never held up by etcd.
    if (w !== null) {
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([w.cancel().catch(() => undefined), new Promise<void>((r) => { timer = setTimeout(r, 1000); })]);
      clearTimeout(timer);
    }
  }
}
