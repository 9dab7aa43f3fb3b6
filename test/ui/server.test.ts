// `flatnet ui`'s server against fake daemons: real unix control sockets (ControlServer) whose
// handler answers like a daemon, so that the API, its errors, the poll (rates, a node going
// down) and the token are tested without root. The browser and a real lab: ui.netns.test.ts.
import { mkdtempSync, rmSync } from 'node:fs';
import { get as httpGet } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { ControlServer } from '../../src/daemon/control.js';
import { FlatnetError } from '../../src/errors.js';
import { ClusterSource } from '../../src/ui/cluster.js';
import type { ClusterSnapshot, EncapView, PathView, PipelineView } from '../../src/ui/model.js';
import { isLoopback, parseListen, statusOf, UiServer } from '../../src/ui/server.js';

// The frame n1 would send for `icmp to 10.244.2.10` from n1p0 (from `flatnet trace --json` on a
// lab): outer Ethernet (zeros: the kernel writes it), IPv4 198.51.100.1 > .2, UDP to 4789, VXLAN
// VNI 1, then the inner frame (TTL 63) with 56 bytes of ping payload.
const TUNNEL_FRAME = '00000000000000000000000008004500008600000000401125fdc6336401c6336402f95b12b50072000008000000000001000e000af402000e000af40100080045000054000140003f0122ad0af4010a0af4020a080000eb00010001000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f202122232425262728292a2b2c2d2e2f3031323334353637';

interface Fake { node: string; peers: { name: string; underlay: string; txPackets: number; txBytes: number; rxPackets: number; rxBytes: number }[]; drops: { reason: string; count: number; help: string }[]; calls: string[] }

function daemon(f: Fake, underlay: string): (cmd: string, args: Readonly<Record<string, unknown>>) => unknown {
  return (cmd, args) => {
    f.calls.push(cmd === 'show' ? `show ${String(args['what'])}` : cmd);
    if (cmd === 'status') return { node: f.node, mode: 'l3', vni: 7, port: 4789, vtepMac: '0e:00:0a:f4:01:00', vtepIp: '10.244.1.0', podCidr: '10.244.1.0/24', underlay, underlayMtu: 1500, podMtu: 1450 };
    if (cmd === 'show') {
      switch (args['what']) {
        case 'ports': return [
          { id: 0, name: 'flatnet0', role: 'host', kind: 'tap', backend: 'tap', io: null, ip: null, mac: '66:de:4c:09:63:1b', rxPackets: 1, rxBytes: 1, rxBatches: 1, rxErrors: 0, txPackets: 2, txBytes: 2, txBatches: 1, txErrors: 0, txDropped: 0, kernelDrops: null },
          { id: 2, name: `${f.node}p0`, role: 'pod', kind: 'packet', backend: 'packet', io: null, ip: '10.244.1.10', mac: '02:00:0a:f4:01:0a', rxPackets: 5, rxBytes: 500, rxBatches: 5, rxErrors: 0, txPackets: 6, txBytes: 600, txBatches: 6, txErrors: 0, txDropped: 0, kernelDrops: { socket: 0, ifRxDropped: 0, ifTxDropped: 0, total: 0 } },
        ];
        case 'peers': return f.peers.map((p) => ({ ...p, podCidr: '10.244.2.0/24', vtepMac: '0e:00:0a:f4:02:00', vni: 7, port: 4789 }));
        case 'counters': return { counters: { rx_frames: 10, tx_frames: 10, dropped: f.drops.reduce((n, d) => n + d.count, 0) }, drops: f.drops };
        case 'ipam': return { podCidr: '10.244.1.0/24', gateway: '10.244.1.1', capacity: 253, free: 252, allocations: [{ ip: '10.244.1.10', containerId: 'c1', ifname: 'eth0', ipam: 'flatnet', pod: `${f.node}p0`, interface: 'fl0123456789a', namespace: 'default', k8sName: `${f.node}p0`, since: '', attached: true }] };
        case 'policy': return [];
        case 'services': return [];
      }
      throw new FlatnetError('ERR_CONTROL_BAD_REQUEST', 'what');
    }
    if (cmd === 'trace') {
      const packet = args['packet'] as { flow?: string };
      if (packet.flow?.includes('len 1500')) {
        return { in: { port: args['in'], role: 'pod' }, packet: { hex: '', length: 1514, vnet: null }, outcome: 'drop', drop: { reason: 'mtu_exceeded', help: '' },
          steps: [{ stage: 'egress', looked: '', matched: [{ what: 'mtu', detail: 'DF set and 1500 > 1450: ICMP fragmentation needed (next-hop MTU 1450)' }], verdict: 'drop mtu_exceeded' }],
          frames: [{ port: args['in'], role: 'pod', kind: 'icmp-error', to: null, hex: '', length: 590 }], droppedCopies: [], notes: [] };
      }
      return { in: { port: args['in'], role: 'pod' }, packet: { hex: '', length: 98, vnet: null }, outcome: 'tunnel', drop: null,
        steps: [{ stage: 'route', looked: 'destination 10.244.2.10', matched: [], verdict: 'tunnel to n2 (198.51.100.2)' }],
        frames: [{ port: 'vxlan:4789', role: 'overlay', kind: 'forwarded', to: '198.51.100.2:4789', hex: TUNNEL_FRAME, length: TUNNEL_FRAME.length / 2 }], droppedCopies: [], notes: [] };
    }
    throw new FlatnetError('ERR_CONTROL_UNKNOWN_COMMAND', cmd);
  };
}

