/**
 * The pipeline fuzz harness: generated frames, valid ones and mutations of them, through a
 * whole switch in-process (the daemon's pipeline over in-memory ports), one frame at a time,
 * checking after each that
 *   - nothing threw;
 *   - the frame had exactly one outcome: it was read once (rx_frames + 1) and either dropped
 *     under exactly one named reason, or forwarded (at least one frame left a port: delivered,
 *     tunnelled, flooded, fragmented, or answered);
 *   - no table grew beyond its limit (the FDB under learning from random sources, ports,
 *     peers, routes).
 * Frames come from a seeded PRNG (mulberry32), so a run is replayable: a failure names the run
 * seed and the frame's index, and `npm run fuzz -- --seed S --frames INDEX+1` reproduces it
 * (the switch's clock is a FakeClock advanced 1 ms per frame, so history replays too).
 *
 * Two switches take turns: L3 with the daemon's overlay framing (UDP payloads: VXLAN header and
 * inner frame, the source address in the metadata) and L2 with Ethernet framing (the whole
 * outer frame through the codec). Frame sources: two pods, the host, the overlay.
 *
 * Mutations: none (valid frames, 10%), structure-aware (1-3 header fields of the frame's
 * layers set to boundary or meaningful values: our addresses, broadcast, network addresses,
 * MACs of pods and VTEPs; the IPv4 checksum refilled half the time so that the frame gets
 * past it, 45%), random (bit flips, byte writes, truncation, extension, 35%), and random bytes
 * of random length (10%).
 */

import { GW, HOST_MAC, N2_MAC, N3_MAC, node1Peers, P1, P2, UL1, UL2, UL3, VTEP_MAC } from '../fixtures/node1.js';
import { Cidr } from '../src/fib/cidr.js';
import { FakeClock } from '../src/fib/clock.js';
import { Batch } from '../src/buf/batch.js';
import { MemoryPort } from '../src/io/memory-port.js';
import { DROP_NAMES } from '../src/pipeline/drop.js';
import { Framing, Switch, SwitchMode, type SwitchOptions } from '../src/pipeline/switch.js';
import { parseIpv4, parseMac } from '../src/wire/addr.js';
import { arpFrame, ipv4Frame, type L3Spec } from '../src/wire/build.js';
import { IpProto } from '../src/wire/consts.js';

/**
 * Egress reasons a flooded frame's copies are counted under, one per copy: the port's write,
 * and what fragmenting or segmenting a copy for a VTEP refuses (dropForStatus: a copy that
 * does not fit, or whose IPv4 header cannot be fragmented).
 */
const PER_COPY = new Set(['mtu_exceeded', 'tx_busy', 'tx_error', 'no_buffer', 'too_many_segments', 'no_egress_port', 'port_detached', 'hairpin',
  'ipv4_bad_checksum', 'ipv4_bad_options', 'gso_unsupported', 'offload_invalid']);
/** Copies an L2 flood makes here: two VTEPs, two pods, the host, less the ingress port. */
const FLOOD_COPIES = 4;

/** A small seeded PRNG (mulberry32). */
export class Prng {
  private s: number;
  constructor(seed: number) { this.s = seed >>> 0; }
  next(): number {
    let t = (this.s = (this.s + 0x6d2b79f5) >>> 0);
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return (t ^ (t >>> 14)) >>> 0;
  }
  below(n: number): number { return this.next() % n; }
  pick<T>(a: readonly T[]): T { return a[this.below(a.length)]!; }
  chance(p: number): boolean { return this.next() / 0x1_0000_0000 < p; }
}

const mac = parseMac, ip = parseIpv4;
/** The FDB limit of the L2 switch: small, so that random sources reach it. */
export const FUZZ_FDB_LIMIT = 64;

const PEERS = node1Peers();

