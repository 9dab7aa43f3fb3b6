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

import type { Etcd3 } from 'etcd3';
import type { Logger } from 'pino';
import { Counter, Gauge, type Registry } from 'prom-client';
import { ConfigError, FlatnetError } from '../errors.js';
import type { Cidr } from '../fib/cidr.js';
import type { PeerSpec } from '../daemon/desired.js';
import { connectEtcd, errorText } from './etcd.js';
import { SubnetLease, type Holder, type LeaseStatus } from './lease.js';
import { networkDocument, networkKey, parseNetworkText, subnetsPrefix, type Network } from './network.js';
import { REJECT_REASON_NAMES, selectPeers, type RawRecord, type RejectReason, type Rejection, type Selection, type SubnetRecord } from './records.js';
import { PrefixWatcher, type WatchState, type WatchStatus } from './watch.js';

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

export class NodeControl {
  private watcher: PrefixWatcher | null = null;
  private selection: Selection | null = null;
  private readonly seenRejections = new Set<string>();
  private readonly rejectedCounts = Object.fromEntries(REJECT_REASON_NAMES.map((r) => [r, 0])) as Record<RejectReason, number>;
  private peerUpdates = 0;
  private lastUpdate: number | null = null;
  private closed = false;

  private constructor(
    readonly spec: ControlSpec,
    readonly client: Etcd3,
    readonly network: Network,
    private readonly lease: SubnetLease,
    readonly subnet: Cidr,
    private readonly holder: Holder,
    private readonly log?: Logger,
  ) {}

  /**
   * join connects, reads the network config and leases a subnet. Retries (with backoff, logged)
   * while etcd does not answer or the network config is missing; fails at once when the
   * network is full or its config is invalid.
   */
  static async join(spec: ControlSpec, holder: Omit<Holder, 'vni' | 'port'>, stateDir: string, log?: Logger): Promise<NodeControl> {
    const client = connectEtcd(spec.endpoints);
    try {
      const net = await withRetry('reading the network config', () => readNetwork(client, spec.prefix), log, isFatal);
      const full: Holder = { ...holder, vni: net.vni, port: net.port };
      const lease = new SubnetLease(client, net, full, { prefix: spec.prefix, ttlSeconds: spec.leaseTtlSeconds, stateDir, log });
      const subnet = await withRetry('leasing a subnet', () => lease.acquire(), log, isFatal);
      return new NodeControl(spec, client, net, lease, subnet, full, log);
    } catch (e) {
      client.close();
      throw e;
    }
  }

  get vtepMac(): number {
    return this.holder.vtepMac;
  }

  /** watch starts watching the leases; `onPeers` gets the full peer list after every settled change. */
  watch(onPeers: (peers: readonly PeerSpec[], records: ReadonlyMap<string, SubnetRecord>) => void, onState?: (s: WatchState) => void): void {
    const self = { node: this.holder.node, subnet: this.subnet, underlayIp: this.holder.underlayIp };
    this.watcher = new PrefixWatcher(this.client, subnetsPrefix(this.spec.prefix), (kvs: ReadonlyMap<string, RawRecord>) => {
      const sel = selectPeers(this.spec.prefix, this.network, kvs.values(), self);
      this.selection = sel;
      this.noteRejections(sel.rejected);
      this.peerUpdates++;
      this.lastUpdate = Date.now();
      onPeers(sel.peers, sel.records);
    }, { log: this.log, onState });
    this.watcher.start();
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
    const ok = lease.state === 'held' && watch !== null && watch.state === 'watching';
    return {
      state: watch === null ? 'joining' : ok ? 'ok' : 'degraded',
      endpoints: this.spec.endpoints, prefix: this.spec.prefix, network: networkDocument(this.network), lease, watch,
      records: this.selection?.records.size ?? 0, peers: this.selection?.peers.length ?? 0,
      rejected: { ...this.rejectedCounts }, rejectedNow: this.selection?.rejected ?? [],
      peerUpdates: this.peerUpdates, lastUpdateAgoMs: this.lastUpdate === null ? null : Date.now() - this.lastUpdate,
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
  async close(revoke = false): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.watcher?.close();
    await this.lease.close(revoke).catch(() => undefined);
    this.client.close();
  }
}
