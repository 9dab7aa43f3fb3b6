#!/usr/bin/env node
/**
 * I/O ports benchmark (issue 3): packets per second of the addon-backed ports against the
 * baselines measured in the same run, 64-byte frames, everything inside namespaces this script
 * creates and removes (root only):
 *
 *   TAP read          TapPort (addon)          vs  a C poll()+read() loop (io-ref.c)
 *   TAP write         TapPort (addon)          vs  a C write() loop
 *   AF_PACKET receive PacketPort (addon)       vs  CapPort (libpcap through `cap`)
 *   UDP receive       UdpPort (recvmmsg)       vs  node:dgram  vs  CapPort  (and a C recvmmsg loop)
 *   UDP send          UdpPort (sendmmsg)       vs  node:dgram  vs  CapPort (pcap_sendpacket)
 *                                                  (and a C sendmmsg loop); plus UdpPort with
 *                                                  UDP GSO, 64 same-peer datagrams per message
 *
 * Method. Receive rows are drains: a generator process fills the kernel queue (TAP ring,
 * socket buffer, libpcap ring) while the receiver is blocked, then the receiver is released
 * and timed from release to its last frame; so a receive figure is the receiver's own rate,
 * never limited by the generator, and the two never compete for the 2 vCPUs. Send rows time
 * the sender alone; the packets cross a veth to a namespace where they are dropped on arrival
 * (a foreign destination MAC), which the kernel does in the sender's context, so a send figure
 * includes that kernel work for every implementation alike. Each row is the median of
 * `--runs` runs; CPU is the worker's user+system time per frame during the timed window.
 *
 * Topology (<p> = a per-run prefix):
 *   <p>-tap:   persistent TAP ftb0 (txqueuelen > frames); readers attach to it, a PacketPort
 *              on ftb0 fills its queue (the kernel transmits into the TAP)
 *   <p>-gen:   vg 198.51.100.1/24 ---- veth ---- vr 198.51.100.2/24  :<p>-rx   (receive rows)
 *   <p>-tx:    vt 198.51.100.1/24 ---- veth ---- vs (no address)     :<p>-sink (send rows;
 *              neighbour 198.51.100.2 -> 02:00:00:00:00:99, not vs's MAC: dropped at ip_rcv;
 *              vt without UDP segmentation offload, so GSO is done in software before it)
 *
 * Usage: node dist/bench/io/ports.bench.js [--runs 3] [--frames 50000] [--json FILE]
 * (`npm run bench:io` builds first). Internal: --worker JSON runs one measuring process.
 */

import { spawnSync, type ChildProcess } from 'node:child_process';
import { createSocket } from 'node:dgram';
import { mkdtempSync, readFileSync, readSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Batch, FrameList, Meta, META_STRIDE } from '../../src/buf/batch.js';
import { CapPort } from '../../src/io/cap-port.js';
import { loadNative } from '../../src/io/native.js';
import { PacketPort } from '../../src/io/packet-port.js';
import { TapPort } from '../../src/io/tap-port.js';
import { UdpPort } from '../../src/io/udp-port.js';
import type { Port } from '../../src/pipeline/port.js';
import { parseIpv4 } from '../../src/wire/addr.js';
import { finish, sum16 } from '../../src/wire/checksum.js';
import { Netns } from '../../test/support/netns.js';

const FRAME_LEN = 64;
/** UDP payload that makes a 64-byte Ethernet frame: 64 - 14 - 20 - 8. */
const UDP_PAYLOAD_LEN = FRAME_LEN - 42;
const BATCH = 64;
/** Datagrams per UDP_SEGMENT message in the GSO send row (the kernel's limit is 64 or 128). */
const GSO_PER_MESSAGE = 64;
const SINK_MAC = 0x02_00_00_00_00_99;
const BIG_BUF = 128 << 20;
const IDLE_MS = 300;
/** Frames moved untimed by each Node worker before its timed run (enough batches for the JIT to optimise the read/write path). */
const WARM = 20_000;

// ---------------------------------------------------------------------------------------------
// Workers: one measuring process each, started inside a namespace by the orchestrator.
// Protocol: the worker prints {"ready":true}, blocks until a line arrives on stdin (so the
// kernel queues fill while it does nothing), then prints {"result":{...}} and exits.