const IPS = [P1.ip, P2.ip, GW, ip('10.244.1.0'), ip('10.244.1.255'), ip('10.244.2.5'), ip('10.244.2.0'), ip('10.244.2.255'), ip('10.244.3.7'),
  ip('10.244.9.9'), UL1, UL2, UL3, ip('198.51.100.9'), 0, 0xffff_ffff, ip('224.0.0.1'), ip('127.0.0.1'), ip('8.8.8.8')];
const MACS = [P1.mac, P2.mac, VTEP_MAC, N2_MAC, N3_MAC, HOST_MAC, 0xffff_ffff_ffff, 0, 0x0100_5e00_0001, 0x3333_0000_0001, mac('02:00:00:00:00:99')];
const BYTES = [0, 1, 2, 4, 5, 6, 0x08, 0x0f, 0x11, 0x40, 0x45, 0x46, 0x4f, 0x60, 0x7f, 0x80, 0xfe, 0xff];
const WORDS = [0, 1, 8, 14, 20, 28, 42, 0x0800, 0x0806, 0x8100, 0x86dd, 0x88a8, 0x2000, 0x4000, 0x1fff, 4789, 8472, 1450, 1500, 0x7fff, 0xffff];

interface Node {
  readonly sw: Switch; readonly framing: Framing; readonly clock: FakeClock;
  /** The switch's ends (inject() queues a frame for the switch to read). */
  readonly ends: Record<'p1' | 'p2' | 'host' | 'ov', MemoryPort>;
  /** Their peers: what the switch wrote is read here (without copies). */
  readonly peers: readonly MemoryPort[];
}

function makeNode(mode: SwitchMode, framing: Framing): Node {
  const clock = new FakeClock(1000);
  const opts: SwitchOptions = {
    mode, vni: 1, vtepMac: VTEP_MAC, vtepIp: ip('10.244.1.0'), podCidr: Cidr.parse('10.244.1.0/24'),
    clusterCidr: Cidr.parse('10.244.0.0/16'), gatewayIp: GW, underlayIp: UL1, port: 4789,
    encap: { localUnderlayMac: mac('02:00:c6:33:64:01'), nextHopMac: mac('02:00:c6:33:64:ff'), ttl: 64, df: 'unset', udpChecksum: false, srcPortRange: [49152, 65535] },
    clock, fdbLimit: FUZZ_FDB_LIMIT, underlayMtu: 1500,
  };
  const sw = new Switch(opts);
  const pair = (n: string): [MemoryPort, MemoryPort] => MemoryPort.pair(n, `${n}-peer`, { queueLimit: 4096, maxFrameLen: 70_000 });
  // inject() queues a frame for the switch's end to read, as its peer would send it; take() returns what the switch's end wrote.
  const [p1, q1] = pair('p1'), [p2, q2] = pair('p2'), [host, qh] = pair('host'), [ov, qo] = pair('ov');
  sw.attachPod(p1, P1.ip, P1.mac);
  sw.attachPod(p2, P2.ip, P2.mac);
  sw.attachHost(host, HOST_MAC);
  sw.attachOverlay(ov, framing === Framing.UDP ? { rx: Framing.UDP, tx: Framing.ETHERNET } : framing);
  sw.setPeers(PEERS);
  return { sw, framing, clock, ends: { p1, p2, host, ov }, peers: [q1, q2, qh, qo] };
}

type Source = 'p1' | 'p2' | 'host' | 'ov';

interface Generated { readonly src: Source; readonly frame: Buffer; readonly addr: number; readonly kind: string }

/** An IPv4 packet's L4 part for `proto`. */
function l4(r: Prng, proto: number, dport: number): Buffer {
  const len = r.pick([0, 1, 8, 20, 64, 200, 1400, 1472]);
  const b = Buffer.alloc(proto === IpProto.TCP ? Math.max(20, len) : Math.max(8, len));
  for (let i = 0; i < b.length; i++) b[i] = r.next() & 0xff;
  b.writeUInt16BE(r.below(65536), 0);
  b.writeUInt16BE(dport, 2);
  if (proto === IpProto.UDP) { b.writeUInt16BE(b.length, 4); b.writeUInt16BE(0, 6); }
  if (proto === IpProto.TCP) { b[12] = 0x50; b[13] = r.pick([0x02, 0x10, 0x12, 0x18, 0x11, 0x04]); }
  if (proto === IpProto.ICMP) { b[0] = r.pick([8, 0, 3, 11, 5]); b[1] = r.pick([0, 4]); }
  return b;
}

