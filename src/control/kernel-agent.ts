/**
 * `flatnet kernel-agent`: what flanneld does for a node that runs the kernel's vxlan driver,
 * from the same store as the flatnet daemons. Run inside the kernel node's namespace, it
 *   1. leases the node's subnet (the record carries the vxlan device's MAC and the underlay
 *      address, kind "kernel"), keeping the lease alive;
 *   2. puts the subnet's network address on the device (L3: 10.244.K.0/32, as flannel does);
 *   3. watches the leases and programs, per remote node, flannel's triple (L3)
 *        ip route replace SUBNET via SUBNET.0 dev DEV onlink
 *        ip neigh replace SUBNET.0 lladdr VTEP_MAC dev DEV nud permanent
 *        bridge fdb replace VTEP_MAC dev DEV dst UNDERLAY self permanent
 *      or, in L2, one all-zeros flood entry per remote underlay address
 *        bridge fdb append 00:00:00:00:00:00 dev DEV dst UNDERLAY
 *      and removes them when the lease goes (deleted or expired). Only what differs from what it
 *      applied is changed, so a resync touches nothing;
 *   4. (unless --no-services) serves the store's Services as kube-proxy's iptables mode does on
 *      such a node: it watches Services, EndpointSlices and Pods (named target ports), compiles
 *      them into the same ServiceCatalog flatnet's NAT stage uses, and keeps kube-proxy's rules
 *      (src/lab/kube-proxy.ts) applied in this namespace: the jumps from the built-in chains
 *      ensured one by one (`iptables -C`, else `-I`), the rest as one `iptables-restore --noflush`
 *      after every change (kube-proxy's full restore of its own chains: nothing it did not write
 *      is flushed; service chains no longer used are deleted). As kube-proxy, it then deletes the
 *      kernel's UDP connections to endpoints a Service port no longer has (`conntrack -D`), so
 *      that a client's next datagram picks a live endpoint. On exit the jumps and chains go.
 * Bad records are ignored with a reason, as by the daemons (records.ts); Service objects that
 * cannot be used are logged once each (the catalog's problems), as by the daemons.
 */

import { execFileSync } from 'node:child_process';
import type { Logger } from 'pino';
import { FlatnetError } from '../errors.js';
import { declaredNatChains, isServiceChain, KUBE_JUMPS, kubeProxyCleanup, kubeProxyRules, type KubeJump } from '../lab/kube-proxy.js';
import type { Pod } from '../policy/objects.js';
import { ServiceCatalog, type EndpointSlice, type Service } from '../service/catalog.js';
import { formatIpv4, formatMac, parseIpv4, parseMac } from '../wire/addr.js';
import type { PeerSpec } from '../daemon/desired.js';
import type { ControlSpec } from './node-control.js';
import { NodeControl } from './node-control.js';

export interface KernelAgentOptions {
  readonly control: ControlSpec;
  readonly node: string;
  readonly underlay: string;
  readonly dev: string;
  readonly stateDir: string;
  readonly log: Logger;
  /** Serve the store's Services with kube-proxy's iptables rules (default true). */
  readonly services?: boolean;
  /**
   * Runs a command with `input` on its stdin and returns its stdout, throwing when it fails
   * (default: execFileSync); tests record instead.
   */
  readonly exec?: (cmd: string, args: readonly string[], input?: string) => string;
}

/** What the agent's Service sync has done (in `status`). */
export interface ServiceSyncStatus {
  readonly enabled: boolean;
  /** Service ports (ClusterIP:port/protocol) in the rules now applied. */
  readonly frontends: number;
  /** Restores that changed the rules. */
  readonly syncs: number;
  readonly failures: number;
  /** From the object change to the restore having returned (ms), for the last sync. */
  readonly lastSyncMs: number | null;
  /** kube-proxy's nat chains now written (base and per-service). */
  readonly natChains: number;
}

const SERVICE_KINDS = ['Service', 'EndpointSlice', 'Pod'] as const;
type ServiceKind = (typeof SERVICE_KINDS)[number];
const RETRY_MS = 1000;