interface WorkerSpec {
  role: string;
  ifname?: string;
  count: number;
  src?: string;
  dst?: string;
  port?: number;
  filter?: string;
  connected?: boolean;
  /** Frames to move before the timed run, so that the JIT and caches are warm (Node workers). */
  warm?: number;
}

interface Measured {
  frames: number;
  ns: number;
  cpuNs: number;
  batches?: number;
  dropped?: number;
  note?: string;
}

function say(obj: unknown): void {
  process.stdout.write(`${JSON.stringify(obj)}\n`);
}

/** waitForGo blocks the whole process (event loop included) until a line arrives on stdin. */
function waitForGo(): void {
  const buf = Buffer.alloc(64);
  for (;;) {
    try {
      const n = readSync(0, buf, 0, buf.length, null);
      if (n === 0 || buf.subarray(0, n).includes(10)) return;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EAGAIN') throw e;
      Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 1);
    }
  }
}

const cpuNow = (): number => {
  const u = process.cpuUsage();
  return (u.user + u.system) * 1000;
};

/** A FrameList of BATCH copies of `frame`, each in its own slot after a 64-byte headroom. */
function repeated(frame: Buffer, addr = 0, port = 0): FrameList {
  const slot = 64 + Math.ceil(frame.length / 64) * 64;
  const arena = Buffer.alloc(BATCH * slot);
  const list = new FrameList(BATCH);
  for (let i = 0; i < BATCH; i++) {
    frame.copy(arena, i * slot + 64);
    list.push(arena, i * slot + 64, i * slot + 64 + frame.length, addr, port);
  }
  return list;
}

function testEthFrame(dst = SINK_MAC): Buffer {
  const f = Buffer.alloc(FRAME_LEN);
  f.writeUIntBE(dst, 0, 6);
  f.writeUIntBE(0x02_00_00_00_00_01, 6, 6);
  f.writeUInt16BE(0x88b5, 12);
  return f;
}

/** A whole Ethernet/IPv4/UDP frame of FRAME_LEN bytes (for cap, which sends raw frames). */
function udpEthFrame(src: string, dst: string, sport: number, dport: number): Buffer {
  const f = Buffer.alloc(FRAME_LEN);
  f.writeUIntBE(SINK_MAC, 0, 6);
  f.writeUIntBE(0x02_00_00_00_00_01, 6, 6);
  f.writeUInt16BE(0x0800, 12);
  f[14] = 0x45;
  f.writeUInt16BE(FRAME_LEN - 14, 16);
  f[22] = 64;
  f[23] = 17;
  f.writeUInt32BE(parseIpv4(src), 26);
  f.writeUInt32BE(parseIpv4(dst), 30);
  f.writeUInt16BE(finish(sum16(f, 14, 20)), 24);
  f.writeUInt16BE(sport, 34);
  f.writeUInt16BE(dport, 36);
  f.writeUInt16BE(FRAME_LEN - 34, 38);
  return f;
}

/** Sends `count` frames through `port` in batches, retrying what a full queue refused. */
function pushAll(port: Port, list: FrameList, count: number): Measured {
  const c0 = cpuNow(), t0 = process.hrtime.bigint();
  let sent = 0, refused = 0;
  while (sent < count) {
    list.count = Math.min(BATCH, count - sent);
    const r = port.write(list);
    if (r > 0) sent += r;
    else refused++;
    if (r < list.count) refused++;
    if (refused > 1_000_000) break;
  }
  return { frames: sent, ns: Number(process.hrtime.bigint() - t0), cpuNs: cpuNow() - c0, dropped: port.stats.txDropped + port.stats.txErrors };
}

/**
 * drain reads `port` through its readiness callback from now until `want` frames arrived or
 * nothing came for IDLE_MS; the end time is the last frame's wakeup.
 */
