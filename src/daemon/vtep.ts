/**
 * The VTEP daemon (`flatnet vtep --config FILE`): one node's data plane in the current network
 * namespace.
 *
 * Start:
 *   1. resolve the VTEP MAC (configured, or generated once and persisted)
 *   2. host port: TAP `flatnet0` (pod MTU, our address, a route for the cluster CIDR)
 *   3. overlay port: a UDP socket on the underlay address and VXLAN port
 *   4. pod ports: AF_PACKET on each pod's veth host end
 *   5. peers -> routes / FDB; start draining; control socket; /metrics
 * Stop (SIGTERM/SIGINT): stop draining, close every port (the TAP, and the routes on it, go
 * away unless `keep`), remove the control socket.
 *
 * The desired state (pods, peers) lives here; the control socket and SIGHUP edit it and the
 * switch is reconciled from all of it, never patched piecemeal.
 */

import { execFileSync } from 'node:child_process';
import { subscribe, unsubscribe } from 'node:diagnostics_channel';
import type { Server } from 'node:http';
import type { Logger } from 'pino';
import { ConfigError, FlatnetError } from '../errors.js';
import { Cidr } from '../fib/cidr.js';
import { PacketPort } from '../io/packet-port.js';
import { TapPort } from '../io/tap-port.js';
import { OverlayPort } from '../io/overlay-port.js';
import { RawIpPort } from '../io/raw-ip-port.js';
import { UdpPort } from '../io/udp-port.js';
import { getMac, getMtu, setLinkUp, setMtu } from '../io/link.js';
import type { VtepSpec } from '../fib/vtep.js';
import { Framing, Switch, SwitchMode, fdbMoveChannel, fdbRefusedChannel, type SwitchPort } from '../pipeline/switch.js';
import { formatIpv4, formatMac, parseIpv4, parseMac } from '../wire/addr.js';
import { DROP_NAMES } from '../pipeline/drop.js';
import { VXLAN_OVERHEAD } from '../wire/encap.js';
import { checkPod, peerEntrySchema, podEntrySchema, type NodeConfig, type PeerConfig, type PodConfig, resolveVtepMac } from './config.js';
import { ControlServer, type ControlRequest } from './control.js';
import { peerSpecsFor, switchOptionsFor } from './switch-options.js';
import { RateLimitedLog } from './log.js';
import { createRegistry, serveMetrics } from './metrics.js';
import { SHOW_WHAT, snapshot, type ShowWhat } from './show.js';

export interface DaemonOptions {
  /** Leave the TAP (and its address and route) in place on exit, for a restart. */
  readonly keep?: boolean;
  readonly log: Logger;
}

interface PodState { cfg: PodConfig; sp: SwitchPort; port: PacketPort }

export class VtepDaemon {
  readonly cfg: NodeConfig;
  readonly sw: Switch;
  readonly vtepMac: number;
  readonly underlayMtu: number;
  readonly podMtu: number;
  private readonly log: Logger;
  private readonly rl: RateLimitedLog;
  private readonly keep: boolean;
  private readonly tap: TapPort;
  private readonly overlay: OverlayPort;
  private readonly pods = new Map<string, PodState>();
  private peers: PeerConfig[];
  private control: ControlServer | null = null;
  private metrics: Server | null = null;
  private statsTimer: NodeJS.Timeout | null = null;
  private lastDrops = new Float64Array(0);
  private readonly startedAt = Date.now();
  private readonly onMove = (m: unknown): void => this.rl.warn('fdb_move', m as Record<string, unknown>, 'MAC migrated between VTEPs');
  private readonly onRefused = (m: unknown): void => this.rl.warn('fdb_refused', m as Record<string, unknown>, 'FDB learning refused');
  private stopped = false;

  private constructor(cfg: NodeConfig, opts: DaemonOptions, sw: Switch, vtepMac: number, underlayMtu: number, podMtu: number, tap: TapPort, overlay: OverlayPort) {
    this.cfg = cfg;
    this.sw = sw;
    this.vtepMac = vtepMac;
    this.underlayMtu = underlayMtu;
    this.podMtu = podMtu;
    this.log = opts.log;
    this.rl = new RateLimitedLog(opts.log);
    this.keep = opts.keep ?? false;
    this.tap = tap;
    this.overlay = overlay;
    this.peers = [...cfg.peers];
  }

