/**
 * `flatnet replay` on the fixtures of fixtures/replay/: frames in and out per port and drops by
 * reason as the fixture README says, every hostile frame under its own reason, what the switch
 * emits (encapsulated to the right peer, decapsulated to the right pod) and that tshark decodes
 * it cleanly, the generators' determinism, and typed errors for bad input. No timing here:
 * performance is in bench/README.md and the replay output.
 */

import { execFile } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';
import { hostile, replayFixtures, writeReplayFixtures } from '../../fixtures/gen/replay.js';
import { buildProgram } from '../../src/cli/main.js';
import { type ReplaySummary, replay } from '../../src/cli/replay.js';
import { LinkType, PcapReader } from '../../src/pcap/pcap.js';
import { DEFAULT_UNDERLAY_MACS, DEFAULT_NODE, defaultNodeConfig } from '../../src/replay/node.js';
import { type Progress, ReplayNode } from '../../src/replay/replay.js';
import { formatIpv4, formatMac } from '../../src/wire/addr.js';
import { dissectFrame, type LayerRepr } from '../../src/wire/dissect.js';
import { buildClassicPcap, PcapngBuilder, REPO_ROOT } from '../support/pcap.js';
import { checksumRef } from '../support/refs.js';
import { ExpertSeverity, tsharkMissing } from '../support/tshark.js';