function drain(port: Port, batch: Batch, headroom: number, want: number): Promise<Measured> {
  const c0 = cpuNow(), t0 = process.hrtime.bigint();
  let frames = 0, last = t0, seen = 0;
  return new Promise((resolve) => {
    const done = (): void => {
      clearInterval(idle);
      port.onReadable(null);
      resolve({ frames, ns: Number(last - t0), cpuNs: cpuNow() - c0, batches: port.stats.rxBatches });
    };
    const idle = setInterval(() => {
      if (frames === seen) done();
      seen = frames;
    }, IDLE_MS);
    port.onReadable(() => {
      for (;;) {
        const n = port.read(batch, headroom);
        if (n <= 0) break;
        frames += n;
      }
      last = process.hrtime.bigint();
      if (frames >= want) done();
    });
  });
}

/**
 * warmThenDrain: ready; a first drain of spec.warm frames (not timed) so the JIT has compiled
 * the read path; "warmed"; then the timed drain of spec.count frames. Counters are reset
 * between the two.
 */
async function warmThenDrain(port: Port, spec: WorkerSpec): Promise<Measured> {
  const batch = new Batch(BATCH, 2048);
  say({ ready: true });
  waitForGo();
  if ((spec.warm ?? 0) > 0) await drain(port, batch, 64, spec.warm!);
  port.stats.rxBatches = 0;
  say({ warmed: true });
  waitForGo();
  return drain(port, batch, 64, spec.count);
}

