/**
 * The reconciler: makes the data plane match a desired state, touching only what differs.
 *
 * It keeps what it applied (the node's host and overlay ports, the peer set given to the
 * switch, each pod's spec, port and switch handle) and on reconcile(desired):
 *   0. the first time only: the host port (TAP, address, routes) and the overlay port, attached
 *   1. diff: pods removed, added, or changed (same name, other parameters); peers added,
 *      removed or changed. Nothing differs: return at once (applying twice is a no-op)
 *   2. open the ports of added and changed pods: the only step that can fail (a missing veth);
 *      on failure close them and throw, with nothing else changed
 *   3. detach removed and changed pods and close their ports
 *   4. set the peers, if the peer set changed (routes, FDB, flood list in one call)
 *   5. attach added and changed pods, watch them, announce the gateway to each
 *   6. the first time only: start draining every port
 * Unchanged pods keep their port and switch handle; unchanged peers their routes. A changed pod
 * is detached before it is attached again, so its IP and MAC are never bound twice. All of it
 * runs in one synchronous call: the data path, driven by the same event loop, never sees a
 * half-applied state.
 */

import type { Logger } from 'pino';
import { FlatnetError } from '../errors.js';
import { kernelDrops } from '../io/kernel-drops.js';
import { hasPeerFilter } from '../pipeline/port.js';
import type { AttachedPort, DataPlane, Port } from './data-plane.js';
import { restartFields, samePeer, samePod, type DesiredState, type NodeSpec, type PeerSpec, type PodSpec } from './desired.js';
import type { HostOps } from './host.js';
import { peerSpecsFor } from './switch-options.js';

/** What one reconcile did, by name. */
export interface Changes {
  readonly podsAttached: readonly string[];
  readonly podsDetached: readonly string[];
  /** Detached and attached again with new parameters. */
  readonly podsReplaced: readonly string[];
  readonly peersAdded: readonly string[];
  readonly peersRemoved: readonly string[];
  readonly peersChanged: readonly string[];
}

export const NO_CHANGES: Changes = { podsAttached: [], podsDetached: [], podsReplaced: [], peersAdded: [], peersRemoved: [], peersChanged: [] };

export function isEmpty(c: Changes): boolean {
  return c.podsAttached.length + c.podsDetached.length + c.podsReplaced.length + c.peersAdded.length + c.peersRemoved.length + c.peersChanged.length === 0;
}

/** One line for the log: "pods +a -b ~c; peers +n4 -n3 ~n2" ("nothing" when empty). */
export function describeChanges(c: Changes): string {
  const part = (label: string, add: readonly string[], del: readonly string[], mod: readonly string[]): string | null => {
    const items = [...add.map((n) => `+${n}`), ...del.map((n) => `-${n}`), ...mod.map((n) => `~${n}`)];
    return items.length === 0 ? null : `${label} ${items.join(' ')}`;
  };
  const parts = [part('pods', c.podsAttached, c.podsDetached, c.podsReplaced), part('peers', c.peersAdded, c.peersRemoved, c.peersChanged)].filter((p) => p !== null);
  return parts.length === 0 ? 'nothing' : parts.join('; ');
}

/** An applied pod: its spec, its open port and the switch's handle for it. */
export interface AppliedPod<H extends AttachedPort> {
  readonly spec: PodSpec;
  readonly port: Port;
  readonly handle: H;
}

interface NodePorts<H> {
  readonly node: NodeSpec;
  readonly host: Port;
  readonly overlay: Port;
  /** The tunnel TAP that went with the overlay (closed with it), if one was opened. */
  readonly tunnel: Port | null;
  readonly hostHandle: H;
  readonly overlayHandle: H;
  readonly info: Record<string, unknown>;
}

export class Reconciler<H extends AttachedPort> {
  private nodePorts: NodePorts<H> | null = null;
  private peers: ReadonlyMap<string, PeerSpec> = new Map();
  private readonly pods = new Map<string, AppliedPod<H>>();
  private started = false;
  private closed = false;

  constructor(private readonly dp: DataPlane<H>, private readonly host: HostOps, private readonly podMtu: number, private readonly log?: Logger) {}

  /** The pods as applied, by name. */
  get appliedPods(): ReadonlyMap<string, AppliedPod<H>> {
    return this.pods;
  }

  /** The peers as applied, by name. */
  get appliedPeers(): ReadonlyMap<string, PeerSpec> {
    return this.peers;
  }

  /** What the host and overlay ports reported when opened (offloads), for `status`; null before the first reconcile. */
  get portInfo(): Record<string, unknown> | null {
    return this.nodePorts?.info ?? null;
  }

  /** reconcile applies `desired` as described in the module comment and returns what changed. */
  reconcile(desired: DesiredState): Changes {
    if (this.closed) throw new FlatnetError('ERR_DAEMON_STOPPED', 'the data plane is stopped');
    const first = this.nodePorts === null;
    if (first) this.bringUp(desired.node);
    else assertSameNode(this.nodePorts!.node, desired.node);
    try {
      const changes = this.apply(desired);
      if (first) {
        this.dp.start();
        this.started = true;
      }
      return changes;
    } catch (e) {
      if (first) this.close(false);
      throw e;
    }
  }

