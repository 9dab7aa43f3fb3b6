/**
 * The VTEP daemon (`flatnet vtep --config FILE`): one node's data plane in the current network
 * namespace, put together from
 *   producers.ts   the desired state: the config file's contribution and the control socket's
 *   reconciler.ts  the data plane made to match it (host.ts for the kernel side, data-plane.ts
 *                  for the switch)
 *   commands.ts    the control commands, served on the control socket (control.ts)
 *   metrics.ts     Prometheus /metrics; log.ts, rate-limited warnings
 * Process lifecycle (signals) is lifecycle.ts's.
 *
 * Every change goes the same way: validate (validate.ts), compute the candidate desired state
 * (producers.ts: conflicts refused), reconcile it, and keep it only when that succeeded. So a
 * refused command or reload leaves both the desired state and the data plane as they were.
 *
 * Start: resolve the VTEP MAC and MTUs, build the switch, reconcile the file's state (host port,
 * overlay, peers, pods, start draining), then the control socket and /metrics.
 * Stop: stop draining, close every port (the TAP, and the routes on it, go away unless `keep`),
 * remove the control socket.
 */

import { subscribe, unsubscribe } from 'node:diagnostics_channel';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import type { Server } from 'node:http';
import type { Registry } from 'prom-client';
import type { Logger } from 'pino';
import { ConfigError, FlatnetError } from '../errors.js';
import { formatIpv4, formatMac } from '../wire/addr.js';
import { DROP_NAMES } from '../pipeline/drop.js';
import type { AttachResult, DaemonApi, PeerAddResult, PeerView, PodView, ReloadResult } from './commands.js';
import { controlRegistry } from './commands.js';
import { loadConfig, nodeOf, type NodeConfig } from './config.js';
import { ControlServer } from './control.js';
import { Switch, fdbMoveChannel, fdbRefusedChannel, switchDataPlane, type SwitchPort } from './data-plane.js';
import { changedNodeFields, nodeFields, restartFields, type DesiredState, type NodeSpec, type PeerSpec, type PodSpec } from './desired.js';
import { LinuxHost, resolveRuntime, type HostOps, type NodeRuntime } from './host.js';
import { ErrorWatch } from './error-watch.js';
import { kernelDrops } from '../io/kernel-drops.js';
import { RateLimitedLog } from './log.js';
import type { TraceResult } from '../pipeline/trace.js';
import { traceRequest, type TracePacketInput } from '../trace/request.js';
import { createRegistry, serveMetrics } from './metrics.js';
import { Producer, Sources } from './producers.js';
import { NO_CHANGES, Reconciler, describeChanges, isEmpty, type Changes } from './reconciler.js';
import { busyPollStatus, snapshot, type ShowWhat } from './show.js';
import { switchOptionsFor } from './switch-options.js';
import { checkPeer, checkPeerMacs, checkPod, relatePeers, type PeerInput, type PodInput } from './validate.js';
import { CniService } from './cni.js';
import { ClusterTables, type ClusterKind } from './cluster.js';

/** How often rising error counters are looked for (error-watch.ts). */
const ERROR_WATCH_MS = 1000;
/** The window of status's eventLoopDelay (p50, p99, max of the last full window). */
const LOOP_WINDOW_MS = 5000;
const LOOP_RESOLUTION_MS = 10;

export interface DaemonOptions {
  /** Leave the TAP (and its address and route) in place on exit, for a restart. */
  readonly keep?: boolean;
  readonly log: Logger;
  /** The config file that reload() (SIGHUP, `flatnet reload`) reads again. */
  readonly configPath?: string;
  /** The kernel side (default: LinuxHost). */
  readonly host?: HostOps;
  /** The control plane (etcd leases and watch, src/control/), for a node with `control.etcd`. */
  readonly control?: ControlPlane;
  /** What reload() applies to the file before parsing it (the control plane fills in the leased subnet). */
  readonly complete?: (json: unknown) => unknown;
}