async function worker(spec: WorkerSpec): Promise<Measured> {
  const want = spec.count;
  switch (spec.role) {
    case 'fill-packet': { // generator: AF_PACKET frames on an interface
      const p = PacketPort.open(spec.ifname!, { sndbuf: BIG_BUF });
      const m = pushAll(p, repeated(testEthFrame()), want);
      p.close();
      return m;
    }
    case 'fill-udp': { // generator: UDP datagrams
      const p = UdpPort.open({ address: spec.src!, sndbuf: BIG_BUF });
      const m = pushAll(p, repeated(Buffer.alloc(UDP_PAYLOAD_LEN, 0x5a), parseIpv4(spec.dst!), spec.port!), want);
      p.close();
      return m;
    }
    case 'tap-read': {
      const p = TapPort.open(spec.ifname!, { up: false });
      const m = await warmThenDrain(p, spec);
      p.close();
      return m;
    }
    case 'tap-write': {
      const p = TapPort.open(spec.ifname!, { up: false });
      const list = repeated(testEthFrame());
      pushAll(p, list, spec.warm ?? 0);
      say({ ready: true });
      waitForGo();
      const m = pushAll(p, list, want);
      p.close();
      return m;
    }
    case 'packet-recv': {
      const p = PacketPort.open(spec.ifname!, { rcvbuf: BIG_BUF });
      const m = await warmThenDrain(p, spec);
      p.close();
      return m;
    }
    case 'cap-recv': {
      const p = CapPort.open(spec.ifname!, { filter: spec.filter!, bufferSize: BIG_BUF, queueLimit: want + 1024, maxFrameLen: 256 });
      await new Promise((r) => setTimeout(r, 200)); // libpcap's ring settles (see DEPENDENCIES.md)
      const m = await warmThenDrain(p, spec);
      p.close();
      return m;
    }
    case 'udp-recv': {
      const p = UdpPort.open({ address: spec.dst!, port: spec.port!, rcvbuf: BIG_BUF });
      const m = await warmThenDrain(p, spec);
      p.close();
      return m;
    }
    case 'dgram-recv': {
      // dgram adopts a socket made by the addon, only to give it the same 128 MiB receive
      // buffer (SO_RCVBUFFORCE); net.core.rmem_max caps what dgram can ask for itself.
      const fd = loadNative().udpOpen(parseIpv4(spec.dst!), spec.port!, 0, BIG_BUF, BIG_BUF).fd;
      const s = createSocket('udp4');
      let frames = 0;
      s.on('message', () => { frames++; });
      await new Promise<void>((r) => s.bind({ fd }, r));
      say({ ready: true });
      waitForGo();
      const warm = spec.warm ?? 0;
      while (frames < warm) await new Promise((r) => setImmediate(r));
      frames = 0;
      say({ warmed: true });
      waitForGo();
      const c0 = cpuNow(), t0 = process.hrtime.bigint();
      let lastFrames = 0, last = t0;
      const m = await new Promise<Measured>((resolve) => {
        const end = (): void => {
          clearInterval(poll);
          clearInterval(idle);
          resolve({ frames, ns: Number(last - t0), cpuNs: cpuNow() - c0 });
        };
        // Checked every millisecond instead of per message so that dgram's per-datagram path
        // is measured as is; the end time is exact to about 1 ms.
        const poll = setInterval(() => {
          if (frames !== lastFrames) {
            lastFrames = frames;
            last = process.hrtime.bigint();
          }
          if (frames >= want) end();
        }, 1);
        let seen = -1;
        const idle = setInterval(() => {
          if (frames === seen) end();
          seen = frames;
        }, IDLE_MS);
      });
      s.close();
      return m;
    }
    case 'udp-send': {
      const p = UdpPort.open({ address: spec.src!, sndbuf: BIG_BUF, gso: false });
      const list = repeated(Buffer.alloc(UDP_PAYLOAD_LEN, 0x5a), parseIpv4(spec.dst!), spec.port!);
      pushAll(p, list, spec.warm ?? 0);
      say({ ready: true });
      waitForGo();
      const m = pushAll(p, list, want);
      p.close();
      return m;
    }
    case 'udp-send-gso': {
      // GSO_PER_MESSAGE same-peer datagrams per message (UDP_SEGMENT); `count` is datagrams.
      const p = UdpPort.open({ address: spec.src!, sndbuf: BIG_BUF, gso: true });
      if (!p.features.gso) throw new Error('no UDP GSO on this kernel');
      const list = repeated(Buffer.alloc(UDP_PAYLOAD_LEN * GSO_PER_MESSAGE, 0x5a), parseIpv4(spec.dst!), spec.port!);
      for (let i = 0; i < BATCH; i++) list.meta[i * META_STRIDE + Meta.GSO_SIZE] = UDP_PAYLOAD_LEN;
      pushAll(p, list, Math.ceil((spec.warm ?? 0) / GSO_PER_MESSAGE));
      say({ ready: true });
      waitForGo();
      const m = pushAll(p, list, Math.ceil(want / GSO_PER_MESSAGE));
      m.frames *= GSO_PER_MESSAGE;
      p.close();
      if (p.gsoFallbacks > 0) m.note = 'GSO fell back';
      return m;
    }
    case 'dgram-send': {
      const s = createSocket({ type: 'udp4', sendBufferSize: 4 << 20 });
      let errors = 0;
      s.on('error', () => { errors++; });
      await new Promise<void>((r) => s.bind({ address: spec.src!, port: 0 }, r));
      if (spec.connected === true) await new Promise<void>((r) => s.connect(spec.port!, spec.dst!, r));
      const payload = Buffer.alloc(UDP_PAYLOAD_LEN, 0x5a);
      // Bursts of BATCH sends per event-loop turn (how a forwarder would use dgram).
      const sendAll = (count: number): Promise<number> => new Promise<number>((resolve) => {
        let issued = 0;
        const burst = (): void => {
          const n = Math.min(BATCH, count - issued);
          if (spec.connected === true) for (let i = 0; i < n; i++) s.send(payload);
          else for (let i = 0; i < n; i++) s.send(payload, spec.port!, spec.dst!);
          issued += n;
          if (issued < count) setImmediate(burst);
          else setImmediate(() => resolve(issued)); // unconnected sends finish after a nextTick lookup
        };
        burst();
      });
      await sendAll(spec.warm ?? 0);
      errors = 0;
      say({ ready: true });
      waitForGo();
      const c0 = cpuNow(), t0 = process.hrtime.bigint();
      const issued = await sendAll(want);
      const m = { frames: issued - errors, ns: Number(process.hrtime.bigint() - t0), cpuNs: cpuNow() - c0, dropped: errors };
      s.close();
      return m;
    }
    case 'cap-send': {
      const p = CapPort.open(spec.ifname!, { filter: 'ether proto 0x88b5' });
      const list = repeated(udpEthFrame(spec.src!, spec.dst!, 40000, spec.port!));
      pushAll(p, list, spec.warm ?? 0);
      say({ ready: true });
      waitForGo();
      const m = pushAll(p, list, want);
      p.close();
      return m;
    }
    default:
      throw new Error(`unknown role ${spec.role}`);
  }
}

