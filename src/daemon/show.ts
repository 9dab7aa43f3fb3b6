/**
 * `flatnet show routes|fdb|ports|counters|peers|ipam|policy|services|conntrack`: snapshots of the running switch as plain JSON
 * (what `--json` prints and the control socket carries) and their iproute2-style renderings.
 */

import { RouteKind } from '../fib/route-table.js';
import type { Switch } from './data-plane.js';
import { formatIpv4, formatMac } from '../wire/addr.js';
import { kernelDrops, type KernelDropCounts } from '../io/kernel-drops.js';
import { DROP_HELP, DROP_NAMES, type Drop } from '../pipeline/drop.js';
import { renderIpam, type IpamSnapshot } from './ipam.js';
import { renderPolicies, type PolicyRow } from '../policy/view.js';
import { renderConntrack, renderServices, type ConntrackView, type ServiceRow } from '../service/view.js';
import { PortKind } from '../pipeline/port.js';

export interface RouteRow { dst: string; kind: string; dev: string; via: string | null; underlay: string | null; lladdr: string | null }
export interface FdbRow { mac: string; dev: string; dst: string | null; vni: number; state: 'permanent' | 'learned' | 'flood'; ageSeconds: number | null }
export interface PortRow {
  /** The switch port id; -1 for the tunnel TAP (role `tunnel`, transmit only). */
  id: number; name: string; role: string; kind: string;
  /** The I/O backend: 'af_xdp', 'packet' (AF_PACKET / UDP / raw sockets), 'tap', or the kind of an in-memory port. */
  backend: string;
  /** Backend details (AF_XDP: attach mode, XDP socket counters, next-hop resolution), else null. */
  io: Record<string, unknown> | null;
  ip: string | null; mac: string | null;
  rxPackets: number; rxBytes: number; rxBatches: number; rxErrors: number;
  txPackets: number; txBytes: number; txBatches: number; txErrors: number; txDropped: number;
  /** Frames the kernel dropped at this port's socket and interface (src/io/kernel-drops.ts); null for ports without a kernel side. */
  kernelDrops: KernelDropCounts | null;
}
export interface PeerRow { name: string; underlay: string; podCidr: string | null; vtepMac: string; vni: number; port: number; rxPackets: number; rxBytes: number; txPackets: number; txBytes: number; txFailed: number }
export interface CountersSnapshot { counters: Record<string, number>; drops: { reason: string; count: number; help: string }[] }

export function snapshotRoutes(sw: Switch): RouteRow[] {
  const ports = new Map(sw.portList.map((p) => [p.id, p]));
  return sw.routes.routes.map((r) => {
    const dst = r.cidr.len === 0 ? 'default' : r.cidr.len === 32 ? formatIpv4(r.cidr.network) : r.cidr.toString();
    switch (r.kind) {
      case RouteKind.LOCAL:
        return { dst, kind: 'local', dev: ports.get(r.port)?.name ?? `port${r.port}`, via: null, underlay: null, lladdr: formatMac(r.mac) };
      case RouteKind.HOST:
        return { dst, kind: 'host', dev: sw.portList.find((p) => p.role === 'host')?.name ?? 'host', via: null, underlay: null, lladdr: null };
      case RouteKind.VTEP: {
        const v = r.vtep!;
        const via = v.podCidr === null ? null : formatIpv4(v.podCidr.network);
        return { dst, kind: 'vtep', dev: v.name, via, underlay: formatIpv4(v.underlayIp), lladdr: formatMac(v.mac) };
      }
      default:
        return { dst, kind: 'blackhole', dev: '', via: null, underlay: null, lladdr: null };
    }
  });
}

export function snapshotFdb(sw: Switch): FdbRow[] {
  const now = sw.clock.tick();
  const ports = new Map(sw.portList.map((p) => [p.id, p.name]));
  const rows: FdbRow[] = sw.fdb.entries().map((e) => ({
    mac: formatMac(e.mac),
    dev: e.vtep !== null ? 'overlay' : ports.get(e.port) ?? `port${e.port}`,
    dst: e.vtep !== null ? formatIpv4(e.vtep.underlayIp) : null,
    vni: sw.vni,
    state: e.kind === 'static' ? 'permanent' : 'learned',
    ageSeconds: e.kind === 'static' ? null : Math.round((now - e.updated) / 1000),
  }));
  // L3 (flannel): one permanent entry per peer VTEP MAC; L2: the all-zeros flood list.
  if (sw.mode === 'l3') {
    for (const v of sw.peerList) rows.push({ mac: formatMac(v.mac), dev: 'overlay', dst: formatIpv4(v.underlayIp), vni: v.vni, state: 'permanent', ageSeconds: null });
  } else {
    for (const v of sw.fdb.floodList) rows.push({ mac: '00:00:00:00:00:00', dev: 'overlay', dst: formatIpv4(v.underlayIp), vni: v.vni, state: 'flood', ageSeconds: null });
  }
  return rows;
}

