/**
 * A node's subnet lease, as flannel's etcd subnet manager keeps it: the record (records.ts) at
 * PREFIX/subnets/SUBNET, attached to an etcd lease with a TTL that the node keeps alive; when
 * the node dies the lease expires, etcd deletes the key and every watcher removes the peer.
 *
 * acquire() picks the subnet, in this order, each step an etcd transaction so that two nodes
 * racing never hold the same subnet (the loser re-reads and tries again):
 *   1. a record that is this node's already (same node name, or same underlay address, as
 *      flannel identifies a node by its public IP): taken over if its mod_revision is unchanged;
 *   2. the subnet of the local state file (STATE_DIR/NODE.subnet.env, flannel's subnet.env),
 *      if nobody holds its key: a restarted node gets its subnet back also after its lease
 *      expired, as long as no other node took it meanwhile;
 *   3. a free subnet between subnetMin and subnetMax: one at random among the first 100 free
 *      (flannel's rule), created only if the key does not exist.
 * The state file is written once the subnet is held.
 *
 * Keepalive: etcd3's lease keepalive (every TTL/3). If etcd says the lease is gone (it expired
 * while the node could not reach etcd), the node re-claims the same subnet on a new lease: the
 * key if it is free or still this node's, with backoff until etcd answers. A subnet taken by
 * another node meanwhile is a conflict the node reports (state `conflict`) and keeps retrying;
 * forwarding is never stopped by the control plane.
 */

import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import type { Etcd3, Lease } from 'etcd3';
import type { Logger } from 'pino';
import { FlatnetError } from '../errors.js';
import { Cidr } from '../fib/cidr.js';
import { formatIpv4 } from '../wire/addr.js';
import { errorText, rawOf } from './etcd.js';
import { subnetAt, subnetCount, subnetKey, subnetOfKey, subnetsPrefix, type Network } from './network.js';
import { parseRecord, recordValue, type SubnetRecord } from './records.js';

/** Who is leasing: everything of the record but the subnet. */
export type Holder = Omit<SubnetRecord, 'subnet'>;

export type LeaseState = 'acquiring' | 'held' | 'renewing_failed' | 'lost' | 'conflict' | 'released';

export interface LeaseStatus {
  readonly state: LeaseState;
  readonly subnet: string | null;
  readonly key: string | null;
  readonly leaseId: string | null;
  readonly ttlSeconds: number;
  readonly renewals: number;
  readonly renewalFailures: number;
  readonly lastRenewalAgoMs: number | null;
  readonly reacquired: number;
  readonly lastError: string | null;
}

export interface LeaseOptions {
  readonly prefix: string;
  readonly ttlSeconds: number;
  /** Directory of the subnet.env-like file. */
  readonly stateDir: string;
  readonly log?: Logger;
  /** How a subnet was chosen, for tests and the log. */
  readonly onAcquired?: (subnet: Cidr, how: AcquireHow) => void;
}

export type AcquireHow = 'own_record' | 'state_file' | 'free';

const MAX_RACES = 20;

export class SubnetLease {
  private lease: Lease | null = null;
  private leaseId: string | null = null;
  private subnet: Cidr | null = null;
  private state: LeaseState = 'acquiring';
  private renewals = 0;
  private renewalFailures = 0;
  private lastRenewal: number | null = null;
  private reacquired = 0;
  private lastError: string | null = null;
  private closed = false;
  private retry: NodeJS.Timeout | null = null;

  constructor(private readonly client: Etcd3, private readonly net: Network, private readonly holder: Holder, private readonly opts: LeaseOptions) {}

  /** The state file: STATE_DIR/NODE.subnet.env. */
  get stateFile(): string {
    return join(this.opts.stateDir, `${this.holder.node}.subnet.env`);
  }

  get held(): Cidr | null {
    return this.subnet;
  }

  /** prefer: the subnet to ask for first (a node resumed from its cache), shown by status() until held. */
  prefer(subnet: Cidr): void {
    this.subnet = subnet;
  }

  /** acquire takes a subnet as described in the module comment and keeps its lease alive. */
  async acquire(): Promise<Cidr> {
    const lease = this.client.lease(this.opts.ttlSeconds);
    let id: string;
    try {
      id = await lease.grant();
    } catch (e) {
      lease.release();
      throw e;
    }
    const { subnet, how } = await this.claim(id, this.subnet ?? readStateFile(this.stateFile, this.net));
    this.watchLease(lease);
    this.lease = lease;
    this.leaseId = id;
    this.subnet = subnet;
    this.state = 'held';
    this.lastRenewal = Date.now();
    writeStateFile(this.stateFile, this.net, subnet);
    this.opts.log?.info({ subnet: subnet.toString(), how, leaseId: id, ttlSeconds: this.opts.ttlSeconds }, 'subnet lease acquired');
    this.opts.onAcquired?.(subnet, how);
    return subnet;
  }

