// `flatnet lab up|test|down|demo` as a user runs them: the built executable, one process per
// command, the state in /run/flatnet/lab-NAME in between. Covers the refusals, the table and
// exit status (also when a daemon died: FAIL rows and the surviving node's counters), `down`
// after an `up` killed half-way, and `demo` removing the lab when interrupted.
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isRunning, sleep } from '../../src/lab/exec.js';
import { labDown, labNamespaces } from '../../src/lab/lab.js';
import { labDir, stateFile, type LabState } from '../../src/lab/topology.js';
import { ensureDist, labSkipReason, REPO_ROOT, uniqueLabName } from '../support/lab.js';

const skip = labSkipReason();
const MAIN = join(REPO_ROOT, 'dist/src/cli/main.js');

function flatnet(...args: string[]): { code: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [MAIN, ...args], { encoding: 'utf8', timeout: 120_000 });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

const readLab = (name: string): LabState | null => (existsSync(stateFile(labDir(name))) ? JSON.parse(readFileSync(stateFile(labDir(name)), 'utf8')) as LabState : null);

async function until(what: string, cond: () => boolean, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(50);
  }
}

describe.skipIf(skip !== null)(`flatnet lab (the executable)${skip === null ? '' : ` (skipped: ${skip})`}`, () => {
  const names = [uniqueLabName('c'), uniqueLabName('c'), uniqueLabName('c')] as const;

  beforeAll(() => ensureDist());
  afterAll(async () => {
    for (const n of names) await labDown(n);
    for (const n of names) expect(labNamespaces(n)).toEqual([]);
  });

  it('up, up again (refused), test (PASS table), test after a daemon died (FAIL, counters), down, down again', () => {
    const name = names[0];
    const up = flatnet('lab', 'up', '--name', name, '--nodes', '3', '--kernel-nodes', '1', '--pods', '1');
    expect(up.code, up.stderr).toBe(0);
    expect(up.stdout).toMatch(/^NODE\s+KIND\s+NAMESPACE/);
    expect(up.stdout).toContain(`n3    kernel(udpcsum)  fl-${name}-n3`);
    expect(up.stdout).toContain(`next: flatnet lab test --name ${name}`);

    const again = flatnet('lab', 'up', '--name', name);
    expect(again.code).toBe(1);
    expect(again.stderr).toContain(`lab ${name} already exists`);
    expect(again.stderr).toContain('ERR_LAB_EXISTS');

    const test = flatnet('lab', 'test', '--name', name, '--ping-count', '2', '--iperf-time', '1', '--iperf-bitrate', '20M');
    expect(test.code, test.stdout + test.stderr).toBe(0);
    const rows = test.stdout.split('\n').filter((l) => /^(daemon|ping|iperf3|tshark)\s/.test(l));
    expect(rows.length).toBe(2 + 6 + 4 + 1);
    for (const r of rows) expect(r).toMatch(/\sPASS\s/);
    expect(test.stdout).toContain(`PASS: all ${rows.length} checks passed`);
    expect(existsSync(join(labDir(name), 'underlay.pcapng'))).toBe(false); // removed after a pass

    const st = readLab(name)!;
    process.kill(st.daemons['n1']!.pid, 'SIGKILL');
    const bad = flatnet('lab', 'test', '--name', name, '--ping-count', '1', '--no-capture', '--iperf-time', '1');
    expect(bad.code).toBe(1);
    expect(bad.stdout).toMatch(/^daemon\s+n1 \(flatnet\)\s+FAIL\s+not running/m);
    expect(bad.stdout).toMatch(/^ping\s+n1p0 10\.244\.1\.10\s+n2p0 10\.244\.2\.10\s+FAIL/m);
    expect(bad.stdout).toMatch(/^ping\s+n2p0 10\.244\.2\.10\s+n3p0 10\.244\.3\.10\s+PASS/m);
    expect(bad.stdout).toMatch(/FAIL: \d+ of \d+ checks failed/);
    expect(bad.stdout).toContain('flatnet show counters (n2):');
    expect(bad.stdout).toMatch(/flatnet show counters \(n1\):\n\(unreachable/);

    const down = flatnet('lab', 'down', '--name', name);
    expect(down.code, down.stderr).toBe(0);
    // 7 namespaces of nodes, pods and the underlay, and the etcd member's (`lab up` builds from etcd by default).
    expect(down.stderr).toMatch(new RegExp(`lab ${name}: stopped 1 daemon\\(s\\), removed 8 namespace\\(s\\) and /run/flatnet/lab-${name}`));
    expect(labNamespaces(name)).toEqual([]);
    expect(existsSync(labDir(name))).toBe(false);
    expect(isRunning(st.daemons['n2']!.pid)).toBe(false);

    const again2 = flatnet('lab', 'down', '--name', name);
    expect([again2.code, again2.stderr.trim()]).toEqual([0, `lab ${name}: nothing to remove`]);
    const test2 = flatnet('lab', 'test', '--name', name);
    expect(test2.code).toBe(1);
    expect(test2.stderr).toContain('ERR_LAB_NOT_FOUND');
  });

  it('down cleans up after an up that was killed half-way (daemons started, state incomplete)', async () => {
    const name = names[1];
    const up = spawn(process.execPath, [MAIN, 'lab', 'up', '--name', name], { stdio: 'ignore' });
    const exited = new Promise<void>((r) => up.on('exit', () => r()));
    // Kill it as soon as its first daemon is recorded.
    await until('a daemon in the state', () => Object.keys(readLab(name)?.daemons ?? {}).length > 0);
    up.kill('SIGKILL');
    await exited;
    const st = readLab(name)!;
    expect(st.phase).toBe('creating');
    const pids = Object.values(st.daemons).map((d) => d.pid);
    expect(labNamespaces(name).length).toBeGreaterThan(0);

    const test = flatnet('lab', 'test', '--name', name);
    expect([test.code, test.stderr.includes('ERR_LAB_INCOMPLETE')]).toEqual([1, true]);
    const down = flatnet('lab', 'down', '--name', name);
    expect(down.code, down.stderr).toBe(0);
    expect(labNamespaces(name)).toEqual([]);
    expect(existsSync(labDir(name))).toBe(false);
    for (const pid of pids) expect(isRunning(pid)).toBe(false);
  });

  it('demo removes the lab when interrupted (SIGINT) and exits non-zero', async () => {
    const name = names[2];
    const demo = spawn(process.execPath, [MAIN, 'lab', 'demo', '--name', name, '--pods', '1', '--iperf-time', '5'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let err = '';
    demo.stderr.on('data', (d: Buffer) => { err += d.toString(); });
    const exited = new Promise<number | null>((r) => demo.on('exit', (code) => r(code)));
    await until('the demo to reach its iperf3 runs', () => err.includes('iperf3 '), 60_000);
    demo.kill('SIGINT');
    expect(await exited).toBe(130);
    expect(err).toContain(`SIGINT: removing lab ${name}`);
    expect(labNamespaces(name)).toEqual([]);
    expect(existsSync(labDir(name))).toBe(false);
  });
});
