// A node's daemon after a crash, as an operator meets it: SIGKILL leaves "vtep up" in its log;
// `lab test` fails the node's daemon row and says how to restart it; a daemon started again by
// other means is found by its live pid (lab.json's is stale); `flatnet lab restart NODE` stops
// whatever runs, starts the daemon again, records its pid, and `lab test` passes.
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isRunning, sleep } from '../../src/lab/exec.js';
import { spawnDaemon, waitReady } from '../../src/lab/flatnet-node.js';
import { labDown, labNamespaces } from '../../src/lab/lab.js';
import { loadLab } from '../../src/lab/topology.js';
import { ensureDist, labSkipReason, REPO_ROOT, uniqueLabName } from '../support/lab.js';

const skip = labSkipReason();
const MAIN = join(REPO_ROOT, 'dist/src/cli/main.js');

function flatnet(...args: string[]): { code: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [MAIN, ...args], { encoding: 'utf8', timeout: 120_000 });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

describe.skipIf(skip !== null)(`flatnet lab restart${skip === null ? '' : ` (skipped: ${skip})`}`, () => {
  const name = uniqueLabName('h');
  beforeAll(() => ensureDist());
  afterAll(async () => {
    await labDown(name);
    expect(labNamespaces(name)).toEqual([]);
  });

  it('SIGKILL, the log kept, lab test FAIL, a daemon started by hand found by its live pid, lab restart, lab test PASS', async () => {
    const up = flatnet('lab', 'up', '--name', name, '--nodes', '2', '--kernel-nodes', '0', '--pods', '1');
    expect(up.code, up.stderr).toBe(0);
    const testArgs = ['lab', 'test', '--name', name, '--ping-count', '2', '--iperf-time', '1', '--iperf-bitrate', '10M'];
    const s = loadLab(name);
    const n1 = s.nodes.find((n) => n.name === 'n1')!;
    const pid0 = s.daemons['n1']!.pid;

    process.kill(pid0, 'SIGKILL');
    for (let i = 0; i < 100 && isRunning(pid0); i++) await sleep(20);
    expect(isRunning(pid0)).toBe(false);
    // The log kept what the daemon wrote before it died, one JSON line each.
    const log = readFileSync(n1.log, 'utf8').split('\n').filter((l) => l !== '').map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(log.some((l) => l['msg'] === 'vtep up' && l['node'] === 'n1')).toBe(true);

    const failed = flatnet(...testArgs);
    expect(failed.code).toBe(1);
    const row = failed.stdout.split('\n').find((l) => l.startsWith('daemon') && l.includes('n1'))!;
    expect(row).toMatch(/FAIL/);
    expect(row).toContain(`flatnet lab restart n1 --name ${name}`);

    // Started again outside the lab's bookkeeping: lab.json still names the dead pid.
    const byHand = spawnDaemon(n1);
    try {
      await waitReady(n1, byHand.pid);
      const live = flatnet(...testArgs);
      expect(live.code, live.stdout + live.stderr).toBe(0);
      expect(live.stdout).toContain(`pid ${byHand.pid} (lab.json recorded ${pid0})`);

      const r = flatnet('lab', 'restart', 'n1', '--name', name);
      expect(r.code, r.stderr).toBe(0);
      const pid2 = loadLab(name).daemons['n1']!.pid;
      expect(r.stdout).toContain(`n1: stopped pid ${byHand.pid}; now pid ${pid2}`);
      expect(pid2).not.toBe(byHand.pid);
      expect(isRunning(byHand.pid)).toBe(false);
    } finally {
      if (isRunning(byHand.pid) && loadLab(name).daemons['n1']!.pid !== byHand.pid) process.kill(byHand.pid, 'SIGKILL');
    }
    const pass = flatnet(...testArgs);
    expect(pass.code, pass.stdout + pass.stderr).toBe(0);
    expect(pass.stdout).not.toContain('lab.json recorded');

    // Refusals: an unknown node, and restarting after a crash (nothing to stop) works too.
    const bad = flatnet('lab', 'restart', 'n9', '--name', name);
    expect(bad.code).toBe(1);
    expect(bad.stderr).toContain('ERR_LAB_NODE');
    process.kill(loadLab(name).daemons['n2']!.pid, 'SIGKILL');
    await sleep(200);
    const again = flatnet('lab', 'restart', 'n2', '--name', name);
    expect(again.code, again.stderr).toBe(0);
    expect(again.stdout).toContain('n2: no daemon was running');
  });
});
