/**
 * The visualizer's view of a cluster: which nodes there are and how to reach them (a lab's state
 * file, control sockets given by path, etcd endpoints), and a poll that reads them all into one
 * ClusterSnapshot with rates computed from the previous poll.
 *
 * Flow of one poll:
 *   1. targets: the lab's state file read again (it may be gone: the lab was torn down), or the
 *      sockets given; each node is flatnet (a control socket) or kernel (no socket: the lab's plan).
 *   2. every flatnet daemon is asked status, show ports|peers|counters|ipam in parallel, each with a
 *      short deadline; a daemon that does not answer is shown down with why.
 *   3. the etcd store's subnet leases (when there is one), read over the members' unix sockets.
 *   4. rates: packets, bits and drops per second from the difference with the previous poll.
 *
 * Only reads: status and `show` are control commands that copy counters; nothing here touches the
 * packet path beyond that. Unix sockets reach across namespaces by path, so the server runs in the
 * root namespace and never enters a lab's.
 */

import { existsSync } from 'node:fs';
import { basename, join } from 'node:path';
import type { Etcd3 } from 'etcd3';
import { request } from '../daemon/control.js';
import { FlatnetError } from '../errors.js';
import { readState, type LabNode, type LabPod, type LabState } from '../lab/topology.js';
import type { CountersSnapshot, PeerRow, PortRow } from '../daemon/show.js';
import type { IpamSnapshot } from '../daemon/ipam.js';
import type { ClusterSnapshot, DropCount, LeaseInfo, NodeInfo, PodInfo, TunnelInfo, TunnelRate } from './model.js';
import { stageOfDrop } from './stages.js';

export interface UiSourceOptions {
  /** A lab's name: its state file says where every node's socket is. */
  readonly lab?: string;
  /** Control sockets of flatnet daemons. */
  readonly sockets?: readonly string[];
  /** etcd endpoints (http://IP:PORT or unix:///PATH); a lab's members are found from its state. */
  readonly etcd?: readonly string[];
  readonly prefix?: string;
  /** Deadline of each control request, ms. */
  readonly requestTimeoutMs?: number;
}

/** A node as the poll reaches it. */
export interface Target {
  readonly name: string;
  readonly kind: 'flatnet' | 'kernel';
  readonly socket: string | null;
  /** The lab's plan of it (lab mode), else null. */
  readonly lab: LabNode | null;
  /** Kernel nodes of a lab: the agent's pid (etcd labs), and the node's namespace. */
  readonly agentPid: number | null;
}

/** An error the HTTP layer answers with `status`. */
export class UiError extends FlatnetError {
  constructor(readonly status: number, code: string, message: string, options?: { cause?: unknown }) {
    super(code, message, options);
  }
}

/** What one control request may take before the node is called unreachable. */
const REQUEST_TIMEOUT_MS = 1500;
/** The store is read at most this often (leases change on the scale of seconds). */
const STORE_EVERY_MS = 2000;

export class ClusterSource {
  readonly timeoutMs: number;
  readonly description: string;
  private etcd: Etcd3 | null = null;
  private etcdEndpoints: string | null = null;
  private storeCache: { at: number; value: NonNullable<ClusterSnapshot['store']> } | null = null;
  /** Previous counter readings, for rates: key -> [value, at]. */
  private readonly prev = new Map<string, readonly [number, number]>();
  /** Socket mode: the node name each socket's daemon reported (its file name until it answers). */
  private readonly socketNames = new Map<string, string>();

  constructor(readonly options: UiSourceOptions) {
    const given = [options.lab !== undefined, (options.sockets?.length ?? 0) > 0, (options.etcd?.length ?? 0) > 0 && options.lab === undefined];
    if (!given.some((g) => g)) throw new FlatnetError('ERR_UI_USAGE', 'nothing to show: give --lab NAME, --socket PATH or --etcd ENDPOINTS');
    if (options.lab !== undefined && (options.sockets?.length ?? 0) > 0) throw new FlatnetError('ERR_UI_USAGE', '--lab finds the sockets itself: give --lab or --socket, not both');
    this.timeoutMs = options.requestTimeoutMs ?? REQUEST_TIMEOUT_MS;
    this.description = options.lab !== undefined ? `lab ${options.lab}` : [
      ...(options.sockets ?? []).map((s) => `socket ${s}`), ...(options.etcd ?? []).map((e) => `etcd ${e}`),
    ].join(', ');
  }