export function snapshotPorts(sw: Switch): PortRow[] {
  // The tunnel TAP last, as role `tunnel` and id -1 (it is no switch port: transmit only).
  const tunnel = sw.tunnelPort;
  return sw.allPorts.map((p) => {
    const s = p.port.stats;
    return {
      id: p.id, name: p.name, role: p === tunnel ? 'tunnel' : p.role, kind: p.port.kind,
      backend: p.port.kind === PortKind.AF_XDP ? 'af_xdp' : p.port.kind === PortKind.PACKET || p.port.kind === PortKind.UDP ? 'packet' : p.port.kind,
      io: p.port.ioInfo?.() ?? null,
      ip: p.role === 'pod' ? formatIpv4(p.ip) : null,
      mac: p.mac === 0 ? null : formatMac(p.mac),
      rxPackets: s.rxPackets, rxBytes: s.rxBytes, rxBatches: s.rxBatches, rxErrors: s.rxErrors,
      txPackets: s.txPackets, txBytes: s.txBytes, txBatches: s.txBatches, txErrors: s.txErrors, txDropped: s.txDropped,
      kernelDrops: kernelDrops(p.port),
    };
  });
}

export function snapshotPeers(sw: Switch): PeerRow[] {
  return sw.peerList.map((v) => ({
    name: v.name, underlay: formatIpv4(v.underlayIp), podCidr: v.podCidr?.toString() ?? null, vtepMac: formatMac(v.mac),
    vni: v.vni, port: v.port, rxPackets: v.rxPackets, rxBytes: v.rxBytes, txPackets: v.txPackets, txBytes: v.txBytes, txFailed: v.txFailed,
  }));
}

/** The busy-poll part of `status`: the setting, whether it spins now, its counters. */
export interface BusyPollStatus {
  mode: 'off' | 'always' | 'auto'; budgetUs: number;
  /** Whether a drain that moved frames spins now (auto: a spare core was found at the last sample). */
  spinning: boolean;
  /** auto: spare cores at the last sample (-1 before the second), how often the decision changed; else null. */
  spareCores: number | null; autoChanges: number;
  wakeups: number; spins: number; spinRounds: number; spinFrames: number; spinYields: number; spinSeconds: number;
}

export function busyPollStatus(sw: Switch): BusyPollStatus {
  const b = sw.busyPoll, p = sw.pollStats;
  return {
    mode: b.mode, budgetUs: b.budgetUs, spinning: sw.spinEnabled, spareCores: sw.spareCores, autoChanges: sw.spareChanges,
    wakeups: p.wakeups, spins: p.spins, spinRounds: p.rounds, spinFrames: p.frames, spinYields: p.yields, spinSeconds: Math.round(p.spinMs) / 1000,
  };
}

export function snapshotCounters(sw: Switch): CountersSnapshot {
  const s = sw.stats, bp = sw.pollStats;
  const drops: CountersSnapshot['drops'] = [];
  for (let i = 1; i < s.drops.length; i++) {
    if (s.drops[i]! > 0) drops.push({ reason: DROP_NAMES[i]!, count: s.drops[i]!, help: DROP_HELP[i as Exclude<Drop, 0>] });
  }
  return {
    counters: {
      rx_frames: s.rxFrames, tx_frames: s.txFrames, encapsulated: s.encapsulated, decapsulated: s.decapsulated,
      flood_copies: s.floodCopies, arp_replies: s.arpReplies, icmp_sent: s.icmpSent, icmp_suppressed: s.icmpSuppressed,
      fdb_entries: sw.fdb.size, fdb_moved: s.fdbMoved, fdb_refused_full: sw.fdb.refusedFull, fdb_refused_static: sw.fdb.refusedStatic,
      gso_segments: s.gsoSegments, gso_segments_in_place: s.gsoSegmentsInPlace, tunnel_gso_frames: s.tunnelGsoFrames, tunnel_gso_segments: s.tunnelGsoSegments, overlay_super_frames: s.overlaySuperFrames, overlay_partial_checksums: s.overlayPartialChecksums, gro_super_frames: s.groSuperFrames, gro_segments_merged: s.groSegmentsMerged,
      fragmented: s.fragmented, frag_needed_sent: s.fragNeededSent,
      dropped: s.totalDrops(),
      // Loss before flatnet saw the frames (or after it wrote them), summed over ports: `show ports` has them per port.
      kernel_dropped: sw.portList.reduce((n, p) => n + (kernelDrops(p.port)?.total ?? 0), 0),
      // Busy polling (status has the mode): readiness wake-ups, spins, frames read while spinning, time spun.
      wakeups: bp.wakeups, busy_poll_spins: bp.spins, busy_poll_frames: bp.frames, busy_poll_yields: bp.yields, busy_poll_us: Math.round(bp.spinMs * 1000),
    },
    drops,
  };
}

