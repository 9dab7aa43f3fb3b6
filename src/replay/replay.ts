/**
 * Replay: push every frame of a capture through the real pipeline in-process, as one node of a
 * topology (src/replay/node.ts), and measure it.
 *
 * Flow:
 *   1. build the node's Switch exactly as the daemon does, with a ReplayPort per pod, for the
 *      host and for the overlay (whole Ethernet frames)
 *   2. load (untimed): read the capture into memory, classify each frame to its ingress port
 *      (src/replay/classify.ts) and record it there as a window into the file; no copy
 *   3. warm up (untimed, replayCapture): the same frames through a throwaway node of the same
 *      configuration, so the JIT has settled before the timed node is even built
 *   4. run (timed): hrtime around Switch.pump() only; every port hands out its frames `loops`
 *      times, in file order per port (the switch drains port by port, 64 frames per batch, as
 *      the daemon does, so frames of different ports interleave by batch, not by file order).
 *      With a capture (`--out`), the first pass is run on its own and what the switch emits
 *      during it is copied out; the other passes emit to counters only.
 *   5. result: frames in and out per port, drops by reason, pps, ns/frame, heap bytes per frame
 *      (src/replay/alloc-meter.ts: GC-accounted, exact without --expose-gc)
 */

import { PcapError } from '../errors.js';
import type { NodeConfig } from '../daemon/config.js';
import { LinkType, PcapReader, PcapRecord } from '../pcap/pcap.js';
import type { Clock } from '../fib/clock.js';
import { Framing, PortRole, Switch } from '../pipeline/switch.js';
import { dataViewOf } from '../wire/bytes.js';
import { DROP_NAMES } from '../pipeline/drop.js';
import { AllocationMeter } from './alloc-meter.js';
import { ClassRule, Classifier } from './classify.js';
import { DEFAULT_UNDERLAY_MACS, type ReplayVtepMac, replayVtepMac } from './node.js';
import { peerSpecsFor, switchOptionsFor, type UnderlayMacs } from '../daemon/switch-options.js';
import { FrameCapture, FrameStore, ReplayPort } from './replay-port.js';

/** Receive slot size: the daemon's default (2048), so frames above 1998 bytes are rx_truncated. */
export const REPLAY_SLOT_SIZE = 2048;
/** Rounds per Switch.pump() call (each round: one batch per port). */
const PUMP_ROUNDS = 16;
/** Pump calls between two readings of the time (for the switch's clock and the progress line). */
const CLOCK_EVERY = 8;

/**
 * ReplayClock: the switch's clock during a replay, advanced by the replay loop every
 * CLOCK_EVERY pump calls (a few milliseconds at full speed) instead of read per batch.
 *
 * The daemon's MonotonicClock reads performance.now() once per batch (Switch.drainOnce), and on
 * Node 20 every reading allocates (16-32 bytes: a boxed double, or process.hrtime()'s array),
 * 0.25-0.5 bytes per frame at 64 frames per batch. Replay reads the time itself, rarely, so
 * the timed run measures the pipeline without that allocation; ICMP rate limiting and FDB
 * ageing (the only users of the clock) see millisecond-coarse time, which is all they need.
 */
export class ReplayClock implements Clock {
  now = 0;
  tick(): number {
    return this.now;
  }
}

/** A capture loaded for replay: its frames per ingress port, and what could not be replayed. */
export interface ReplayInput {
  /** Ethernet frames in one pass over the file. */
  readonly frames: number;
  /** Per port (ReplayNode.ports order). */
  readonly stores: readonly FrameStore[];
  /** Frames placed by each classification rule (index = ClassRule). */
  readonly byRule: readonly number[];
  /** Records of a link type other than Ethernet (pcapng interfaces): not replayed. */
  readonly skippedLinkType: number;
  /** Frames the capture holds less of than was on the wire (snaplen): replayed, rx_truncated. */
  readonly snapTruncated: number;
  /** The file ends in the middle of a record; the frames before it are replayed. */
  readonly fileTruncated: boolean;
}

