/**
 * A node's part of the control plane, as the daemon uses it (`"control": {"etcd": {...}}` in its
 * config): join the cluster (read the network config, lease a subnet), then watch every lease
 * and hand the daemon the peers to program.
 *
 *   const c = await NodeControl.join(spec, holder-ish, log);   // retries until etcd answers
 *   c.subnet / c.network                                      // what the node config is completed with
 *   c.watch((peers) => daemon.setControlPeers(peers))          // every settled change
 *   c.status()                                                 // `flatnet show control`
 *
 * Bad records are never handed on: each is rejected with a named reason (records.ts), counted
 * once per record version (key + mod_revision), and logged once.
 */

import { mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Etcd3 } from 'etcd3';
import type { Logger } from 'pino';
import { Counter, Gauge, type Registry } from 'prom-client';
import { ConfigError, FlatnetError } from '../errors.js';
import { Cidr } from '../fib/cidr.js';
import type { PeerSpec } from '../daemon/desired.js';
import { connectEtcd, errorText } from './etcd.js';
import { SubnetLease, type Holder, type LeaseStatus } from './lease.js';
import { networkDocument, networkKey, parseNetwork, parseNetworkText, subnetsPrefix, type Network } from './network.js';
import { REJECT_REASON_NAMES, selectPeers, type RawRecord, type RejectReason, type Rejection, type Selection, type SubnetRecord } from './records.js';
import { PrefixWatcher, type WatchState, type WatchStatus } from './watch.js';
import { ObjectStore, type ClusterObject, type Kind } from './objects.js';

/** The daemon config's `control.etcd` section, compiled. */
export interface ControlSpec {
  readonly endpoints: readonly string[];
  readonly prefix: string;
  readonly leaseTtlSeconds: number;
}

export interface ControlStatus {
  readonly state: 'joining' | 'ok' | 'degraded';
  readonly endpoints: readonly string[];
  readonly prefix: string;
  readonly network: Record<string, unknown> | null;
  readonly lease: LeaseStatus | null;
  readonly watch: WatchStatus | null;
  readonly records: number;
  readonly peers: number;
  readonly rejected: Readonly<Record<RejectReason, number>>;
  readonly rejectedNow: readonly Rejection[];
  readonly peerUpdates: number;
  readonly lastUpdateAgoMs: number | null;
  /** Started from the cache (etcd did not answer at start) and no lease taken yet. */
  readonly resumedFromCache: boolean;
  /** Set when another node took this node's subnet while it was away. */
  readonly subnetTaken: string | null;
}

/** readNetwork: the network config from the store; ERR_CONTROL_NO_NETWORK when nobody ran `flatnet cluster init`. */
export async function readNetwork(client: Etcd3, prefix: string): Promise<Network> {
  const text = await client.get(networkKey(prefix)).string();
  if (text === null) throw new FlatnetError('ERR_CONTROL_NO_NETWORK', `no network config at ${networkKey(prefix)}; run \`flatnet cluster init\` first`);
  try {
    return parseNetworkText(text);
  } catch (e) {
    const f = e as ConfigError;
    throw new ConfigError('ERR_CONTROL_BAD_NETWORK', f.field ?? '', `the stored network config (${networkKey(prefix)}) is invalid: ${f.message}`, { cause: e });
  }
}

/** Retry `fn` with backoff (250 ms doubling to 5 s) while it fails for a reason other than `fatal`. */
export async function withRetry<T>(what: string, fn: () => Promise<T>, log: Logger | undefined, fatal: (e: unknown) => boolean, isClosed: () => boolean = () => false): Promise<T> {
  let delay = 250;
  let attempt = 0;
  for (;;) {
    try {
      return await fn();
    } catch (e) {
      if (fatal(e) || isClosed()) throw e;
      attempt++;
      if (attempt === 1 || attempt % 10 === 0) log?.warn({ err: errorText(e), attempt, retryInMs: delay }, `${what} failed; retrying`);
      await new Promise((r) => setTimeout(r, delay));
      delay = Math.min(delay * 2, 5000);
    }
  }
}

const fatalCodes = new Set(['ERR_CONTROL_NO_SUBNET', 'ERR_CONTROL_BAD_NETWORK']);
const isFatal = (e: unknown): boolean => e instanceof FlatnetError && fatalCodes.has(e.code);

