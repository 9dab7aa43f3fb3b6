/**
 * The daemon's side of the CNI plugin (src/cni/): addresses from the IPAM store (ipam.ts) and
 * pods attached as the CNI producer of the desired state. The plugin makes the veth pair; the
 * daemon hands out the address and attaches the host end, so that the one owner of the pool and
 * of the switch is this process, and concurrent ADDs are serialised by its event loop.
 *
 *   alloc    (containerId, ifname, pod identity[, requested ip]) -> address, prefix, gateway, pod
 *            MTU; the same key again -> the same address
 *   attach   the plugin made the veth: attach its host end with the pod's IP and MAC bound
 *            (anti-spoofing) and record it; the same attachment again is a no-op. With delegated
 *            IPAM (host-local) the address is the delegate's and only recorded here
 *   del      detach and release; nothing to do is not an error (DEL is idempotent)
 *   get      one attachment and whether its port is attached (CHECK)
 *   gc       release and detach every attachment not in the runtime's valid list (GC)
 *   status   ready (free addresses) or not (STATUS)
 *   exec     one whole plugin invocation run here (the fast launcher, native/cni/launcher.c, sends
 *            its environment and stdin): the plugin's code, without a Node process start
 *   restore  at start: re-attach every recorded pod whose veth still exists; the others keep
 *            their address (a runtime that restores the container gets it again) until DEL or GC
 */

import type { Logger } from 'pino';
import { ConfigError, FlatnetError } from '../errors.js';
import { formatIpv4, formatMac, parseIpv4 } from '../wire/addr.js';
import type { NodeSpec, PodSpec, Section } from './desired.js';
import { IpamStore, ipamFile, type CniRecord, type IpamSnapshot, type PodIdentity } from './ipam.js';
import { checkPod } from './validate.js';
import { DEFAULT_SOCKET } from '../cni/spec.js';

/** What the CNI service needs of the daemon. */
export interface CniHost {
  readonly node: NodeSpec;
  readonly podMtu: number;
  /** The pods of the desired state (every producer's). */
  pods(): Section<'pods'>;
  /** putPod: `pod` as the CNI producer's, reconciled; throws with nothing changed. Returns `existing`. */
  putPod(pod: PodSpec): boolean;
  /** removePod: pod `name` gone from the desired state and detached; false when there was none. */
  removePod(name: string): boolean;
  /** Whether pod `name`'s port is open and attached to the switch. */
  isAttached(name: string): boolean;
  /** Whether interface `name` exists in the daemon's namespace. */
  hasLink(name: string): boolean;
}

export interface CniKey { readonly containerId: string; readonly ifname: string }

export interface AllocResult {
  readonly ip: string;
  readonly prefixLen: number;
  readonly gateway: string;
  readonly podCidr: string;
  readonly clusterCidr: string;
  readonly mtu: number;
  readonly existing: boolean;
}

export interface CniAttachInput extends CniKey {
  /** The pod name the plugin asks for (K8S_POD_NAME, else the host interface's name). */
  readonly name: string;
  readonly interface: string;
  readonly ip: string;
  readonly mac: string;
  readonly ipam: 'flatnet' | 'delegated';
  readonly k8s: PodIdentity | null;
}

export interface CniAttachResult {
  readonly name: string;
  readonly interface: string;
  readonly ip: string;
  readonly mac: string;
  readonly existing: boolean;
}

export interface CniGetResult {
  readonly record: CniRecord;
  /** The pod's port is attached to the switch with the recorded IP and MAC. */
  readonly attached: boolean;
  readonly gateway: string;
  readonly prefixLen: number;
  readonly mtu: number;
}

export interface CniStatus {
  readonly ready: boolean;
  readonly free: number;
  readonly capacity: number;
  readonly attachments: number;
}

/** The CNI commands' operations (DaemonApi.cni). */
export interface CniApi {
  alloc(a: CniKey & { readonly k8s: PodIdentity | null; readonly ip?: string | undefined }): AllocResult;
  attach(a: CniAttachInput): CniAttachResult;
  del(a: CniKey): { readonly released: string | null; readonly detached: string | null };
  get(a: CniKey): CniGetResult;
  gc(valid: readonly CniKey[]): { readonly released: readonly CniRecord[] };
  status(): CniStatus;
  snapshot(): IpamSnapshot;
  /** exec runs one plugin invocation in the daemon (the fast launcher's `cni-exec`): its exit status and stdout. */
  exec(env: Readonly<Record<string, string>>, stdin: string, pid?: number): Promise<{ readonly rc: number; readonly stdout: string }>;
}

export class CniService implements CniApi {
  readonly store: IpamStore;