export interface PortResult {
  readonly name: string;
  readonly role: string;
  readonly framesIn: number;
  readonly framesOut: number;
  readonly bytesOut: number;
}

export interface ReplayResult {
  readonly loops: number;
  readonly framesPerPass: number;
  readonly framesIn: number;
  readonly framesOut: number;
  readonly elapsedNs: number;
  readonly pps: number;
  readonly nsPerFrame: number;
  readonly heapBytesPerFrame: number;
  readonly heapBytes: number;
  readonly gcs: number;
  readonly warmupFrames: number;
  readonly ports: readonly PortResult[];
  /** Non-zero drop counters by name (src/wire/drop.ts). */
  readonly drops: Readonly<Record<string, number>>;
  readonly dropsTotal: number;
  readonly events: {
    readonly encapsulated: number;
    readonly decapsulated: number;
    readonly arpReplies: number;
    readonly icmpSent: number;
    readonly icmpSuppressed: number;
    readonly floodCopies: number;
    readonly fdbMoved: number;
  };
  /** Frames copied out for `--out` (the first pass), or 0 without a capture. */
  readonly captured: number;
}

export interface Progress {
  readonly framesIn: number;
  readonly elapsedNs: number;
  readonly pass: number;
  readonly loops: number;
}

export interface RunOptions {
  readonly loops: number;
  /** Copy what the switch emits during the first pass into this capture. */
  readonly capture?: FrameCapture | null;
  /** Called about every `progressMs` during the timed run (default 1000 ms). */
  readonly onProgress?: ((p: Progress) => void) | null;
  readonly progressMs?: number;
}

export interface ReplayNodeOptions {
  readonly underlayMacs?: UnderlayMacs;
  /**
   * The switch's clock. Default: a ReplayClock, advanced by run(). Pass `new MonotonicClock()`
   * to measure with the daemon's per-batch clock reads.
   */
  readonly clock?: Clock;
}

export class ReplayNode {
  readonly cfg: NodeConfig;
  readonly sw: Switch;
  readonly vtepMac: ReplayVtepMac;
  readonly underlayMacs: UnderlayMacs;
  /** Pods in configuration order, then the host, then the overlay. */
  readonly ports: readonly ReplayPort[];
  readonly roles: readonly string[];
  readonly classifier: Classifier;
  /** The switch's clock: a ReplayClock unless one was given. */
  readonly clock: Clock;

  constructor(cfg: NodeConfig, opts: ReplayNodeOptions = {}) {
    this.cfg = cfg;
    this.vtepMac = replayVtepMac(cfg);
    this.underlayMacs = opts.underlayMacs ?? DEFAULT_UNDERLAY_MACS;
    this.clock = opts.clock ?? new ReplayClock();
    this.sw = new Switch({ ...switchOptionsFor(cfg, this.vtepMac.mac, cfg.underlay.mtu ?? 1500, this.underlayMacs), slotSize: REPLAY_SLOT_SIZE, clock: this.clock });
    const ports: ReplayPort[] = [];
    const roles: string[] = [];
    // Attach in the daemon's order: host, overlay, peers, pods. Port indexes here are ours.
    const host = new ReplayPort(cfg.host.interface);
    const overlay = new ReplayPort(`vxlan:${cfg.port}`);
    this.sw.attachHost(host, cfg.host.mac ?? 0, host.name);
    this.sw.attachOverlay(overlay, Framing.ETHERNET, overlay.name);
    this.sw.setPeers(peerSpecsFor(cfg));
    for (const p of cfg.pods) {
      const port = new ReplayPort(p.name);
      this.sw.attachPod(port, p.ip, p.mac, p.name);
      ports.push(port);
      roles.push(PortRole.POD);
    }
    ports.push(host, overlay);
    roles.push(PortRole.HOST, PortRole.OVERLAY);
    this.ports = ports;
    this.roles = roles;
    this.classifier = new Classifier({
      podMacs: cfg.pods.map((p) => p.mac),
      podIps: cfg.pods.map((p) => p.ip),
      hostMac: cfg.host.mac,
      underlayIp: cfg.underlay.address,
      vxlanPort: cfg.port,
      hostIndex: ports.length - 2,
      overlayIndex: ports.length - 1,
    });
  }