/**
 * What a node keeps of the store between runs (STATE_DIR/NODE.control.json): the network config,
 * its subnet and the lease records it last saw, so that a node restarted while etcd is away can
 * come up with its subnet and its peers as they were (the same checks run on the records again).
 */
interface ControlCache { readonly network: Record<string, unknown>; readonly subnet: string; readonly records: readonly RawRecord[] }

const cacheFile = (stateDir: string, node: string): string => join(stateDir, `${node}.control.json`);

function readCache(stateDir: string, node: string): { network: Network; subnet: Cidr; records: RawRecord[] } | null {
  try {
    const c = JSON.parse(readFileSync(cacheFile(stateDir, node), 'utf8')) as ControlCache;
    const network = parseNetwork(c.network);
    const subnet = Cidr.parse(c.subnet);
    if (!network.network.contains(subnet.network) || subnet.len !== network.subnetLen || !Array.isArray(c.records)) return null;
    return { network, subnet, records: c.records.filter((r) => typeof r?.key === 'string' && typeof r.value === 'string') };
  } catch {
    return null;
  }
}

/** How long a node with a cache waits for etcd at start before it resumes from the cache. */
export const RESUME_AFTER_MS = 5000;

export class NodeControl {
  private watcher: PrefixWatcher | null = null;
  /** Started from the cache because etcd did not answer at start (until the lease is taken). */
  private resumed = false;
  private cachedRecords: RawRecord[] = [];
  private cacheTimer: NodeJS.Timeout | null = null;
  private pendingCache: RawRecord[] | null = null;
  private subnetTaken: string | null = null;
  private selection: Selection | null = null;
  private readonly seenRejections = new Set<string>();
  private readonly rejectedCounts = Object.fromEntries(REJECT_REASON_NAMES.map((r) => [r, 0])) as Record<RejectReason, number>;
  private peerUpdates = 0;
  private lastUpdate: number | null = null;
  private closed = false;
  private readonly objectWatchers: PrefixWatcher[] = [];

  private constructor(
    readonly spec: ControlSpec,
    readonly client: Etcd3,
    readonly network: Network,
    private readonly lease: SubnetLease,
    readonly subnet: Cidr,
    private readonly holder: Holder,
    private readonly log?: Logger,
    private readonly stateDir?: string,
  ) {}

  /**
   * join connects, reads the network config and leases a subnet. Retries (with backoff, logged)
   * while etcd does not answer or the network config is missing; fails at once when the
   * network is full or its config is invalid.
   */
  static async join(spec: ControlSpec, holder: Omit<Holder, 'vni' | 'port'>, stateDir: string, log?: Logger, resumeAfterMs = RESUME_AFTER_MS): Promise<NodeControl> {
    const client = connectEtcd(spec.endpoints);
    try {
      const cache = readCache(stateDir, holder.node);
      if (cache !== null) {
        // A node that ran before does not wait for etcd forever: after resumeAfterMs it comes up
        // with its subnet and peers as they were, and takes its lease when etcd answers.
        const first = await Promise.race([
          readNetwork(client, spec.prefix).then((n) => ({ ok: true as const, n }), (e: unknown) => ({ ok: false as const, e })),
          new Promise<{ ok: false; e: unknown }>((r) => setTimeout(() => r({ ok: false, e: new FlatnetError('ERR_CONTROL_TIMEOUT', `etcd did not answer within ${resumeAfterMs} ms`) }), resumeAfterMs).unref()),
        ]);
        if (!first.ok && isFatal(first.e)) throw first.e;
        if (!first.ok) return NodeControl.resume(spec, client, holder, stateDir, cache, first.e, log);
      }
      const net = await withRetry('reading the network config', () => readNetwork(client, spec.prefix), log, isFatal);
      const full: Holder = { ...holder, vni: net.vni, port: net.port };
      const lease = new SubnetLease(client, net, full, { prefix: spec.prefix, ttlSeconds: spec.leaseTtlSeconds, stateDir, log });
      const subnet = await withRetry('leasing a subnet', () => lease.acquire(), log, isFatal);
      return new NodeControl(spec, client, net, lease, subnet, full, log, stateDir);
    } catch (e) {
      client.close();
      throw e;
    }
  }