  constructor(private readonly host: CniHost, private readonly log: Logger) {
    this.store = IpamStore.open(ipamFile(host.node.stateDir, host.node.node), host.node.podCidr, host.node.gateway);
  }

  /** Addresses held by pods that are not this store's (the config file's, `pod attach`'s). */
  private readonly takenByOthers = (ip: number): boolean => {
    for (const p of this.host.pods().values()) if (p.ip === ip && p.k8s === undefined) return true;
    return false;
  };

  alloc(a: CniKey & { readonly k8s: PodIdentity | null; readonly ip?: string | undefined }): AllocResult {
    const { record, existing } = this.store.allocate(a.containerId, a.ifname, a.k8s, this.takenByOthers, a.ip === undefined ? null : parseIpv4(a.ip));
    if (!existing) this.log.info({ containerId: a.containerId, ifname: a.ifname, ip: record.ip, k8s: a.k8s }, 'cni: address allocated');
    return this.lease(record.ip, existing);
  }

  private lease(ip: string, existing: boolean): AllocResult {
    const n = this.host.node;
    return { ip, prefixLen: n.podCidr.len, gateway: formatIpv4(n.gateway), podCidr: n.podCidr.toString(), clusterCidr: n.clusterCidr.toString(), mtu: this.host.podMtu, existing };
  }

  attach(a: CniAttachInput): CniAttachResult {
    const ip = parseIpv4(a.ip);
    let rec = this.store.get(a.containerId, a.ifname);
    if (rec !== undefined && rec.ip !== a.ip) {
      throw new ConfigError('ERR_STATE_CONFLICT', 'ip', `container ${a.containerId} ${a.ifname} holds ${rec.ip}, not ${a.ip}`);
    }
    if (rec === undefined) {
      // Delegated IPAM, or our allocation was released meanwhile (a GC): record it if it is free.
      const holder = this.store.byIp(ip);
      if (holder !== undefined || this.takenByOthers(ip)) {
        throw new ConfigError('ERR_STATE_CONFLICT', 'ip', `${a.ip} is in use${holder === undefined ? ' by a pod of the config file or the control socket' : ` by container ${holder.containerId} ${holder.ifname}`}`);
      }
      rec = { containerId: a.containerId, ifname: a.ifname, ip: a.ip, ipam: a.ipam, since: new Date().toISOString(), k8s: a.k8s, pod: null };
    }
    const name = this.podName(a);
    const spec = cniPod(this.host.node, { name, interface: a.interface, ip: a.ip, mac: a.mac }, a, a.k8s);
    const existing = this.host.putPod(spec);
    const done: CniRecord = { ...rec, k8s: a.k8s ?? rec.k8s, pod: { name, interface: a.interface, mac: formatMac(spec.mac) } };
    try {
      this.store.put(done);
    } catch (e) {
      if (!existing) this.host.removePod(name);
      throw e;
    }
    if (!existing) this.log.info({ containerId: a.containerId, ifname: a.ifname, pod: name, interface: a.interface, ip: a.ip }, 'cni: pod attached');
    return { name, interface: a.interface, ip: a.ip, mac: formatMac(spec.mac), existing };
  }

  /**
   * podName: the name asked for, unless a pod of another attachment (or of the file) has it;
   * then the host interface's name, which is unique to (containerId, ifname).
   */
  private podName(a: CniAttachInput): string {
    const other = this.host.pods().get(a.name);
    const mine = other?.k8s !== undefined && other.k8s.containerId === a.containerId && other.k8s.ifname === a.ifname;
    return other === undefined || mine ? a.name : a.interface;
  }

  del(a: CniKey): { released: string | null; detached: string | null } {
    const detached = this.detach(a);
    const rec = this.store.release(a.containerId, a.ifname);
    if (rec !== null || detached !== null) this.log.info({ containerId: a.containerId, ifname: a.ifname, ip: rec?.ip, pod: detached }, 'cni: released');
    return { released: rec?.ip ?? null, detached };
  }

  /** detach removes the CNI pod of (containerId, ifname) from the desired state; its name, or null. */
  private detach(a: CniKey): string | null {
    for (const p of this.host.pods().values()) {
      if (p.k8s !== undefined && p.k8s.containerId === a.containerId && p.k8s.ifname === a.ifname) {
        this.host.removePod(p.name);
        return p.name;
      }
    }
    return null;
  }

  get(a: CniKey): CniGetResult {
    const record = this.store.get(a.containerId, a.ifname);
    if (record === undefined) throw new FlatnetError('ERR_CNI_UNKNOWN_CONTAINER', `no attachment of container ${a.containerId} interface ${a.ifname}`);
    const spec = record.pod === null ? undefined : this.host.pods().get(record.pod.name);
    const attached = spec !== undefined && record.pod !== null && this.host.isAttached(spec.name)
      && formatIpv4(spec.ip) === record.ip && formatMac(spec.mac) === record.pod.mac && spec.interface === record.pod.interface;
    const l = this.lease(record.ip, true);
    return { record, attached, gateway: l.gateway, prefixLen: l.prefixLen, mtu: l.mtu };
  }