export const SHOW_WHAT = ['routes', 'fdb', 'ports', 'counters', 'peers', 'ipam', 'policy', 'services', 'conntrack'] as const;
export type ShowWhat = (typeof SHOW_WHAT)[number];

/** snapshot: the switch's tables (`ipam` is the CNI service's: daemon/cni.ts). */
export function snapshot(sw: Switch, what: Exclude<ShowWhat, 'ipam' | 'policy' | 'services' | 'conntrack'>): unknown {
  switch (what) {
    case 'routes': return snapshotRoutes(sw);
    case 'fdb': return snapshotFdb(sw);
    case 'ports': return snapshotPorts(sw);
    case 'counters': return snapshotCounters(sw);
    case 'peers': return snapshotPeers(sw);
  }
}

// ---------------------------------------------------------------------------------------
// Rendering, iproute2 style: one line per entry, `key value` pairs.

export function render(what: ShowWhat, data: unknown): string {
  switch (what) {
    case 'routes':
      return (data as RouteRow[]).map((r) => {
        switch (r.kind) {
          case 'local': return `${r.dst} dev ${r.dev} lladdr ${r.lladdr} proto flatnet scope link`;
          case 'host': return `${r.dst} dev ${r.dev} proto flatnet`;
          case 'vtep': return `${r.dst} via ${r.via} dev ${r.dev} onlink underlay ${r.underlay} lladdr ${r.lladdr}`;
          default: return `blackhole ${r.dst} proto flatnet`;
        }
      }).join('\n') + '\n';
    case 'fdb':
      return (data as FdbRow[]).map((e) => {
        const where = e.dst !== null ? `dst ${e.dst} vni ${e.vni} self` : `dev ${e.dev} master flatnet vni ${e.vni}`;
        const state = e.state === 'learned' ? `learned age ${e.ageSeconds}s` : 'permanent';
        return `${e.mac} ${where} ${state}`;
      }).join('\n') + '\n';
    case 'ports':
      return (data as PortRow[]).map((p) => [
        `${p.id < 0 ? '-' : p.id}: ${p.name}: <${p.role}> kind ${p.kind} backend ${p.backend}${p.ip ? ` inet ${p.ip}` : ''}${p.mac ? ` link/ether ${p.mac}` : ''}`,
        ...(p.io === null ? [] : [`    io: ${JSON.stringify(p.io)}`]),
        `    RX: ${'packets'.padStart(12)} ${'bytes'.padStart(14)} ${'batches'.padStart(10)} ${'errors'.padStart(8)}`,
        `        ${String(p.rxPackets).padStart(12)} ${String(p.rxBytes).padStart(14)} ${String(p.rxBatches).padStart(10)} ${String(p.rxErrors).padStart(8)}`,
        `    TX: ${'packets'.padStart(12)} ${'bytes'.padStart(14)} ${'batches'.padStart(10)} ${'errors'.padStart(8)} ${'dropped'.padStart(8)}`,
        `        ${String(p.txPackets).padStart(12)} ${String(p.txBytes).padStart(14)} ${String(p.txBatches).padStart(10)} ${String(p.txErrors).padStart(8)} ${String(p.txDropped).padStart(8)}`,
        ...(p.kernelDrops === undefined || p.kernelDrops === null ? [] : [
          `    kernel drops: socket ${p.kernelDrops.socket}${p.kernelDrops.ifRxDropped === null ? '' : `, interface rx_dropped ${p.kernelDrops.ifRxDropped} tx_dropped ${p.kernelDrops.ifTxDropped}`}`,
        ]),
      ].join('\n')).join('\n') + '\n';
    case 'counters': {
      const c = data as CountersSnapshot;
      const w = Math.max(22, ...Object.keys(c.counters).map((k) => k.length));
      const lines = Object.entries(c.counters).map(([k, v]) => `${k.padEnd(w)} ${String(v).padStart(14)}`);
      lines.push('', c.drops.length === 0 ? 'no drops' : `${'drop reason'.padEnd(28)} ${'count'.padStart(12)}  meaning`);
      for (const d of c.drops) lines.push(`${d.reason.padEnd(28)} ${String(d.count).padStart(12)}  ${d.help}`);
      return lines.join('\n') + '\n';
    }
    case 'peers':
      return (data as PeerRow[]).map((p) =>
        `${p.name} underlay ${p.underlay} port ${p.port} vni ${p.vni} podCidr ${p.podCidr ?? '-'} vtep ${p.vtepMac} rx ${p.rxPackets}/${p.rxBytes}B tx ${p.txPackets}/${p.txBytes}B${p.txFailed > 0 ? ` tx_failed ${p.txFailed}` : ''}`,
      ).join('\n') + '\n';
    case 'ipam':
      return renderIpam(data as IpamSnapshot);
    case 'policy':
      return `${renderPolicies(data as PolicyRow[])}\n`;
    case 'services':
      return `${renderServices(data as ServiceRow[])}\n`;
    case 'conntrack':
      return `${renderConntrack(data as ConntrackView)}\n`;
  }
}