// ---------------------------------------------------------------------------------------------
// Orchestrator.

interface Running {
  ready: Promise<void>;
  /** Resolves when the worker printed {"warmed":true} (its untimed warm-up drain is done). */
  warmed: Promise<void>;
  go(): void;
  result: Promise<Measured>;
}

function startProcess(p: ChildProcess, what: string): Running {
  let out = '', err = '';
  let readyResolve: () => void = () => {}, warmedResolve: () => void = () => {};
  const ready = new Promise<void>((r) => { readyResolve = r; });
  const warmed = new Promise<void>((r) => { warmedResolve = r; });
  const result = new Promise<Measured>((resolve, reject) => {
    p.stdout?.on('data', (d: Buffer) => {
      out += d.toString();
      if (/"ready":true|^ready$/m.test(out)) readyResolve();
      if (out.includes('"warmed":true')) warmedResolve();
    });
    p.stderr?.on('data', (d: Buffer) => { err += d.toString(); });
    p.on('exit', (code) => {
      if (process.env['BENCH_DEBUG'] === '1') console.error(`[${what}] exit ${code}: ${out.trim()} ${err.trim()}`);
      const line = out.split('\n').reverse().find((l) => l.startsWith('{"result"') || l.startsWith('{"frames"'));
      if (code !== 0 || line === undefined) {
        reject(new Error(`${what} failed (exit ${code}): ${err.trim() || out.trim()}`));
        return;
      }
      const obj = JSON.parse(line) as { result?: Measured } & Measured;
      resolve(obj.result ?? obj);
    });
  });
  result.catch(() => { readyResolve(); warmedResolve(); });
  return { ready, warmed, go: () => p.stdin?.write('go\n'), result };
}

class Bench {
  readonly netns = new Netns('bio');
  readonly ns = { tap: '', gen: '', rx: '', tx: '', sink: '' };
  private ioRef = '';
  private tmp = '';

  constructor(readonly frames: number) {}

  setup(): void {
    this.tmp = mkdtempSync(join(tmpdir(), 'flatnet-bench-'));
    this.ioRef = join(this.tmp, 'io-ref');
    const src = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..', 'bench', 'io', 'io-ref.c');
    const cc = spawnSync('gcc', ['-O2', '-o', this.ioRef, src], { encoding: 'utf8' });
    if (cc.status !== 0) throw new Error(`gcc io-ref.c: ${cc.stderr}`);
    const n = this.netns;
    for (const k of Object.keys(this.ns) as Array<keyof Bench['ns']>) {
      this.ns[k] = n.add(k);
      n.exec(this.ns[k], 'sysctl', ['-qw', 'net.ipv6.conf.all.disable_ipv6=1', 'net.ipv6.conf.default.disable_ipv6=1']);
    }
    n.ip(this.ns.tap, 'tuntap', 'add', 'dev', 'ftb0', 'mode', 'tap');
    n.ip(this.ns.tap, 'link', 'set', 'ftb0', 'up', 'txqueuelen', String(this.frames + 1000));
    n.veth(this.ns.gen, 'vg', this.ns.rx, 'vr');
    n.addr(this.ns.gen, 'vg', '198.51.100.1/24');
    n.addr(this.ns.rx, 'vr', '198.51.100.2/24');
    n.veth(this.ns.tx, 'vt', this.ns.sink, 'vs');
    n.addr(this.ns.tx, 'vt', '198.51.100.1/24');
    // As on a NIC without UDP segmentation offload: GSO messages are cut into datagrams in
    // software before the device, so the sink sees (and counts) every datagram.
    n.exec(this.ns.tx, 'ethtool', ['-K', 'vt', 'tx-udp-segmentation', 'off']);
    n.ip(this.ns.sink, 'link', 'set', 'vs', 'up');
    n.ip(this.ns.tx, 'neigh', 'replace', '198.51.100.2', 'lladdr', '02:00:00:00:00:99', 'dev', 'vt', 'nud', 'permanent');
  }

  destroy(): void {
    this.netns.destroy();
    if (this.tmp !== '') rmSync(this.tmp, { recursive: true, force: true });
  }