  gc(valid: readonly CniKey[]): { released: CniRecord[] } {
    const keep = new Set(valid.map((v) => `${v.containerId}\u0000${v.ifname}`));
    // Every pod the CNI plugin attached whose attachment is not valid, recorded or not.
    for (const p of [...this.host.pods().values()]) {
      if (p.k8s !== undefined && !keep.has(`${p.k8s.containerId}\u0000${p.k8s.ifname}`)) this.host.removePod(p.name);
    }
    const released = this.store.gc(valid);
    if (released.length > 0) this.log.info({ released: released.map((r) => ({ containerId: r.containerId, ifname: r.ifname, ip: r.ip })) }, 'cni: gc released stale attachments');
    return { released };
  }

  status(): CniStatus {
    const free = this.store.free(this.takenByOthers);
    return { ready: free > 0, free, capacity: this.store.capacity, attachments: this.store.size };
  }

  snapshot(): IpamSnapshot {
    const n = this.host.node;
    return {
      podCidr: n.podCidr.toString(), gateway: formatIpv4(n.gateway), capacity: this.store.capacity, free: this.store.free(this.takenByOthers),
      allocations: this.store.list().map((r) => ({
        ip: r.ip, containerId: r.containerId, ifname: r.ifname, ipam: r.ipam, pod: r.pod?.name ?? null, interface: r.pod?.interface ?? null,
        namespace: r.k8s?.namespace ?? null, k8sName: r.k8s?.name ?? null, since: r.since, attached: r.pod !== null && this.host.isAttached(r.pod.name),
      })),
    };
  }

  /** `pid`: the launcher's; CNI_NETNS is opened as its mount namespace sees it (/proc/PID/root). */
  async exec(env: Readonly<Record<string, string>>, stdin: string, pid?: number): Promise<{ rc: number; stdout: string }> {
    // Only for this daemon's network: the plugin acts in the namespace of the process running it
    // (its veth lands here), so another node's invocation must run as a process of its own. The
    // launcher then runs the Node plugin.
    const socket = socketOf(stdin);
    if (socket !== null && socket !== this.host.node.controlSocket) {
      throw new FlatnetError('ERR_CNI_NOT_MINE', `this network's daemon is at ${socket}, this one at ${this.host.node.controlSocket}`);
    }
    const { run } = await import('../cni/main.js');
    let stdout = '';
    const rc = await run(env, () => stdin, (s) => { stdout += `${s}\n`; }, pid === undefined ? '' : `/proc/${pid}/root`);
    return { rc, stdout };
  }

  /** restore: at start, attach every recorded pod whose veth is still there (see the module comment). */
  restore(): void {
    for (const r of this.store.list()) {
      if (r.pod === null) continue;
      if (!this.host.hasLink(r.pod.interface)) {
        this.log.warn({ containerId: r.containerId, ifname: r.ifname, ip: r.ip, interface: r.pod.interface }, 'cni: the veth of a recorded pod is gone; its address stays allocated until DEL or GC');
        continue;
      }
      try {
        this.host.putPod(cniPod(this.host.node, { name: r.pod.name, interface: r.pod.interface, ip: r.ip, mac: r.pod.mac }, r, r.k8s));
        this.log.info({ pod: r.pod.name, interface: r.pod.interface, ip: r.ip }, 'cni: pod restored from the IPAM file');
      } catch (e) {
        this.log.warn({ err: e, pod: r.pod.name, interface: r.pod.interface }, 'cni: a recorded pod cannot be attached again');
      }
    }
  }
}

/** socketOf: the `socket` of a network configuration (its default when absent), null when it is not JSON. */
function socketOf(stdin: string): string | null {
  try {
    const v = (JSON.parse(stdin) as { socket?: unknown } | null)?.socket;
    return typeof v === 'string' ? v : DEFAULT_SOCKET;
  } catch {
    return null;
  }
}

/** cniPod: a checked pod entry with the attachment's key and the pod's identity (PodSpec.k8s). */
function cniPod(node: NodeSpec, pod: { name: string; interface: string; ip: string; mac: string }, key: CniKey, k8s: PodIdentity | null): PodSpec {
  return {
    ...checkPod(node, pod, 'pod'),
    k8s: { namespace: k8s?.namespace ?? null, name: k8s?.name ?? null, uid: k8s?.uid ?? null, containerId: key.containerId, ifname: key.ifname },
  };
}