/** What the daemon needs of the control plane (src/control/node-control.ts implements it). */
export interface ControlPlane {
  /** Start watching; `onPeers` gets the whole peer list after each settled change. */
  watch(onPeers: (peers: readonly PeerSpec[]) => void): void;
  status(): unknown;
  registerMetrics(registry: Registry): void;
  close(): Promise<void>;
  /** Watch the cluster's objects (Namespaces, Pods, NetworkPolicies, Services, EndpointSlices). */
  watchObjects?(onChange: (kind: ClusterKind, objects: readonly unknown[]) => void): void;
  /** Record a pod this node attached (its IP under namespace/name) in the store. */
  publishPodIp?(namespace: string, name: string, ip: string): Promise<void>;
}

export class VtepDaemon implements DaemonApi {
  readonly sw: Switch;
  readonly runtime: NodeRuntime;
  private sources: Sources;
  private readonly reconciler: Reconciler<SwitchPort>;
  private readonly registry = controlRegistry();
  private readonly log: Logger;
  private readonly rl: RateLimitedLog;
  private readonly keep: boolean;
  private readonly configPath: string | null;
  private readonly complete: ((json: unknown) => unknown) | undefined;
  private readonly controlPlane: ControlPlane | null;
  /** Peers from etcd set aside because they clash with the file's or the control socket's, by name. */
  private controlRefused = new Map<string, string>();
  /** Peer updates from etcd that changed something (a resync that changes nothing does not count). */
  private controlChanges = 0;
  private control: ControlServer | null = null;
  private metrics: Server | null = null;
  private statsTimer: NodeJS.Timeout | null = null;
  private errorTimer: NodeJS.Timeout | null = null;
  /** Event-loop delay (what packets and control requests wait for the loop), over 5 s windows. */
  private readonly loopDelay = monitorEventLoopDelay({ resolution: LOOP_RESOLUTION_MS });
  private loopWindow: { p50Ms: number; p99Ms: number; maxMs: number } | null = null;
  private loopTimer: NodeJS.Timeout | null = null;
  private readonly errorWatch: ErrorWatch;
  private lastDrops = new Float64Array(0);
  private readonly startedAt = Date.now();
  private readonly onMove = (m: unknown): void => this.rl.warn('fdb_move', m as Record<string, unknown>, 'MAC migrated between VTEPs');
  private readonly onRefused = (m: unknown): void => this.rl.warn('fdb_refused', m as Record<string, unknown>, 'FDB learning refused');
  private stopped = false;
  /** Reloads so far and the outcome of the last one, for `status` (a SIGHUP has no other answer than the log). */
  private readonly reloads: ReloadStatus = { applied: 0, refused: 0, last: null };
  /** The CNI plugin's side: IPAM (stateDir/NODE.cni.json) and the pods it attached. */
  readonly cni: CniService;
  /** NetworkPolicies and Services from the store (a node on etcd), compiled into the switch. */
  readonly cluster: ClusterTables | null;
  /** Pod IPs published to the store, by namespace/name (so each is written once). */
  private readonly published = new Map<string, string>();

  private constructor(cfg: NodeConfig, opts: DaemonOptions) {
    const node = nodeOf(cfg);
    this.log = opts.log;
    this.rl = new RateLimitedLog(opts.log);
    this.errorWatch = new ErrorWatch(this.rl, (sp) => {
      const k = kernelDrops((sp as SwitchPort).port);
      if (k === null) return null;
      const out: Record<string, number> = { kernel_socket_drops: k.socket };
      if (k.ifRxDropped !== null) out['kernel_if_rx_dropped'] = k.ifRxDropped;
      if (k.ifTxDropped !== null) out['kernel_if_tx_dropped'] = k.ifTxDropped;
      return out;
    });
    this.keep = opts.keep ?? false;
    this.configPath = opts.configPath ?? null;
    this.complete = opts.complete;
    this.controlPlane = opts.control ?? null;
    this.runtime = resolveRuntime(node);

    checkPeerMacs(cfg.peers, this.runtime.vtepMac);
    this.sw = new Switch(switchOptionsFor(node, this.runtime.vtepMac, this.runtime.underlayMtu));
    this.sw.setBusyPoll(cfg.busyPoll);
    // The node's own addresses on the pod network (gateway, VTEP) and the underlay: always let in.
    this.cluster = this.controlPlane?.watchObjects === undefined ? null
      : new ClusterTables(this.sw, { node: node.node, nodeIps: [node.gateway, node.vtepIp, node.underlay.address], gateway: node.gateway, vxlanPort: node.port, log: opts.log });
    this.sources = Sources.of(node, cfg);
    const host = opts.host ?? new LinuxHost(opts.log);
    this.reconciler = new Reconciler(switchDataPlane(this.sw), host, this.runtime.podMtu, opts.log);
    this.cni = new CniService({
      node, podMtu: this.runtime.podMtu,
      pods: () => this.desired.sections.pods,
      putPod: (pod) => {
        const { sources, existing } = this.sources.put(Producer.CNI, 'pods', pod, 'pod');
        this.change(sources);
        return existing;
      },
      removePod: (name) => {
        if (!this.desired.sections.pods.has(name)) return false;
        this.change(this.sources.remove('pods', name));
        return true;
      },
      isAttached: (name) => this.reconciler.appliedPods.has(name),
      hasLink: (name) => host.hasLink?.(name) ?? true,
    }, opts.log);
  }

