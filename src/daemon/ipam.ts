/**
 * The node's IP address management for CNI attachments, owned by the daemon: one file per node
 * (`stateDir/NODE.cni.json`) holding every attachment the CNI plugin asked for, keyed by
 * (containerId, ifname) as the CNI spec keys them.
 *
 *   allocate   an address from the pod CIDR for (containerId, ifname), or the one the runtime
 *              asked for (CNI_ARGS IP=); the same key again gets the same address (a repeated ADD). Never the network (VTEP), gateway or broadcast
 *              address, nor an address another pod holds; "loosely round-robin" like host-local
 *              (the search starts after the last address handed out, so a released address is
 *              not reused at once). A full pool is ERR_IPAM_EXHAUSTED, with nothing recorded
 *   attach     records the pod the plugin attached with that address (its host veth, MAC, name)
 *   release    forgets (containerId, ifname): the address is free again; an unknown key is not
 *              an error (DEL is idempotent)
 *   gc         releases every attachment not in a list of valid ones (CNI GC)
 *
 * Every change is written before it is answered: the whole file to a temporary one, fsync,
 * rename over the old one, fsync of the directory; a crash leaves the old file or the new one,
 * never half of one. So allocations survive a daemon restart and a reboot. The daemon is the
 * only writer and calls these methods synchronously from its one event loop: concurrent ADDs
 * are serialised there and can never be handed one address twice.
 */