  /** start brings the node up as described in the module comment. On failure nothing is left open. */
  static async start(cfg: NodeConfig, opts: DaemonOptions): Promise<VtepDaemon> {
    const log = opts.log;
    const vtepMac = resolveVtepMac(cfg);
    const underlayMtu = cfg.underlay.mtu ?? getMtu(cfg.underlay.interface);
    const podMtu = cfg.podMtu ?? underlayMtu - VXLAN_OVERHEAD;
    if (podMtu + VXLAN_OVERHEAD > underlayMtu) {
      throw new ConfigError('ERR_CONFIG_MTU', 'podMtu', `a pod MTU of ${podMtu} does not fit the underlay MTU ${underlayMtu} of ${cfg.underlay.interface} after ${VXLAN_OVERHEAD} bytes of VXLAN overhead`);
    }
    const sw = new Switch(switchOptionsFor(cfg, vtepMac, underlayMtu));
    const opened: { close(): void }[] = [];
    try {
      const tap = openTap(cfg.host.interface, podMtu, cfg.offloads, log);
      opened.push(tap);
      if (cfg.host.mac !== null) setMacOf(cfg.host.interface, cfg.host.mac);
      setLinkUp(cfg.host.interface, true);
      configureHostInterface(cfg);
      // Receive on a UDP socket; send our own outer headers through a raw socket (see OverlayPort).
      // The UDP socket sends only UDP-GSO trains (and everything when there is no raw socket).
      // The kernel refuses UDP GSO on a socket without checksums (udp_send_skb: EINVAL with
      // SO_NO_CHECK), so trains carry a computed outer checksum even when udpChecksum is off
      // (RFC 7348 receivers accept both); ordinary frames follow udpChecksum exactly.
      const udp = UdpPort.open({ address: formatIpv4(cfg.underlay.address), port: cfg.port, gso: cfg.offloads, gro: cfg.offloads, dontFragment: cfg.df === 'set', noChecksum: !cfg.udpChecksum && !cfg.offloads });
      opened.push(udp);
      const raw = RawIpPort.open(`vxlan:${cfg.port}:tx`);
      opened.push(raw);
      const overlay = new OverlayPort(udp, raw, `vxlan:${cfg.port}`);
      const d = new VtepDaemon(cfg, opts, sw, vtepMac, underlayMtu, podMtu, tap, overlay);
      sw.attachHost(tap, getMac(cfg.host.interface), cfg.host.interface);
      sw.attachOverlay(overlay, { rx: Framing.UDP, tx: overlay.sendsIp ? Framing.IP : Framing.UDP, gso: udp.features.gso, gro: udp.features.gro });
      sw.setPeers(d.peerSpecs());
      for (const p of cfg.pods) d.attachPod(p);
      sw.start();
      sw.announceGateway();
      d.control = await ControlServer.listen(cfg.controlSocket, (req) => d.handle(req));
      if (cfg.metrics !== null) d.metrics = await serveMetrics(createRegistry(sw, { node: cfg.node }), cfg.metrics.host, cfg.metrics.port);
      subscribe(fdbMoveChannel.name, d.onMove);
      subscribe(fdbRefusedChannel.name, d.onRefused);
      d.statsTimer = setInterval(() => d.logDrops(), 30_000);
      d.statsTimer.unref();
      log.info({
        node: cfg.node, mode: cfg.mode, vni: cfg.vni, port: cfg.port, vtepMac: formatMac(vtepMac), vtepIp: formatIpv4(cfg.vtepIp),
        underlay: formatIpv4(cfg.underlay.address), underlayMtu, podMtu, peers: cfg.peers.length, pods: cfg.pods.length,
        offloads: { tap: tap.vnetHdrLen > 0 ? tap.offload : 'off', udpGso: udp.features.gso, udpGro: udp.features.gro, rawTx: overlay.sendsIp },
        control: cfg.controlSocket, metrics: cfg.metrics === null ? null : `${cfg.metrics.host}:${cfg.metrics.port}`,
      }, 'vtep up');
      return d;
    } catch (e) {
      sw.stop();
      for (const p of opened.reverse()) p.close();
      throw e;
    }
  }

  private peerSpecs(): VtepSpec[] {
    return peerSpecsFor(this.cfg, this.peers);
  }

  private attachPod(p: PodConfig): void {
    // The veth's host end takes whatever the pod sends: a veth silently drops a frame larger
    // than its peer's MTU, and a pod misconfigured with a large MTU must get ICMP
    // fragmentation-needed (or fragmentation) from the switch, not silence.
    setHostEndMtu(p.interface);
    // Up first: an AF_PACKET socket bound to a down link starts with a pending ENETDOWN.
    setLinkUp(p.interface, true);
    const port = openPodPort(p.interface, this.cfg.offloads, this.log);
    try {
      const sp = this.sw.attachPod(port, p.ip, p.mac, p.name);
      this.pods.set(p.name, { cfg: p, sp, port });
      this.sw.watch(sp);
      this.sw.announceGateway(sp);
    } catch (e) {
      port.close();
      throw e;
    }
  }