  /** start brings the node up as described in the module comment. On failure nothing is left open. */
  static async start(cfg: NodeConfig, opts: DaemonOptions): Promise<VtepDaemon> {
    const d = new VtepDaemon(cfg, opts);
    try {
      d.reconciler.reconcile(d.sources.state);
      d.cni.restore();
      const node = d.node;
      d.control = await ControlServer.listen(node.controlSocket, (cmd, args) => d.registry.dispatch(cmd, args, d));
      if (node.metrics !== null) {
        const registry = createRegistry(d.sw, { node: node.node });
        d.controlPlane?.registerMetrics(registry);
        d.metrics = await serveMetrics(registry, node.metrics.host, node.metrics.port);
      }
      d.controlPlane?.watch((peers) => d.setControlPeers(peers));
      if (d.cluster !== null) d.controlPlane?.watchObjects?.((kind, objects) => d.cluster!.update(kind, objects));
      d.publishPods();
    } catch (e) {
      await d.shutdown();
      throw e;
    }
    subscribe(fdbMoveChannel.name, d.onMove);
    subscribe(fdbRefusedChannel.name, d.onRefused);
    d.statsTimer = setInterval(() => d.logDrops(), 30_000);
    d.statsTimer.unref();
    d.errorWatch.check(d.sw.allPorts);
    d.errorTimer = setInterval(() => d.errorWatch.check(d.sw.allPorts), ERROR_WATCH_MS);
    d.errorTimer.unref();
    d.loopDelay.enable();
    d.loopTimer = setInterval(() => {
      // The histogram holds the timer's whole interval (resolution + delay): the delay is the excess.
      const h = d.loopDelay, ms = (ns: number): number => Math.max(0, Math.round(ns / 1e4 - LOOP_RESOLUTION_MS * 100) / 100);
      d.loopWindow = h.count === 0 ? null : { p50Ms: ms(h.percentile(50)), p99Ms: ms(h.percentile(99)), maxMs: ms(h.max) };
      h.reset();
    }, LOOP_WINDOW_MS);
    d.loopTimer.unref();
    const n = d.node, rt = d.runtime;
    const ports = d.reconciler.portInfo ?? {};
    const ov = (ports['overlay'] ?? {}) as { gso?: boolean; gro?: boolean; sendsIp?: boolean };
    d.log.info({
      mode: n.mode, vni: n.vni, port: n.port, vtepMac: formatMac(rt.vtepMac), vtepIp: formatIpv4(n.vtepIp),
      underlay: formatIpv4(n.underlay.address), underlayMtu: rt.underlayMtu, podMtu: rt.podMtu, peers: cfg.peers.length, pods: cfg.pods.length,
      offloads: { tap: ports['tap'], udpGso: ov.gso, udpGro: ov.gro, rawTx: ov.sendsIp }, busyPoll: cfg.busyPoll, control: n.controlSocket, metrics: n.metrics === null ? null : `${n.metrics.host}:${n.metrics.port}`,
    }, 'vtep up');
    return d;
  }

