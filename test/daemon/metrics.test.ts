// /metrics as Prometheus scrapes it: after traffic through a switch over test ports, every
// exported value equals the switch's own counter, every drop reason is a labelled series by
// name (zeros included), label sets are the documented ones, and a second scrape does not
// double anything.
import { describe, expect, it } from 'vitest';
import { connect, type Socket } from 'node:net';
import { createRegistry, serveMetrics } from '../../src/daemon/metrics.js';
import type { Switch } from '../../src/pipeline/switch.js';
import { DROP_NAMES } from '../../src/pipeline/drop.js';
import { arp, ip, mac, udp } from '../support/pod-frames.js';
import { POD_MAC, smallSwitch, VTEP } from '../support/small-switch.js';
import type { MemoryPort, WireFrame } from '../../src/io/memory-port.js';

interface Sample { readonly labels: Record<string, string>; readonly value: number }

/** parse: the text exposition format as a map of metric name -> samples, plus each metric's TYPE. */
function parse(text: string): { samples: Map<string, Sample[]>; types: Map<string, string> } {
  const samples = new Map<string, Sample[]>();
  const types = new Map<string, string>();
  for (const line of text.split('\n')) {
    const t = /^# TYPE (\S+) (\S+)$/.exec(line);
    if (t !== null) { types.set(t[1]!, t[2]!); continue; }
    if (line === '' || line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][\w:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (m === null) throw new Error(`not an exposition line: ${line}`);
    const labels: Record<string, string> = {};
    for (const l of (m[2] ?? '').matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)) labels[l[1]!] = l[2]!;
    const list = samples.get(m[1]!) ?? [];
    list.push({ labels, value: Number(m[3]) });
    samples.set(m[1]!, list);
  }
  return { samples, types };
}

const build = smallSwitch;

/** Traffic with a known outcome per frame: 3 spoofed, 2 to peer n2, 1 to nowhere, 1 ARP for the gateway. */
function traffic(sw: Switch, pod: MemoryPort): void {
  const from = { srcMac: POD_MAC, dstMac: VTEP, src: ip('10.244.1.2') };
  for (let i = 0; i < 3; i++) pod.inject(udp({ ...from, srcMac: mac('02:00:00:00:00:09'), dst: ip('10.244.2.2') }));
  for (let i = 0; i < 2; i++) pod.inject(udp({ ...from, dst: ip('10.244.2.2'), payload: 100 }));
  pod.inject(udp({ ...from, dst: ip('10.244.9.9') }));
  pod.inject(arp({ srcMac: POD_MAC, spa: ip('10.244.1.2'), tpa: ip('10.244.1.1') }));
  sw.pump();
}