function innerIp(r: Prng, srcMac: number, dstMac: number, src: number, dst: number): Buffer {
  const proto = r.pick([IpProto.UDP, IpProto.TCP, IpProto.ICMP, IpProto.UDP]);
  return withL4({ srcMac, dstMac, src, dst, ttl: r.pick([64, 64, 1, 0, 2]), df: r.chance(0.5), tos: r.pick([0, 0, 1, 2, 3]) }, proto, l4(r, proto, r.pick([53, 80, 4789, 8472, 9])));
}

/** An Ethernet/IPv4 frame carrying `payload` (the L4 header and data as given). */
function withL4(o: L3Spec, proto: number, payload: Buffer): Buffer {
  const { b, l4: off } = ipv4Frame(o, proto, payload.length);
  payload.copy(b, off);
  return b;
}

/** A valid frame of one of the kinds a node meets. */
function valid(r: Prng, framing: Framing): Generated {
  const k = r.below(8);
  const pod = r.chance(0.5) ? P1 : P2, other = pod === P1 ? P2 : P1, src: Source = pod === P1 ? 'p1' : 'p2';
  switch (k) {
    case 0: return { src, frame: innerIp(r, pod.mac, VTEP_MAC, pod.ip, r.pick([ip('10.244.2.5'), ip('10.244.3.7'), GW, ip('10.244.1.0'), ip('10.244.9.9')])), addr: 0, kind: 'pod-routed' };
    case 1: return { src, frame: innerIp(r, pod.mac, r.pick([other.mac, VTEP_MAC]), pod.ip, other.ip), addr: 0, kind: 'pod-local' };
    case 2: return { src, frame: arpFrame({ srcMac: pod.mac, dstMac: r.pick([0xffff_ffff_ffff, VTEP_MAC]), oper: r.pick([1, 1, 2]), sha: pod.mac, spa: pod.ip, tpa: r.pick([GW, other.ip, ip('10.244.2.5'), pod.ip]) }), addr: 0, kind: 'pod-arp' };
    case 3: return { src: 'host', frame: innerIp(r, HOST_MAC, VTEP_MAC, ip('10.244.1.0'), r.pick([P1.ip, P2.ip, ip('10.244.2.5')])), addr: 0, kind: 'host-ip' };
    case 4: return { src: 'host', frame: arpFrame({ srcMac: HOST_MAC, oper: 1, sha: HOST_MAC, spa: ip('10.244.1.0'), tpa: r.pick([P1.ip, GW, ip('10.244.2.5')]) }), addr: 0, kind: 'host-arp' };
    default: {
      const [peerIp, peerMac, peerPod] = r.chance(0.5) ? [UL2, N2_MAC, ip('10.244.2.5')] : [UL3, N3_MAC, ip('10.244.3.7')];
      const inner = k === 7
        ? arpFrame({ srcMac: peerMac, oper: 1, sha: peerMac, spa: peerPod, tpa: pod.ip })
        : innerIp(r, peerMac, r.pick([VTEP_MAC, VTEP_MAC, pod.mac]), peerPod, r.pick([pod.ip, other.ip, GW, ip('10.244.3.9')]));
      const vx = Buffer.alloc(8 + inner.length);
      vx[0] = 0x08;
      vx.writeUIntBE(1, 4, 3);
      inner.copy(vx, 8);
      if (framing === Framing.UDP) return { src: 'ov', frame: vx, addr: peerIp, kind: 'vxlan' };
      // Ethernet framing: the whole outer frame (the codec's checks run on it).
      const udpHdr = Buffer.alloc(8);
      udpHdr.writeUInt16BE(49152 + r.below(16384), 0);
      udpHdr.writeUInt16BE(4789, 2);
      udpHdr.writeUInt16BE(8 + vx.length, 4);
      const outer = withL4({ srcMac: mac('02:00:c6:33:64:02'), dstMac: mac('02:00:c6:33:64:01'), src: peerIp, dst: UL1, df: false }, IpProto.UDP, Buffer.concat([udpHdr, vx]));
      return { src: 'ov', frame: outer, addr: 0, kind: 'vxlan-eth' };
    }
  }
}

