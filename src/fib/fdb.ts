/**
 * The forwarding database of one VNI: MAC (a 48-bit number) -> a local port or a remote VTEP,
 * after the kernel's vxlan FDB (`struct vxlan_fdb`, `vxlan_snoop`, `vxlan_cleanup`).
 *
 * - Static entries (the kernel's NUD_PERMANENT) are added by the control plane: never aged,
 *   never moved by learning; a frame that would move one is refused (spoof protection).
 * - Learned entries are created or moved by received frames and aged out `ageingMs` after their
 *   last refresh (`updated`), by one sweep the owner runs on a timer, never one timer per entry.
 * - The table holds at most `limit` entries; learning beyond it is refused and counted.
 * - The all-zeros MAC is the flood list: BUM frames are replicated to each VTEP on it exactly
 *   once (head-end replication). It is kept apart from the MAC map.
 * Times are the coarse monotonic clock's milliseconds; entries write `used`/`updated` only when
 * the value changes, so a busy flow costs one store per batch at most.
 */

import { ConfigError } from '../errors.js';
import { formatMac } from '../wire/addr.js';
import type { Vtep } from './vtep.js';

export const FdbKind = { STATIC: 'static', LEARNED: 'learned' } as const;
export type FdbKind = (typeof FdbKind)[keyof typeof FdbKind];

export class FdbEntry {
  readonly mac: number;
  kind: FdbKind;
  /** Local port id, or -1 when the destination is a remote VTEP. */
  port: number;
  vtep: Vtep | null;
  updated: number;
  used: number;

  constructor(mac: number, kind: FdbKind, port: number, vtep: Vtep | null, now: number) {
    this.mac = mac;
    this.kind = kind;
    this.port = port;
    this.vtep = vtep;
    this.updated = now;
    this.used = now;
  }

  get destination(): string {
    return this.vtep !== null ? `vtep ${this.vtep.name}` : `port${this.port}`;
  }
}

/** What learn() did; the caller counts or logs it. */
export const Learn = {
  /** Known, same place: refreshed. */
  REFRESHED: 0,
  NEW: 1,
  /** A learned entry moved to a new place ("migrated", as the kernel logs). */
  MOVED: 2,
  /** A static entry says the MAC lives elsewhere: refused (spoof protection). */
  STATIC_CONFLICT: 3,
  /** The table is full: refused. */
  FULL: 4,
} as const;
export type Learn = (typeof Learn)[keyof typeof Learn];

export const DEFAULT_FDB_AGEING_MS = 300_000;
export const DEFAULT_FDB_LIMIT = 8192;

export class Fdb {
  readonly vni: number;
  readonly limit: number;
  readonly ageingMs: number;
  private readonly map = new Map<number, FdbEntry>();
  private flood: Vtep[] = [];
  /** Learn refusals because the table was full. */
  refusedFull = 0;
  /** Learn refusals because a static entry owns the MAC. */
  refusedStatic = 0;
  moves = 0;

  constructor(vni: number, opts: { limit?: number; ageingMs?: number } = {}) {
    this.vni = vni;
    this.limit = opts.limit ?? DEFAULT_FDB_LIMIT;
    this.ageingMs = opts.ageingMs ?? DEFAULT_FDB_AGEING_MS;
  }

  get size(): number {
    return this.map.size;
  }

  /** lookup: the entry for `mac`, marking it used at `now`. Allocates nothing. */
  lookup(mac: number, now: number): FdbEntry | undefined {
    const e = this.map.get(mac);
    if (e !== undefined && e.used !== now) e.used = now;
    return e;
  }

  /** peek: the entry without touching its timestamps (show, tests). */
  peek(mac: number): FdbEntry | undefined {
    return this.map.get(mac);
  }

  /**
   * wouldLearn: what learn() with the same arguments would do, without doing it (no entry
   * created, moved or refreshed, no counter bumped). The pipeline decides with it.
   */
  wouldLearn(mac: number, port: number, vtep: Vtep | null): Learn {
    const e = this.map.get(mac);
    if (e !== undefined) {
      if (e.port === port && e.vtep === vtep) return Learn.REFRESHED;
      return e.kind === FdbKind.STATIC ? Learn.STATIC_CONFLICT : Learn.MOVED;
    }
    return this.map.size >= this.limit ? Learn.FULL : Learn.NEW;
  }

  /**
   * learn records that `mac` was seen behind `port` (a local port id, or -1) / `vtep`.
   * Never moves a static entry; refuses new entries beyond `limit`.
   */
  learn(mac: number, port: number, vtep: Vtep | null, now: number): Learn {
    const e = this.map.get(mac);
    if (e !== undefined) {
      if (e.port === port && e.vtep === vtep) {
        if (e.updated !== now) e.updated = now;
        return Learn.REFRESHED;
      }
      if (e.kind === FdbKind.STATIC) {
        this.refusedStatic++;
        return Learn.STATIC_CONFLICT;
      }
      e.port = port;
      e.vtep = vtep;
      e.updated = now;
      this.moves++;
      return Learn.MOVED;
    }
    if (this.map.size >= this.limit) {
      this.refusedFull++;
      return Learn.FULL;
    }
    this.map.set(mac, new FdbEntry(mac, FdbKind.LEARNED, port, vtep, now));
    return Learn.NEW;
  }

  /**
   * addStatic installs or replaces a permanent entry (control plane). Throws ERR_FDB_FULL when
   * the table is full and the MAC is new.
   */
  addStatic(mac: number, port: number, vtep: Vtep | null, now: number): void {
    if (mac === 0) throw new ConfigError('ERR_FDB_ALL_ZEROS', '', 'the all-zeros MAC is the flood list: use setFlood()');
    const e = this.map.get(mac);
    if (e === undefined && this.map.size >= this.limit) {
      throw new ConfigError('ERR_FDB_FULL', '', `fdb for VNI ${this.vni} is full (${this.limit} entries); cannot add ${formatMac(mac)}`);
    }
    this.map.set(mac, new FdbEntry(mac, FdbKind.STATIC, port, vtep, now));
  }

  remove(mac: number): boolean {
    return this.map.delete(mac);
  }

  /** Removes every entry (static or learned) that points at `vtep` / at local `port`. */
  removeWhere(pred: (e: FdbEntry) => boolean): number {
    let n = 0;
    for (const [mac, e] of this.map) {
      if (pred(e)) {
        this.map.delete(mac);
        n++;
      }
    }
    return n;
  }

  /** The all-zeros entry's remotes: each gets one copy of every BUM frame. */
  get floodList(): readonly Vtep[] {
    return this.flood;
  }

  /** setFlood replaces the flood list (duplicates removed: one copy per VTEP, never two). */
  setFlood(vteps: readonly Vtep[]): void {
    this.flood = [...new Set(vteps)];
  }

  /**
   * sweep removes learned entries not refreshed for `ageingMs`; returns how many. Static
   * entries are never aged. The caller runs it from one timer for all tables.
   */
  sweep(now: number): number {
    let n = 0;
    for (const [mac, e] of this.map) {
      if (e.kind === FdbKind.LEARNED && now - e.updated > this.ageingMs) {
        this.map.delete(mac);
        n++;
      }
    }
    return n;
  }

  entries(): FdbEntry[] {
    return [...this.map.values()];
  }
}