  /** The lab's state now, or null (no lab mode, or the lab is gone or half-made). */
  labState(): LabState | null {
    if (this.options.lab === undefined) return null;
    try {
      const s = readState(this.options.lab);
      return s !== null && s.phase === 'up' ? s : null;
    } catch {
      return null;
    }
  }

  /** targets: the nodes as of now. */
  targets(): Target[] {
    const s = this.labState();
    if (s !== null) {
      return s.nodes.map((n) => ({ name: n.name, kind: n.kind, socket: n.socket, lab: n, agentPid: s.agents?.[n.name]?.pid ?? null }));
    }
    return (this.options.sockets ?? []).map((p) => ({ name: this.socketNames.get(p) ?? basename(p).replace(/\.sock$/, ''), kind: 'flatnet' as const, socket: p, lab: null, agentPid: null }));
  }

  /** target: one node by name; 404 when there is none. */
  target(name: string): Target {
    const t = this.targets().find((x) => x.name === name);
    if (t === undefined) throw new UiError(404, 'ERR_UI_NO_NODE', `no node named ${JSON.stringify(name)} (nodes: ${this.targets().map((x) => x.name).join(', ') || 'none'})`);
    return t;
  }

  /** call: one control command on a flatnet node; 409 for a kernel node, 502 when its daemon does not answer. */
  async call(node: string | Target, cmd: string, args: Record<string, unknown> = {}): Promise<unknown> {
    const t = typeof node === 'string' ? this.target(node) : node;
    if (t.socket === null) throw new UiError(409, 'ERR_UI_KERNEL_NODE', `node ${t.name} runs the kernel's vxlan driver: it has no control socket to ask`);
    try {
      return await request(t.socket, { cmd, ...args }, this.timeoutMs);
    } catch (e) {
      const code = e instanceof FlatnetError ? e.code : 'ERR_CONTROL_FAILED';
      if (code === 'ERR_CONTROL_UNREACHABLE' || code === 'ERR_CONTROL_TIMEOUT' || code === 'ERR_CONTROL_PERMISSION' || code === 'ERR_CONTROL_BAD_RESPONSE') {
        throw new UiError(502, code, `node ${t.name}: ${(e as Error).message}`, { cause: e });
      }
      throw e;
    }
  }

  /** poll reads every node (and the store) once and returns the snapshot. */
  async poll(): Promise<ClusterSnapshot> {
    const state = this.labState();
    const targets = this.targets();
    const [nodes, store] = await Promise.all([Promise.all(targets.map((t) => this.readNode(t, state))), this.readStore(state)]);
    const leases = store?.leases ?? [];
    const withLeases = nodes.map((n) => {
      const lease = leases.find((l) => l.node === n.name) ?? null;
      if (n.kind !== 'kernel') return { ...n, lease };
      // A kernel node has no socket: up while its agent runs and (with a store) its lease is there.
      const down = n.error ?? (store !== null && store.ok && lease === null ? 'no subnet lease in the store' : null);
      return { ...n, lease, up: down === null, error: down };
    });
    // Socket/etcd mode: nodes known only from the store are shown from their lease.
    const known = new Set(withLeases.map((n) => n.name));
    const fromStore = state === null ? leases.filter((l) => !known.has(l.node)).map((l) => leaseNode(l)) : [];
    const all = [...withLeases, ...fromStore];
    // Readings of ports, peers and reasons not seen for a minute (gone with their pod or node) are forgotten.
    const stale = Date.now() - 60_000;
    for (const [k, [, at]] of this.prev) if (at < stale) this.prev.delete(k);
    return { at: Date.now(), source: this.description, labPresent: this.options.lab === undefined ? null : state !== null, nodes: all, tunnels: this.tunnels(all, this.peerRows), store };
  }

  /** Each flatnet node's `show peers` of the last poll, for the tunnels. */
  private peerRows = new Map<string, PeerRow[]>();