  private node(ns: string, spec: WorkerSpec): Running {
    const full: WorkerSpec = { warm: WARM, ...spec };
    const p = this.netns.spawn(ns, process.execPath, [fileURLToPath(import.meta.url), '--worker', JSON.stringify(full)], { stdio: ['pipe', 'pipe', 'pipe'] });
    return startProcess(p, `${spec.role} in ${ns}`);
  }

  private c(ns: string, mode: 'tap-read' | 'tap-write' | 'udp-recv' | 'udp-send', args: string[]): Running {
    const p = this.netns.spawn(ns, this.ioRef, [mode, ...args, String(this.frames)], { stdio: ['pipe', 'pipe', 'pipe'] });
    return startProcess(p, `io-ref ${mode}`);
  }

  /**
   * A drain: start the receiver; for a Node receiver, fill WARM frames and let it drain them
   * untimed; fill its queue with `frames` from a generator; release it; time it.
   */
  private async drainRun(rx: Running, fill: (count: number) => Running, node = true): Promise<Measured> {
    await rx.ready;
    if (node) {
      const w = fill(WARM);
      w.go();
      await w.result;
      rx.go();
      await rx.warmed;
    }
    const gen = fill(this.frames);
    gen.go();
    const g = await gen.result;
    const m = await (rx.go(), rx.result);
    m.note = `${g.frames} queued`;
    return m;
  }

  private async sendRun(tx: Running): Promise<Measured> {
    await tx.ready; // senders warm up before they say ready
    const before = this.sinkPackets();
    tx.go();
    const m = await tx.result;
    await new Promise((r) => setTimeout(r, 50));
    m.note = `${this.sinkPackets() - before} arrived`;
    return m;
  }

  private sinkPackets(): number {
    const j = JSON.parse(this.netns.ip(this.ns.sink, '-s', '-j', 'link', 'show', 'vs')) as Array<{ stats64: { rx: { packets: number } } }>;
    return j[0]!.stats64.rx.packets;
  }

  private fillTap = (count: number): Running => this.node(this.ns.tap, { role: 'fill-packet', ifname: 'ftb0', count });
  private fillVeth = (count: number): Running => this.node(this.ns.gen, { role: 'fill-packet', ifname: 'vg', count });
  private fillUdp = (count: number): Running => this.node(this.ns.gen, { role: 'fill-udp', src: '198.51.100.1', dst: '198.51.100.2', port: 4789, count });
  private rx = (role: string, extra: Partial<WorkerSpec>): Running => this.node(this.ns.rx, { role, count: this.frames, ...extra });
  private tx = (role: string, extra: Partial<WorkerSpec> = {}): Running => this.node(this.ns.tx, { role, src: '198.51.100.1', dst: '198.51.100.2', port: 4789, count: this.frames, ...extra });