  /** The control socket's commands. */
  private async handle(req: ControlRequest): Promise<unknown> {
    switch (req.cmd) {
      case 'show': {
        const what = req.what;
        if (typeof what !== 'string' || !(SHOW_WHAT as readonly string[]).includes(what)) {
          throw new FlatnetError('ERR_CONTROL_BAD_REQUEST', `show what? one of ${SHOW_WHAT.join(', ')}`);
        }
        return snapshot(this.sw, what as ShowWhat);
      }
      case 'status':
        return {
          node: this.cfg.node, mode: this.cfg.mode, vni: this.cfg.vni, port: this.cfg.port, vtepMac: formatMac(this.vtepMac),
          vtepIp: formatIpv4(this.cfg.vtepIp), podCidr: this.cfg.podCidr.toString(), underlay: formatIpv4(this.cfg.underlay.address),
          underlayMtu: this.underlayMtu, podMtu: this.podMtu, uptimeSeconds: Math.round((Date.now() - this.startedAt) / 1000),
          pods: this.pods.size, peers: this.peers.length, overlay: { ...this.overlay.udp.features, sendsIp: this.overlay.sendsIp },
        };
      case 'pod-attach': {
        const p = podEntrySchema.safeParse(req.pod);
        if (!p.success) throw new ConfigError('ERR_CONFIG_INVALID', `pod.${p.error.issues[0]!.path.join('.')}`, p.error.issues[0]!.message);
        const used = {
          ip: new Set([this.cfg.gateway, this.cfg.vtepIp, ...[...this.pods.values()].map((s) => s.cfg.ip)]),
          mac: new Set([...this.pods.values()].map((s) => s.cfg.mac)),
          ifname: new Set([this.cfg.underlay.interface, this.cfg.host.interface, ...[...this.pods.values()].map((s) => s.cfg.interface)]),
          name: new Set(this.pods.keys()),
        };
        const pod = checkPod(p.data, 'pod', this.cfg.podCidr, used);
        this.attachPod(pod);
        this.log.info({ pod: pod.name, interface: pod.interface, ip: formatIpv4(pod.ip) }, 'pod attached');
        return { attached: pod.name };
      }
      case 'pod-detach': {
        const name = String(req.name);
        const st = this.pods.get(name);
        if (st === undefined) throw new FlatnetError('ERR_NOT_FOUND', `no pod ${name}`);
        this.sw.detach(st.sp.id);
        st.port.close();
        this.pods.delete(name);
        this.log.info({ pod: name }, 'pod detached');
        return { detached: name };
      }
      case 'peer-add': {
        const p = peerEntrySchema.safeParse(req.peer);
        if (!p.success) throw new ConfigError('ERR_CONFIG_INVALID', `peer.${p.error.issues[0]!.path.join('.')}`, p.error.issues[0]!.message);
        const peer: PeerConfig = { name: p.data.name, underlayIp: parseIpv4(p.data.underlay), podCidr: Cidr.parse(p.data.podCidr, 'peer.podCidr'), vtepMac: parseMac(p.data.vtepMac) };
        this.checkPeer(peer);
        this.peers = [...this.peers.filter((x) => x.name !== peer.name), peer];
        this.sw.setPeers(this.peerSpecs());
        this.log.info({ peer: peer.name, underlay: p.data.underlay, podCidr: p.data.podCidr }, 'peer added');
        return { added: peer.name };
      }
      case 'peer-del': {
        const name = String(req.name);
        if (!this.peers.some((p) => p.name === name)) throw new FlatnetError('ERR_NOT_FOUND', `no peer ${name}`);
        this.peers = this.peers.filter((p) => p.name !== name);
        this.sw.setPeers(this.peerSpecs());
        this.log.info({ peer: name }, 'peer removed');
        return { removed: name };
      }
      default:
        throw new FlatnetError('ERR_CONTROL_BAD_REQUEST', `unknown command ${JSON.stringify(req.cmd)}`);
    }
  }

