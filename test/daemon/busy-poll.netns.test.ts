// Busy polling in running daemons: a 2-node flatnet lab with `busyPoll` on forwards ping between
// pods of the two nodes, and the daemons report the mode and the spins (status, show counters);
// the node that answers catches its pod's reply while spinning. A reload with `busyPoll: "off"`
// stops the spinning without a restart.
import { execFileSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { request } from '../../src/daemon/control.js';
import { render, type CountersSnapshot } from '../../src/daemon/show.js';
import { labDown, labNamespaces, labUp } from '../../src/lab/lab.js';
import type { LabState } from '../../src/lab/topology.js';
import { ensureDist, labSkipReason, uniqueLabName } from '../support/lab.js';

const skip = labSkipReason();

interface PollStatus { mode: string; budgetUs: number; spinning: boolean; wakeups: number; spins: number; spinFrames: number; spinSeconds: number }

describe.skipIf(skip !== null)(`busy polling in a lab${skip === null ? '' : ` (skipped: ${skip})`}`, () => {
  const name = uniqueLabName('p');
  let s: LabState;
  beforeAll(async () => {
    ensureDist();
    s = await labUp({ name, nodes: 2, kernelNodes: 0, pods: 1, flatnetBusyPoll: 200 });
  });
  afterAll(async () => {
    await labDown(name);
    expect(labNamespaces(name)).toEqual([]);
  });

  const status = async (node: string): Promise<PollStatus> =>
    ((await request(s.nodes.find((n) => n.name === node)!.socket!, { cmd: 'status' })) as { busyPoll: PollStatus }).busyPoll;

  it('forwards ping with busyPoll on and counts the spins and the frames caught spinning', async () => {
    const n1 = s.nodes.find((n) => n.name === 'n1')!, n2 = s.nodes.find((n) => n.name === 'n2')!;
    const before = await status('n2');
    expect([before.mode, before.budgetUs, before.spinning]).toEqual(['always', 200, true]);
    const out = execFileSync('ip', ['netns', 'exec', n1.pods[0]!.ns, 'ping', '-n', '-q', '-c', '40', '-i', '0.01', '-W', '1', n2.pods[0]!.ip], { encoding: 'utf8', timeout: 30_000 });
    expect(out).toMatch(/40 packets transmitted, 40 received/);
    const after = await status('n2');
    // Every echo request woke n2 (or was caught spinning after the previous one) and started a spin.
    expect(after.spins - before.spins).toBeGreaterThanOrEqual(20);
    // n2's pod answers within the 200 µs window: the replies are read while spinning.
    expect(after.spinFrames - before.spinFrames).toBeGreaterThanOrEqual(20);
    expect(after.spinSeconds).toBeGreaterThan(0);
    // Fewer wake-ups than the two per echo a sleeping daemon needs.
    expect(after.wakeups - before.wakeups).toBeLessThan(80);
    const c = (await request(n2.socket!, { cmd: 'show', what: 'counters' })) as CountersSnapshot;
    expect(c.counters['busy_poll_spins']).toBe(after.spins);
    expect(render('counters', c)).toMatch(/^busy_poll_frames\s+\d+$/m);
  });

  it('stops spinning after a reload with busyPoll off', async () => {
    const n1 = s.nodes.find((n) => n.name === 'n1')!;
    const cfg = JSON.parse(readFileSync(n1.config!, 'utf8')) as Record<string, unknown>;
    writeFileSync(n1.config!, `${JSON.stringify({ ...cfg, busyPoll: 'off' }, null, 2)}\n`);
    const r = (await request(n1.socket!, { cmd: 'reload' })) as { nodeChanged: string[] };
    expect(r.nodeChanged).toContain('busyPoll');
    const before = await status('n1');
    expect([before.mode, before.spinning]).toEqual(['off', false]);
    execFileSync('ip', ['netns', 'exec', n1.pods[0]!.ns, 'ping', '-n', '-q', '-c', '10', '-i', '0.01', '-W', '1', s.nodes[1]!.pods[0]!.ip], { timeout: 30_000 });
    const after = await status('n1');
    expect(after.spins).toBe(before.spins);
    expect(after.wakeups - before.wakeups).toBeGreaterThanOrEqual(20);
  });
});