  private async claim(leaseId: string, previous: Cidr | null): Promise<{ subnet: Cidr; how: AcquireHow }> {
    const value = (s: Cidr): string => recordValue({ ...this.holder, subnet: s });
    const p = this.opts.prefix;
    for (let attempt = 0; attempt < MAX_RACES; attempt++) {
      const res = await this.client.getAll().prefix(subnetsPrefix(p)).exec();
      const kvs = res.kvs.map(rawOf);
      // 1. our own record
      const mine = kvs.find((kv) => {
        const r = parseRecord(p, this.net, kv);
        return !('reason' in r) && r.subnet.len === this.net.subnetLen && (r.node === this.holder.node || r.underlayIp === this.holder.underlayIp);
      });
      if (mine !== undefined) {
        const s = subnetOfKey(p, mine.key)!;
        const t = await this.client.if(mine.key, 'Mod', '==', mine.modRevision).then(this.client.put(mine.key).value(value(s)).lease(leaseId)).commit();
        if (t.succeeded) return { subnet: s, how: 'own_record' };
        continue;
      }
      const held = kvs.map((kv) => subnetOfKey(p, kv.key));
      const taken = new Set(held.map((c) => c?.toString()).filter((x) => x !== undefined));
      // Keys of another length (hostile or from another config) block what they overlap.
      const odd = held.filter((c): c is Cidr => c !== null && c.len !== this.net.subnetLen);
      // 2. the state file's subnet, if free
      if (previous !== null && !taken.has(previous.toString())) {
        const key = subnetKey(p, previous);
        const t = await this.client.if(key, 'Create', '==', 0).then(this.client.put(key).value(value(previous)).lease(leaseId)).commit();
        if (t.succeeded) return { subnet: previous, how: 'state_file' };
        continue;
      }
      // 3. a free one, at random among the first 100 free
      const free: Cidr[] = [];
      const n = subnetCount(this.net);
      for (let i = 0; i < n && free.length < 100; i++) {
        const s = subnetAt(this.net, i);
        if (!taken.has(s.toString()) && !overlapsAny(s, odd)) free.push(s);
      }
      if (free.length === 0) throw new FlatnetError('ERR_CONTROL_NO_SUBNET', `no free /${this.net.subnetLen} left in ${this.net.network} (${n} subnets, all leased)`);
      const pick = free[Math.floor(Math.random() * free.length)]!;
      const key = subnetKey(p, pick);
      const t = await this.client.if(key, 'Create', '==', 0).then(this.client.put(key).value(value(pick)).lease(leaseId)).commit();
      if (t.succeeded) return { subnet: pick, how: 'free' };
    }
    throw new FlatnetError('ERR_CONTROL_LEASE_RACE', `lost ${MAX_RACES} races for a subnet in a row; giving up this attempt`);
  }

  private watchLease(lease: Lease): void {
    lease.on('keepaliveSucceeded', () => {
      this.renewals++;
      this.lastRenewal = Date.now();
      if (this.state === 'renewing_failed') this.opts.log?.info({ subnet: this.subnet?.toString() }, 'subnet lease renewed again');
      this.state = 'held';
    });
    lease.on('keepaliveFailed', (e: unknown) => {
      this.renewalFailures++;
      this.lastError = errorText(e);
      if (this.state === 'held') this.opts.log?.warn({ err: this.lastError, subnet: this.subnet?.toString() }, 'subnet lease renewal failed; forwarding goes on, retrying');
      if (this.state === 'held') this.state = 'renewing_failed';
    });
    lease.on('lost', (e: unknown) => {
      if (this.closed || this.lease !== lease) return;
      this.lastError = errorText(e);
      this.state = 'lost';
      this.lease = null;
      this.opts.log?.warn({ err: this.lastError, subnet: this.subnet?.toString() }, 'subnet lease lost; re-claiming the same subnet');
      this.scheduleReacquire(200);
    });
  }