  get node(): NodeSpec {
    return this.sources.node;
  }

  /** The desired state as last applied. */
  get desired(): DesiredState {
    return this.sources.state;
  }

  /** change reconciles a candidate and keeps it only when that succeeded. */
  private change(next: Sources): Changes {
    const changes = this.reconciler.reconcile(next.state);
    this.sources = next;
    this.publishPods();
    return changes;
  }

  /**
   * publishPods records in the store, once each, the IP of every pod attached with a Kubernetes
   * identity (the CNI plugin's pods), so that policies and Services see the pod's labels and IP
   * together. A failed write is logged (rate-limited) and tried again at the next change.
   */
  private publishPods(): void {
    const cp = this.controlPlane;
    if (cp?.publishPodIp === undefined) return;
    for (const pod of this.desired.sections.pods.values()) {
      const k = pod.k8s;
      if (k === undefined || k === null || k.namespace === null || k.name === null) continue;
      const key = `${k.namespace}/${k.name}`, ip = formatIpv4(pod.ip);
      if (this.published.get(key) === ip) continue;
      this.published.set(key, ip);
      cp.publishPodIp(k.namespace, k.name, ip).catch((e: unknown) => {
        this.published.delete(key);
        this.rl.warn('publish_pod', { pod: key, ip, err: e }, 'could not record the pod\'s IP in the store');
      });
    }
  }

  // ---------------------------------------------------------------------------------------
  // DaemonApi: what the control commands do.

  status(): Record<string, unknown> {
    const n = this.node, rt = this.runtime, s = this.desired.sections;
    const counts = (p: Producer): { pods: number; peers: number } => ({ pods: this.sources.contribution(p).pods.size, peers: this.sources.contribution(p).peers.size });
    return {
      node: n.node, mode: n.mode, vni: n.vni, port: n.port, vtepMac: formatMac(rt.vtepMac), vtepIp: formatIpv4(n.vtepIp),
      podCidr: n.podCidr.toString(), gateway: formatIpv4(n.gateway), underlay: formatIpv4(n.underlay.address), underlayMtu: rt.underlayMtu, podMtu: rt.podMtu,
      uptimeSeconds: Math.round((Date.now() - this.startedAt) / 1000), pods: s.pods.size, peers: s.peers.size,
      overlay: this.reconciler.portInfo?.['overlay'] ?? null, config: this.configPath,
      producers: { file: counts(Producer.FILE), control: counts(Producer.CONTROL), cni: counts(Producer.CNI), etcd: counts(Producer.ETCD) }, reloads: this.reloads,
      rssBytes: process.memoryUsage.rss(), eventLoopDelay: this.loopWindow,
      busyPoll: busyPollStatus(this.sw),
      cluster: this.cluster?.status() ?? null,
    };
  }

  /** The control plane's state (`flatnet show control`); ERR_CONTROL_DISABLED for a static node. */
  controlStatus(): unknown {
    if (this.controlPlane === null) throw new FlatnetError('ERR_CONTROL_DISABLED', 'this node has no control.etcd section: its peers come from its config file and the control socket');
    const applied = this.sources.contribution(Producer.ETCD).peers.size;
    return { ...(this.controlPlane.status() as object), appliedPeers: applied, peerChanges: this.controlChanges, refusedByLocal: Object.fromEntries(this.controlRefused) };
  }