/** The IPv4 header checksum of the packet at `o`, recomputed (when the header fits). */
function refillIpv4(b: Buffer, o: number): void {
  if (b.length < o + 20) return;
  const ihl = (b[o]! & 0x0f) * 4;
  if (ihl < 20 || b.length < o + ihl) return;
  b.writeUInt16BE(0, o + 10);
  let s = 0;
  for (let i = 0; i < ihl; i += 2) s += b.readUInt16BE(o + i);
  while (s > 0xffff) s = (s & 0xffff) + (s >>> 16);
  b.writeUInt16BE(~s & 0xffff, o + 10);
}

/** Where the Ethernet frame starts in a generated frame (after the VXLAN header for UDP framing). */
function layers(g: Generated): number[] {
  const base = g.kind === 'vxlan' ? 8 : 0;
  const eth = [base]; // Ethernet at base, IPv4 at base + 14
  if (g.kind === 'vxlan-eth') eth.push(50); // the inner frame of a whole outer frame
  return eth;
}

function mutateFields(r: Prng, g: Generated): Buffer {
  const b = Buffer.from(g.frame);
  const starts = layers(g);
  const n = 1 + r.below(3);
  for (let k = 0; k < n; k++) {
    const e = r.pick(starts);
    const ipo = e + 14;
    const f = r.below(16);
    const put16 = (o: number, v: number): void => { if (o + 2 <= b.length) b.writeUInt16BE(v & 0xffff, o); };
    const put8 = (o: number, v: number): void => { if (o < b.length) b[o] = v & 0xff; };
    const put32 = (o: number, v: number): void => { if (o + 4 <= b.length) b.writeUInt32BE(v >>> 0, o); };
    const putMac = (o: number, v: number): void => { if (o + 6 <= b.length) b.writeUIntBE(v, o, 6); };
    switch (f) {
      case 0: putMac(e, r.pick(MACS)); break;
      case 1: putMac(e + 6, r.pick(MACS)); break;
      case 2: put16(e + 12, r.pick(WORDS)); break;
      case 3: put8(ipo, r.pick(BYTES)); break; // version/IHL (ARP: htype)
      case 4: put8(ipo + 1, r.pick(BYTES)); break; // TOS
      case 5: put16(ipo + 2, r.pick(WORDS)); break; // total length
      case 6: put16(ipo + 6, r.pick(WORDS)); break; // flags/fragment offset (ARP: op)
      case 7: put8(ipo + 8, r.pick(BYTES)); break; // TTL
      case 8: put8(ipo + 9, r.pick([0, 1, 6, 17, 47, 50, 255])); break; // protocol
      case 9: put32(ipo + 12, r.pick(IPS)); break; // source
      case 10: put32(ipo + 16, r.pick(IPS)); break; // destination
      case 11: put16(ipo + 20, r.pick(WORDS)); break; // L4 source port
      case 12: put16(ipo + 22, r.pick(WORDS)); break; // L4 destination port
      case 13: put16(ipo + 24, r.pick(WORDS)); break; // UDP length
      case 14: if (g.kind === 'vxlan') put8(r.below(8), r.pick(BYTES)); else put32(ipo + 14, r.pick(IPS)); break; // VXLAN header / ARP spa
      default: put32(ipo + 24, r.pick(IPS)); break; // ARP tpa
    }
    if (r.chance(0.5)) refillIpv4(b, ipo);
  }
  return b;
}