  /**
   * load reads a capture held in memory (classic pcap or pcapng) and sorts its frames by
   * ingress port. Throws PcapError for a file that is not a capture, or a corrupt pcapng block.
   */
  load(data: Buffer): ReplayInput {
    const reader = new PcapReader(data);
    if (reader.format !== 'pcapng' && reader.linkType !== LinkType.ETHERNET) {
      throw new PcapError('ERR_PCAP_LINKTYPE', `link type ${reader.linkType} is not Ethernet`);
    }
    const stores = this.ports.map(() => new FrameStore());
    const byRule = [0, 0, 0, 0, 0, 0];
    const rec = new PcapRecord();
    const dv = dataViewOf(data);
    const cls = this.classifier;
    let frames = 0, skipped = 0, snap = 0;
    while (reader.next(rec)) {
      if (rec.linkType !== LinkType.ETHERNET) {
        skipped++;
        continue;
      }
      const i = cls.classify(dv, rec.off, rec.capLen);
      byRule[cls.rule]!++;
      const cut = rec.capLen < rec.origLen;
      if (cut) snap++;
      stores[i]!.add(data, rec.off, rec.capLen, cut);
      frames++;
    }
    return { frames, stores, byRule, skippedLinkType: skipped, snapTruncated: snap, fileTruncated: reader.truncated };
  }

  /**
   * run replays `input` (from load() on a node of the same configuration) `loops` times through
   * this node and measures it; see the module comment. No warm-up: replayCapture() does that.
   */
  run(input: ReplayInput, opts: RunOptions): ReplayResult {
    const loops = opts.loops;
    if (!Number.isInteger(loops) || loops < 1) throw new RangeError(`loops must be a positive integer, not ${loops}`);
    const capture = opts.capture ?? null;
    const every = BigInt(Math.round((opts.progressMs ?? 1000) * 1e6));
    const onProgress = opts.onProgress ?? null;
    const sw = this.sw;
    const clock = this.clock instanceof ReplayClock ? this.clock : null;
    const origin = process.hrtime.bigint();
    const meter = new AllocationMeter();
    // The first pass on its own when capturing (then detach), else every pass at once.
    const segments = capture !== null ? [1, loops - 1] : [loops];
    let framesIn = 0;
    let elapsed = 0n;
    meter.start();
    for (let seg = 0; seg < segments.length; seg++) {
      const passes = segments[seg]!;
      if (passes === 0) continue;
      for (let i = 0; i < this.ports.length; i++) {
        const p = this.ports[i]!;
        p.load(input.stores[i]!, passes);
        p.capture = seg === 0 ? capture : null;
      }
      const t0 = process.hrtime.bigint();
      let next = t0 + every;
      let calls = 0;
      for (;;) {
        const n = sw.pump(PUMP_ROUNDS);
        if (n === 0) break;
        framesIn += n;
        if (++calls === CLOCK_EVERY) {
          calls = 0;
          const t = process.hrtime.bigint();
          if (clock !== null) clock.now = Number(t - origin) / 1e6;
          if (onProgress !== null && t >= next) {
            next = t + every;
            onProgress({ framesIn, elapsedNs: Number(elapsed + (t - t0)), pass: Math.min(loops, 1 + Math.floor(framesIn / Math.max(1, input.frames))), loops });
          }
        }
      }
      elapsed += process.hrtime.bigint() - t0;
    }
    const alloc = meter.stop();
    for (const p of this.ports) p.capture = null;

    const ns = Number(elapsed);
    const st = sw.stats;
    const ports: PortResult[] = this.ports.map((p, i) => ({
      name: p.name, role: this.roles[i]!, framesIn: p.stats.rxPackets, framesOut: p.stats.txPackets, bytesOut: p.stats.txBytes,
    }));
    const framesOut = ports.reduce((a, p) => a + p.framesOut, 0);
    const drops: Record<string, number> = {};
    let dropsTotal = 0;
    for (let i = 1; i < st.drops.length; i++) {
      const d = st.drops[i]!;
      if (d > 0) {
        drops[DROP_NAMES[i]!] = d;
        dropsTotal += d;
      }
    }
    return {
      loops,
      framesPerPass: input.frames,
      framesIn,
      framesOut,
      elapsedNs: ns,
      pps: framesIn === 0 || ns === 0 ? 0 : (framesIn * 1e9) / ns,
      nsPerFrame: framesIn === 0 ? 0 : ns / framesIn,
      heapBytesPerFrame: framesIn === 0 ? 0 : alloc.bytes / framesIn,
      heapBytes: alloc.bytes,
      gcs: alloc.gcs,
      warmupFrames: 0,
      ports,
      drops,
      dropsTotal,
      events: {
        encapsulated: st.encapsulated, decapsulated: st.decapsulated, arpReplies: st.arpReplies, icmpSent: st.icmpSent,
        icmpSuppressed: st.icmpSuppressed, floodCopies: st.floodCopies, fdbMoved: st.fdbMoved,
      },
      captured: capture?.count ?? 0,
    };
  }
}

