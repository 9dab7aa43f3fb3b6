/**
 * Prometheus `/metrics` (prom-client). The data path only bumps plain numbers and typed-array
 * slots; the metric objects read them in their collect() callbacks at scrape time, so the cost
 * is paid per scrape (~1 ms), never per packet (a labelled inc() costs 50-116 ns: see
 * DEPENDENCIES.md). Label values come from configuration (ports, peers, drop reasons), never
 * from packets, so the series count is bounded.
 */

import { createServer, type Server } from 'node:http';
import { Counter, Gauge, Registry } from 'prom-client';
import type { Switch } from './data-plane.js';
import { DROP_NAMES } from '../pipeline/drop.js';
import { kernelDrops } from '../io/kernel-drops.js';
import { CONTROL_LIMITS, type ControlLimits } from './control.js';

export function createRegistry(sw: Switch, labels: { node: string }): Registry {
  const registry = new Registry();
  registry.setDefaultLabels({ node: labels.node });
  const counter = (name: string, help: string, labelNames: string[], fill: (c: Counter<string>) => void): void => {
    new Counter({ name, help, labelNames, registers: [registry], collect() { this.reset(); fill(this); } });
  };
  const gauge = (name: string, help: string, labelNames: string[], fill: (g: Gauge<string>) => void): void => {
    new Gauge({ name, help, labelNames, registers: [registry], collect() { this.reset(); fill(this); } });
  };
  const s = sw.stats;
  counter('flatnet_drops_total', 'Frames dropped, by reason (one reason per frame)', ['reason'], (c) => {
    for (let i = 1; i < s.drops.length; i++) c.inc({ reason: DROP_NAMES[i]! }, s.drops[i]!);
  });
  counter('flatnet_switch_frames_total', 'Frames through the switch', ['direction'], (c) => {
    c.inc({ direction: 'rx' }, s.rxFrames);
    c.inc({ direction: 'tx' }, s.txFrames);
  });
  counter('flatnet_encapsulated_total', 'Frames encapsulated toward a VTEP', [], (c) => c.inc(s.encapsulated));
  counter('flatnet_decapsulated_total', 'Frames decapsulated from the overlay and accepted', [], (c) => c.inc(s.decapsulated));
  counter('flatnet_flood_copies_total', 'Extra copies made for head-end replication', [], (c) => c.inc(s.floodCopies));
  counter('flatnet_arp_replies_total', 'ARP replies from the responder', [], (c) => c.inc(s.arpReplies));
  counter('flatnet_icmp_sent_total', 'ICMP errors and echo replies originated by the switch', [], (c) => c.inc(s.icmpSent));
  counter('flatnet_icmp_suppressed_total', 'ICMP errors not sent because of the rate limit', [], (c) => c.inc(s.icmpSuppressed));
  counter('flatnet_gso_segments_total', 'Segments made from super-frames toward the overlay (software GSO)', [], (c) => c.inc(s.gsoSegments));
  counter('flatnet_gso_segments_in_place_total', 'Of those, segments sent with their payload where it lay (an iovec per piece, no copy)', [], (c) => c.inc(s.gsoSegmentsInPlace));
  counter('flatnet_tunnel_gso_frames_total', 'TCP super-frames handed whole to the kernel through the tunnel TAP (UDP-tunnel GSO)', [], (c) => c.inc(s.tunnelGsoFrames));
  counter('flatnet_tunnel_gso_segments_total', 'Segments the tunnel TAP super-frames stand for', [], (c) => c.inc(s.tunnelGsoSegments));
  counter('flatnet_overlay_super_frames_total', 'TCP super-frames received whole from the overlay (a peer\'s UDP-tunnel GSO) and passed on as TSO frames', [], (c) => c.inc(s.overlaySuperFrames));
  counter('flatnet_overlay_partial_checksums_total', 'Frames from the overlay with a partial inner checksum (checksum offload on a veth underlay), passed on as such', [], (c) => c.inc(s.overlayPartialChecksums));
  counter('flatnet_gro_super_frames_total', 'Super-frames built from overlay segments (software GRO)', [], (c) => c.inc(s.groSuperFrames));
  counter('flatnet_gro_segments_merged_total', 'Segments merged into those super-frames', [], (c) => c.inc(s.groSegmentsMerged));
  counter('flatnet_fragmented_total', 'Inner packets fragmented before encapsulation (no DF, too big for the underlay)', [], (c) => c.inc(s.fragmented));
  counter('flatnet_frag_needed_sent_total', 'ICMP fragmentation-needed replies sent', [], (c) => c.inc(s.fragNeededSent));
  const bp = sw.pollStats;
  counter('flatnet_wakeups_total', 'Readiness callbacks that woke the drain loop', [], (c) => c.inc(bp.wakeups));
  counter('flatnet_busy_poll_spins_total', 'Spins after a drain that moved frames (busyPoll)', [], (c) => c.inc(bp.spins));
  counter('flatnet_busy_poll_frames_total', 'Frames read while spinning, without a wake-up', [], (c) => c.inc(bp.frames));
  counter('flatnet_busy_poll_seconds_total', 'Time spent spinning (CPU busy polling costs)', [], (c) => c.inc(bp.spinMs / 1000));
  gauge('flatnet_busy_poll_active', 'Whether a drain that moved frames spins now (1) or sleeps (0): busyPoll off, or auto without a spare core', [], (g) => g.set(sw.spinEnabled ? 1 : 0));
  gauge('flatnet_fdb_entries', 'FDB entries (static and learned)', [], (g) => g.set(sw.fdb.size));
  gauge('flatnet_routes', 'Routes in the forwarding table', [], (g) => g.set(sw.routes.size));
  gauge('flatnet_peers', 'Remote VTEPs', [], (g) => g.set(sw.peerList.length));
  counter('flatnet_port_packets_total', 'Packets per port and direction', ['port', 'role', 'direction'], (c) => {
    for (const p of sw.portList) {
      c.inc({ port: p.name, role: p.role, direction: 'rx' }, p.port.stats.rxPackets);
      c.inc({ port: p.name, role: p.role, direction: 'tx' }, p.port.stats.txPackets);
    }
  });
  counter('flatnet_port_bytes_total', 'Bytes per port and direction', ['port', 'role', 'direction'], (c) => {
    for (const p of sw.portList) {
      c.inc({ port: p.name, role: p.role, direction: 'rx' }, p.port.stats.rxBytes);
      c.inc({ port: p.name, role: p.role, direction: 'tx' }, p.port.stats.txBytes);
    }
  });
  counter('flatnet_port_syscall_batches_total', 'read()/write() calls that moved frames (packets / batches = frames per call)', ['port', 'direction'], (c) => {
    for (const p of sw.portList) {
      c.inc({ port: p.name, direction: 'rx' }, p.port.stats.rxBatches);
      c.inc({ port: p.name, direction: 'tx' }, p.port.stats.txBatches);
    }
  });
  counter('flatnet_port_errors_total', 'Port I/O errors and frames the kernel did not take', ['port', 'kind'], (c) => {
    for (const p of sw.portList) {
      c.inc({ port: p.name, kind: 'rx_error' }, p.port.stats.rxErrors);
      c.inc({ port: p.name, kind: 'tx_error' }, p.port.stats.txErrors);
      c.inc({ port: p.name, kind: 'tx_dropped' }, p.port.stats.txDropped);
    }
  });
  counter('flatnet_port_kernel_drops_total', "Frames the kernel dropped at a port: its socket's receive queue or buffer (where=socket), its interface's rx_dropped / tx_dropped (if_rx, if_tx)", ['port', 'where'], (c) => {
    for (const p of sw.portList) {
      const k = kernelDrops(p.port);
      if (k === null) continue;
      c.inc({ port: p.name, where: 'socket' }, k.socket);
      if (k.ifRxDropped !== null) c.inc({ port: p.name, where: 'if_rx' }, k.ifRxDropped);
      if (k.ifTxDropped !== null) c.inc({ port: p.name, where: 'if_tx' }, k.ifTxDropped);
    }
  });
  counter('flatnet_peer_packets_total', 'Packets exchanged with each peer VTEP', ['peer', 'direction'], (c) => {
    for (const v of sw.peerList) {
      c.inc({ peer: v.name, direction: 'rx' }, v.rxPackets);
      c.inc({ peer: v.name, direction: 'tx' }, v.txPackets);
    }
  });
  counter('flatnet_peer_tx_failed_total', 'Inner frames the overlay failed to send to each peer VTEP (an error or a full queue)', ['peer'], (c) => {
    for (const v of sw.peerList) c.inc({ peer: v.name }, v.txFailed);
  });
  counter('flatnet_peer_bytes_total', 'Inner bytes exchanged with each peer VTEP', ['peer', 'direction'], (c) => {
    for (const v of sw.peerList) {
      c.inc({ peer: v.name, direction: 'rx' }, v.rxBytes);
      c.inc({ peer: v.name, direction: 'tx' }, v.txBytes);
    }
  });
  return registry;
}