  /** resume: come up from the cache; lease the same subnet in the background once etcd answers. */
  private static resume(spec: ControlSpec, client: Etcd3, holder: Omit<Holder, 'vni' | 'port'>, stateDir: string, cache: NonNullable<ReturnType<typeof readCache>>, why: unknown, log?: Logger): NodeControl {
    const full: Holder = { ...holder, vni: cache.network.vni, port: cache.network.port };
    const lease = new SubnetLease(client, cache.network, full, { prefix: spec.prefix, ttlSeconds: spec.leaseTtlSeconds, stateDir, log });
    lease.prefer(cache.subnet);
    const c = new NodeControl(spec, client, cache.network, lease, cache.subnet, full, log, stateDir);
    c.resumed = true;
    c.cachedRecords = cache.records;
    log?.warn({ err: errorText(why), subnet: cache.subnet.toString(), records: cache.records.length }, 'etcd does not answer: starting from the last known subnet and peers; the lease is taken when etcd is back');
    void withRetry('leasing the subnet', () => lease.acquire(), log, isFatal, () => c.closed).then(async (got) => {
      if (got.network === c.subnet.network && got.len === c.subnet.len) {
        c.resumed = false;
        return;
      }
      // Another node took the subnet while this one was away: hold nothing that is not ours.
      c.subnetTaken = `${c.subnet} was leased by another node meanwhile (etcd gave this node ${got})`;
      log?.error({ subnet: c.subnet.toString(), offered: got.toString() }, `${c.subnetTaken}; forwarding goes on with the old subnet, restart the node to take a new one`);
      await lease.close(true);
    }, (e: unknown) => { if (!c.closed) log?.error({ err: errorText(e) }, 'could not lease the subnet'); });
    return c;
  }

  get vtepMac(): number {
    return this.holder.vtepMac;
  }

  /** watch starts watching the leases; `onPeers` gets the full peer list after every settled change. */
  watch(onPeers: (peers: readonly PeerSpec[], records: ReadonlyMap<string, SubnetRecord>) => void, onState?: (s: WatchState) => void): void {
    const self = { node: this.holder.node, subnet: this.subnet, underlayIp: this.holder.underlayIp };
    const update = (raws: Iterable<RawRecord>): void => {
      const sel = selectPeers(this.spec.prefix, this.network, raws, self);
      this.selection = sel;
      this.noteRejections(sel.rejected);
      this.peerUpdates++;
      this.lastUpdate = Date.now();
      onPeers(sel.peers, sel.records);
    };
    // Resumed from the cache: the peers as they were, until the watch lists the store again.
    if (this.cachedRecords.length > 0) update(this.cachedRecords);
    this.watcher = new PrefixWatcher(this.client, subnetsPrefix(this.spec.prefix), (kvs: ReadonlyMap<string, RawRecord>) => {
      update(kvs.values());
      this.saveCache([...kvs.values()]);
    }, { log: this.log, onState });
    this.watcher.start();
  }

  /** saveCache writes the cache at most once a second (the last state wins). */
  private saveCache(records: RawRecord[]): void {
    if (this.stateDir === undefined) return;
    this.pendingCache = records;
    if (this.cacheTimer !== null) return;
    const write = (): void => {
      this.cacheTimer = null;
      const recs = this.pendingCache;
      this.pendingCache = null;
      if (recs === null || this.stateDir === undefined) return;
      try {
        const f = cacheFile(this.stateDir, this.holder.node);
        mkdirSync(this.stateDir, { recursive: true });
        const c: ControlCache = { network: networkDocument(this.network), subnet: this.subnet.toString(), records: recs };
        writeFileSync(`${f}.tmp`, JSON.stringify(c));
        renameSync(`${f}.tmp`, f);
      } catch (e) {
        this.log?.warn({ err: errorText(e) }, 'could not save the control cache');
      }
    };
    write();
    this.cacheTimer = setTimeout(() => { this.cacheTimer = null; if (this.pendingCache !== null) { write(); } }, 1000);
    this.cacheTimer.unref();
  }

