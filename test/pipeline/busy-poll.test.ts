// Busy polling in the switch's drain loop (src/pipeline/busy-poll.ts) over in-memory ports and a
// fake clock that advances one microsecond per reading: a frame that arrives while the switch
// spins is forwarded without another readiness callback; after the budget without frames the
// switch sleeps again; a spin never holds the event loop beyond its budget; `off`, and `auto`
// without a spare core, never spin; auto's spare-core rule and its hysteresis.
import { afterEach, describe, expect, it } from 'vitest';
import { createRegistry } from '../../src/daemon/metrics.js';
import { busyPollStatus, render, snapshotCounters } from '../../src/daemon/show.js';
import { BUSY_POLL_OFF, parseCpuLine, SpareCore } from '../../src/pipeline/busy-poll.js';
import type { Switch } from '../../src/pipeline/switch.js';
import type { MemoryPort } from '../../src/io/memory-port.js';
import { ip, udp } from '../support/pod-frames.js';
import { POD_MAC, smallSwitch, VTEP } from '../support/small-switch.js';

const STEP_MS = 0.001;

/**
 * A clock that moves STEP_MS per reading and runs `at` actions once their time has come (a
 * frame arriving while the switch spins).
 */
class StepClock {
  t = 1000;
  readings = 0;
  private readonly due: { at: number; run: () => void }[] = [];
  readonly now = (): number => {
    this.t += STEP_MS;
    this.readings++;
    for (let i = 0; i < this.due.length; i++) {
      if (this.due[i]!.at <= this.t) { const d = this.due.splice(i, 1)[0]!; i--; d.run(); }
    }
    return this.t;
  };
  /** after runs `run` at the first reading `us` microseconds from now. */
  after(us: number, run: () => void): void { this.due.push({ at: this.t + us / 1000, run }); }
}

const switches: Switch[] = [];
afterEach(() => { for (const sw of switches.splice(0)) sw.stop(); });

function build(): { sw: Switch; pod: MemoryPort; overlay: MemoryPort } {
  const { sw, pod, overlay } = smallSwitch();
  switches.push(sw);
  return { sw, pod, overlay };
}

/** A frame from the pod to a pod behind peer n2 (encapsulated toward the overlay). */
const toPeer = (): Buffer => udp({ srcMac: POD_MAC, dstMac: VTEP, src: ip('10.244.1.2'), dst: ip('10.244.2.2') });
const turn = (): Promise<void> => new Promise((r) => setImmediate(r));
async function turns(n: number): Promise<void> { for (let i = 0; i < n; i++) await turn(); }

/** /proc/stat's first line with these idle and busy jiffies (2 CPUs). */
const stat = (idle: number, busy: number): string => `cpu  ${busy} 0 0 ${idle} 0 0 0 0 0 0\ncpu0 0 0 0 0\n`;

/**
 * A switch spinning with a 50 µs budget that reads a first frame, then a second one 20 µs into
 * the spin (caught without a readiness callback).
 */
async function spinWithALateFrame(): Promise<{ sw: Switch; overlay: MemoryPort }> {
  const { sw, pod, overlay } = build();
  const clock = new StepClock();
  sw.setBusyPoll({ mode: 'always', budgetUs: 50 }, { clock: clock.now });
  sw.start();
  clock.after(20, () => pod.inject(toPeer()));
  pod.inject(toPeer());
  await turns(5);
  return { sw, overlay };
}

