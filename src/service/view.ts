/**
 * `flatnet show services` and `flatnet show conntrack`: the Service frontends with their
 * backends and hits (laid out as `ipvsadm -Ln` does), and the connection table (as `conntrack
 * -L` prints it).
 */

import type { ConnTable, CtEntryInfo, CtStats } from '../conntrack/table.js';
import { formatEntry } from '../conntrack/table.js';
import { formatIpv4 } from '../wire/addr.js';
import type { ServiceCatalog } from './catalog.js';

const PROTO: Readonly<Record<number, string>> = { 6: 'TCP', 17: 'UDP', 132: 'SCTP' };

export interface ServiceRow {
  readonly service: string;
  readonly frontend: string;
  readonly protocol: string;
  readonly scheduler: string;
  readonly affinitySeconds: number;
  readonly backends: readonly { readonly address: string; readonly node: string | null; readonly hits: number }[];
  /** Why new connections get no backend: 'no-endpoints' (rejected) or 'no-local-endpoints' (dropped), or null. */
  readonly empty: string | null;
  readonly rejected: number;
}

export function serviceRows(cat: ServiceCatalog): ServiceRow[] {
  return cat.frontends.map((f) => ({
    service: f.name, frontend: `${formatIpv4(f.ip)}:${f.port}`, protocol: PROTO[f.proto] ?? String(f.proto),
    scheduler: cat.loadBalancing, affinitySeconds: f.affinityMs / 1000,
    backends: f.backends.map((b) => ({ address: `${formatIpv4(b.ip)}:${b.port}`, node: b.node, hits: b.hits })),
    empty: f.empty, rejected: f.rejected,
  }));
}

/** renderServices: a frontend line, then one `->` line per backend (ipvsadm -Ln's layout). */
export function renderServices(rows: readonly ServiceRow[]): string {
  if (rows.length === 0) return 'No Services installed.';
  const out = ['Prot LocalAddress:Port Scheduler Flags', '  -> RemoteAddress:Port           Node             Connections'];
  for (const r of rows) {
    const flags = [r.affinitySeconds > 0 ? `persistent ${r.affinitySeconds}` : '', r.empty === null ? '' : r.empty === 'no-endpoints' ? `reject (${r.rejected})` : `drop (${r.rejected})`].filter(Boolean).join(' ');
    out.push(`${r.protocol.padEnd(4)} ${r.frontend} ${r.scheduler}${flags === '' ? '' : ` ${flags}`}   # ${r.service}`);
    for (const b of r.backends) out.push(`  -> ${b.address.padEnd(28)} ${(b.node ?? '-').padEnd(16)} ${b.hits}`);
  }
  return out.join('\n');
}

export function conntrackRows(ct: ConnTable, now: number): CtEntryInfo[] {
  return ct.list(now);
}

/** What `show conntrack` carries: the live entries and the table's counters. */
export interface ConntrackView { readonly entries: readonly CtEntryInfo[]; readonly stats: CtStats & { readonly capacity: number } }

export function conntrackView(ct: ConnTable, now: number): ConntrackView {
  return { entries: ct.list(now), stats: { ...ct.stats, capacity: ct.capacity } };
}

/** renderConntrack: `conntrack -L`'s lines and its closing count; then the table's counters. */
export function renderConntrack(v: ConntrackView): string {
  const s = v.stats;
  return [
    ...v.entries.map(formatEntry),
    `flatnet conntrack: ${v.entries.length} flow entries have been shown.`,
    `entries ${s.entries}/${s.capacity} inserted ${s.inserted} expired ${s.expired} early_dropped ${s.earlyDropped} refused ${s.refused} clashes ${s.clashes} invalid ${s.invalid} removed ${s.removed} prepassed ${s.prepassed} prepass_translated ${s.prepassTranslated}`,
  ].join('\n');
}