/**
 * serveMetrics answers GET /metrics (and /healthz) on host:port, under the control socket's
 * limits (control.ts): at most `maxConnections` connections (more are closed at once), a
 * request (headers included) within `requestTimeoutMs`, an idle connection closed after
 * `idleTimeoutMs`, headers of at most 16 KiB.
 */
export async function serveMetrics(registry: Registry, host: string, port: number, limits: Partial<ControlLimits> = {}): Promise<Server> {
  const lim = { ...CONTROL_LIMITS, ...limits };
  const server = createServer({ maxHeaderSize: 16 * 1024, requestTimeout: lim.requestTimeoutMs, headersTimeout: Math.min(lim.requestTimeoutMs, 60_000) }, (req, res) => {
    if (req.method === 'GET' && req.url === '/metrics') {
      registry.metrics().then((text) => {
        res.writeHead(200, { 'content-type': registry.contentType });
        res.end(text);
      }, (e: unknown) => {
        res.writeHead(500).end(String(e));
      });
    } else if (req.method === 'GET' && req.url === '/healthz') {
      res.writeHead(200, { 'content-type': 'text/plain' }).end('ok\n');
    } else {
      res.writeHead(404).end();
    }
  });
  server.maxConnections = lim.maxConnections;
  server.timeout = lim.idleTimeoutMs;
  server.keepAliveTimeout = Math.min(5000, lim.idleTimeoutMs);
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => { server.off('error', reject); resolve(); });
  });
  return server;
}