  private scheduleReacquire(delayMs: number): void {
    if (this.closed) return;
    this.retry = setTimeout(() => {
      this.retry = null;
      this.reacquire().catch((e: unknown) => {
        this.lastError = errorText(e);
        if (e instanceof FlatnetError && e.code === 'ERR_CONTROL_SUBNET_TAKEN') this.state = 'conflict';
        this.scheduleReacquire(Math.min(delayMs * 2, 5000));
      });
    }, delayMs);
    this.retry.unref();
  }

  /** reacquire: the same subnet on a new lease, if its key is free or still ours. */
  private async reacquire(): Promise<void> {
    const s = this.subnet!;
    const key = subnetKey(this.opts.prefix, s);
    const lease = this.client.lease(this.opts.ttlSeconds);
    let id: string;
    try {
      id = await lease.grant();
      const value = recordValue({ ...this.holder, subnet: s });
      const cur = await this.client.get(key).exec();
      const kv = cur.kvs[0];
      if (kv !== undefined) {
        const r = parseRecord(this.opts.prefix, this.net, rawOf(kv));
        if ('reason' in r || r.node !== this.holder.node) throw new FlatnetError('ERR_CONTROL_SUBNET_TAKEN', `${s} is held by another record now: ${kv.value.toString().slice(0, 200)}`);
      }
      const t = await (kv === undefined ? this.client.if(key, 'Create', '==', 0) : this.client.if(key, 'Mod', '==', kv.mod_revision))
        .then(this.client.put(key).value(value).lease(id)).commit();
      if (!t.succeeded) throw new FlatnetError('ERR_CONTROL_LEASE_RACE', `${key} changed while re-claiming it`);
    } catch (e) {
      lease.release();
      throw e;
    }
    if (this.closed) { lease.release(); return; }
    this.watchLease(lease);
    this.lease = lease;
    this.leaseId = id;
    this.state = 'held';
    this.lastRenewal = Date.now();
    this.reacquired++;
    this.opts.log?.info({ subnet: s.toString() }, 'subnet lease re-acquired');
  }

  status(): LeaseStatus {
    return {
      state: this.state, subnet: this.subnet?.toString() ?? null, key: this.subnet === null ? null : subnetKey(this.opts.prefix, this.subnet),
      leaseId: this.leaseId, ttlSeconds: this.opts.ttlSeconds, renewals: this.renewals, renewalFailures: this.renewalFailures,
      lastRenewalAgoMs: this.lastRenewal === null ? null : Date.now() - this.lastRenewal, reacquired: this.reacquired, lastError: this.lastError,
    };
  }

  /**
   * close stops renewing. With `revoke` the lease is revoked and the record disappears at once;
   * without it (a restart) the record stays until the TTL runs out, so the node gets it back.
   */
  async close(revoke = false): Promise<void> {
    this.closed = true;
    if (this.retry !== null) clearTimeout(this.retry);
    const l = this.lease;
    this.lease = null;
    this.state = 'released';
    if (l === null) return;
    if (revoke) {
      try { await l.revoke(); } catch { l.release(); }
    } else {
      l.release();
    }
  }
}

function overlapsAny(s: Cidr, others: readonly (Cidr | null)[]): boolean {
  return others.some((o) => o !== null && o.overlaps(s));
}

/** The subnet of a state file, or null when absent, unreadable or not of this network. */
export function readStateFile(path: string, net: Network): Cidr | null {
  if (!existsSync(path)) return null;
  try {
    const m = /^FLATNET_SUBNET=(\S+)$/m.exec(readFileSync(path, 'utf8'));
    if (m === null) return null;
    const c = Cidr.parse(m[1]!);
    return c.len === net.subnetLen && net.network.contains(c.network) && c.network >= net.subnetMin && c.network <= net.subnetMax ? c : null;
  } catch {
    return null;
  }
}

/** writeStateFile: flannel's subnet.env, with flatnet's names (atomic: write, then rename). */
export function writeStateFile(path: string, net: Network, subnet: Cidr): void {
  mkdirSync(dirname(path), { recursive: true });
  const text = [
    `FLATNET_NETWORK=${net.network}`, `FLATNET_SUBNET=${subnet}`, `FLATNET_GATEWAY=${formatIpv4(subnet.host(1))}`,
    `FLATNET_VNI=${net.vni}`, `FLATNET_PORT=${net.port}`, `FLATNET_MODE=${net.mode}`, '',
  ].join('\n');
  writeFileSync(`${path}.tmp`, text, { mode: 0o644 });
  renameSync(`${path}.tmp`, path);
}