describe('metrics', () => {
  it('exports exactly the switch\'s counters, by name, with the documented label sets', async () => {
    const { sw, pod } = build();
    traffic(sw, pod);
    const s = sw.stats;
    // The traffic did what the test says, so that the comparisons below compare something.
    expect([s.drops[DROP_NAMES.indexOf('spoof_src_mac')], s.encapsulated, s.arpReplies, s.totalDrops()]).toEqual([3, 2, 1, 4]);

    const { samples, types } = parse(await createRegistry(sw, { node: 'node1' }).metrics());
    const one = (name: string, labels: Record<string, string> = {}): number => {
      const found = (samples.get(name) ?? []).filter((x) => Object.entries({ ...labels, node: 'node1' }).every(([k, v]) => x.labels[k] === v));
      expect(found, `${name} ${JSON.stringify(labels)}`).toHaveLength(1);
      return found[0]!.value;
    };

    // Every drop reason, by its name, zeros included; nothing else.
    const drops = samples.get('flatnet_drops_total')!;
    expect(drops.map((x) => x.labels['reason']).sort()).toEqual(DROP_NAMES.slice(1).sort());
    for (let i = 1; i < DROP_NAMES.length; i++) expect(one('flatnet_drops_total', { reason: DROP_NAMES[i]! }), DROP_NAMES[i]).toBe(s.drops[i]);
    expect(one('flatnet_drops_total', { reason: 'spoof_src_mac' })).toBe(3);

    // Scalar counters and gauges.
    const scalars: [string, number][] = [
      ['flatnet_encapsulated_total', s.encapsulated], ['flatnet_decapsulated_total', s.decapsulated], ['flatnet_flood_copies_total', s.floodCopies],
      ['flatnet_arp_replies_total', s.arpReplies], ['flatnet_icmp_sent_total', s.icmpSent], ['flatnet_icmp_suppressed_total', s.icmpSuppressed],
      ['flatnet_gso_segments_total', s.gsoSegments], ['flatnet_gso_segments_in_place_total', s.gsoSegmentsInPlace], ['flatnet_gro_super_frames_total', s.groSuperFrames], ['flatnet_gro_segments_merged_total', s.groSegmentsMerged],
      ['flatnet_fragmented_total', s.fragmented], ['flatnet_frag_needed_sent_total', s.fragNeededSent],
      ['flatnet_fdb_entries', sw.fdb.size], ['flatnet_routes', sw.routes.size], ['flatnet_peers', 1],
    ];
    for (const [name, v] of scalars) expect(one(name), name).toBe(v);
    expect(one('flatnet_switch_frames_total', { direction: 'rx' })).toBe(s.rxFrames);
    expect(one('flatnet_switch_frames_total', { direction: 'tx' })).toBe(s.txFrames);

    // Per port and per peer, from the ports' and peers' own counters.
    for (const p of sw.portList) {
      const st = p.port.stats;
      expect(one('flatnet_port_packets_total', { port: p.name, role: p.role, direction: 'rx' })).toBe(st.rxPackets);
      expect(one('flatnet_port_packets_total', { port: p.name, role: p.role, direction: 'tx' })).toBe(st.txPackets);
      expect(one('flatnet_port_bytes_total', { port: p.name, role: p.role, direction: 'tx' })).toBe(st.txBytes);
      expect(one('flatnet_port_syscall_batches_total', { port: p.name, direction: 'rx' })).toBe(st.rxBatches);
      for (const kind of ['rx_error', 'tx_error', 'tx_dropped']) expect(one('flatnet_port_errors_total', { port: p.name, kind })).toBe(0);
    }
    expect(one('flatnet_port_packets_total', { port: 'pod-a', role: 'pod', direction: 'rx' })).toBe(7);
    const n2 = sw.peerList[0]!;
    expect([one('flatnet_peer_packets_total', { peer: 'n2', direction: 'tx' }), one('flatnet_peer_bytes_total', { peer: 'n2', direction: 'tx' })]).toEqual([2, n2.txBytes]);
    expect(n2.txBytes).toBeGreaterThan(200);

    // Label sets: the documented keys, and the node on every series.
    const labelKeys: Record<string, string[]> = {
      flatnet_drops_total: ['node', 'reason'], flatnet_switch_frames_total: ['direction', 'node'], flatnet_encapsulated_total: ['node'],
      flatnet_port_packets_total: ['direction', 'node', 'port', 'role'], flatnet_port_bytes_total: ['direction', 'node', 'port', 'role'],
      flatnet_port_syscall_batches_total: ['direction', 'node', 'port'], flatnet_port_errors_total: ['kind', 'node', 'port'],
      flatnet_peer_packets_total: ['direction', 'node', 'peer'], flatnet_peer_bytes_total: ['direction', 'node', 'peer'], flatnet_fdb_entries: ['node'],
    };
    for (const [name, keys] of Object.entries(labelKeys)) {
      for (const x of samples.get(name)!) expect(Object.keys(x.labels).sort(), name).toEqual(keys);
    }
    for (const [name, list] of samples) for (const x of list) expect(x.labels['node'], name).toBe('node1');
    expect([types.get('flatnet_drops_total'), types.get('flatnet_port_packets_total'), types.get('flatnet_fdb_entries'), types.get('flatnet_peers')]).toEqual(['counter', 'counter', 'gauge', 'gauge']);
  });

  it('reads the counters at each scrape: a second scrape does not add them again, new traffic shows', async () => {
    const { sw, pod } = build();
    const reg = createRegistry(sw, { node: 'node1' });
    traffic(sw, pod);
    const spoof = async (): Promise<number> => parse(await reg.metrics()).samples.get('flatnet_drops_total')!.find((x) => x.labels['reason'] === 'spoof_src_mac')!.value;
    expect(await spoof()).toBe(3);
    expect(await spoof()).toBe(3);
    traffic(sw, pod);
    expect(await spoof()).toBe(6);
  });

  it('serves /metrics and /healthz over HTTP, and 404 for the rest', async () => {
    const { sw, pod } = build();
    traffic(sw, pod);
    const reg = createRegistry(sw, { node: 'node1' });
    const server = await serveMetrics(reg, '127.0.0.1', 0);
    try {
      const base = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
      const res = await fetch(`${base}/metrics`);
      expect([res.status, res.headers.get('content-type')]).toEqual([200, reg.contentType]);
      expect(parse(await res.text()).samples.get('flatnet_encapsulated_total')![0]!.value).toBe(2);
      const health = await fetch(`${base}/healthz`);
      expect([health.status, await health.text()]).toEqual([200, 'ok\n']);
      expect((await fetch(`${base}/nope`)).status).toBe(404);
    } finally {
      server.close();
    }
  });

  it("applies the control socket's limits to HTTP: connections beyond the limit closed, idle ones closed", async () => {
    const { sw } = build();
    const server = await serveMetrics(createRegistry(sw, { node: 'node1' }), '127.0.0.1', 0, { maxConnections: 2, idleTimeoutMs: 300 });
    const port = (server.address() as { port: number }).port;
    const open = (): Promise<Socket> => new Promise((resolve, reject) => { const s = connect(port, '127.0.0.1'); s.once('connect', () => resolve(s)); s.once('error', reject); });
    const closed = (s: Socket): Promise<void> => new Promise((r) => { if (s.closed) r(); else s.once('close', () => r()); });
    try {
      const held = [await open(), await open()];
      const third = await open();
      third.on('error', () => {});
      await closed(third); // the server took it and closed it at once
      // Idle connections are closed by the server after idleTimeoutMs.
      await Promise.all(held.map(closed));
      const res = await fetch(`http://127.0.0.1:${port}/healthz`);
      expect(res.status).toBe(200);
    } finally {
      server.close();
    }
  });
});