import { closeSync, existsSync, fsyncSync, mkdirSync, openSync, readFileSync, renameSync, writeSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { FlatnetError } from '../errors.js';
import type { Cidr } from '../fib/cidr.js';
import { formatIpv4, parseIpv4 } from '../wire/addr.js';

/** The pod's identity as the runtime passed it in CNI_ARGS (Kubernetes runtimes do). */
export interface PodIdentity {
  readonly namespace: string | null;
  readonly name: string | null;
  readonly uid: string | null;
  readonly infraContainerId: string | null;
}

/** What was attached for an allocation (null until the plugin has made the veth and attached it). */
export interface AttachedRecord {
  /** The pod's name in the daemon's desired state (`show ports`, `trace --in`). */
  readonly name: string;
  /** The veth's host end in the node's namespace. */
  readonly interface: string;
  readonly mac: string;
}

export interface CniRecord {
  readonly containerId: string;
  readonly ifname: string;
  readonly ip: string;
  /** 'flatnet': allocated here; 'delegated': an IPAM plugin (host-local) gave it, we only record it. */
  readonly ipam: 'flatnet' | 'delegated';
  /** When the address was allocated (ISO 8601). */
  readonly since: string;
  readonly k8s: PodIdentity | null;
  readonly pod: AttachedRecord | null;
}

interface StoreFile {
  readonly version: 1;
  readonly podCidr: string;
  /** The last address handed out (where the next search starts), or null. */
  readonly last: string | null;
  readonly records: readonly CniRecord[];
}

export const ipamFile = (stateDir: string, node: string): string => join(stateDir, `${node}.cni.json`);

const keyOf = (containerId: string, ifname: string): string => `${containerId}\u0000${ifname}`;

export class IpamStore {
  private readonly records = new Map<string, CniRecord>();
  private last: number | null = null;

  private constructor(readonly path: string, readonly cidr: Cidr, readonly gateway: number) {}

  /**
   * open loads the store of a node (an empty one when the file does not exist). A file written
   * for another pod CIDR is refused (ERR_IPAM_STATE): its addresses would not be this node's.
   */
  static open(path: string, cidr: Cidr, gateway: number): IpamStore {
    const s = new IpamStore(path, cidr, gateway);
    if (!existsSync(path)) return s;
    let f: StoreFile;
    try {
      f = JSON.parse(readFileSync(path, 'utf8')) as StoreFile;
      if (f.version !== 1 || !Array.isArray(f.records)) throw new Error(`version ${String(f.version)}`);
    } catch (e) {
      throw new FlatnetError('ERR_IPAM_STATE', `${path} is not a flatnet IPAM file (${(e as Error).message}); move it away to start with no allocations`, { cause: e });
    }
    if (f.podCidr !== cidr.toString()) {
      throw new FlatnetError('ERR_IPAM_STATE', `${path} holds allocations of pod CIDR ${f.podCidr}, not this node's ${cidr}; move it away to start with no allocations`);
    }
    for (const r of f.records) s.records.set(keyOf(r.containerId, r.ifname), r);
    s.last = f.last === null ? null : parseIpv4(f.last);
    return s;
  }

  get size(): number {
    return this.records.size;
  }

  /** Every record, oldest first. */
  list(): CniRecord[] {
    return [...this.records.values()];
  }

  get(containerId: string, ifname: string): CniRecord | undefined {
    return this.records.get(keyOf(containerId, ifname));
  }

  /** The record holding address `ip`, if any. */
  byIp(ip: number): CniRecord | undefined {
    const text = formatIpv4(ip);
    for (const r of this.records.values()) if (r.ip === text) return r;
    return undefined;
  }

  /** The addresses this store may hand out: the pod CIDR's hosts but the network, gateway and broadcast. */
  get capacity(): number {
    return this.cidr.size - 3;
  }

  /** How many of them are free (`taken`: addresses other pods hold, outside this store). */
  free(taken: (ip: number) => boolean = () => false): number {
    const used = this.usedIps();
    let n = 0;
    for (let i = 1; i < this.cidr.size - 1; i++) {
      const ip = this.cidr.host(i);
      if (ip !== this.gateway && !taken(ip) && !used.has(formatIpv4(ip))) n++;
    }
    return n;
  }

  private usedIps(): Set<string> {
    return new Set([...this.records.values()].map((r) => r.ip));
  }

  /**
   * allocate returns the record of (containerId, ifname): the existing one (`existing`), or a
   * new one with the next free address after the last one handed out. `taken` says which
   * addresses other pods (the config file's) hold. ERR_IPAM_EXHAUSTED when none is free.
   */
  allocate(containerId: string, ifname: string, k8s: PodIdentity | null, taken: (ip: number) => boolean, requested: number | null = null): { record: CniRecord; existing: boolean } {
    const old = this.get(containerId, ifname);
    if (old !== undefined) {
      if (requested !== null && old.ip !== formatIpv4(requested)) {
        throw new FlatnetError('ERR_IPAM_ADDRESS_IN_USE', `container ${containerId} ${ifname} already holds ${old.ip}, not the requested ${formatIpv4(requested)}`);
      }
      return { record: old, existing: true };
    }
    if (requested !== null) return { record: this.claim(containerId, ifname, k8s, taken, requested), existing: false };
    const used = this.usedIps();
    const n = this.cidr.size;
    const start = this.last === null || !this.cidr.contains(this.last) ? 1 : this.last - this.cidr.network + 1;
    for (let k = 0; k < n; k++) {
      const i = (start + k) % n;
      if (i === 0 || i === n - 1) continue; // network (the VTEP address) and broadcast
      const ip = this.cidr.host(i);
      if (ip === this.gateway || taken(ip) || used.has(formatIpv4(ip))) continue;
      return { record: this.record(containerId, ifname, k8s, ip, true), existing: false };
    }
    throw new FlatnetError('ERR_IPAM_EXHAUSTED', `no free address left in pod CIDR ${this.cidr} (${this.records.size} allocated, ${this.capacity} usable in all)`);
  }

  /**
   * claim allocates the address a runtime asked for (CNI_ARGS IP=, as host-local takes it):
   * ERR_IPAM_BAD_REQUEST outside the pool (or the network, gateway or broadcast address),
   * ERR_IPAM_ADDRESS_IN_USE when another attachment or pod holds it. It does not move the cursor.
   */
  private claim(containerId: string, ifname: string, k8s: PodIdentity | null, taken: (ip: number) => boolean, ip: number): CniRecord {
    const i = ip - this.cidr.network;
    if (!this.cidr.contains(ip) || i === 0 || i === this.cidr.size - 1 || ip === this.gateway) {
      throw new FlatnetError('ERR_IPAM_BAD_REQUEST', `the requested ${formatIpv4(ip)} is not an address this node hands out (a host of ${this.cidr} other than the gateway ${formatIpv4(this.gateway)})`);
    }
    const holder = this.byIp(ip);
    if (holder !== undefined || taken(ip)) {
      throw new FlatnetError('ERR_IPAM_ADDRESS_IN_USE', `the requested ${formatIpv4(ip)} is in use${holder === undefined ? ' by another pod' : ` by container ${holder.containerId} ${holder.ifname}`}`);
    }
    return this.record(containerId, ifname, k8s, ip, false);
  }

  /** record stores a new allocation (and the cursor when `advance`), or nothing when the write fails. */
  private record(containerId: string, ifname: string, k8s: PodIdentity | null, ip: number, advance: boolean): CniRecord {
    const record: CniRecord = { containerId, ifname, ip: formatIpv4(ip), ipam: 'flatnet', since: new Date().toISOString(), k8s, pod: null };
    this.records.set(keyOf(containerId, ifname), record);
    const last = this.last;
    if (advance) this.last = ip;
    try {
      this.save();
    } catch (e) {
      this.records.delete(keyOf(containerId, ifname));
      this.last = last;
      throw e;
    }
    return record;
  }

  /** put records `record` (a new or completed attachment) and saves; on a failed save nothing changed. */
  put(record: CniRecord): void {
    const key = keyOf(record.containerId, record.ifname);
    const before = this.records.get(key);
    this.records.set(key, record);
    try {
      this.save();
    } catch (e) {
      if (before === undefined) this.records.delete(key);
      else this.records.set(key, before);
      throw e;
    }
  }

  /** release forgets (containerId, ifname) and returns what it was (null: nothing was allocated). */
  release(containerId: string, ifname: string): CniRecord | null {
    const key = keyOf(containerId, ifname);
    const r = this.records.get(key);
    if (r === undefined) return null;
    this.records.delete(key);
    try {
      this.save();
    } catch (e) {
      this.records.set(key, r);
      throw e;
    }
    return r;
  }

  /** gc releases every record whose (containerId, ifname) is not in `valid`; returns them. */
  gc(valid: readonly { readonly containerId: string; readonly ifname: string }[]): CniRecord[] {
    const keep = new Set(valid.map((v) => keyOf(v.containerId, v.ifname)));
    const gone = [...this.records.entries()].filter(([k]) => !keep.has(k));
    if (gone.length === 0) return [];
    for (const [k] of gone) this.records.delete(k);
    try {
      this.save();
    } catch (e) {
      for (const [k, r] of gone) this.records.set(k, r);
      throw e;
    }
    return gone.map(([, r]) => r);
  }

  /** save writes the whole store atomically (temporary file, fsync, rename, fsync of the directory). */
  private save(): void {
    const f: StoreFile = { version: 1, podCidr: this.cidr.toString(), last: this.last === null ? null : formatIpv4(this.last), records: this.list() };
    const dir = dirname(this.path);
    const tmp = `${this.path}.tmp`;
    try {
      mkdirSync(dir, { recursive: true });
      const fd = openSync(tmp, 'w', 0o600);
      try {
        writeSync(fd, `${JSON.stringify(f, null, 1)}\n`);
        fsyncSync(fd);
      } finally {
        closeSync(fd);
      }
      renameSync(tmp, this.path);
      const dfd = openSync(dir, 'r');
      try { fsyncSync(dfd); } finally { closeSync(dfd); }
    } catch (e) {
      throw new FlatnetError('ERR_IPAM_WRITE', `cannot write the IPAM state ${this.path}: ${(e as Error).message}`, { cause: e });
    }
  }
}

/** One row of `flatnet show ipam`. */
export interface IpamRow {
  readonly ip: string;
  readonly containerId: string;
  readonly ifname: string;
  readonly ipam: 'flatnet' | 'delegated';
  readonly pod: string | null;
  readonly interface: string | null;
  readonly namespace: string | null;
  readonly k8sName: string | null;
  readonly since: string;
  /** The pod's port is attached to the switch right now. */
  readonly attached: boolean;
}

export interface IpamSnapshot {
  readonly podCidr: string;
  readonly gateway: string;
  readonly capacity: number;
  readonly free: number;
  readonly allocations: readonly IpamRow[];
}

/** renderIpam: a header line, then one line per allocation. */
export function renderIpam(s: IpamSnapshot): string {
  const lines = [`pool ${s.podCidr} gateway ${s.gateway} usable ${s.capacity} free ${s.free} allocated ${s.allocations.length}`];
  for (const a of s.allocations) {
    const who = a.namespace !== null || a.k8sName !== null ? ` k8s ${a.namespace ?? '-'}/${a.k8sName ?? '-'}` : '';
    const port = a.pod === null ? ' not attached' : ` pod ${a.pod} dev ${a.interface}${a.attached ? '' : ' (port closed)'}`;
    lines.push(`${a.ip} container ${a.containerId.slice(0, 12)} if ${a.ifname}${who}${port} ipam ${a.ipam} since ${a.since}`);
  }
  return lines.join('\n') + '\n';
}