describe('busy polling', () => {
  it('forwards a frame that arrives during the spin without a new readiness callback', async () => {
    const { sw, overlay } = await spinWithALateFrame();
    expect(overlay.take()).toHaveLength(2);
    const p = sw.pollStats;
    expect([p.wakeups, p.spins, p.frames]).toEqual([1, 1, 1]);
    // The spin ended 50 µs after the second frame (caught ~20 µs in), give or take a reading.
    expect(p.spinMs).toBeGreaterThanOrEqual(0.069);
    expect(p.spinMs).toBeLessThanOrEqual(0.075);
  });

  it('reports the mode and the counters in status, show counters and /metrics', async () => {
    const { sw } = await spinWithALateFrame();
    const st = busyPollStatus(sw);
    expect(st).toMatchObject({ mode: 'always', budgetUs: 50, spinning: true, spareCores: null, wakeups: 1, spins: 1, spinFrames: 1, spinYields: 1 });
    // One yield: the frame at 20 µs moved the window's end to 70 µs, past one call's 50 µs.
    expect(st.spinRounds).toBeGreaterThan(50);
    const c = snapshotCounters(sw);
    expect([c.counters['wakeups'], c.counters['busy_poll_spins'], c.counters['busy_poll_frames'], c.counters['busy_poll_us']]).toEqual([1, 1, 1, Math.round(sw.pollStats.spinMs * 1000)]);
    expect(render('counters', c)).toMatch(/^busy_poll_frames\s+1$/m);
    const text = await createRegistry(sw, { node: 'n1' }).metrics();
    expect(text).toMatch(/^flatnet_busy_poll_frames_total\{node="n1"\} 1$/m);
    expect(text).toMatch(/^flatnet_wakeups_total\{node="n1"\} 1$/m);
    expect(text).toMatch(/^flatnet_busy_poll_active\{node="n1"\} 1$/m);
  });

  it('sleeps again after the budget without frames: the next frame needs a wake-up', async () => {
    const { sw, pod, overlay } = build();
    const clock = new StepClock();
    sw.setBusyPoll({ mode: 'always', budgetUs: 30 }, { clock: clock.now });
    sw.start();
    pod.inject(toPeer());
    await turns(3);
    expect([sw.pollStats.wakeups, sw.pollStats.spins, sw.pollStats.frames]).toEqual([1, 1, 0]);
    expect(sw.pollStats.spinMs).toBeLessThanOrEqual(0.03 + 2 * STEP_MS);
    const readings = clock.readings;
    await turns(3);
    // Asleep: nothing reads the clock or the ports while no frame comes.
    expect(clock.readings).toBe(readings);
    pod.inject(toPeer());
    await turns(3);
    expect(overlay.take()).toHaveLength(2);
    expect([sw.pollStats.wakeups, sw.pollStats.spins, sw.pollStats.frames]).toEqual([2, 2, 0]);
  });

  it('never holds the event loop beyond the budget while frames keep coming', async () => {
    const { sw, pod, overlay } = build();
    const clock = new StepClock();
    const budgetUs = 40;
    sw.setBusyPoll({ mode: 'always', budgetUs }, { clock: clock.now });
    sw.start();
    // A frame every 10 µs of spin time, until a timer (which needs the event loop) says stop.
    let stopped = false, sent = 1;
    const feed = (): void => {
      if (stopped) return;
      pod.inject(toPeer());
      sent++;
      clock.after(10, feed);
    };
    const timer = new Promise<void>((r) => setTimeout(() => { stopped = true; r(); }, 20));
    clock.after(10, feed);
    pod.inject(toPeer());
    await timer;
    await turns(5);
    const p = sw.pollStats;
    expect(overlay.take()).toHaveLength(sent);
    // It went back to the event loop (the timer ran) and spun on afterwards: yields, frames caught.
    expect(p.yields).toBeGreaterThan(0);
    // Most frames were read while spinning; a few arrived just as a spin yielded and woke the port.
    expect(p.frames).toBeGreaterThan(0.8 * sent);
    expect(p.frames + p.wakeups).toBeGreaterThanOrEqual(sent);
    // Each spin call (the first and every continuation) stayed within the budget plus one reading.
    expect(p.spinMs).toBeLessThanOrEqual((p.spins + p.yields) * (budgetUs / 1000 + 2 * STEP_MS));
  });

  it('off never spins: every frame waits for its readiness callback', async () => {
    const { sw, pod, overlay } = build();
    sw.setBusyPoll(BUSY_POLL_OFF);
    sw.start();
    for (let i = 0; i < 3; i++) {
      pod.inject(toPeer());
      await turns(2);
    }
    expect(overlay.take()).toHaveLength(3);
    expect([sw.spinEnabled, sw.pollStats.wakeups, sw.pollStats.spins, sw.pollStats.rounds, sw.pollStats.spinMs]).toEqual([false, 3, 0, 0, 0]);
  });

  it('auto spins only while a core is spare, counting its own spin time as spare', async () => {
    const { sw, pod, overlay } = build();
    const clock = new StepClock();
    let text = stat(0, 0);
    const spare = new SpareCore(() => text, 2);
    sw.setBusyPoll({ mode: 'auto', budgetUs: 30 }, { clock: clock.now, spare });
    sw.start(); // the first sample: a baseline
    // One second on 2 CPUs (200 jiffies): both busy. No spare core: no spin.
    text = stat(0, 200);
    sw.sampleSpareCore();
    expect([sw.spareCores, sw.spinEnabled]).toEqual([0, false]);
    pod.inject(toPeer());
    await turns(3);
    expect([sw.pollStats.wakeups, sw.pollStats.spins]).toEqual([1, 0]);
    // The next second one CPU idles: a spare core, it spins.
    text = stat(100, 300);
    sw.sampleSpareCore();
    expect([sw.spareCores, sw.spinEnabled]).toEqual([1, true]);
    pod.inject(toPeer());
    await turns(3);
    expect([sw.pollStats.wakeups, sw.pollStats.spins]).toEqual([2, 1]);
    expect(overlay.take()).toHaveLength(2);
    expect(sw.spareChanges).toBe(2);
  });
});

describe('SpareCore', () => {
  it('turns on at one spare core and off below half a core (hysteresis)', () => {
    let idle = 0, busy = 0, spun = 0;
    const s = new SpareCore(() => stat(idle, busy), 2);
    s.sample(0);
    /** second: one more second on 2 CPUs (200 jiffies) with `idleJ` of them idle, `spinMs` of it our spin. */
    const second = (idleJ: number, spinMs = 0): boolean => {
      idle += idleJ; busy += 200 - idleJ; spun += spinMs;
      return s.sample(spun);
    };
    expect([second(180), s.spareCores]).toEqual([true, 1.8]);
    // 0.7 spare: stays on (above the 0.5 off threshold).
    expect([second(70), s.spareCores]).toEqual([true, 0.7]);
    // 0.3 spare: off.
    expect([second(30), s.spareCores]).toEqual([false, 0.3]);
    // 0.7 spare again: stays off (below the 1.0 on threshold).
    expect(second(70)).toBe(false);
    // 0.4 cores idle, and this process spun 0.6 s of the second: 1.0 spare, on.
    expect([second(40, 600), s.spareCores]).toEqual([true, 1]);
    expect(s.changes).toBe(2);
  });

  it('keeps its decision when /proc/stat cannot be parsed', () => {
    const s = new SpareCore(() => 'garbage', 2);
    expect(s.sample(0)).toBe(true);
    expect(s.spareCores).toBe(-1);
    expect(parseCpuLine('cpu  1 2 3 x\n')).toBeNull();
    expect(parseCpuLine('cpu  10 0 5 80 5 0 0 0 0 0\n')).toEqual([85, 100]);
  });
});