  /** checkPeer: a new or replaced peer must not collide with this node or the others. */
  private checkPeer(p: PeerConfig): void {
    const c = this.cfg;
    if (!(c.clusterCidr.len <= p.podCidr.len && c.clusterCidr.contains(p.podCidr.network))) {
      throw new ConfigError('ERR_CONFIG_INVALID_CIDR', 'peer.podCidr', `${p.podCidr} is not inside the cluster CIDR ${c.clusterCidr}`);
    }
    if (p.podCidr.overlaps(c.podCidr)) throw new ConfigError('ERR_CONFIG_OVERLAP', 'peer.podCidr', `${p.podCidr} overlaps this node's ${c.podCidr}`);
    if (p.underlayIp === c.underlay.address) throw new ConfigError('ERR_CONFIG_DUPLICATE', 'peer.underlay', 'that is this node\'s underlay address');
    for (const o of this.peers) {
      if (o.name === p.name) continue;
      if (o.podCidr.overlaps(p.podCidr)) throw new ConfigError('ERR_CONFIG_OVERLAP', 'peer.podCidr', `${p.podCidr} overlaps peer ${o.name} (${o.podCidr})`);
      if (o.underlayIp === p.underlayIp) throw new ConfigError('ERR_CONFIG_DUPLICATE', 'peer.underlay', `peer ${o.name} has that underlay address`);
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
    this.stopped = true;
    unsubscribe(fdbMoveChannel.name, this.onMove);
    unsubscribe(fdbRefusedChannel.name, this.onRefused);
    if (this.statsTimer !== null) clearInterval(this.statsTimer);
    this.sw.stop();
    await this.control?.close();
    await new Promise<void>((r) => (this.metrics === null ? r() : this.metrics.close(() => r())));
    for (const st of this.pods.values()) st.port.close();
    this.overlay.close();
    if (this.keep) this.tap.persist(true);
    this.tap.close();
    this.rl.close();
    this.log.info({ node: this.cfg.node, keep: this.keep }, 'vtep down');
  }
}

/**
 * openTap opens the host port: with virtio-net headers and every offload the kernel accepts
 * (so the host stack hands over TSO super-frames and partial checksums), falling back to plain
 * frames when the kernel refuses the header.
 */
function openTap(name: string, mtu: number, offloads: boolean, log: Logger): TapPort {
  if (offloads) {
    try {
      return TapPort.open(name, { mtu, up: false, vnetHdr: true });
    } catch (e) {
      log.warn({ err: e, tap: name }, 'TAP without virtio-net headers (offloads off on the host port)');
    }
  }
  return TapPort.open(name, { mtu, up: false });
}

/** openPodPort: AF_PACKET with PACKET_VNET_HDR when offloads are on, else (or on refusal) without. */
function openPodPort(ifname: string, offloads: boolean, log: Logger): PacketPort {
  if (offloads) {
    try {
      return PacketPort.open(ifname, { vnetHdr: true });
    } catch (e) {
      log.warn({ err: e, interface: ifname }, 'pod port without virtio-net headers (offloads off for this pod)');
    }
  }
  return PacketPort.open(ifname);
}

/** The largest MTU a veth takes (ETH_MAX_MTU); older kernels cap lower, so step down. */
const HOST_END_MTUS = [65535, 9000];

function setHostEndMtu(ifname: string): void {
  for (const mtu of HOST_END_MTUS) {
    try {
      setMtu(ifname, mtu);
      return;
    } catch {
      /* try the next one */
    }
  }
}

/** Address and route of the host port, flannel-style (`ip` on the control path only). */
function configureHostInterface(cfg: NodeConfig): void {
  const dev = cfg.host.interface;
  const addr = cfg.mode === 'l3' ? `${formatIpv4(cfg.vtepIp)}/32` : `${formatIpv4(cfg.vtepIp)}/${cfg.clusterCidr.len}`;
  ipCmd(['addr', 'replace', addr, 'dev', dev]);
  if (cfg.mode === 'l3') ipCmd(['route', 'replace', cfg.clusterCidr.toString(), 'dev', dev, 'src', formatIpv4(cfg.vtepIp)]);
}

function ipCmd(args: string[]): void {
  try {
    execFileSync('ip', args, { stdio: ['ignore', 'ignore', 'pipe'] });
  } catch (e) {
    const err = e as { stderr?: Buffer };
    throw new FlatnetError('ERR_HOST_CONFIG', `ip ${args.join(' ')}: ${err.stderr?.toString().trim() ?? String(e)}`, { cause: e });
  }
}

function setMacOf(ifname: string, mac: number): void {
  ipCmd(['link', 'set', 'dev', ifname, 'address', formatMac(mac)]);
}