  /**
   * setControlPeers: the etcd watch's whole peer set becomes the etcd producer's contribution.
   * A peer that clashes with one the file or the control socket gives (an overlapping pod CIDR,
   * the same underlay address, the same name with other parameters) is set aside, named in
   * `flatnet show control` and logged once; the local one stays. The reconcile applies only
   * what differs from what runs.
   */
  setControlPeers(peers: readonly PeerSpec[]): Changes {
    if (this.stopped) return NO_CHANGES;
    const local = [Producer.FILE, Producer.CONTROL].flatMap((p) => [...this.sources.contribution(p).peers.values()]);
    const keep: PeerSpec[] = [];
    const refused = new Map<string, string>();
    for (const p of peers) {
      let why: string | null = null;
      for (const o of local) {
        const r = relatePeers(p, o);
        if (r.kind === 'differs' || r.kind === 'clashes') { why = `${r.field}: ${r.message}`; break; }
      }
      if (why === null) keep.push(p);
      else {
        if (this.controlRefused.get(p.name) !== why) this.log.warn({ peer: p.name, reason: why }, 'ignoring a peer from etcd: it clashes with a local one');
        refused.set(p.name, why);
      }
    }
    this.controlRefused = refused;
    try {
      const changes = this.change(this.sources.replace(Producer.ETCD, { peers: keep, pods: [] }));
      if (!isEmpty(changes)) {
        this.controlChanges++;
        this.log.info({ changes, peers: keep.length }, `peers from etcd: ${describeChanges(changes)}`);
      }
      return changes;
    } catch (e) {
      this.rl.warn('control_peers', { err: e }, 'could not apply the peers from etcd; keeping the current ones');
      return NO_CHANGES;
    }
  }

  show(what: ShowWhat): unknown {
    switch (what) {
      case 'ipam': return this.cni.snapshot();
      // A node without the store (static config) has no policies or Services: empty tables.
      case 'policy': return this.cluster?.policyRows() ?? [];
      case 'services': return this.cluster?.serviceRows() ?? [];
      case 'conntrack': return this.cluster?.conntrackView() ?? { entries: [], stats: { entries: 0, inserted: 0, expired: 0, earlyDropped: 0, refused: 0, clashes: 0, invalid: 0, removed: 0, prepassed: 0, prepassTranslated: 0, capacity: 0 } };
      default: return snapshot(this.sw, what);
    }
  }

  trace(input: string, packet: TracePacketInput): TraceResult {
    return traceRequest(this.sw, input, packet);
  }

  attachPod(input: PodInput): AttachResult {
    const pod = checkPod(this.node, input, 'pod');
    const { sources, existing } = this.sources.put(Producer.CONTROL, 'pods', pod, 'pod');
    const changes = this.change(sources);
    if (existing) this.log.info({ pod: pod.name }, 'pod attach: already attached with these parameters');
    else this.log.info({ pod: pod.name, interface: pod.interface, ip: formatIpv4(pod.ip), changes }, 'pod attached');
    return { attached: pod.name, existing, ...podView(pod) };
  }

  detachPod(name: string): { detached: string } {
    this.change(this.sources.remove('pods', name));
    this.log.info({ pod: name }, 'pod detached');
    return { detached: name };
  }

  addPeer(input: PeerInput): PeerAddResult {
    const peer = checkPeer(this.node, input, 'peer', this.runtime.vtepMac);
    const { sources, existing } = this.sources.put(Producer.CONTROL, 'peers', peer, 'peer', true);
    const changes = this.change(sources);
    this.log.info({ peer: peer.name, underlay: input.underlay, podCidr: input.podCidr, existing, changes }, existing ? 'peer add: already present with these parameters' : 'peer added');
    return { added: peer.name, existing, ...peerView(peer) };
  }

  delPeer(name: string): { removed: string } {
    this.change(this.sources.remove('peers', name));
    this.log.info({ peer: name }, 'peer removed');
    return { removed: name };
  }