  readonly cases: Array<{ row: string; impl: string; run: () => Promise<Measured> }> = [
    { row: 'TAP read', impl: 'C read loop', run: () => this.drainRun(this.c(this.ns.tap, 'tap-read', ['ftb0']), this.fillTap, false) },
    { row: 'TAP read', impl: 'TapPort (addon)', run: () => this.drainRun(this.node(this.ns.tap, { role: 'tap-read', ifname: 'ftb0', count: this.frames }), this.fillTap) },
    { row: 'TAP write', impl: 'C write loop', run: () => this.sendRunTap(this.c(this.ns.tap, 'tap-write', ['ftb0'])) },
    { row: 'TAP write', impl: 'TapPort (addon)', run: () => this.sendRunTap(this.node(this.ns.tap, { role: 'tap-write', ifname: 'ftb0', count: this.frames })) },
    { row: 'AF_PACKET receive', impl: 'cap (libpcap)', run: () => this.drainRun(this.rx('cap-recv', { ifname: 'vr', filter: 'ether proto 0x88b5' }), this.fillVeth) },
    { row: 'AF_PACKET receive', impl: 'PacketPort (addon)', run: () => this.drainRun(this.rx('packet-recv', { ifname: 'vr' }), this.fillVeth) },
    { row: 'UDP receive', impl: 'C recvmmsg loop', run: () => this.drainRun(this.c(this.ns.rx, 'udp-recv', ['198.51.100.2', '4789']), this.fillUdp, false) },
    { row: 'UDP receive', impl: 'node:dgram', run: () => this.drainRun(this.rx('dgram-recv', { dst: '198.51.100.2', port: 4789 }), this.fillUdp) },
    { row: 'UDP receive', impl: 'cap (libpcap)', run: () => this.drainRun(this.rx('cap-recv', { ifname: 'vr', filter: 'udp dst port 4789' }), this.fillUdp) },
    { row: 'UDP receive', impl: 'UdpPort (addon)', run: () => this.drainRun(this.rx('udp-recv', { dst: '198.51.100.2', port: 4789 }), this.fillUdp) },
    { row: 'UDP send', impl: 'C sendmmsg loop', run: () => this.sendRun(this.c(this.ns.tx, 'udp-send', ['198.51.100.1', '198.51.100.2', '4789'])) },
    { row: 'UDP send', impl: 'node:dgram', run: () => this.sendRun(this.tx('dgram-send')) },
    { row: 'UDP send', impl: 'node:dgram connected', run: () => this.sendRun(this.tx('dgram-send', { connected: true })) },
    { row: 'UDP send', impl: 'cap (libpcap)', run: () => this.sendRun(this.tx('cap-send', { ifname: 'vt' })) },
    { row: 'UDP send', impl: 'UdpPort (addon)', run: () => this.sendRun(this.tx('udp-send')) },
    { row: 'UDP send', impl: 'UdpPort + UDP GSO (64/message)', run: () => this.sendRun(this.tx('udp-send-gso')) },
  ];

  private async sendRunTap(tx: Running): Promise<Measured> {
    await tx.ready;
    tx.go();
    return tx.result;
  }
}

interface Row { row: string; impl: string; runs: Measured[]; pps: number; cpuNsPerFrame: number; framesPerBatch: number | null }

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 === 1 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
};

function fmtPps(pps: number): string {
  return pps >= 1e6 ? `${(pps / 1e6).toFixed(2)} Mpps` : `${(pps / 1e3).toFixed(0)} kpps`;
}

function machine(): string {
  const ls = spawnSync('lscpu', [], { encoding: 'utf8' }).stdout;
  const pick = (k: string): string => (new RegExp(`^${k}:\\s*(.*)$`, 'm').exec(ls)?.[1] ?? '?').trim();
  const kernel = readFileSync('/proc/sys/kernel/osrelease', 'utf8').trim();
  return `${pick('Model name')}, ${pick('CPU\\(s\\)')} vCPU (${pick('Hypervisor vendor')} ${pick('Virtualization type')}), Linux ${kernel}, Node ${process.version}, ${cpus().length} CPUs visible`;
}

function table(rows: Row[]): string {
  const base = (row: string, impl: string): number => rows.find((r) => r.row === row && r.impl === impl)?.pps ?? Number.NaN;
  const bestDgramSend = Math.max(base('UDP send', 'node:dgram'), base('UDP send', 'node:dgram connected'));
  const ratio = (r: Row): string => {
    const fmt = (x: number, name: string): string => `${(r.pps / x).toFixed(2)}x ${name}`;
    switch (`${r.row}/${r.impl}`) {
      case 'TAP read/TapPort (addon)': return fmt(base('TAP read', 'C read loop'), 'C');
      case 'TAP write/TapPort (addon)': return fmt(base('TAP write', 'C write loop'), 'C');
      case 'AF_PACKET receive/PacketPort (addon)': return fmt(base('AF_PACKET receive', 'cap (libpcap)'), 'cap');
      case 'UDP receive/UdpPort (addon)': return `${fmt(base('UDP receive', 'node:dgram'), 'dgram')}, ${fmt(base('UDP receive', 'cap (libpcap)'), 'cap')}, ${fmt(base('UDP receive', 'C recvmmsg loop'), 'C')}`;
      case 'UDP send/UdpPort + UDP GSO (64/message)': return `${fmt(base('UDP send', 'node:dgram'), 'dgram')}, ${fmt(bestDgramSend, 'best dgram')}, ${fmt(base('UDP send', 'C sendmmsg loop'), 'C sendmmsg')}`;
      case 'UDP send/UdpPort (addon)': return `${fmt(base('UDP send', 'node:dgram'), 'dgram')}, ${fmt(bestDgramSend, 'best dgram')}, ${fmt(base('UDP send', 'cap (libpcap)'), 'cap')}, ${fmt(base('UDP send', 'C sendmmsg loop'), 'C')}`;
      default: return '';
    }
  };
  const lines = [
    '| Path | Implementation | pps (median) | runs | CPU ns/frame | frames/read | ratio |',
    '|---|---|---|---|---|---|---|',
    ...rows.map((r) => `| ${r.row} | ${r.impl} | ${fmtPps(r.pps)} | ${r.runs.map((m) => fmtPps(m.frames / (m.ns / 1e9))).join(', ')} | ${r.cpuNsPerFrame.toFixed(0)} | ${r.framesPerBatch === null ? '' : r.framesPerBatch.toFixed(1)} | ${ratio(r)} |`),
  ];
  return lines.join('\n');
}