  private rate(key: string, value: number, now: number): number {
    const p = this.prev.get(key);
    this.prev.set(key, [value, now]);
    if (p === undefined || now <= p[1] || value < p[0]) return 0;
    return ((value - p[0]) * 1000) / (now - p[1]);
  }

  private async readNode(t: Target, state: LabState | null): Promise<NodeInfo> {
    if (t.kind === 'kernel') return kernelNode(t, state);
    const ask = (cmd: string, args: Record<string, unknown> = {}): Promise<unknown> => request(t.socket!, { cmd, ...args }, this.timeoutMs);
    const base = plannedNode(t, state);
    let status: Record<string, unknown>;
    try {
      status = (await ask('status')) as Record<string, unknown>;
    } catch (e) {
      this.peerRows.delete(t.name);
      this.portRows.delete(t.name);
      return { ...base, up: false, error: (e as Error).message };
    }
    const name = typeof status['node'] === 'string' ? status['node'] : t.name;
    if (t.lab === null) this.socketNames.set(t.socket!, name);
    const [ports, peers, counters, ipam] = await Promise.all([
      ask('show', { what: 'ports' }).catch(() => []) as Promise<PortRow[]>,
      ask('show', { what: 'peers' }).catch(() => []) as Promise<PeerRow[]>,
      ask('show', { what: 'counters' }).catch(() => null) as Promise<CountersSnapshot | null>,
      ask('show', { what: 'ipam' }).catch(() => null) as Promise<IpamSnapshot | null>,
    ]);
    const now = Date.now();
    this.peerRows.set(name, peers);
    const podMtu = num(status['podMtu']);
    const pods: PodInfo[] = ports.filter((p) => p.role === 'pod').map((p) => {
      const alloc = ipam?.allocations.find((a) => a.pod === p.name || a.ip === p.ip);
      const planned = t.lab?.pods.find((x) => x.name === p.name);
      return {
        name: p.name, namespace: alloc?.namespace ?? null, ip: p.ip ?? '', mac: p.mac,
        hostIf: alloc?.interface ?? planned?.hostIf ?? null, mtu: podMtu,
        rxPackets: p.rxPackets, txPackets: p.txPackets, rxBytes: p.rxBytes, txBytes: p.txBytes,
        kernelDrops: p.kernelDrops?.total ?? null, source: 'daemon',
      };
    });
    const tap = ports.find((p) => p.role === 'host');
    const drops: DropCount[] = (counters?.drops ?? []).map((d) => ({ ...d, stage: stageOfDrop(d.reason), perSecond: this.rate(`${name}/drop/${d.reason}`, d.count, now) }));
    const rates = new Map(ports.map((p) => [p.name, { rx: this.rate(`${name}/port/${p.name}/rx`, p.rxPackets, now), tx: this.rate(`${name}/port/${p.name}/tx`, p.txPackets, now) }]));
    this.portRows.set(name, { rows: ports, rates });
    const total = counters?.counters['dropped'] ?? 0;
    return {
      ...base, name, up: true, error: null,
      underlayIp: str(status['underlay']) ?? base.underlayIp, vtepIp: str(status['vtepIp']) ?? base.vtepIp, vtepMac: str(status['vtepMac']) ?? base.vtepMac,
      podCidr: str(status['podCidr']) ?? base.podCidr, underlayMtu: num(status['underlayMtu']), podMtu, vni: num(status['vni']), port: num(status['port']), mode: str(status['mode']),
      host: tap === undefined ? null : { name: tap.name, mac: tap.mac, rxPackets: tap.rxPackets, txPackets: tap.txPackets },
      pods, counters: counters?.counters ?? null, drops, dropRate: this.rate(`${name}/dropped`, total, now),
    };
  }

  /** Each flatnet node's `show ports` of the last poll with each port's rx and tx packets per second. */
  readonly portRows = new Map<string, { rows: PortRow[]; rates: Map<string, { rx: number; tx: number }> }>();