  /**
   * reload reads the config file again and applies it as the file's new contribution: the
   * control socket's pods and peers stay. Refused, with the error logged and nothing changed,
   * when the file is unreadable or invalid, changes a node field that needs a restart, or
   * conflicts with what the control socket added.
   */
  reload(): ReloadResult {
    try {
      if (this.configPath === null) throw new FlatnetError('ERR_RELOAD_NO_FILE', 'this daemon was not started from a config file');
      const cfg = loadConfig(this.configPath, this.complete);
      const next = nodeOf(cfg);
      refuseRestartChanges(this.node, next);
      checkPeerMacs(cfg.peers, this.runtime.vtepMac);
      const nodeChanged = changedNodeFields(this.node, next);
      const changes = this.change(this.sources.replace(Producer.FILE, cfg, next));
      if (this.log.level !== next.logLevel) this.log.level = next.logLevel;
      const bp = this.sw.busyPoll;
      if (bp.mode !== cfg.busyPoll.mode || bp.budgetUs !== cfg.busyPoll.budgetUs) {
        this.sw.setBusyPoll(cfg.busyPoll);
        nodeChanged.push('busyPoll');
      }
      this.reloads.applied++;
      this.reloads.last = { ok: true, at: new Date().toISOString(), changes: describeChanges(changes), code: null, field: null, message: null };
      const what = [...(isEmpty(changes) ? [] : [describeChanges(changes)]), ...nodeChanged];
      this.log.info({ config: this.configPath, changes, nodeChanged }, `config reloaded: ${what.length === 0 ? 'no changes' : what.join('; ')}`);
      return { config: this.configPath, changes, nodeChanged };
    } catch (e) {
      const f = e as { code?: string; field?: string; message?: string };
      this.reloads.refused++;
      this.reloads.last = { ok: false, at: new Date().toISOString(), changes: null, code: f.code ?? 'ERR_RELOAD_FAILED', field: f.field === undefined || f.field === '' ? null : f.field, message: f.message ?? String(e) };
      this.log.error({ err: e, code: f.code, field: f.field, config: this.configPath }, 'config reload refused; keeping the current state');
      throw e;
    }
  }

  /** Every 30 s: one line with the drop counters that moved, if any (never per packet). */
  private logDrops(): void {
    const d = this.sw.stats.drops;
    if (this.lastDrops.length !== d.length) this.lastDrops = new Float64Array(d.length);
    const delta: Record<string, number> = {};
    let any = false;
    for (let i = 1; i < d.length; i++) {
      const n = d[i]! - this.lastDrops[i]!;
      if (n > 0) { delta[DROP_NAMES[i]!] = n; any = true; }
    }
    this.lastDrops.set(d);
    if (any) this.log.info({ dropsLast30s: delta }, 'frames dropped');
  }

  /** stop undoes start; idempotent. */
  async stop(): Promise<void> {
    if (this.stopped) return;
    await this.shutdown();
    this.log.info({ keep: this.keep }, 'vtep down');
  }

  private async shutdown(): Promise<void> {
    this.stopped = true;
    unsubscribe(fdbMoveChannel.name, this.onMove);
    unsubscribe(fdbRefusedChannel.name, this.onRefused);
    if (this.statsTimer !== null) clearInterval(this.statsTimer);
    if (this.errorTimer !== null) clearInterval(this.errorTimer);
    if (this.loopTimer !== null) clearInterval(this.loopTimer);
    this.loopDelay.disable();
    await this.control?.close();
    await new Promise<void>((r) => (this.metrics === null ? r() : this.metrics.close(() => r())));
    this.cluster?.close();
    await this.controlPlane?.close().catch((e: unknown) => this.log.warn({ err: e }, 'closing the control plane failed'));
    this.reconciler.close(this.keep);
    this.rl.close();
  }
}

interface ReloadStatus {
  applied: number;
  refused: number;
  last: { ok: boolean; at: string; changes: string | null; code: string | null; field: string | null; message: string | null } | null;
}

/** refuseRestartChanges: ERR_RELOAD_NEEDS_RESTART naming the first node field a reload cannot change. */
function refuseRestartChanges(running: NodeSpec, next: NodeSpec): void {
  const fields = restartFields(running, next);
  if (fields.length === 0) return;
  const f = fields[0]!;
  const was = nodeFields(running)[f], now = nodeFields(next)[f];
  const more = fields.length > 1 ? ` (and ${fields.slice(1).join(', ')})` : '';
  throw new ConfigError('ERR_RELOAD_NEEDS_RESTART', f, `changed from ${was} to ${now}${more}: that needs a restart; the daemon keeps running with ${was}`);
}

function podView(p: PodSpec): PodView {
  return { name: p.name, interface: p.interface, ip: formatIpv4(p.ip), mac: formatMac(p.mac) };
}

function peerView(p: PeerSpec): PeerView {
  return { name: p.name, underlay: formatIpv4(p.underlayIp), podCidr: p.podCidr.toString(), vtepMac: formatMac(p.vtepMac) };
}