/** The commands that add or remove one peer's entries (L3: flannel's triple; L2: a flood entry). */
export function peerCommands(mode: 'l3' | 'l2', dev: string, p: PeerSpec, op: 'add' | 'del'): [string, string[]][] {
  const vtep = formatIpv4(p.podCidr.network), mac = formatMac(p.vtepMac), under = formatIpv4(p.underlayIp);
  if (mode === 'l2') return [['bridge', ['fdb', op === 'add' ? 'append' : 'del', '00:00:00:00:00:00', 'dev', dev, 'dst', under]]];
  if (op === 'add') {
    return [
      ['bridge', ['fdb', 'replace', mac, 'dev', dev, 'dst', under, 'self', 'permanent']],
      ['ip', ['neigh', 'replace', vtep, 'lladdr', mac, 'dev', dev, 'nud', 'permanent']],
      ['ip', ['route', 'replace', p.podCidr.toString(), 'via', vtep, 'dev', dev, 'onlink']],
    ];
  }
  return [
    ['ip', ['route', 'del', p.podCidr.toString(), 'via', vtep, 'dev', dev, 'onlink']],
    ['ip', ['neigh', 'del', vtep, 'dev', dev]],
    ['bridge', ['fdb', 'del', mac, 'dev', dev, 'dst', under, 'self']],
  ];
}

const samePeer = (a: PeerSpec, b: PeerSpec): boolean =>
  a.underlayIp === b.underlayIp && a.vtepMac === b.vtepMac && a.podCidr.network === b.podCidr.network && a.podCidr.len === b.podCidr.len;