describe('flatnet ui server (fake daemons on real control sockets)', () => {
  let dir: string;
  let a: Fake, b: Fake;
  let sa: ControlServer, sb: ControlServer | null;
  let ui: UiServer;
  let base: string;

  const get = async (path: string, init: RequestInit = {}): Promise<{ status: number; body: unknown; headers: Headers }> => {
    const r = await fetch(`${base}${path}`, init);
    const text = await r.text();
    return { status: r.status, body: text.startsWith('{') || text.startsWith('[') ? JSON.parse(text) as unknown : text, headers: r.headers };
  };

  /** The first snapshot (polled every 50 ms, for up to 3 s) for which `ok` holds. */
  const until = async (ok: (s: ClusterSnapshot) => boolean): Promise<ClusterSnapshot> => {
    const t0 = Date.now();
    for (;;) {
      const snap = (await get('/api/cluster')).body as ClusterSnapshot;
      if (ok(snap)) return snap;
      if (Date.now() - t0 > 3000) return snap;
      await new Promise((r) => setTimeout(r, 50));
    }
  };

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'flatnet-ui-'));
    a = { node: 'n1', peers: [{ name: 'n2', underlay: '198.51.100.2', txPackets: 0, txBytes: 0, rxPackets: 0, rxBytes: 0 }], drops: [], calls: [] };
    b = { node: 'n2', peers: [{ name: 'n1', underlay: '198.51.100.1', txPackets: 0, txBytes: 0, rxPackets: 0, rxBytes: 0 }], drops: [], calls: [] };
    sa = await ControlServer.listen(join(dir, 'a.sock'), daemon(a, '198.51.100.1'));
    sb = await ControlServer.listen(join(dir, 'b.sock'), daemon(b, '198.51.100.2'));
    ui = new UiServer(new ClusterSource({ sockets: [join(dir, 'a.sock'), join(dir, 'b.sock')], requestTimeoutMs: 500 }), { host: '127.0.0.1', port: 0, token: null, pollMs: 200 });
    base = (await ui.listen()).url.replace(/\/$/, '');
  });
  afterAll(async () => {
    await ui.close();
    await sa.close();
    await sb?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('the cluster: each daemon named as it says, its pods from show ports + ipam, the tunnel with both directions', async () => {
    const { status, body } = await get('/api/cluster');
    expect(status).toBe(200);
    const snap = body as ClusterSnapshot;
    expect(snap.nodes.map((n) => [n.name, n.up, n.underlayIp, n.podMtu, n.vni])).toEqual([['n1', true, '198.51.100.1', 1450, 7], ['n2', true, '198.51.100.2', 1450, 7]]);
    expect(snap.nodes[0]!.pods).toEqual([expect.objectContaining({ name: 'n1p0', namespace: 'default', ip: '10.244.1.10', mac: '02:00:0a:f4:01:0a', hostIf: 'fl0123456789a', mtu: 1450, source: 'daemon' })]);
    expect(snap.nodes[0]!.host).toEqual({ name: 'flatnet0', mac: '66:de:4c:09:63:1b', rxPackets: 1, txPackets: 2 });
    expect(snap.tunnels).toEqual([expect.objectContaining({ a: 'n1', b: 'n2', aUnderlay: '198.51.100.1', bUnderlay: '198.51.100.2', vni: 7, port: 4789 })]);
  });

  it('rates: packets and bits per second from two polls, and drops by reason placed on their stage', async () => {
    await get('/api/cluster');
    a.peers[0]!.txPackets += 100;
    a.peers[0]!.txBytes += 100_000;
    a.drops = [{ reason: 'spoof_src_ip', count: 5, help: "pod packet whose source IP is not the pod's" }];
    // The poll after the change sees it (a rate is the difference between two polls).
    const snap = await until((x) => (x.tunnels[0]?.ab?.pps ?? 0) > 0);
    const t = snap.tunnels[0]!;
    expect(t.ab!.countedBy).toBe('n1');
    expect(t.ab!.pps).toBeGreaterThan(50);
    expect(t.ab!.bps).toBeGreaterThan(8 * 50_000);
    const n1 = snap.nodes.find((n) => n.name === 'n1')!;
    expect(n1.drops).toEqual([expect.objectContaining({ reason: 'spoof_src_ip', count: 5, stage: 'ingress' })]);
    expect(n1.dropRate).toBeGreaterThan(0);
    const p = (await get('/api/nodes/n1/pipeline')).body as PipelineView;
    expect(p.stages.map((s) => s.stage)).toEqual(['ingress', 'service-nat', 'policy-egress', 'route', 'policy-ingress', 'egress', 'transmit']);
    expect(p.stages[0]!.drops.map((d) => d.reason)).toEqual(['spoof_src_ip']);
    expect(p.ports.map((x) => x.name)).toEqual(['flatnet0', 'n1p0']);
  });

  it('serves the read-only commands of the daemon registry, checked with its schemas', async () => {
    const r = await get('/api/nodes/n1/cmd/show?what=peers');
    expect(r.status).toBe(200);
    expect((r.body as { name: string }[]).map((p) => p.name)).toEqual(['n2']);
    const cmds = (await get('/api/commands')).body as { name: string; served: boolean }[];
    expect(cmds.find((c) => c.name === 'trace')?.served).toBe(true);
    expect(cmds.find((c) => c.name === 'pod-attach')?.served).toBe(false);
  });

  // What a bad request gets: status, code, and the field when one is to blame.
  it.each([
    ['/api/nodes/n1/cmd/show?what=bogus', 400, 'ERR_CONTROL_BAD_REQUEST', 'what'],
    ['/api/nodes/n1/cmd/show', 400, 'ERR_CONTROL_BAD_REQUEST', 'what'],
    ['/api/nodes/n1/cmd/show?what=ports&extra=1', 400, 'ERR_CONTROL_BAD_REQUEST', undefined],
    ['/api/nodes/n1/cmd/show?what..x=1', 400, 'ERR_UI_BAD_QUERY', undefined],
    ['/api/encap?from=n1p0&to=n2p0&proto=sctp', 400, 'ERR_UI_BAD_QUERY', 'proto'],
    ['/api/encap?from=n1p0', 400, 'ERR_UI_BAD_QUERY', undefined],
    ['/api/encap?hex=abc', 400, 'ERR_UI_BAD_QUERY', 'hex'],
    ['/api/path?from=n1p0&to=n2p0&src=10.244.999.1', 400, 'ERR_UI_BAD_QUERY', 'src'],
    ['/api/path?from=n1p0&to=n2p0&len=5', 400, 'ERR_UI_BAD_QUERY', 'len'],
    ['/api/path?from=n1p0&to=n2p0&bogus=1', 400, 'ERR_UI_BAD_QUERY', undefined],
    ['/api/nodes/n9', 404, 'ERR_UI_NO_NODE', undefined],
    ['/api/nodes/n9/cmd/status', 404, 'ERR_UI_NO_NODE', undefined],
    ['/api/nodes/n9/pipeline', 404, 'ERR_UI_NO_NODE', undefined],
    ['/api/nodes/n1/cmd/nosuch', 404, 'ERR_UI_NO_COMMAND', undefined],
    ['/api/path?from=nopod&to=n2p0', 404, 'ERR_UI_NO_POD', undefined],
    ['/api/nowhere', 404, 'ERR_UI_NOT_FOUND', undefined],
    ['/js/../../etc/passwd', 404, 'ERR_UI_NOT_FOUND', undefined],
    ['/api/nodes/n1/cmd/pod-detach?name=n1p0', 405, 'ERR_UI_READ_ONLY', undefined],
    ['/api/nodes/n1/cmd/reload', 405, 'ERR_UI_READ_ONLY', undefined],
  ])('GET %s -> %i %s', async (path, status, code, field) => {
    const r = await get(path);
    expect(r.status).toBe(status);
    const e = (r.body as { error: { code: string; message: string; field?: string } }).error;
    expect(e.code).toBe(code);
    expect(e.message.length).toBeGreaterThan(5);
    expect(e.field).toBe(field);
  });

  it('answers anything but GET with 405 and sends nothing to the daemon', async () => {
    const before = a.calls.length;
    for (const method of ['POST', 'PUT', 'DELETE']) {
      const r = await get('/api/nodes/n1/cmd/pod-detach?name=n1p0', { method, body: '{}' });
      expect([r.status, (r.body as { error: { code: string } }).error.code, r.headers.get('allow')]).toEqual([405, 'ERR_UI_READ_ONLY', 'GET, HEAD']);
    }
    // Only the poll's reads reached the daemon.
    expect(a.calls.slice(before).filter((c) => c !== 'status' && !c.startsWith('show'))).toEqual([]);
  });

  it('the encapsulation of a trace: each header with its offsets, 50 bytes of overhead, VNI and the peer; the MTU probe traced', async () => {
    const r = await get('/api/encap?from=n1p0&to=10.244.2.10');
    expect(r.status).toBe(200);
    const v = r.body as EncapView;
    expect(v.flow).toBe('icmp to 10.244.2.10');
    expect(v.headers.map((h) => [h.layer, h.offset, h.length, h.overhead])).toEqual([
      ['outer-eth', 0, 14, true], ['outer-ipv4', 14, 20, true], ['outer-udp', 34, 8, true], ['vxlan', 42, 8, true],
      ['inner-eth', 50, 14, false], ['inner-ipv4', 64, 20, false], ['inner-l4', 84, 8, false], ['payload', 92, 56, false],
    ]);
    expect(v.overhead).toBe(50);
    const field = (layer: string, name: string): unknown => v.headers.find((h) => h.layer === layer)!.fields.find((f) => f.name === name);
    expect(field('vxlan', 'VNI')).toEqual({ name: 'VNI', value: '1', offset: 46, length: 3, note: null });
    expect(field('outer-ipv4', 'destination')).toMatchObject({ value: '198.51.100.2', offset: 30 });
    expect(field('outer-udp', 'destination port')).toMatchObject({ value: '4789', offset: 36 });
    expect(field('inner-ipv4', 'TTL')).toMatchObject({ value: '63', offset: 72 });
    expect(v.mtu).toMatchObject({ underlayMtu: 1500, overhead: 50, podMtu: 1450, probe: { flow: 'icmp to 10.244.2.10 len 1500 df', outcome: 'drop', drop: 'mtu_exceeded', reply: 'icmp-error out n1p0 (590 bytes)' } });
  });

  it('the packet path: pod, veth, the stages of the source node, its VTEP, the underlay, and the peer when it traces', async () => {
    const v = (await get('/api/path?from=n1p0&to=10.244.2.10&proto=udp')).body as PathView;
    expect(v.flow).toBe('udp to 10.244.2.10:5201');
    expect(v.hops.slice(0, 5).map((h) => [h.kind, h.label])).toEqual([['pod', 'n1p0'], ['veth', 'fl0123456789a'], ['stage', 'route'], ['vtep', 'VTEP n1'], ['underlay', 'underlay']]);
    // n2 answers the same fake trace: its hops follow the peer's VTEP.
    expect(v.hops[5]).toMatchObject({ kind: 'vtep', label: 'VTEP n2', ok: true });
  });

  it('a node whose daemon stops is shown down with why, and the server keeps answering', async () => {
    await sb!.close();
    sb = null;
    const snap = await until((x) => x.nodes.find((n) => n.name === 'n2')?.up === false);
    const n2 = snap.nodes.find((n) => n.name === 'n2')!;
    expect(n2.up).toBe(false);
    expect(n2.error).toMatch(/cannot reach the flatnet daemon/);
    const r = await get('/api/nodes/n2/cmd/status');
    expect([r.status, (r.body as { error: { code: string } }).error.code]).toEqual([502, 'ERR_CONTROL_UNREACHABLE']);
    expect((await get('/api/cluster')).status).toBe(200);
  });

  it('serves the page and its scripts with a same-origin-only CSP, and refuses a Host that is not loopback', async () => {
    const page = await get('/');
    expect(page.status).toBe(200);
    expect(page.body).toContain('<script type="module" src="/js/app.js">');
    expect(page.headers.get('content-security-policy')).toContain("default-src 'self'");
    // fetch() may not set Host; node:http may (as a DNS-rebinding page's requests would carry it).
    const status = await new Promise<number>((resolve, reject) => {
      const req = httpGet(`${base}/api/cluster`, { headers: { Host: 'evil.example:80' } }, (res) => { res.resume(); resolve(res.statusCode ?? 0); });
      req.on('error', reject);
    });
    expect(status).toBe(403);
  });

  it('events: a cluster snapshot as Server-Sent Events', async () => {
    const ctl = new AbortController();
    const r = await fetch(`${base}/api/events`, { signal: ctl.signal });
    expect(r.headers.get('content-type')).toContain('text/event-stream');
    const reader = r.body!.getReader();
    let text = '';
    while (!text.includes('event: cluster')) text += new TextDecoder().decode((await reader.read()).value);
    ctl.abort();
    const data = /data: (.*)\n/.exec(text.slice(text.indexOf('event: cluster')))![1]!;
    expect((JSON.parse(data) as ClusterSnapshot).nodes.map((n) => n.name)).toEqual(['n1', 'n2']);
  });
});

