/**
 * Producers of desired state and how their contributions merge.
 *
 * Each producer contributes entries to the sections (peers, pods): the config file (replaced
 * as a whole by a reload), the control socket (one entry per command), the CNI plugin (one pod
 * per attachment, also restored from the IPAM file at start: cni.ts) and the etcd lease watch
 * (peers, replaced as a whole on every settled change: src/control/). The desired state is their union by name:
 *   - an entry two producers give identically is one entry, held by both; it stays until
 *     neither holds it;
 *   - two different entries that clash (a name with other parameters, one pod IP, MAC or
 *     interface, overlapping peer CIDRs, one underlay address) are ERR_STATE_CONFLICT, a
 *     ConfigError naming the new entry's field and, in its message, the entry and producer it
 *     conflicts with. The change is refused; nothing is half-applied.
 * Commands act on the merged state: a detach or delete removes the entry from every producer
 * (the file's claim comes back with the next reload if the file still has it); `peer add` of a
 * known name replaces that peer wherever it was held (a node came back with a new VTEP MAC).
 *
 * Sources is immutable: every change returns a new Sources, so that the daemon can reconcile
 * the candidate first and keep it only when that succeeded.
 */

import { ConfigError, FlatnetError } from '../errors.js';
import {
  SECTION_NAMES, emptySections, type DesiredState, type NodeSpec, type PeerSpec, type PodSpec,
  type Section, type SectionEntries, type SectionName, type Sections,
} from './desired.js';
import { relatePeers, relatePods, type Relation } from './validate.js';

export const Producer = { FILE: 'file', CONTROL: 'control', CNI: 'cni', ETCD: 'etcd' } as const;
export type Producer = (typeof Producer)[keyof typeof Producer];

/** Merge order: the file's entries first (in file order), then the others'. */
const PRODUCERS: readonly Producer[] = [Producer.FILE, Producer.CONTROL, Producer.CNI, Producer.ETCD];
const PRODUCER_LABEL: Readonly<Record<Producer, string>> = { file: 'the config file', control: 'the control socket', cni: 'the CNI plugin', etcd: 'the etcd subnet leases' };

/** Singular names, for fields of one-entry commands ("pod.ip") and messages. */
export const ENTRY_LABEL: Readonly<Record<SectionName, string>> = { peers: 'peer', pods: 'pod' };

const RELATE: { readonly [K in SectionName]: (a: SectionEntries[K], b: SectionEntries[K]) => Relation } = { peers: relatePeers, pods: relatePods };

type Contributions = ReadonlyMap<Producer, Sections>;

export class Sources {
  private constructor(readonly node: NodeSpec, private readonly by: Contributions, readonly state: DesiredState) {}

  /** of: the node section and the file's peers and pods (already checked against each other). */
  static of(node: NodeSpec, file: EntryLists): Sources {
    const by = new Map<Producer, Sections>([[Producer.FILE, sectionsOf(file)]]);
    return new Sources(node, by, merge(node, by));
  }

  /** What `producer` contributes. */
  contribution(producer: Producer): Sections {
    return this.by.get(producer) ?? emptySections();
  }

  /** The producers holding entry `name` of `section`. */
  holders(section: SectionName, name: string): Producer[] {
    return PRODUCERS.filter((p) => this.by.get(p)?.[section].has(name) === true);
  }

  /**
   * replace: `producer`'s whole contribution replaced (a reload replaces the file's), the node
   * section too when given. Entries are checked against the other producers' entries; a clash
   * is ERR_STATE_CONFLICT naming `${section}[i].field` of the new contribution.
   */
  replace(producer: Producer, entries: EntryLists, node = this.node): Sources {
    const others = new Map([...this.by].filter(([p]) => p !== producer));
    const theirs = merge(node, others);
    for (const section of SECTION_NAMES) {
      const list = entries[section] as readonly SectionEntries[typeof section][];
      list.forEach((e, i) => this.checkAgainst(section, e, theirs.sections[section], `${section}[${i}]`, others));
    }
    const by = new Map(this.by);
    by.set(producer, sectionsOf(entries));
    return new Sources(node, by, merge(node, by));
  }

  /**
   * put: `producer` asks for `entry`. An identical entry already present is not a change:
   * `existing` is true and only the claim is recorded. With `replace` (peer add), an entry of
   * that name with other parameters is replaced wherever it was held; without it (pod attach)
   * that is a conflict. `field` prefixes the error's field ("pod" -> "pod.ip").
   */
  put<K extends SectionName>(producer: Producer, section: K, entry: SectionEntries[K], field: string, replace = false): { sources: Sources; existing: boolean } {
    const current = this.state.sections[section];
    const same = current.get(entry.name);
    const existing = same !== undefined && RELATE[section](entry, same).kind === 'identical';
    let base: Sources = this;
    if (same !== undefined && !existing && replace) base = this.remove(section, entry.name);
    base.checkAgainst(section, entry, base.state.sections[section], field, base.by);
    const by = new Map(base.by);
    const mine = base.contribution(producer);
    const entries = new Map(mine[section]);
    entries.set(entry.name, entry);
    by.set(producer, { ...mine, [section]: entries });
    return { sources: new Sources(this.node, by, merge(this.node, by)), existing };
  }

  /** remove: entry `name` of `section` gone from every producer; ERR_NOT_FOUND when nobody held it. */
  remove(section: SectionName, name: string): Sources {
    if (!this.state.sections[section].has(name)) throw new FlatnetError('ERR_NOT_FOUND', `no ${ENTRY_LABEL[section]} ${name}`);
    const by = new Map<Producer, Sections>();
    for (const [p, c] of this.by) {
      const entries = new Map<string, unknown>(c[section]);
      entries.delete(name);
      by.set(p, { ...c, [section]: entries } as Sections);
    }
    return new Sources(this.node, by, merge(this.node, by));
  }

  /** checkAgainst throws ERR_STATE_CONFLICT when `entry` clashes with an entry of `current`. */
  private checkAgainst<K extends SectionName>(section: K, entry: SectionEntries[K], current: Section<K>, field: string, by: Contributions): void {
    for (const other of current.values()) {
      const r = RELATE[section](entry, other);
      if (r.kind === 'unrelated' || r.kind === 'identical') continue;
      const from = PRODUCERS.filter((p) => by.get(p)?.[section].has(other.name) === true).map((p) => PRODUCER_LABEL[p]).join(' and ');
      throw new ConfigError('ERR_STATE_CONFLICT', `${field}.${r.field}`, `${r.message}, from ${from}`);
    }
  }
}

/** Entries of each section as lists (a document, a producer's whole contribution). */
export type EntryLists = { readonly [K in SectionName]: readonly SectionEntries[K][] };

function sectionsOf(e: EntryLists): Sections {
  const out = emptySections();
  for (const s of SECTION_NAMES) {
    const into = out[s] as Map<string, { readonly name: string }>;
    for (const x of e[s]) into.set(x.name, x);
  }
  return out;
}

/** merge: the union of the contributions, in producer order (identical entries collapse). */
function merge(node: NodeSpec, by: Contributions): DesiredState {
  const sections = emptySections();
  for (const p of PRODUCERS) {
    const c = by.get(p);
    if (c === undefined) continue;
    for (const s of SECTION_NAMES) {
      const into = sections[s] as Map<string, unknown>;
      for (const [k, v] of c[s]) if (!into.has(k)) into.set(k, v);
    }
  }
  return { node, sections };
}