/** The device's MAC, read with `ip -j link`. */
export function deviceMac(dev: string): number {
  let out: string;
  try {
    out = execFileSync('ip', ['-j', 'link', 'show', 'dev', dev], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  } catch (e) {
    throw new FlatnetError('ERR_AGENT_NO_DEVICE', `no vxlan device ${dev} in this namespace (${(e as Error).message.split('\n')[0]})`, { cause: e });
  }
  const links = JSON.parse(out) as { address?: string }[];
  return parseMac(links[0]?.address ?? '');
}

/** The `iptables` arguments that check (-C), insert (-I) or delete (-D) a jump. */
export const jumpArgs = (j: KubeJump, op: '-C' | '-I' | '-D'): string[] => ['-w', '-t', j.table, op, j.chain, ...j.rule];

const defaultExec = (cmd: string, args: readonly string[], input?: string): string =>
  execFileSync(cmd, [...args], { input, encoding: 'utf8', stdio: [input === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'], maxBuffer: 64 << 20 });

/** The object watch's part of the agent: what `control.watchObjects` hands over. */
export interface ObjectSource {
  watchObjects(onChange: (kind: string, objects: readonly unknown[]) => void): void;
}

export class KernelAgent {
  private applied = new Map<string, PeerSpec>();
  private errors = 0;
  // Service sync state.
  private readonly objects: Record<ServiceKind, readonly unknown[] | null> = { Service: null, EndpointSlice: null, Pod: null };
  private svcPending: NodeJS.Immediate | null = null;
  private svcRetry: NodeJS.Timeout | null = null;
  private svcChangedAt = 0;
  private lastRules: string | null = null;
  /** nat chains this agent (or an earlier one, found at the first sync) wrote. */
  private written = new Set<string>();
  private wroteAny = false;
  private foundEarlier = false;
  private frontends = 0;
  private syncs = 0;
  private syncFailures = 0;
  private lastSyncMs: number | null = null;
  private readonly loggedProblems = new Set<string>();
  /** The UDP Service ports of the rules applied: "VIP:port" -> endpoint addresses. */
  private udpEndpoints = new Map<string, Set<number>>();
  private conntrackMissing = false;
  private stopped = false;

  /** Built by start(), or by withControl over a given control plane. */
  private constructor(private readonly o: KernelAgentOptions, readonly control: Pick<NodeControl, 'network' | 'status' | 'close'>) {}

  static async start(o: KernelAgentOptions): Promise<KernelAgent> {
    const vtepMac = deviceMac(o.dev);
    const control = await NodeControl.join(o.control, { node: o.node, underlayIp: parseIpv4(o.underlay), vtepMac, kind: 'kernel' }, o.stateDir, o.log);
    const a = new KernelAgent(o, control);
    if (control.network.mode === 'l3') a.run('ip', ['addr', 'replace', `${formatIpv4(control.subnet.network)}/32`, 'dev', o.dev]);
    o.log.info({ node: o.node, subnet: control.subnet.toString(), dev: o.dev, vtepMac: formatMac(vtepMac), mode: control.network.mode, services: o.services !== false }, 'kernel agent up');
    control.watch((peers) => a.apply(peers));
    if (o.services !== false) a.watchServices(control);
    return a;
  }

  /** withControl: an agent over a given control plane (no device read, no join): tests pass a stand-in and a recorded exec. */
  static withControl(o: KernelAgentOptions, control: Pick<NodeControl, 'network' | 'status' | 'close'>): KernelAgent {
    return new KernelAgent(o, control);
  }

  /** watchServices: Services, EndpointSlices and Pods from `source`, each change synced to iptables. */
  watchServices(source: ObjectSource): void {
    source.watchObjects((kind, objects) => {
      if ((SERVICE_KINDS as readonly string[]).includes(kind)) this.updateObjects(kind as ServiceKind, objects);
    });
  }

  /** updateObjects replaces one kind's objects and schedules a sync (changes arriving together are synced once). */
  updateObjects(kind: ServiceKind, objects: readonly unknown[]): void {
    this.objects[kind] = objects;
    if (this.stopped || this.svcPending !== null) return;
    this.svcChangedAt = performance.now();
    this.svcPending = setImmediate(() => { this.svcPending = null; this.syncServices(); });
  }

  private run(cmd: string, args: readonly string[], input?: string): boolean {
    try {
      (this.o.exec ?? defaultExec)(cmd, args, input);
      return true;
    } catch (e) {
      this.errors++;
      this.o.log.warn({ cmd: `${cmd} ${args.join(' ')}`, err: (e as Error).message.split('\n')[0] }, 'kernel programming failed');
      return false;
    }
  }

  /** A command whose failure is an answer (iptables -C), not an error. */
  private query(cmd: string, args: readonly string[]): string | null {
    try {
      return (this.o.exec ?? defaultExec)(cmd, args);
    } catch {
      return null;
    }
  }

  /**
   * syncServices writes kube-proxy's rules for the current objects, once every kind has been
   * listed: the jumps ensured, then one restore of kube-proxy's chains, skipped when it would
   * write what is there already. At the first sync, service chains an earlier agent left behind
   * (iptables-save) count as written, so that they are deleted. A failed restore is retried.
   */
  syncServices(): void {
    if (this.stopped) return;
    const { Service: services, EndpointSlice: slices, Pod: pods } = this.objects;
    if (services === null || slices === null || pods === null) return;
    const cat = new ServiceCatalog({ services: services as Service[], slices: slices as EndpointSlice[], pods: pods as Pod[], node: this.o.node });
    for (const p of cat.problems) {
      const text = `${p.object}: ${p.field}: ${p.reason}`;
      if (this.loggedProblems.has(text)) continue;
      this.loggedProblems.add(text);
      this.o.log.warn({ problem: text }, 'ignoring part of a cluster object');
    }
    if (!this.foundEarlier) {
      this.foundEarlier = true;
      const saved = this.query('iptables-save', ['-t', 'nat']) ?? '';
      for (const l of saved.split('\n')) {
        const chain = l.startsWith(':') ? l.slice(1).split(' ')[0]! : '';
        if (isServiceChain(chain)) this.written.add(chain);
      }
    }
    const rules = kubeProxyRules(cat, { clusterCidr: this.control.network.network.toString(), jumps: false, stale: this.written });
    if (rules !== this.lastRules) {
      if (!this.run('iptables-restore', ['--noflush', '--wait'], rules)) {
        this.syncFailures++;
        this.lastRules = null;
        if (this.svcRetry === null) {
          this.svcRetry = setTimeout(() => { this.svcRetry = null; this.syncServices(); }, RETRY_MS);
          this.svcRetry.unref();
        }
        return;
      }
      this.wroteAny = true;
      this.lastRules = rules;
      this.clearUdpConnections(cat);
      this.written = new Set(declaredNatChains(rules));
      this.frontends = cat.frontends.length;
      this.syncs++;
      this.lastSyncMs = Math.round((performance.now() - this.svcChangedAt) * 100) / 100;
      this.o.log.info({ frontends: this.frontends, natChains: this.written.size, ms: this.lastSyncMs }, "kube-proxy's rules restored");
    }
    // Every sync, as kube-proxy: a jump someone deleted comes back (after the restore made its chain).
    for (const j of KUBE_JUMPS) if (this.query('iptables', jumpArgs(j, '-C')) === null) this.run('iptables', jumpArgs(j, '-I'));
  }

  /**
   * clearUdpConnections: for every UDP Service port that lost endpoints since the last restore,
   * `conntrack -D -p udp --orig-dst VIP --orig-port-dst PORT --dst-nat ENDPOINT` (kube-proxy's
   * ClearEntriesForNAT). conntrack exits 1 when nothing matched: not an error.
   */
  private clearUdpConnections(cat: ServiceCatalog): void {
    const now = new Map<string, Set<number>>();
    for (const fe of cat.frontends) if (fe.proto === 17) now.set(`${formatIpv4(fe.ip)}:${fe.port}`, new Set(fe.backends.map((b) => b.ip)));
    for (const [key, before] of this.udpEndpoints) {
      const after = now.get(key) ?? new Set<number>();
      const [vip, port] = key.split(':') as [string, string];
      for (const ip of before) {
        if (after.has(ip)) continue;
        const args = ['-D', '-p', 'udp', '--orig-dst', vip, '--orig-port-dst', port, '--dst-nat', formatIpv4(ip)];
        try {
          (this.o.exec ?? defaultExec)('conntrack', args);
        } catch (e) {
          const msg = (e as Error).message;
          if (/ENOENT/.test(msg) && !this.conntrackMissing) {
            this.conntrackMissing = true;
            this.o.log.warn("no conntrack command: UDP connections to removed endpoints stay until they time out (install conntrack)");
          } else if (!/0 flow entries/.test(msg) && !/ENOENT/.test(msg)) {
            this.errors++;
            this.o.log.warn({ cmd: `conntrack ${args.join(' ')}`, err: msg.split('\n')[0] }, 'kernel programming failed');
          }
        }
      }
    }
    this.udpEndpoints = now;
  }

  /** removeServiceRules deletes the jumps, then flushes and deletes every chain written. */
  private removeServiceRules(): void {
    if (!this.wroteAny) return;
    for (const j of KUBE_JUMPS) {
      while (this.query('iptables', jumpArgs(j, '-C')) !== null) if (!this.run('iptables', jumpArgs(j, '-D'))) break;
    }
    if (this.run('iptables-restore', ['--noflush', '--wait'], kubeProxyCleanup(this.written))) {
      this.o.log.info({ natChains: this.written.size }, "kube-proxy's rules removed");
      this.written.clear();
      this.wroteAny = false;
      this.lastRules = null;
    }
  }

  /** apply: remove gone and changed peers' entries, add new and changed ones. */
  apply(peers: readonly PeerSpec[]): void {
    const mode = this.control.network.mode;
    const want = new Map(peers.map((p) => [p.name, p]));
    const added: string[] = [], removed: string[] = [], changed: string[] = [];
    for (const [name, old] of this.applied) {
      const p = want.get(name);
      if (p !== undefined && samePeer(p, old)) continue;
      for (const [c, a] of peerCommands(mode, this.o.dev, old, 'del')) this.run(c, a);
      this.applied.delete(name);
      (p === undefined ? removed : changed).push(name);
    }
    for (const [name, p] of want) {
      if (this.applied.has(name)) continue;
      for (const [c, a] of peerCommands(mode, this.o.dev, p, 'add')) this.run(c, a);
      this.applied.set(name, p);
      if (!changed.includes(name)) added.push(name);
    }
    if (added.length + removed.length + changed.length > 0) this.o.log.info({ added, removed, changed, peers: this.applied.size }, 'kernel peers programmed');
  }

  serviceStatus(): ServiceSyncStatus {
    return { enabled: this.o.services !== false, frontends: this.frontends, syncs: this.syncs, failures: this.syncFailures, lastSyncMs: this.lastSyncMs, natChains: this.written.size };
  }

  status(): Record<string, unknown> {
    return { ...(this.control.status() as unknown as Record<string, unknown>), programmed: [...this.applied.keys()], commandErrors: this.errors, services: this.serviceStatus() };
  }

  /** stop: no more syncs, kube-proxy's rules removed, the control plane closed (the lease stays until its TTL). */
  async stop(): Promise<void> {
    this.stopped = true;
    if (this.svcPending !== null) clearImmediate(this.svcPending);
    if (this.svcRetry !== null) clearTimeout(this.svcRetry);
    this.svcPending = null;
    this.svcRetry = null;
    this.removeServiceRules();
    await this.control.close();
  }
}