  private tunnels(nodes: readonly NodeInfo[], peerRows: Map<string, PeerRow[]>): TunnelInfo[] {
    const now = Date.now();
    const byPair = new Map<string, { a: string; b: string; aU: string; bU: string; vni: number; port: number; ab: TunnelRate | null; ba: TunnelRate | null }>();
    const underlayOf = (n: string): string => nodes.find((x) => x.name === n)?.underlayIp ?? '';
    for (const n of nodes) {
      if (!n.up) continue;
      for (const p of peerRows.get(n.name) ?? []) {
        const [a, b] = n.name < p.name ? [n.name, p.name] : [p.name, n.name];
        const key = `${a}|${b}`;
        const e = byPair.get(key) ?? { a, b, aU: a === n.name ? (n.underlayIp ?? '') : p.underlay, bU: b === n.name ? (n.underlayIp ?? '') : p.underlay, vni: p.vni, port: p.port, ab: null, ba: null };
        if (e.aU === '') e.aU = underlayOf(a);
        if (e.bU === '') e.bU = underlayOf(b);
        const tx: TunnelRate = { pps: this.rate(`${n.name}/peer/${p.name}/txp`, p.txPackets, now), bps: 8 * this.rate(`${n.name}/peer/${p.name}/txb`, p.txBytes, now), packets: p.txPackets, bytes: p.txBytes, countedBy: n.name };
        const rx: TunnelRate = { pps: this.rate(`${n.name}/peer/${p.name}/rxp`, p.rxPackets, now), bps: 8 * this.rate(`${n.name}/peer/${p.name}/rxb`, p.rxBytes, now), packets: p.rxPackets, bytes: p.rxBytes, countedBy: n.name };
        // The sender's count of a direction wins over the receiver's (each end counts both).
        if (n.name === a) { e.ab = tx; e.ba ??= rx; } else { e.ba = tx; e.ab ??= rx; }
        byPair.set(key, e);
      }
    }
    return [...byPair.values()].map((e) => ({ a: e.a, b: e.b, aUnderlay: e.aU, bUnderlay: e.bU, vni: e.vni, port: e.port, ab: e.ab, ba: e.ba }));
  }

  /** The store's endpoints: --etcd, else the lab's members' unix sockets (reachable from this namespace). */
  private storeEndpoints(state: LabState | null): string[] {
    if ((this.options.etcd?.length ?? 0) > 0) return [...this.options.etcd!];
    if (state === null || state.options.etcd === 0) return [];
    return Array.from({ length: state.options.etcd }, (_, k) => `unix://${join(state.dir, `etcd${k + 1}`, 'localhost:2379')}`).filter((u) => existsSync(u.slice('unix://'.length)));
  }

  private async readStore(state: LabState | null): Promise<ClusterSnapshot['store']> {
    const endpoints = this.storeEndpoints(state);
    const configured = (this.options.etcd?.length ?? 0) > 0 || (state !== null && state.options.etcd > 0);
    if (!configured) {
      this.closeEtcd(); // the lab (and its store) may have been torn down: no client left retrying
      return null;
    }
    if (this.storeCache !== null && Date.now() - this.storeCache.at < STORE_EVERY_MS) return this.storeCache.value;
    let value: NonNullable<ClusterSnapshot['store']>;
    if (endpoints.length === 0) {
      this.closeEtcd();
      value = { ok: false, error: 'no etcd member socket found', revision: null, leases: [] };
    }
    else {
      try {
        value = await withDeadline(this.readLeases(endpoints), 2 * this.timeoutMs, 'etcd did not answer');
      } catch (e) {
        this.closeEtcd();
        value = { ok: false, error: (e as Error).message, revision: null, leases: [] };
      }
    }
    this.storeCache = { at: Date.now(), value };
    return value;
  }