function mutateBytes(r: Prng, frame: Buffer): Buffer {
  let b = Buffer.from(frame);
  const n = 1 + r.below(4);
  for (let k = 0; k < n; k++) {
    switch (r.below(5)) {
      case 0: if (b.length > 0) { const i = r.below(b.length); b[i] = b[i]! ^ (1 << r.below(8)); } break;
      case 1: if (b.length > 0) b[r.below(b.length)] = r.next() & 0xff; break;
      case 2: b = b.subarray(0, r.below(b.length + 1)); break;
      case 3: { const x = Buffer.alloc(r.below(64)); for (let i = 0; i < x.length; i++) x[i] = r.next() & 0xff; b = Buffer.concat([b, x]); break; }
      default: if (b.length > 0) { const i = r.below(b.length), len = Math.min(b.length - i, 1 + r.below(8)); for (let j = 0; j < len; j++) b[i + j] = r.next() & 0xff; } break;
    }
  }
  return b;
}

/** generate: frame `i`'s input, from the run's PRNG. */
export function generate(r: Prng, framing: Framing): Generated & { readonly mutation: string } {
  const g = valid(r, framing);
  const m = r.below(100);
  if (m < 10) return { ...g, mutation: 'none' };
  if (m < 55) return { ...g, frame: mutateFields(r, g), mutation: 'fields' };
  if (m < 90) return { ...g, frame: mutateBytes(r, g.frame), mutation: 'bytes' };
  const b = Buffer.alloc(r.below(1600));
  for (let i = 0; i < b.length; i++) b[i] = r.next() & 0xff;
  return { ...g, frame: b, mutation: 'random' };
}

export interface FuzzFailure {
  readonly seed: number;
  readonly index: number;
  readonly node: string;
  readonly what: string;
  readonly port: Source;
  readonly kind: string;
  readonly mutation: string;
  readonly frameHex: string;
}

export interface FuzzReport {
  readonly seed: number;
  readonly frames: number;
  readonly forwarded: number;
  /** Flooded frames (L2) whose copies were dropped per copy, part of `forwarded`. */
  readonly floodCopyDrops: number;
  readonly dropped: number;
  readonly exceptions: number;
  readonly outputs: number;
  readonly byReason: Record<string, number>;
  readonly byMutation: Record<string, number>;
  readonly maxFdb: number;
  readonly failure: FuzzFailure | null;
  readonly ms: number;
}

/**
 * runFuzz pushes `frames` generated frames through the two switches and stops at the first
 * broken invariant (reported with the seed and index that replay it).
 */