async function main(argv: string[]): Promise<void> {
  const wi = argv.indexOf('--worker');
  if (wi >= 0) {
    const spec = JSON.parse(argv[wi + 1]!) as WorkerSpec;
    const m = await worker(spec);
    say({ result: m });
    process.exit(0);
  }
  if (process.getuid?.() !== 0) {
    console.error('ports.bench: needs root (network namespaces, TAP, AF_PACKET)');
    process.exit(2);
  }
  const arg = (name: string, def: number): number => {
    const i = argv.indexOf(name);
    return i >= 0 ? Number(argv[i + 1]) : def;
  };
  const runs = arg('--runs', 3), frames = arg('--frames', 50_000);
  const ji = argv.indexOf('--json');
  const b = new Bench(frames);
  const cleanup = (): void => b.destroy();
  // Namespaces go away however this process ends (destroy() is idempotent).
  process.on('exit', cleanup);
  process.on('SIGINT', () => { cleanup(); process.exit(130); });
  process.on('SIGTERM', () => { cleanup(); process.exit(143); });
  const load0 = loadavg();
  const rows: Row[] = [];
  try {
    b.setup();
    const probe = UdpPort.probe();
    console.error(`# ${machine()}`);
    console.error(`# ${frames} frames of ${FRAME_LEN} bytes per run, ${runs} runs per row; UDP GSO ${probe.gso ? 'yes' : 'no'}, GRO ${probe.gro ? 'yes' : 'no'}`);
    for (const c of b.cases) {
      const ms: Measured[] = [];
      for (let i = 0; i < runs; i++) {
        const m = await c.run();
        ms.push(m);
        console.error(`  ${c.row} / ${c.impl}: ${fmtPps(m.frames / (m.ns / 1e9))} (${m.frames} frames in ${(m.ns / 1e6).toFixed(1)} ms, cpu ${(m.cpuNs / m.frames).toFixed(0)} ns/frame${m.note === undefined ? '' : `, ${m.note}`})`);
      }
      const pps = median(ms.map((m) => m.frames / (m.ns / 1e9)));
      const batches = ms.every((m) => m.batches !== undefined && m.batches > 0) ? median(ms.map((m) => m.frames / m.batches!)) : null;
      rows.push({ row: c.row, impl: c.impl, runs: ms, pps, cpuNsPerFrame: median(ms.map((m) => m.cpuNs / m.frames)), framesPerBatch: batches });
    }
  } finally {
    cleanup();
  }
  const load1 = loadavg();
  console.log(`Machine: ${machine()}`);
  console.log(`Load average before/after: ${load0.map((x) => x.toFixed(2)).join(' ')} / ${load1.map((x) => x.toFixed(2)).join(' ')}`);
  console.log(`${frames} frames of ${FRAME_LEN} bytes per run (UDP: ${UDP_PAYLOAD_LEN}-byte payloads), median of ${runs} runs.\n`);
  console.log(table(rows));
  if (ji >= 0) writeFileSync(argv[ji + 1]!, JSON.stringify({ machine: machine(), frames, runs, load0, load1, rows }, null, 2));
}

main(process.argv.slice(2)).catch((e: unknown) => {
  console.error(e);
  process.exit(1);
});