const run = promisify(execFile);
const DIR = join(REPO_ROOT, 'fixtures/replay');
const fixture = (f: string): string => join(DIR, f);
const tmp = mkdtempSync(join(tmpdir(), 'flatnet-replay-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

/** Runs `flatnet replay ...args --json` in-process and returns the summary. */
async function replayCli(...args: string[]): Promise<ReplaySummary> {
  let out = '';
  await buildProgram((s) => { out += s; }).parseAsync(['node', 'flatnet', 'replay', ...args, '--json', '--no-progress', '--warmup', '0']);
  return JSON.parse(out) as ReplaySummary;
}

// ---------------------------------------------------------------------------------------
// What fixtures/replay/README.md says each file produces.

interface Expected { frames: number; in: Record<string, number>; out: Record<string, number>; drops: 'none' | number }

/** "pod-a 150, vxlan:4789 300" -> { 'pod-a': 150, 'vxlan:4789': 300 }; "none" -> {}. */
function portCounts(cell: string): Record<string, number> {
  if (cell.trim() === 'none') return {};
  const out: Record<string, number> = {};
  for (const part of cell.split(',')) {
    const m = /^\s*(\S+) (\d+)\s*$/.exec(part);
    if (m === null) throw new Error(`README: cannot read "${part}"`);
    out[m[1]!] = Number(m[2]);
  }
  return out;
}

function readmeTables(): { files: Map<string, Expected>; hostileDrops: Record<string, number> } {
  const text = readFileSync(join(DIR, 'README.md'), 'utf8');
  const files = new Map<string, Expected>();
  const hostileDrops: Record<string, number> = {};
  for (const line of text.split('\n')) {
    const f = /^\| `([\w-]+\.pcap)` \| (\d+) \| ([^|]+) \| ([^|]+) \| ([^|]+) \|$/.exec(line);
    if (f !== null) {
      const drops = f[5]!.trim();
      files.set(f[1]!, { frames: Number(f[2]), in: portCounts(f[3]!), out: portCounts(f[4]!), drops: drops === 'none' ? 'none' : Number(/^(\d+)/.exec(drops)![1]) });
      continue;
    }
    const d = /^\| ([a-z0-9_]+) \| (\d+) \| [^|]+ \|$/.exec(line);
    if (d !== null) hostileDrops[d[1]!] = Number(d[2]);
  }
  return { files, hostileDrops };
}

const README = readmeTables();

describe('fixtures/replay/README.md', () => {
  it('lists all five fixtures, and hostile.pcap\'s drops add up to its frames', () => {
    expect([...README.files.keys()].sort()).toEqual(readdirSync(DIR).filter((f) => f.endsWith('.pcap')).sort());
    expect(README.files.size).toBe(5);
    const total = Object.values(README.hostileDrops).reduce((a, b) => a + b, 0);
    expect(total).toBe(README.files.get('hostile.pcap')!.drops);
    expect(total).toBe(README.files.get('hostile.pcap')!.frames);
  });

  it('hostile.pcap\'s table is the generator\'s intent: one row per reason, counted from hostile()', () => {
    const intent: Record<string, number> = {};
    for (const f of hostile().frames) intent[f.expect!] = (intent[f.expect!] ?? 0) + 1;
    expect(README.hostileDrops).toEqual(intent);
  });
});

describe('flatnet replay FIXTURE', () => {
  it.each([...README.files.entries()])('%s: frames in and out per port and drops by reason as the README says', async (file, want) => {
    const s = await replayCli(fixture(file));
    expect(s.framesPerPass).toBe(want.frames);
    expect(s.framesIn).toBe(want.frames);
    const inPorts = Object.fromEntries(s.ports.filter((p) => p.framesIn > 0).map((p) => [p.name, p.framesIn]));
    const outPorts = Object.fromEntries(s.ports.filter((p) => p.framesOut > 0).map((p) => [p.name, p.framesOut]));
    expect(inPorts).toEqual(want.in);
    expect(outPorts).toEqual(want.out);
    if (want.drops === 'none') expect(s.drops).toEqual({});
    else {
      expect(s.drops).toEqual(README.hostileDrops);
      expect(s.dropsTotal).toBe(want.drops);
    }
    expect(s.fileTruncated).toBe(false);
    expect(s.skippedLinkType).toBe(0);
  });

  it('hostile.pcap: every frame, replayed alone, is dropped under its intended reason and nothing is emitted', () => {
    const frames = hostile().frames;
    expect(frames.length).toBe(103);
    for (const f of frames) {
      const pcap = buildClassicPcap([{ data: f.data, tsSec: 1, tsNsec: 0, origLen: f.origLen ?? f.data.length }]);
      const node = new ReplayNode(defaultNodeConfig());
      const r = node.run(node.load(pcap), { loops: 1 });
      expect({ name: f.name, drops: r.drops, out: r.framesOut }).toEqual({ name: f.name, drops: { [f.expect!]: 1 }, out: 0 });
    }
  });

  it('--loop N replays N times: N x the frames in, out and dropped; --out keeps the first pass', async () => {
    const out = join(tmp, 'hostile-x3.pcap');
    const s = await replayCli(fixture('hostile.pcap'), '--loop', '3', '--out', out);
    expect([s.loops, s.framesIn, s.dropsTotal]).toEqual([3, 309, 309]);
    expect(s.drops).toEqual(Object.fromEntries(Object.entries(README.hostileDrops).map(([k, v]) => [k, 3 * v])));
    const u = await replayCli(fixture('imix.pcap'), '--loop', '4', '--out', join(tmp, 'imix-x4.pcap'));
    expect([u.framesIn, u.framesOut, u.outFrames]).toEqual([2400, 2400, 600]);
    expect(readOut(join(tmp, 'imix-x4.pcap'))).toHaveLength(600);
    expect(readOut(out)).toHaveLength(0);
  });
});

// ---------------------------------------------------------------------------------------
// What the switch emitted.

function readOut(path: string): Buffer[] {
  const r = PcapReader.open(path);
  expect(r.linkType).toBe(LinkType.ETHERNET);
  return [...r].map((rec) => Buffer.from(rec.data.subarray(rec.off, rec.off + rec.capLen)));
}

function layers(f: Buffer): readonly LayerRepr[] {
  const d = dissectFrame(f);
  expect(d.malformed).toBeUndefined();
  return d.layers;
}

function nth<K extends LayerRepr['layer']>(ls: readonly LayerRepr[], kind: K, n = 0): Extract<LayerRepr, { layer: K }> {
  const l = ls.filter((x) => x.layer === kind)[n];
  if (l === undefined) throw new Error(`no ${kind} #${n}`);
  return l as Extract<LayerRepr, { layer: K }>;
}

/** The frame a pod sent, as the switch must forward it: TTL - 1 (checksum recomputed), MACs rewritten. */
function routed(f: Buffer, dstMac: number, srcMac: number): string {
  const b = Buffer.from(f);
  b.writeUIntBE(dstMac, 0, 6);
  b.writeUIntBE(srcMac, 6, 6);
  b[22] = b[22]! - 1;
  b.writeUInt16BE(0, 24);
  b.writeUInt16BE(checksumRef(b.subarray(14, 34)), 24);
  return b.toString('hex');
}

const cfg = defaultNodeConfig();
const peerFor = (dst: number): (typeof cfg.peers)[number] => cfg.peers.find((p) => p.podCidr.contains(dst))!;

describe('flatnet replay --out', () => {
  it('pod-to-remote-udp64: every frame encapsulated once, to the peer that owns its destination', async () => {
    const out = join(tmp, 'udp64.out.pcap');
    const s = await replayCli(fixture('pod-to-remote-udp64.pcap'), '--out', out);
    const input = readOut(fixture('pod-to-remote-udp64.pcap'));
    const frames = readOut(out);
    expect(frames).toHaveLength(2048);
    expect(s.outFrames).toBe(2048);
    const want: string[] = [];
    for (const f of input) want.push(routed(f, peerFor(f.readUInt32BE(30)).vtepMac, cfg.vtepMac!));
    const got: string[] = [];
    for (const f of frames) {
      const ls = layers(f);
      const eth = nth(ls, 'eth'), ip = nth(ls, 'ipv4'), udp = nth(ls, 'udp'), vx = nth(ls, 'vxlan'), inIp = nth(ls, 'ipv4', 1);
      const peer = peerFor(f.readUInt32BE(50 + 30));
      expect([eth.src, eth.dst]).toEqual([formatMac(DEFAULT_UNDERLAY_MACS.local), formatMac(DEFAULT_UNDERLAY_MACS.nextHop)]);
      expect([ip.src, ip.dst, ip.checksumStatus, ip.ttl]).toEqual(['198.51.100.1', formatIpv4(peer.underlayIp), 'good', 64]);
      expect([udp.dstPort, udp.checksum, udp.length]).toEqual([4789, 0, f.length - 34]);
      expect([vx.vni, vx.flags]).toEqual([1, 0x08]);
      expect([inIp.ttl, inIp.checksumStatus]).toEqual([63, 'good']);
      got.push(f.subarray(50).toString('hex'));
    }
    expect(got.sort()).toEqual(want.sort());
  });

  it('from-peers: every frame decapsulated and routed to the pod it is for, ECN applied per RFC 6040', async () => {
    const out = join(tmp, 'peers.out.pcap');
    await replayCli(fixture('from-peers.pcap'), '--out', out);
    const frames = readOut(out);
    expect(frames).toHaveLength(384);
    const pods = new Map(cfg.pods.map((p) => [formatIpv4(p.ip), p]));
    let ce = 0;
    for (const f of frames) {
      const ls = layers(f);
      expect(ls.filter((l) => l.layer === 'vxlan')).toHaveLength(0);
      const eth = nth(ls, 'eth'), ip = nth(ls, 'ipv4');
      const pod = pods.get(ip.dst)!;
      expect(pod).toBeDefined();
      expect([eth.src, eth.dst, ip.ttl, ip.checksumStatus]).toEqual([formatMac(cfg.vtepMac!), formatMac(pod.mac), 62, 'good']);
      const l4 = ls[2]!;
      expect('checksumStatus' in l4 ? l4.checksumStatus : 'none').toBe('good');
      if (ip.ecn === 3) ce++;
    }
    expect(ce).toBe(48); // the inner ECT(0) under outer CE frames, 1 in 8
  });
});

// tshark: the frames the switch emits must decode cleanly.
const tsharkWhy = await tsharkMissing();
const REQUIRE = process.env['FLATNET_REQUIRE_ORACLES'] === '1';
const NO_TSHARK = tsharkWhy !== null && !REQUIRE;
if (NO_TSHARK) console.warn(`[replay] tshark checks skipped: ${tsharkWhy}`);

/** One row per frame: malformed?, expert severities, and the checksum statuses tshark computed. */
async function tsharkRows(path: string): Promise<{ malformed: boolean; severities: number[]; ip: string[]; udp: string[]; tcp: string[]; icmp: string[] }[]> {
  const conf = join(tmp, 'wireshark-conf'); // empty: no personal preferences or profiles
  mkdirSync(conf, { recursive: true });
  const fields = ['_ws.malformed', '_ws.expert.severity', 'ip.checksum.status', 'udp.checksum.status', 'tcp.checksum.status', 'icmp.checksum.status'];
  const { stdout } = await run('tshark', [
    '-n', '-r', path, '-d', 'udp.port==8472,vxlan',
    '-o', 'ip.check_checksum:TRUE', '-o', 'udp.check_checksum:TRUE', '-o', 'tcp.check_checksum:TRUE',
    '-T', 'fields', '-E', 'separator=/t', '-E', 'occurrence=a', '-E', 'aggregator=,', ...fields.flatMap((f) => ['-e', f]),
  ], { maxBuffer: 64 << 20, env: { ...process.env, WIRESHARK_CONFIG_DIR: conf } });
  return stdout.split('\n').filter((l) => l !== '').map((l) => {
    const c = l.split('\t').map((x) => (x === '' ? [] : x.split(',')));
    return { malformed: c[0]!.length > 0, severities: c[1]!.map(Number), ip: c[2]!, udp: c[3]!, tcp: c[4]!, icmp: c[5]! };
  });
}

describe.skipIf(NO_TSHARK)(`tshark decodes what replay reads and writes${NO_TSHARK ? ` [SKIPPED: ${tsharkWhy}]` : ''}`, () => {
  const valid = ['pod-to-remote-udp64.pcap', 'imix.pcap', 'tcp-bulk.pcap', 'from-peers.pcap'];
  it.each(valid.flatMap((f) => [[f, 'the fixture'], [f, '--out']] as const))('%s (%s): no malformed frame, no expert error, every checksum good', async (file, which) => {
    let path = fixture(file);
    if (which === '--out') {
      path = join(tmp, `tshark-${file}`);
      const s = await replayCli(fixture(file), '--out', path);
      expect(s.outFrames).toBe(s.framesOut);
    }
    const rows = await tsharkRows(path);
    expect(rows).toHaveLength(README.files.get(file)!.frames);
    rows.forEach((r, i) => {
      const what = `${file} ${which} frame ${i + 1}`;
      expect(r.malformed, what).toBe(false);
      expect(r.severities.filter((s) => s >= ExpertSeverity.ERROR), what).toEqual([]);
      expect(r.ip.length, what).toBeGreaterThan(0);
      expect(r.ip.every((s) => s === '1'), `${what}: ip ${r.ip}`).toBe(true); // 1 = good
      // 3 = not present: the outer UDP checksum zero (RFC 7348), as node3 and this node send it.
      expect(r.udp.every((s) => s === '1' || s === '3'), `${what}: udp ${r.udp}`).toBe(true);
      expect(r.tcp.every((s) => s === '1'), `${what}: tcp ${r.tcp}`).toBe(true);
      expect(r.icmp.every((s) => s === '1'), `${what}: icmp ${r.icmp}`).toBe(true);
    });
  });
});

// ---------------------------------------------------------------------------------------

describe('fixture generators', () => {
  it('are deterministic: two runs write the same bytes, and the committed files are those bytes', () => {
    const a = join(tmp, 'gen-a'), b = join(tmp, 'gen-b');
    const pa = writeReplayFixtures(a), pb = writeReplayFixtures(b);
    expect(pa.map((p) => p.slice(a.length))).toEqual(pb.map((p) => p.slice(b.length)));
    for (let i = 0; i < pa.length; i++) {
      const name = pa[i]!.slice(a.length + 1);
      const bytes = readFileSync(pa[i]!);
      expect(bytes.equals(readFileSync(pb[i]!)), name).toBe(true);
      expect(bytes.equals(readFileSync(fixture(name))), `${name} differs from fixtures/replay/ (run npm run fixtures)`).toBe(true);
    }
  });

  it('stay small and use only 198.51.100.0/24 and 10.244.0.0/16 addresses', () => {
    for (const f of replayFixtures()) {
      expect(readFileSync(fixture(f.file)).length, f.file).toBeLessThan(300_000);
      for (const fr of f.frames) {
        const d = dissectFrame(fr.data);
        for (const l of d.layers) {
          if (l.layer === 'ipv4' || l.layer === 'arp') {
            const addrs = l.layer === 'ipv4' ? [l.src, l.dst] : [l.spa, l.tpa];
            for (const a of addrs) expect(/^(198\.51\.100|10\.244)\./.test(a), `${f.file} ${fr.name ?? ''}: ${a}`).toBe(true);
          }
        }
      }
    }
  });
});

describe('bad input: a typed error or a named outcome, never a crash', () => {
  const write = (name: string, b: Buffer | string): string => {
    const p = join(tmp, name);
    writeFileSync(p, b);
    return p;
  };
  const fails = (args: string[], code: string): Promise<void> => expect(replayCli(...args)).rejects.toMatchObject({ code });

  it('a missing file, a file that is not a capture, a cut header, a non-Ethernet link type, a corrupt pcapng block', async () => {
    await fails([join(tmp, 'nope.pcap')], 'ERR_REPLAY_READ');
    await fails([write('text.pcap', 'hello, this is not a capture\n')], 'ERR_PCAP_BAD_MAGIC');
    await fails([write('short.pcap', Buffer.from([0xd4, 0xc3, 0xb2]))], 'ERR_PCAP_TRUNCATED');
    await fails([write('raw.pcap', buildClassicPcap([{ data: Buffer.alloc(40), tsSec: 0, tsNsec: 0, origLen: 40 }], { linkType: LinkType.RAW }))], 'ERR_PCAP_LINKTYPE');
    const ng = new PcapngBuilder().shb().idb(1).epb(0, 1n, Buffer.alloc(60)).block(6, Buffer.alloc(8), 14).build();
    await fails([write('corrupt.pcapng', ng)], 'ERR_PCAP_MALFORMED');
  });

  it('a capture that ends mid-frame replays the frames before it, and says so', () => {
    const whole = readFileSync(fixture('imix.pcap'));
    const path = write('cut.pcap', whole.subarray(0, whole.length - 100));
    let err = '';
    const s = replay(path, { loop: 1, json: true, progress: false, warmup: 0 }, (m) => { err += m; });
    expect(s.fileTruncated).toBe(true);
    expect(s.framesIn).toBe(599);
    expect(err).toMatch(/ends in the middle of a frame/);
  });

  it('an empty capture, and pcapng frames of another link type, are named outcomes', async () => {
    const empty = await replayCli(write('empty.pcap', buildClassicPcap([])));
    expect([empty.framesIn, empty.framesOut, empty.pps, empty.nsPerFrame]).toEqual([0, 0, 0, 0]);
    const frame = readOut(fixture('pod-to-remote-udp64.pcap'))[0]!;
    const ng = new PcapngBuilder().shb().idb(1).idb(LinkType.RAW).epb(0, 1n, frame).epb(1, 2n, frame.subarray(14)).epb(0, 3n, frame).build();
    const s = await replayCli(write('mixed.pcapng', ng));
    expect([s.framesIn, s.skippedLinkType, s.framesOut]).toEqual([2, 1, 2]);
  });

  it('bad options and configurations', async () => {
    await fails([fixture('imix.pcap'), '--underlay-mac', 'zz'], 'ERR_REPLAY_BAD_OPTION');
    await fails([fixture('imix.pcap'), '--config', join(tmp, 'missing.json')], 'ERR_CONFIG_READ');
    await fails([fixture('imix.pcap'), '--config', write('bad.json', '{ "node": ')], 'ERR_CONFIG_JSON');
    await fails([fixture('imix.pcap'), '--config', write('invalid.json', JSON.stringify({ ...DEFAULT_NODE, podCidr: '10.244.1.0/33' }))], 'ERR_CONFIG_INVALID_CIDR');
    await fails([fixture('imix.pcap'), '--out', join(tmp, 'no-such-dir', 'out.pcap')], 'ERR_REPLAY_WRITE');
    // A bad capture fails before the output file is created.
    const out = join(tmp, 'never.pcap');
    await fails([write('text2.pcap', 'nope nope nope'), '--out', out], 'ERR_PCAP_BAD_MAGIC');
    expect(readdirSync(tmp)).not.toContain('never.pcap');
    const p = buildProgram(() => {});
    for (const c of p.commands) c.exitOverride().configureOutput({ writeErr: () => {} });
    await expect(p.parseAsync(['node', 'flatnet', 'replay', fixture('imix.pcap'), '--loop', '0'])).rejects.toMatchObject({ code: 'commander.invalidArgument' });
  });

  it('a configuration of another node replays with its own ports and addresses', async () => {
    const other = {
      ...DEFAULT_NODE, node: 'node2', podCidr: '10.244.2.0/24', vtepMac: '0e:00:0a:f4:02:00', underlay: { interface: 'eth0', address: '198.51.100.2', mtu: 1550 },
      host: { interface: 'flatnet0', mac: '02:00:0a:f4:02:fe' },
      peers: [{ name: 'node1', underlay: '198.51.100.1', podCidr: '10.244.1.0/24', vtepMac: '0e:00:0a:f4:01:00' }],
      pods: [{ name: 'web', interface: 'veth-web', ip: '10.244.2.20', mac: '02:00:0a:f4:02:14' }],
    };
    // Node1's pods' traffic seen from node2: nothing of it is node2's to forward.
    const s = await replayCli(fixture('pod-to-remote-udp64.pcap'), '--config', write('node2.json', JSON.stringify(other)));
    expect(s.node).toBe('node2');
    expect(s.ports.map((p) => p.name)).toEqual(['web', 'flatnet0', 'vxlan:4789']);
    expect(s.framesIn).toBe(2048);
    expect(s.ports[2]!.framesIn).toBe(2048);
    expect(s.framesOut).toBe(0);
    expect(s.drops).toEqual({ udp_port_mismatch: 2048 });
  });
});

describe('output', () => {
  it('the table names ports, rate, heap and every drop reason with its count', async () => {
    let out = '';
    await buildProgram((x) => { out += x; }).parseAsync(['node', 'flatnet', 'replay', fixture('hostile.pcap'), '--no-progress', '--warmup', '0']);
    expect(out).toMatch(/^replay .*hostile\.pcap: 103 frames x 1 pass$/m);
    expect(out).toMatch(/^ {2}frames in {7}103$/m);
    expect(out).toMatch(/^ {2}rate {12}.* ns\/frame$/m);
    expect(out).toMatch(/^ {2}heap {12}\d+\.\d\d bytes\/frame allocated/m);
    expect(out).toMatch(/^ {2}vxlan:4789 +overlay +79 +0$/m);
    for (const [reason, n] of Object.entries(README.hostileDrops)) expect(out).toMatch(new RegExp(`^ {2}${reason} +${n}$`, 'm'));
  });

  it('--daemon-clock (the daemon\'s per-batch clock) replays the same: only the clock differs', async () => {
    const a = await replayCli(fixture('imix.pcap'), '--loop', '2');
    const b = await replayCli(fixture('imix.pcap'), '--loop', '2', '--daemon-clock');
    expect([a.clock, b.clock]).toEqual(['replay', 'daemon']);
    expect(b.ports).toEqual(a.ports);
    expect(b.drops).toEqual(a.drops);
  });

  it('the progress callback reports growing counts during a run', () => {
    const node = new ReplayNode(defaultNodeConfig());
    const seen: Progress[] = [];
    const r = node.run(node.load(readFileSync(fixture('pod-to-remote-udp64.pcap'))), { loops: 40, progressMs: 0, onProgress: (p) => seen.push(p) });
    expect(seen.length).toBeGreaterThan(0);
    for (let i = 1; i < seen.length; i++) expect(seen[i]!.framesIn).toBeGreaterThan(seen[i - 1]!.framesIn);
    expect(seen.every((p) => p.loops === 40 && p.pass >= 1 && p.pass <= 40 && p.framesIn <= r.framesIn)).toBe(true);
  });
});