  private noteRejections(rs: readonly Rejection[]): void {
    for (const r of rs) {
      const id = `${r.key}@${r.modRevision}`;
      if (this.seenRejections.has(id)) continue;
      this.seenRejections.add(id);
      this.rejectedCounts[r.reason]++;
      this.log?.warn({ key: r.key, reason: r.reason, detail: r.detail, modRevision: r.modRevision }, `ignoring a subnet record: ${r.reason}`);
    }
    if (this.seenRejections.size > 10_000) this.seenRejections.clear();
  }

  status(): ControlStatus {
    const lease = this.lease.status();
    const watch = this.watcher?.status() ?? null;
    const ok = lease.state === 'held' && watch !== null && watch.state === 'watching' && !this.resumed && this.subnetTaken === null;
    return {
      state: watch === null ? 'joining' : ok ? 'ok' : 'degraded',
      endpoints: this.spec.endpoints, prefix: this.spec.prefix, network: networkDocument(this.network), lease, watch,
      records: this.selection?.records.size ?? 0, peers: this.selection?.peers.length ?? 0,
      rejected: { ...this.rejectedCounts }, rejectedNow: this.selection?.rejected ?? [],
      peerUpdates: this.peerUpdates, lastUpdateAgoMs: this.lastUpdate === null ? null : Date.now() - this.lastUpdate,
      resumedFromCache: this.resumed, subnetTaken: this.subnetTaken,
    };
  }

  /** Metrics on the daemon's registry, read at scrape time. */
  registerMetrics(registry: Registry): void {
    const self = this;
    new Gauge({ name: 'flatnet_control_up', help: '1 when the subnet lease is held and the lease watch is connected', registers: [registry], collect() { this.set(self.status().state === 'ok' ? 1 : 0); } });
    new Gauge({ name: 'flatnet_control_watch_revision', help: 'etcd revision the peer set reflects', registers: [registry], collect() { this.set(self.watcher?.status().revision ?? 0); } });
    new Gauge({ name: 'flatnet_control_peers', help: 'Peers learned from etcd', registers: [registry], collect() { this.set(self.selection?.peers.length ?? 0); } });
    new Counter({ name: 'flatnet_control_rejected_records_total', help: 'Subnet records ignored, by reason (each record version counted once)', labelNames: ['reason'], registers: [registry], collect() {
      this.reset();
      for (const r of REJECT_REASON_NAMES) this.inc({ reason: r }, self.rejectedCounts[r]);
    } });
    new Counter({ name: 'flatnet_control_lease_renewal_failures_total', help: 'Failed keepalives of the subnet lease', registers: [registry], collect() { this.reset(); this.inc(self.lease.status().renewalFailures); } });
    new Counter({ name: 'flatnet_control_watch_disconnects_total', help: 'Times the lease watch lost its stream', registers: [registry], collect() { this.reset(); this.inc(self.watcher?.status().disconnects ?? 0); } });
  }

  /** close stops watching and renewing (the record stays until its TTL ends, unless `revoke`). */
  /**
   * watchObjects watches the cluster's objects (Namespaces, Pods, NetworkPolicies, Services,
   * EndpointSlices) and hands each kind's whole list to `onChange` after every settled change:
   * the daemon compiles its policy and Service tables from them (daemon/cluster.ts).
   */
  watchObjects(onChange: (kind: Kind, objects: readonly ClusterObject[]) => void): void {
    const store = new ObjectStore(this.client, this.spec.prefix);
    for (const kind of ['Namespace', 'Pod', 'NetworkPolicy', 'Service', 'EndpointSlice'] as const) {
      this.objectWatchers.push(store.watch(kind, (objects) => onChange(kind, objects), this.log));
    }
  }

  /** publishPodIp records a pod this node attached (namespace/name -> IP, bound to this node) in the store. */
  async publishPodIp(namespace: string, name: string, ip: string): Promise<void> {
    await new ObjectStore(this.client, this.spec.prefix).publishPodIp(namespace, name, ip, this.holder.node);
  }

  async close(revoke = false): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    if (this.cacheTimer !== null) clearTimeout(this.cacheTimer);
    await Promise.all(this.objectWatchers.map((w) => w.close()));
    await this.watcher?.close();
    await this.lease.close(revoke).catch(() => undefined);
    this.client.close();
  }
}