describe('flatnet ui beyond loopback: a token on every request', () => {
  let ui: UiServer | null = null;
  afterEach(async () => { await ui?.close(); ui = null; });

  it('refuses to listen beyond loopback without a token of 16+ characters', () => {
    const src = new ClusterSource({ lab: 'nolabhere' });
    expect(() => new UiServer(src, { host: '0.0.0.0', port: 0, token: null })).toThrow(expect.objectContaining({ code: 'ERR_UI_TOKEN' }));
    expect(() => new UiServer(src, { host: '0.0.0.0', port: 0, token: 'short' })).toThrow(expect.objectContaining({ code: 'ERR_UI_TOKEN' }));
  });

  it('with a token: 401 without it, 200 with the bearer header, and ?token= sets a cookie the page then uses', async () => {
    const token = 'a-token-of-enough-length';
    ui = new UiServer(new ClusterSource({ lab: 'nolabhere' }), { host: '127.0.0.1', port: 0, token });
    const base = (await ui.listen()).url;
    expect((await fetch(`${base}api/cluster`)).status).toBe(401);
    expect((await fetch(`${base}api/cluster`, { headers: { Authorization: 'Bearer wrong-token-of-some-length' } })).status).toBe(401);
    expect((await fetch(`${base}api/cluster`, { headers: { Authorization: `Bearer ${token}` } })).status).toBe(200);
    const first = await fetch(`${base}?token=${token}`);
    expect(first.status).toBe(200);
    const cookie = first.headers.get('set-cookie')!.split(';')[0]!;
    expect(first.headers.get('set-cookie')).toContain('HttpOnly');
    expect((await fetch(`${base}api/cluster`, { headers: { Cookie: cookie } })).status).toBe(200);
  });

  it('a lab that is not there (or was torn down) is an empty cluster, not an error', async () => {
    ui = new UiServer(new ClusterSource({ lab: 'nolabhere' }), { host: '127.0.0.1', port: 0, token: null });
    const base = (await ui.listen()).url;
    const snap = (await (await fetch(`${base}api/cluster`)).json()) as ClusterSnapshot;
    expect([snap.labPresent, snap.nodes, snap.source]).toEqual([false, [], 'lab nolabhere']);
  });
});