/** Frames per classification rule, by name (for the summary). */
export function rulesByName(input: ReplayInput): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [name, r] of Object.entries(ClassRule)) {
    const n = input.byRule[r] ?? 0;
    if (n > 0) out[name.toLowerCase()] = n;
  }
  return out;
}

export interface ReplayOptions extends RunOptions, ReplayNodeOptions {
  /** Frames replayed through a throwaway node before the timed run (default 262,144; 0: none). */
  readonly warmupFrames?: number;
}

export interface Replayed {
  readonly node: ReplayNode;
  readonly input: ReplayInput;
  readonly result: ReplayResult;
}

/** Default warm-up: enough frames for V8 to optimise the pipeline and settle its object shapes. */
export const DEFAULT_WARMUP_FRAMES = 262_144;

/**
 * replayCapture loads `data` (a pcap or pcapng file's bytes) for a node configured by `cfg`,
 * warms up, and runs the timed replay on a fresh node.
 *
 * The warm-up runs about `warmupFrames` frames through a throwaway node in exactly the way the
 * timed run will (same loop, same clock updates, a throwaway capture when capturing), and the
 * timed node is built only afterwards. V8 has then optimised the pipeline and finished the
 * field generalisations that the first run of it causes (a counter's first store, the clock's
 * first fractional millisecond); a node built before them would hit a deoptimisation ("wrong
 * map") at the start of its timed run.
 */
export function replayCapture(cfg: NodeConfig, data: Buffer, opts: ReplayOptions): Replayed {
  const first = new ReplayNode(cfg, opts);
  const input = first.load(data);
  const warm = opts.warmupFrames ?? DEFAULT_WARMUP_FRAMES;
  if (warm <= 0 || input.frames === 0) return { node: first, input, result: first.run(input, opts) };
  const passes = Math.max(1, Math.ceil(warm / input.frames));
  const w = first.run(input, { loops: passes, capture: opts.capture === undefined || opts.capture === null ? null : new FrameCapture(), progressMs: opts.progressMs });
  const node = new ReplayNode(cfg, opts);
  const result = node.run(input, opts);
  return { node, input, result: { ...result, warmupFrames: w.framesIn } };
}
