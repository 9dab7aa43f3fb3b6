// The pipeline fuzz harness (fuzz/harness.ts) in CI: a million generated frames through the
// whole pipeline, in-process, every one with exactly one outcome, nothing thrown, no table past
// its limit. The seed changes every run (FLATNET_FUZZ_SEED fixes it) and is printed; a failure
// prints the seed and frame index that replay it with `npm run fuzz`.
import { describe, expect, it } from 'vitest';
import { DROP_NAMES } from '../../src/pipeline/drop.js';
import { FUZZ_FDB_LIMIT, judgeOutcome, runFuzz } from '../../fuzz/harness.js';

const FRAMES = 1_000_000;

describe('pipeline fuzz', () => {
  it('judges outcomes: one drop, forwarded, per-copy drops of an L2 flood; and flags the rest', () => {
    const z = (): Float64Array => new Float64Array(DROP_NAMES.length);
    const at = (name: string, n = 1): Float64Array => { const a = z(); a[DROP_NAMES.indexOf(name)] = n; return a; };
    expect(judgeOutcome(1, z(), at('spoof_src_ip'), 0, false)).toEqual({ dropped: 'spoof_src_ip', perCopy: false });
    expect(judgeOutcome(1, z(), z(), 2, false)).toEqual({ dropped: null, perCopy: false });
    expect(judgeOutcome(1, z(), at('mtu_exceeded', 2), 2, true)).toEqual({ dropped: null, perCopy: true });
    expect(judgeOutcome(1, z(), z(), 0, false)).toMatch(/no outcome/);
    expect(judgeOutcome(0, z(), z(), 1, false)).toMatch(/read 0 times/);
    expect(judgeOutcome(2, z(), z(), 1, false)).toMatch(/read 2 times/);
    expect(judgeOutcome(1, z(), at('mtu_exceeded', 2), 2, false)).toMatch(/2 drops/); // L3 does not flood
    expect(judgeOutcome(1, z(), at('spoof_src_ip', 2), 0, true)).toMatch(/2 drops/); // not a per-copy reason
    expect(judgeOutcome(1, z(), at('none'), 0, false)).toMatch(/no named reason/);
  });

  it('is replayable: the same seed gives the same run', () => {
    const a = runFuzz({ seed: 12345, frames: 20_000 });
    const b = runFuzz({ seed: 12345, frames: 20_000 });
    expect({ ...b, ms: 0 }).toEqual({ ...a, ms: 0 });
    expect(runFuzz({ seed: 54321, frames: 20_000 }).byReason).not.toEqual(a.byReason);
  });

  it(`${FRAMES} generated frames: 0 exceptions, one outcome each, tables within their limits`, () => {
    const seed = Number(process.env['FLATNET_FUZZ_SEED'] ?? (Date.now() % 2_000_000_000));
    const rep = runFuzz({ seed, frames: FRAMES });
    console.log(`fuzz: ${rep.frames} frames (seed ${seed}) in ${(rep.ms / 1000).toFixed(1)} s: ${rep.forwarded} forwarded (${rep.floodCopyDrops} floods with per-copy drops), ${rep.dropped} dropped under ${Object.keys(rep.byReason).length} reasons, ${rep.exceptions} exceptions, FDB at most ${rep.maxFdb}`);
    const f = rep.failure;
    expect(f, f === null ? '' : `frame ${f.index} of seed ${f.seed} (replay: npm run fuzz -- --seed ${f.seed} --frames ${f.index + 1}): ${f.what}; ${f.node} ${f.port} ${f.kind} ${f.mutation}; frame ${f.frameHex}`).toBeNull();
    expect(rep.frames).toBe(FRAMES);
    expect(rep.exceptions).toBe(0);
    expect(rep.forwarded + rep.dropped).toBe(FRAMES);
    expect(rep.maxFdb).toBe(FUZZ_FDB_LIMIT); // random sources filled the FDB to its limit, never past it
    // The generator reaches deep: many reasons, all four kinds of mutation.
    expect(Object.keys(rep.byReason).length).toBeGreaterThan(30);
    expect(Object.keys(rep.byMutation).sort()).toEqual(['bytes', 'fields', 'none', 'random']);
  }, 600_000);
});