describe('flatnet ui arguments', () => {
  it.each([
    ['127.0.0.1:8080', { host: '127.0.0.1', port: 8080 }],
    ['[::1]:0', { host: '::1', port: 0 }],
    ['localhost:9', { host: 'localhost', port: 9 }],
  ])('--listen %s', (v, want) => expect(parseListen(v)).toEqual(want));
  it.each(['8080', '127.0.0.1', '127.0.0.1:65536', 'host:port', ':80'])('--listen %s is refused', (v) => {
    expect(() => parseListen(v)).toThrow(expect.objectContaining({ code: 'ERR_UI_LISTEN' }));
  });
  it('loopback is 127/8, ::1 and localhost only', () => {
    expect(['127.0.0.1', '127.3.2.1', '::1', 'localhost'].map(isLoopback)).toEqual([true, true, true, true]);
    expect(['0.0.0.0', '10.0.0.1', '198.51.100.1', '::', 'localhost.evil.example'].map(isLoopback)).toEqual([false, false, false, false, false]);
  });
  it('needs something to show, and not both --lab and --socket', () => {
    expect(() => new ClusterSource({})).toThrow(expect.objectContaining({ code: 'ERR_UI_USAGE' }));
    expect(() => new ClusterSource({ lab: 'x', sockets: ['/tmp/s'] })).toThrow(expect.objectContaining({ code: 'ERR_UI_USAGE' }));
  });
  it('maps daemon errors to HTTP statuses', () => {
    expect(statusOf(new FlatnetError('ERR_TRACE_PACKET', 'x'))).toBe(400);
    expect(statusOf(new FlatnetError('ERR_NOT_FOUND', 'x'))).toBe(404);
    expect(statusOf(new FlatnetError('ERR_CONTROL_UNREACHABLE', 'x'))).toBe(502);
    expect(statusOf(new Error('x'))).toBe(500);
  });
});