  private async readLeases(endpoints: string[]): Promise<NonNullable<ClusterSnapshot['store']>> {
    const { connectEtcd, rawOf } = await import('../control/etcd.js');
    const { readNetwork } = await import('../control/node-control.js');
    const { subnetsPrefix } = await import('../control/network.js');
    const { selectPeers } = await import('../control/records.js');
    const { formatIpv4, formatMac } = await import('../wire/addr.js');
    const key = endpoints.join(',');
    if (this.etcd === null || this.etcdEndpoints !== key) {
      this.closeEtcd();
      this.etcd = connectEtcd(endpoints, { callTimeoutMs: this.timeoutMs });
      this.etcdEndpoints = key;
    }
    const prefix = this.options.prefix ?? '/flatnet';
    const net = await readNetwork(this.etcd, prefix);
    const res = await this.etcd.getAll().prefix(subnetsPrefix(prefix)).exec();
    const sel = selectPeers(prefix, net, res.kvs.map(rawOf), null);
    const leases: LeaseInfo[] = [...sel.records.values()].map((r) => ({ subnet: r.subnet.toString(), node: r.node, underlay: formatIpv4(r.underlayIp), vtepMac: formatMac(r.vtepMac), kind: r.kind }));
    return { ok: true, error: null, revision: Number(res.header.revision), leases };
  }

  private closeEtcd(): void {
    try { this.etcd?.close(); } catch { /* closing a broken client */ }
    this.etcd = null;
    this.etcdEndpoints = null;
  }

  close(): void {
    this.closeEtcd();
  }
}

function withDeadline<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const t = new Promise<never>((_, reject) => { timer = setTimeout(() => reject(new Error(`${what} within ${ms} ms`)), ms); });
  p.catch(() => {});
  return Promise.race([p, t]).finally(() => clearTimeout(timer));
}

const str = (v: unknown): string | null => (typeof v === 'string' ? v : null);
const num = (v: unknown): number | null => (typeof v === 'number' ? v : null);

/** plannedNode: what the lab's plan says of a node (or nothing but its name), before the daemon answers. */
function plannedNode(t: Target, state: LabState | null): NodeInfo {
  const n = t.lab;
  return {
    name: t.name, kind: t.kind, up: false, error: null,
    underlayIp: n?.underlayIp ?? null, underlayMac: n?.underlayMac ?? null, vtepIp: n?.vtepIp ?? null, vtepMac: n?.vtepMac ?? null, podCidr: n?.podCidr ?? null,
    underlayMtu: state === null ? null : state.podMtu + 50, podMtu: state?.podMtu ?? null, vni: state?.options.vni ?? null, port: state?.options.port ?? null, mode: state?.options.mode ?? null,
    host: null, vxlanDev: n?.vxlanDev ?? null, socket: t.socket, pods: (n?.pods ?? []).map((p) => plannedPod(p, state)), counters: null, drops: [], dropRate: 0, lease: null,
  };
}

/** plannedPod: a pod as the lab planned it (a kernel node's, or a flatnet node's while its daemon does not answer). */
function plannedPod(p: LabPod, state: LabState | null): PodInfo {
  return { name: p.name, namespace: null, ip: p.ip, mac: p.mac, hostIf: p.hostIf, mtu: state?.podMtu ?? null, rxPackets: null, txPackets: null, rxBytes: null, txBytes: null, kernelDrops: null, source: 'lab' };
}

/** kernelNode: a kernel-vxlan node from the lab's plan; down when its namespace or agent is gone. */
function kernelNode(t: Target, state: LabState | null): NodeInfo {
  const base = plannedNode(t, state);
  const n = t.lab!;
  let error: string | null = null;
  if (!existsSync(`/run/netns/${n.ns}`)) error = `namespace ${n.ns} is gone`;
  else if (t.agentPid !== null && !alive(t.agentPid)) error = `its kernel agent (pid ${t.agentPid}) is not running`;
  return { ...base, up: error === null, error, host: n.bridge === null ? null : { name: n.bridge, mac: null, rxPackets: null, txPackets: null } };
}

/** leaseNode: a node known only from its etcd lease. */
function leaseNode(l: LeaseInfo): NodeInfo {
  return {
    name: l.node, kind: l.kind === 'kernel' ? 'kernel' : 'flatnet', up: true, error: null, underlayIp: l.underlay, underlayMac: null,
    vtepIp: null, vtepMac: l.vtepMac, podCidr: l.subnet, underlayMtu: null, podMtu: null, vni: null, port: null, mode: null,
    host: null, vxlanDev: null, socket: null, pods: [], counters: null, drops: [], dropRate: 0, lease: l,
  };
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}