  private bringUp(node: NodeSpec): void {
    const host = this.host.openHost(node, this.podMtu);
    let overlay: ReturnType<HostOps['openOverlay']>;
    try {
      overlay = this.host.openOverlay(node);
    } catch (e) {
      this.host.closeHost(host.port, false);
      throw e;
    }
    // The interfaces' kernel drop counts start here (kernel-drops.ts), not at the first look.
    kernelDrops(host.port);
    kernelDrops(overlay.port);
    const hostHandle = this.dp.attachHost(host.port, host.mac, host.port.name);
    const overlayHandle = this.dp.attachOverlay(overlay.port, overlay.attach, overlay.port.name);
    this.nodePorts = { node, host: host.port, overlay: overlay.port, tunnel: overlay.attach.tunnel?.port ?? null, hostHandle, overlayHandle, info: { ...host.info, overlay: overlay.info } };
  }

  private apply(desired: DesiredState): Changes {
    const { pods: wantPods, peers: wantPeers } = desired.sections;
    // 1. diff
    const detach: string[] = [], attach: PodSpec[] = [], replaced: string[] = [];
    for (const [name, a] of this.pods) {
      const want = wantPods.get(name);
      if (want === undefined) detach.push(name);
      else if (!samePod(want, a.spec)) { detach.push(name); attach.push(want); replaced.push(name); }
    }
    for (const [name, want] of wantPods) if (!this.pods.has(name)) attach.push(want);
    const peersAdded = [...wantPeers.keys()].filter((n) => !this.peers.has(n));
    const peersRemoved = [...this.peers.keys()].filter((n) => !wantPeers.has(n));
    const peersChanged = [...wantPeers].filter(([n, p]) => this.peers.has(n) && !samePeer(p, this.peers.get(n)!)).map(([n]) => n);
    const peersDiffer = peersAdded.length + peersRemoved.length + peersChanged.length > 0;
    if (detach.length === 0 && attach.length === 0 && !peersDiffer) return NO_CHANGES;

    // 2. open the new ports first: the step that can fail
    const opened: { spec: PodSpec; port: Port }[] = [];
    try {
      for (const spec of attach) {
        const port = this.host.openPod(desired.node, spec);
        kernelDrops(port); // the veth's kernel drop counts start at the attach, not at the first look
        opened.push({ spec, port });
      }
    } catch (e) {
      for (const o of opened) o.port.close();
      throw e;
    }
    // 3. detach
    for (const name of detach) {
      const a = this.pods.get(name)!;
      this.dp.detach(a.handle.id);
      a.port.close();
      this.pods.delete(name);
    }
    // 4. peers
    if (peersDiffer) {
      const specs = peerSpecsFor(desired.node, [...wantPeers.values()]);
      this.dp.setPeers(specs);
      // An AF_XDP overlay's program redirects VXLAN from exactly these sources.
      const ov = this.nodePorts?.overlay;
      if (ov !== undefined && hasPeerFilter(ov)) ov.setPeers(specs.map((p) => p.underlayIp));
      this.peers = new Map(wantPeers);
    }
    // 5. attach
    for (const { spec, port } of opened) {
      const handle = this.dp.attachPod(port, spec.ip, spec.mac, spec.name);
      this.pods.set(spec.name, { spec, port, handle });
      if (this.started) this.dp.watch(handle); // else start() watches every port
      this.dp.announceGateway(handle);
    }
    const attached = attach.map((p) => p.name).filter((n) => !replaced.includes(n));
    const detached = detach.filter((n) => !replaced.includes(n));
    const changes: Changes = { podsAttached: attached, podsDetached: detached, podsReplaced: replaced, peersAdded, peersRemoved, peersChanged };
    this.log?.debug({ changes }, `reconciled: ${describeChanges(changes)}`);
    return changes;
  }

  /** close stops draining and closes every port (the TAP stays with `keep`); idempotent. */
  close(keep: boolean): void {
    if (this.closed) return;
    this.closed = true;
    this.dp.stop();
    for (const a of this.pods.values()) a.port.close();
    this.pods.clear();
    if (this.nodePorts !== null) {
      this.nodePorts.overlay.close();
      this.nodePorts.tunnel?.close();
      this.host.closeHost(this.nodePorts.host, keep);
    }
  }
}

/** The node section is fixed while running: the daemon refuses such a change before reconciling. */
function assertSameNode(running: NodeSpec, next: NodeSpec): void {
  const changed = restartFields(running, next);
  if (changed.length > 0) throw new FlatnetError('ERR_RELOAD_NEEDS_RESTART', `the node section changed (${changed.join(', ')}): that needs a restart`);
}
