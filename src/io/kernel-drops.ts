/**
 * Frames the kernel dropped before flatnet could read them (or after flatnet wrote them), per
 * port, from where the kernel counts them (native/src/stats.cc):
 *   socket    the port's own socket: PACKET_STATISTICS drops of an AF_PACKET socket (its
 *             receive queue was full), SK_MEMINFO_DROPS of the overlay's UDP socket (its
 *             receive buffer overflowed), an AF_XDP socket's XDP_STATISTICS rx_dropped and
 *             rx_ring_full (no free fill-ring chunk, or its RX ring full);
 *   ifRx/ifTx the interface's rx_dropped / tx_dropped (IFLA_STATS64): a TAP's tx_dropped are
 *             frames for flatnet that did not fit the TAP's queue; a veth's are frames lost
 *             between the pod and the node.
 * Socket counts are the socket's, which lives as long as the port; interface counts start at 0
 * when the port is first sampled (an interface kept across a restart keeps its old counts in
 * the kernel; they are not this port's), so the owner samples once when it opens the port. Sampling is a few system calls per
 * port: cold path (show, /metrics, the daemon's once-a-second error watch), never per packet.
 * Ports without a kernel side (memory, pcap) have none: null.
 */

import type { Port } from '../pipeline/port.js';
import { FdPort } from './fd-port.js';
import { loadNative, type NativeAddon } from './native.js';
import { OverlayPort } from './overlay-port.js';
import { PacketPort } from './packet-port.js';
import { TapPort } from './tap-port.js';
import { XdpOverlayPort } from './xdp-overlay-port.js';
import { XdpPort } from './xdp-port.js';

/** What native/src/stats.cc adds to the addon. */
interface StatsAddon {
  socketDrops(fd: number): number;
  packetStats(fd: number): [number, number] | number;
  linkStats(name: string): [number, number, number, number, number, number];
}

export interface KernelDropCounts {
  /** Dropped at the port's socket (receive queue or buffer full). */
  readonly socket: number;
  /** The interface's rx_dropped and tx_dropped since the port was first sampled (null: no interface). */
  readonly ifRxDropped: number | null;
  readonly ifTxDropped: number | null;
  /** All of the above. */
  readonly total: number;
}

interface State {
  socket: number;
  ifBase: [number, number] | null;
  last: KernelDropCounts;
}

const states = new WeakMap<Port, State>();

function addon(): NativeAddon & StatsAddon {
  return loadNative() as NativeAddon & StatsAddon;
}

/**
 * The socket and interface of a port, as the kernel knows them. `socket` says how the socket's
 * drops are read: 'packet', PACKET_STATISTICS (reset by every read); 'meminfo', the socket's
 * drop counter (cumulative); 'none', no socket counter. `xsk`: an AF_XDP socket whose rings'
 * drops (XDP_STATISTICS rx_dropped + rx_ring_full, cumulative) count with the socket's.
 */
interface KernelSide { readonly fd: number; readonly socket: 'packet' | 'meminfo' | 'none'; readonly xsk: XdpPort | null; readonly ifname: string | null }

function kernelSide(port: Port): KernelSide | null {
  if (port instanceof XdpOverlayPort) return { fd: port.kernel.udp.descriptor, socket: 'meminfo', xsk: port.xsk, ifname: null };
  if (port instanceof OverlayPort) return { fd: port.udp.descriptor, socket: 'meminfo', xsk: null, ifname: null };
  if (port instanceof PacketPort) return { fd: port.descriptor, socket: 'packet', xsk: null, ifname: port.name };
  if (port instanceof TapPort) return { fd: port.descriptor, socket: 'none', xsk: null, ifname: port.name };
  if (port instanceof XdpPort) return { fd: port.descriptor, socket: 'none', xsk: port, ifname: port.name };
  if (port instanceof FdPort) return { fd: port.descriptor, socket: 'meminfo', xsk: null, ifname: null };
  return null;
}

/**
 * kernelDrops samples the port's kernel drop counters now and returns them (cumulative since the
 * first sample), or null for a port without a kernel side. A closed port keeps its last counts.
 */
export function kernelDrops(port: Port): KernelDropCounts | null {
  const side = kernelSide(port);
  if (side === null) return null;
  let st = states.get(port);
  if (st === undefined) {
    st = { socket: 0, ifBase: null, last: { socket: 0, ifRxDropped: side.ifname === null ? null : 0, ifTxDropped: side.ifname === null ? null : 0, total: 0 } };
    states.set(port, st);
  }
  if (side.fd < 0) return st.last;
  const n = addon();
  if (side.socket === 'packet') {
    // Reset by the kernel on every read: accumulate.
    const r = n.packetStats(side.fd);
    if (typeof r !== 'number') st.socket += r[1];
  } else {
    // Cumulative over the socket's (and so the port's) life.
    let total = 0, read = false;
    if (side.socket === 'meminfo') {
      const d = n.socketDrops(side.fd);
      if (d >= 0) { total += d; read = true; }
    }
    if (side.xsk !== null) {
      try {
        const x = side.xsk.xdpStats();
        if (x !== null) { total += x.rxDropped + x.rxRingFull; read = true; }
      } catch {
        // The socket is closing: keep the last counts.
      }
    }
    if (read) st.socket = total;
  }
  let ifRx: number | null = null, ifTx: number | null = null;
  if (side.ifname !== null) {
    try {
      const s = n.linkStats(side.ifname);
      st.ifBase ??= [s[4], s[5]];
      ifRx = s[4] - st.ifBase[0];
      ifTx = s[5] - st.ifBase[1];
    } catch {
      // The interface went away (a pod deleted): keep the last counts.
      ifRx = st.last.ifRxDropped;
      ifTx = st.last.ifTxDropped;
    }
  }
  st.last = { socket: st.socket, ifRxDropped: ifRx, ifTxDropped: ifTx, total: st.socket + (ifRx ?? 0) + (ifTx ?? 0) };
  return st.last;
}
