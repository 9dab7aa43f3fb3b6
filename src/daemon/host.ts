/**
 * Host setup: what the node's kernel must have for the switch to work, and the ports over it.
 *   host port     TAP `flatnet0` (pod MTU, virtio-net headers when offered), our VTEP address
 *                 and, in L3 mode, a route for the cluster CIDR (`ip` on the control path only)
 *   overlay port  a UDP socket on the underlay address and VXLAN port (receive, GSO trains) and
 *                 a raw IPv4 socket (ordinary frames with our own outer headers): OverlayPort
 *   pod ports     each pod's veth host end, its MTU raised and the link up: AF_PACKET with
 *                 virtio-net headers, or with `io: af_xdp`/`auto` an AF_XDP socket (XdpPort, mode
 *                 ALL: every frame the pod sends), falling back to AF_PACKET for that pod
 *   tunnel TAP    `<host interface>-tnl` with `tunnelOffload: auto` (openTunnelTap): TCP
 *                 super-frames to peers, whole, for the kernel to segment
 * With `io: af_xdp` (or `auto` where it opens) the overlay is an AF_XDP socket on the underlay
 * interface, the kernel's sockets kept beside it (XdpOverlayPort; see openBackend), and every
 * pod's veth gets its own AF_XDP socket. That is the small-packet data plane: a veth whose peer
 * runs XDP stops offering TSO, so the pod sends MTU-sized frames (no 64 KB super-frames, no
 * tunnel TAP), and the pod's partial checksums (a veth peer's CHECKSUM_PARTIAL reaches XDP
 * unfinished) are finished as the socket reads them (native/src/xdp.cc).
 * LinuxHost implements the reconciler's HostOps with them; the reconciler decides when.
 */

import { execFileSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import type { Logger } from 'pino';
import { FlatnetError } from '../errors.js';
import { getMac, getMtu, ifIndex, setLinkUp, setMtu } from '../io/link.js';
import { OverlayPort } from '../io/overlay-port.js';
import { PacketPort } from '../io/packet-port.js';
import { RawIpPort } from '../io/raw-ip-port.js';
import { TapPort } from '../io/tap-port.js';
import { UdpPort } from '../io/udp-port.js';
import { XdpOverlayPort } from '../io/xdp-overlay-port.js';
import { XdpPort } from '../io/xdp-port.js';
import { formatIpv4, formatMac } from '../wire/addr.js';
import { resolveVtepMac } from './config.js';
import { Framing, type OverlayAttach, type Port } from './data-plane.js';
import type { NodeSpec, PodSpec } from './desired.js';
import { resolvePodMtu } from './validate.js';

/** What the reconciler needs from the host (a test passes a fake). */
export interface HostOps {
  /** The host port: the TAP with the node's address and routes (a kept TAP is taken over). */
  openHost(node: NodeSpec, podMtu: number): { readonly port: Port; readonly mac: number; readonly info: Record<string, unknown> };
  openOverlay(node: NodeSpec): { readonly port: Port; readonly attach: OverlayAttach; readonly info: Record<string, unknown> };
  /** A pod's port on its veth host end (MTU raised, link up). */
  openPod(node: NodeSpec, pod: PodSpec): Port;
  /** closeHost closes the host port; with `keep` the TAP, its address and route stay for a restart. */
  closeHost(port: Port, keep: boolean): void;
  /** Whether interface `name` exists (a CNI pod's veth at restart); absent: assumed to. */
  hasLink?(name: string): boolean;
}

/** The node's numbers that come from the machine: VTEP MAC (persisted), underlay and pod MTU. */
export interface NodeRuntime {
  readonly vtepMac: number;
  readonly underlayMtu: number;
  readonly podMtu: number;
}

/** resolveRuntime reads what the config leaves to the machine, checking the MTU rule again. */
export function resolveRuntime(node: NodeSpec): NodeRuntime {
  const vtepMac = resolveVtepMac(node);
  const underlayMtu = node.underlay.mtu ?? getMtu(node.underlay.interface);
  return { vtepMac, underlayMtu, podMtu: resolvePodMtu(node.podMtu, underlayMtu) };
}

export class LinuxHost implements HostOps {
  constructor(private readonly log: Logger) {}

  openHost(node: NodeSpec, podMtu: number): { port: Port; mac: number; info: Record<string, unknown> } {
    const name = node.host.interface;
    const tap = openTap(name, podMtu, node.offloads, this.log);
    try {
      if (node.host.mac !== null) ipCmd(['link', 'set', 'dev', name, 'address', formatMac(node.host.mac)]);
      setLinkUp(name, true);
      configureHostInterface(node);
      return { port: tap, mac: getMac(name), info: { tap: tap.vnetHdrLen > 0 ? tap.offload : 'off' } };
    } catch (e) {
      tap.close();
      throw e;
    }
  }

  openOverlay(node: NodeSpec): { port: Port; attach: OverlayAttach; info: Record<string, unknown> } {
    // Receive on a UDP socket; send our own outer headers through a raw socket (see OverlayPort).
    // The UDP socket sends only UDP-GSO trains (and everything when there is no raw socket).
    // The kernel refuses UDP GSO on a socket without checksums (udp_send_skb: EINVAL with
    // SO_NO_CHECK), so trains carry a computed outer checksum even when udpChecksum is off
    // (RFC 7348 receivers accept both); ordinary frames follow udpChecksum exactly.
    const udp = UdpPort.open({
      address: formatIpv4(node.underlay.address), port: node.port, gso: node.offloads, gro: node.offloads,
      dontFragment: node.df === 'set', noChecksum: !node.udpChecksum && !node.offloads,
    });
    let raw: RawIpPort;
    try {
      raw = RawIpPort.open(`vxlan:${node.port}:tx`);
    } catch (e) {
      udp.close();
      throw e;
    }
    const kernel = new OverlayPort(udp, raw, `vxlan:${node.port}`);
    // The AF_XDP overlay presents the same framing (rx UDP, tx IP) and sends trains and frames
    // without a resolved next hop through `kernel`.
    const generic = xdpAttachGeneric();
    const xdp = openBackend(node, this.log, `overlay on ${node.underlay.interface}`, () => XdpOverlayPort.open(node.underlay.interface, node.underlay.address, node.port, kernel, { generic, maxRxLen: XDP_OVERLAY_MAX_RX_LEN }));
    if (xdp === null && node.io === 'af_xdp') kernel.close();
    const port: Port = xdp ?? kernel;
    // Not beside the AF_XDP overlay: measured slower there (TCP 1 stream 1.86 against 2.87 Gbit/s,
    // bench/README.md): the native program on the underlay veth costs its peer GSO, so the super-
    // frames are cut at the sender anyway and arrive as datagrams.
    const tunnel = xdp === null ? openTunnelTap(node, this.log) : { tap: null, why: 'the overlay is on AF_XDP (measured slower there)' };
    const attach: OverlayAttach = {
      rx: Framing.UDP, tx: kernel.sendsIp ? Framing.IP : Framing.UDP, gso: udp.features.gso, gro: udp.features.gro,
      ...(tunnel.tap === null ? {} : { tunnel: { port: tunnel.tap, mac: getMac(tunnel.tap.name) } }),
    };
    const tunnelInfo = tunnel.tap === null ? { tunnelOffload: 'off', tunnelOffloadWhy: tunnel.why } : { tunnelOffload: tunnel.tap.name };
    return { port, attach, info: { ...udp.features, sendsIp: kernel.sendsIp, io: xdp === null ? 'packet' : 'af_xdp', ...tunnelInfo } };
  }

  openPod(node: NodeSpec, pod: PodSpec): Port {
    // The veth's host end takes whatever the pod sends: a veth silently drops a frame larger
    // than its peer's MTU, and a pod misconfigured with a large MTU must get ICMP
    // fragmentation-needed (or fragmentation) from the switch, not silence.
    setHostEndMtu(pod.interface);
    // Up first: an AF_PACKET socket bound to a down link starts with a pending ENETDOWN.
    setLinkUp(pod.interface, true);
    if (node.podIo !== 'packet') {
      // Per pod: a pod whose veth refuses XDP (an MTU above what XDP takes without fragments,
      // ~3.5 KB) keeps its network on AF_PACKET rather than losing it, with `io: af_xdp` too.
      // Only the driver's XDP: a native program makes the pod's end give up TSO
      // (veth_fix_features); where the veth takes the program only in generic mode (the large
      // MTU again), the pod's 64 KB frames would not fit a UMEM chunk.
      try {
        const x = XdpPort.open(pod.interface, false);
        if (x.features.attach === 'native') return x;
        x.close();
        throw new FlatnetError('ERR_IO_AF_XDP', `${pod.interface}: the veth takes XDP only in ${x.features.attach} mode (its pod's MTU is too large for native XDP)`);
      } catch (e) {
        this.log.warn({ err: e, interface: pod.interface }, `pod ${pod.name}: AF_XDP unavailable on its veth, using the packet backend`);
      }
    }
    if (node.offloads) {
      try {
        return PacketPort.open(pod.interface, { vnetHdr: true });
      } catch (e) {
        this.log.warn({ err: e, interface: pod.interface }, 'pod port without virtio-net headers (offloads off for this pod)');
      }
    }
    return PacketPort.open(pod.interface);
  }

  hasLink(name: string): boolean {
    try {
      ifIndex(name);
      return true;
    } catch {
      return false;
    }
  }

  closeHost(port: Port, keep: boolean): void {
    if (keep && port instanceof TapPort) port.persist(true);
    port.close();
  }
}

/**
 * xdpAttachGeneric: the overlay's XDP program runs in the veth/NIC driver (native) unless
 * $FLATNET_XDP_ATTACH=generic. Generic XDP keeps a veth peer's UDP-GSO trains whole, but it
 * copies every one into a linear skb before the program runs (TCP 0.21x kernel VXLAN in bench
 * run xextsp, native 0.18x when every datagram came through the ring).
 */
function xdpAttachGeneric(): boolean {
  return process.env['FLATNET_XDP_ATTACH'] === 'generic';
}

/**
 * XDP_OVERLAY_MAX_RX_LEN: VXLAN frames up to this length come through the AF_XDP ring (small
 * packets: where the socket path's per-packet cost is the limit); longer ones (TCP data) take
 * the kernel's UDP socket, where GRO hands the switch a train per read and the switch's own GRO
 * coalesces it for the pod. Bench runs xextsp (every size through the ring: TCP 0.18-0.21x
 * kernel VXLAN) and bench/README.md "AF_XDP".
 */
const XDP_OVERLAY_MAX_RX_LEN = 512;

/**
 * openBackend opens an AF_XDP port when `node.io` asks for one: 'packet' never (null), 'auto'
 * tries and returns null (logged) when AF_XDP is unavailable here (no program object, no
 * CAP_BPF, an old kernel, a driver refusing XDP), 'af_xdp' throws ERR_IO_AF_XDP with the cause.
 */
function openBackend<P>(node: NodeSpec, log: Logger, what: string, open: () => P): P | null {
  if (node.io === 'packet') return null;
  try {
    return open();
  } catch (e) {
    if (node.io === 'af_xdp') throw new FlatnetError('ERR_IO_AF_XDP', `${what}: AF_XDP is unavailable: ${(e as Error).message}`, { cause: e });
    log.warn({ err: e }, `${what}: AF_XDP unavailable, using the packet backend`);
    return null;
  }
}

/**
 * openTap opens the host port: with virtio-net headers and every offload the kernel accepts
 * (so the host stack hands over TSO super-frames and partial checksums), falling back to plain
 * frames when the kernel refuses the header.
 */
/**
 * openTunnelTap: the tunnel TAP for `tunnelOffload: auto` (Switch.attachTunnelOffload), or why
 * there is none. TCP super-frames are written to it whole, outer headers included, with the
 * 24-byte virtio-net header of UDP-tunnel GSO; the kernel takes them in as if received on the
 * TAP and forwards them to the underlay (next hop, neighbour and segmentation are the kernel's).
 * For that the TAP gets, in this namespace only: IPv4 forwarding for what arrives on it
 * (conf.<tap>.forwarding, not the global switch), accept_local (the outer source is this node's
 * own underlay address) and no reverse-path filter on it, IPv6 off. It has no address and no
 * route: nothing else goes to it, and the switch never reads it.
 */
export function openTunnelTap(node: NodeSpec, log: Logger): { tap: TapPort | null; why: string } {
  if (node.tunnelOffload === 'off') return { tap: null, why: 'tunnelOffload: off' };
  if (!node.offloads) return { tap: null, why: 'offloads: false' };
  if (node.udpChecksum) return { tap: null, why: 'udpChecksum: true (the kernel would compute one per segment; not used)' };
  if (readSysctl('net/ipv4/conf/all/rp_filter') === '1') return { tap: null, why: 'net.ipv4.conf.all.rp_filter is 1 (strict): frames from our own address on the TAP would be dropped' };
  const name = `${node.host.interface.slice(0, 11)}-tnl`;
  let tap: TapPort;
  try {
    tap = TapPort.open(name, { vnetHdr: 24, offload: { csum: true, tso4: true, tso6: false, uso: false, udpTunnel: true }, up: false });
  } catch (e) {
    log.info({ err: e, tap: name }, 'no tunnel TAP (software segmentation toward peers)');
    return { tap: null, why: `opening ${name}: ${(e as Error).message}` };
  }
  if (!(tap.offload.udpTunnel ?? false) || !tap.offload.tso4) {
    tap.close();
    return { tap: null, why: 'this kernel offers no UDP-tunnel GSO on TAP devices (Linux 6.17+)' };
  }
  try {
    for (const [key, value] of [['forwarding', '1'], ['accept_local', '1'], ['rp_filter', '0']] as const) writeSysctl(`net/ipv4/conf/${name}/${key}`, value);
    writeSysctl(`net/ipv6/conf/${name}/disable_ipv6`, '1');
    setLinkUp(name, true);
  } catch (e) {
    tap.close();
    log.info({ err: e, tap: name }, 'no tunnel TAP (software segmentation toward peers)');
    return { tap: null, why: `setting up ${name}: ${(e as Error).message}` };
  }
  return { tap, why: '' };
}

function readSysctl(key: string): string {
  try {
    return readFileSync(`/proc/sys/${key}`, 'utf8').trim();
  } catch {
    return '';
  }
}

function writeSysctl(key: string, value: string): void {
  writeFileSync(`/proc/sys/${key}`, value);
}

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
function configureHostInterface(node: NodeSpec): void {
  const dev = node.host.interface;
  const addr = node.mode === 'l3' ? `${formatIpv4(node.vtepIp)}/32` : `${formatIpv4(node.vtepIp)}/${node.clusterCidr.len}`;
  ipCmd(['addr', 'replace', addr, 'dev', dev]);
  if (node.mode === 'l3') ipCmd(['route', 'replace', node.clusterCidr.toString(), 'dev', dev, 'src', formatIpv4(node.vtepIp)]);
}

function ipCmd(args: string[]): void {
  try {
    execFileSync('ip', args, { stdio: ['ignore', 'ignore', 'pipe'] });
  } catch (e) {
    const err = e as { stderr?: Buffer };
    throw new FlatnetError('ERR_HOST_CONFIG', `ip ${args.join(' ')}: ${err.stderr?.toString().trim() ?? String(e)}`, { cause: e });
  }
}