export function runFuzz(opts: { seed: number; frames: number; progress?: (done: number) => void; progressEvery?: number }): FuzzReport {
  const t0 = performance.now();
  const r = new Prng(opts.seed);
  const nodes = [makeNode(SwitchMode.L3, Framing.UDP), makeNode(SwitchMode.L2, Framing.ETHERNET)];
  const sink = new Batch(256, 70_000, 0);
  const before = new Float64Array(nodes[0]!.sw.stats.drops.length);
  const shape = nodes.map((n) => ({ ports: n.sw.portList.length, peers: n.sw.peerList.length }));
  const byReason: Record<string, number> = {};
  const byMutation: Record<string, number> = {};
  let forwarded = 0, dropped = 0, outputs = 0, maxFdb = 0, flooded = 0;
  const every = opts.progressEvery ?? 1_000_000;
  const fail = (i: number, n: number, g: Generated & { mutation: string }, what: string): FuzzReport => ({
    seed: opts.seed, frames: i, forwarded, floodCopyDrops: flooded, dropped, exceptions: what.startsWith('exception') ? 1 : 0, outputs, byReason, byMutation, maxFdb,
    failure: { seed: opts.seed, index: i, node: n === 0 ? 'l3/udp' : 'l2/ethernet', what, port: g.src, kind: g.kind, mutation: g.mutation, frameHex: g.frame.toString('hex') },
    ms: performance.now() - t0,
  });
  for (let i = 0; i < opts.frames; i++) {
    const ni = i & 1;
    const node = nodes[ni]!, sw = node.sw, st = sw.stats;
    const g = generate(r, node.framing);
    byMutation[g.mutation] = (byMutation[g.mutation] ?? 0) + 1;
    node.clock.advance(1);
    const rx0 = st.rxFrames;
    before.set(st.drops);
    try {
      node.ends[g.src].inject(g.frame, g.addr, g.addr === 0 ? 0 : 49152 + (i & 0x3fff));
      sw.pump();
    } catch (e) {
      return fail(i, ni, g, `exception: ${(e as Error).stack ?? String(e)}`);
    }
    let out = 0;
    for (const q of node.peers) for (let n; (n = q.read(sink, 0)) > 0;) out += n;
    outputs += out;
    const verdict = judgeOutcome(st.rxFrames - rx0, before, st.drops, out, ni === 1);
    if (typeof verdict === 'string') return fail(i, ni, g, verdict);
    if (verdict.dropped === null) forwarded++;
    else {
      dropped++;
      byReason[verdict.dropped] = (byReason[verdict.dropped] ?? 0) + 1;
    }
    if (verdict.perCopy) flooded++;
    const fdb = sw.fdb.size;
    if (fdb > maxFdb) maxFdb = fdb;
    if (fdb > FUZZ_FDB_LIMIT) return fail(i, ni, g, `FDB holds ${fdb} entries, above its limit ${FUZZ_FDB_LIMIT}`);
    if (sw.portList.length !== shape[ni]!.ports || sw.peerList.length !== shape[ni]!.peers) return fail(i, ni, g, 'the port or peer tables changed');
    if (opts.progress !== undefined && (i + 1) % every === 0) opts.progress(i + 1);
  }
  return { seed: opts.seed, frames: opts.frames, forwarded, floodCopyDrops: flooded, dropped, exceptions: 0, outputs, byReason, byMutation, maxFdb, failure: null, ms: performance.now() - t0 };
}

/**
 * judgeOutcome: the outcome of one frame from what it moved, or why it broke the rule. A frame
 * is read once (`rx` 1) and then either dropped under exactly one named reason, or forwarded
 * (`out` frames left the switch), or, in L2, flooded with some copies dropped per copy
 * (PER_COPY reasons, at most FLOOD_COPIES). Anything else (read twice, dropped twice, no
 * outcome at all, a drop counted under NONE) is a broken invariant.
 */
export function judgeOutcome(rx: number, before: Float64Array, after: Float64Array, out: number, l2: boolean): { dropped: string | null; perCopy: boolean } | string {
  if (rx !== 1) return `read ${rx} times (rx_frames moved by ${rx}), not once`;
  if (after[0]! !== before[0]!) return 'a drop under no named reason (NONE counted)';
  const moved: { n: string; by: number }[] = [];
  let d = 0;
  for (let k = 1; k < after.length; k++) {
    const by = after[k]! - before[k]!;
    if (by !== 0) { moved.push({ n: DROP_NAMES[k]!, by }); d += by; }
  }
  if (d === 0) return out === 0 ? 'no outcome: not dropped, and nothing left any port' : { dropped: null, perCopy: false };
  if (d === 1) return { dropped: moved[0]!.n, perCopy: false };
  // A frame the L2 bridge floods is copied to every port and VTEP, and each copy has its own
  // egress outcome (as in the kernel's bridge). Anything else counted twice is a bug.
  if (l2 && d <= FLOOD_COPIES && moved.every((x) => PER_COPY.has(x.n))) return { dropped: null, perCopy: true };
  return `${d} drops counted for one frame (${moved.map((x) => `${x.n} +${x.by}`).join(', ')}; ${out} frames out)`;
}
