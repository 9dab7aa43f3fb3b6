// Live changes to a running daemon, in a lab of three flatnet nodes with two pods each:
//   - SIGHUP: n1 started without peer n3 and pod n1p1 takes both from its edited config file,
//     while a ping flow n1p0 -> n2p0 (through the unchanged pod and peer) runs across the
//     reloads; a broken file and a restart-only change are refused in the same flow, and the
//     flow loses nothing;
//   - `flatnet pod attach` (the executable): the same pod again succeeds and changes nothing, a
//     conflicting one fails with ERR_STATE_CONFLICT naming the field; a pod attached at runtime
//     survives a reload of a file that does not list it; detach, and `flatnet reload`.
import { spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { request } from '../../src/daemon/control.js';
import type { PortRow } from '../../src/daemon/show.js';
import { inNsAsync, sleep } from '../../src/lab/exec.js';
import { isOurDaemon, spawnDaemon, stopDaemon, waitReady } from '../../src/lab/flatnet-node.js';
import { labDown, labNamespaces, labUp } from '../../src/lab/lab.js';
import { ping } from '../../src/lab/runner.js';
import { writeState, type LabNode, type LabPod, type LabState } from '../../src/lab/topology.js';
import { ensureDist, labSkipReason, REPO_ROOT, uniqueLabName } from '../support/lab.js';

const skip = labSkipReason();
const MAIN = join(REPO_ROOT, 'dist/src/cli/main.js');

interface Reloads { applied: number; refused: number; last: { ok: boolean; changes: string | null; code: string | null; field: string | null; message: string | null } | null }
type Cfg = Record<string, unknown> & { peers: { name: string }[]; pods: { name: string; interface: string; ip: string; mac: string }[] };

function flatnet(...args: string[]): { code: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [MAIN, ...args], { encoding: 'utf8', timeout: 60_000 });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

describe.skipIf(skip !== null)(`daemon reload (SIGHUP) and idempotent pod attach${skip === null ? '' : ` (skipped: ${skip})`}`, () => {
  const name = uniqueLabName('rl');
  let lab: LabState;
  let n1: LabNode, n2: LabNode, n3: LabNode;
  let full: Cfg;

  beforeAll(async () => {
    ensureDist();
    // Hand-wired pods: this file edits the pods of n1's config file.
    lab = await labUp({ name, nodes: 3, kernelNodes: 0, pods: 2, podsVia: 'config' });
    [n1, n2, n3] = lab.nodes as [LabNode, LabNode, LabNode];
    full = JSON.parse(readFileSync(n1.config!, 'utf8')) as Cfg;
  });
  afterAll(async () => {
    await labDown(name);
    expect(labNamespaces(name)).toEqual([]);
  });

  const pid = (): number => lab.daemons[n1.name]!.pid;
  const write = (c: Cfg | string): void => writeFileSync(n1.config!, typeof c === 'string' ? c : `${JSON.stringify(c, null, 2)}\n`);
  const without = (peers: string[], pods: string[]): Cfg => ({ ...full, peers: full.peers.filter((p) => !peers.includes(p.name)), pods: full.pods.filter((p) => !pods.includes(p.name)) });
  const status = async (): Promise<{ pods: number; peers: number; reloads: Reloads }> => (await request(n1.socket!, { cmd: 'status' })) as { pods: number; peers: number; reloads: Reloads };
  /** hup sends SIGHUP to n1's daemon and waits until its status counts one more reload; returns that reload's outcome. */
  const hup = async (): Promise<NonNullable<Reloads['last']>> => {
    const before = (await status()).reloads;
    process.kill(pid(), 'SIGHUP');
    const deadline = Date.now() + 10_000;
    for (;;) {
      const r = (await status()).reloads;
      if (r.applied + r.refused > before.applied + before.refused) return r.last!;
      if (Date.now() > deadline) throw new Error('the daemon did not count the reload');
      await sleep(20);
    }
  };
  const reaches = async (from: LabPod, to: LabPod): Promise<boolean> => (await ping(from, to.ip, 2)).received === 2;
  const restart = async (): Promise<void> => {
    const r = await stopDaemon(n1, pid(), 'SIGTERM', 10_000);
    expect(r.exited).toBe(true);
    lab.daemons[n1.name] = spawnDaemon(n1);
    writeState(lab); // so that labDown finds the new pid
    await waitReady(n1, pid());
  };

  it('SIGHUP adds a peer and a pod under a running ping flow without a loss; a broken or restart-only file is refused and forwarding goes on', async () => {
    const [p0, p1] = n1.pods as [LabPod, LabPod];
    write(without(['n3'], ['n1p1']));
    await restart();
    const daemon = pid();
    expect(await status()).toMatchObject({ pods: 1, peers: 1 });
    expect(await reaches(p0, n3.pods[0]!)).toBe(false);
    expect(await reaches(n2.pods[0]!, p1)).toBe(false);

    const portOf = async (pod: string): Promise<PortRow> => ((await request(n1.socket!, { cmd: 'show', what: 'ports' })) as PortRow[]).find((p) => p.name === pod)!;
    const before = await portOf(p0.name);

    // 1500 echo requests 4 ms apart (6 s), every one answered within 1 s, across four SIGHUPs.
    // (Losing none does not prove much alone: a reconciler that reopened every pod port in one
    // synchronous call would lose none here either. That the flow's port was not touched is
    // what the port's id and unbroken counters below show.)
    const flow = inNsAsync(p0.ns, 'ping', ['-n', '-q', '-c', '1500', '-i', '0.004', '-W', '1', n2.pods[0]!.ip], { timeoutMs: 30_000 });
    await sleep(800);
    write(full);
    expect(await hup()).toMatchObject({ ok: true, changes: 'pods +n1p1; peers +n3' });
    await sleep(400);
    write('{"node": "n1", ');
    expect(await hup()).toMatchObject({ ok: false, code: 'ERR_CONFIG_JSON' });
    await sleep(400);
    write({ ...full, vni: 9 });
    const restartOnly = await hup();
    expect(restartOnly).toMatchObject({ ok: false, code: 'ERR_RELOAD_NEEDS_RESTART', field: 'vni' });
    expect(restartOnly.message).toContain('needs a restart');
    await sleep(400);
    write({ ...full, pods: [...full.pods, { ...full.pods[0]!, name: 'dup' }] });
    expect(await hup()).toMatchObject({ ok: false, code: 'ERR_CONFIG_DUPLICATE', field: 'pods[2].ip' });
    write(full);
    const r = await flow;
    const m = /(\d+) packets transmitted, (\d+) received/.exec(r.stdout);
    expect(m, r.stdout + r.stderr).not.toBeNull();
    expect([Number(m![1]), Number(m![2])]).toEqual([1500, 1500]);

    const after = await portOf(p0.name);
    expect(after.id).toBe(before.id);
    expect(after.rxPackets - before.rxPackets).toBeGreaterThanOrEqual(1500);
    expect(after.txPackets - before.txPackets).toBeGreaterThanOrEqual(1500);
    expect(pid()).toBe(daemon);
    expect(isOurDaemon(n1, daemon)).toBe(true);
    expect(await status()).toMatchObject({ pods: 2, peers: 2, reloads: { applied: 1, refused: 3 } });
    expect(await reaches(p0, n3.pods[0]!)).toBe(true);
    expect(await reaches(n3.pods[1]!, p1)).toBe(true);
    expect(await reaches(n2.pods[0]!, p1)).toBe(true);
  });

  it('flatnet pod attach: the same pod again succeeds, a conflicting one fails typed; a runtime pod survives a reload', async () => {
    const p1 = n1.pods[1]!;
    const sock = ['--socket', n1.socket!];
    const same = flatnet('pod', 'attach', p1.name, '--interface', p1.hostIf, '--ip', p1.ip, '--mac', p1.mac, ...sock);
    expect(same.code, same.stderr).toBe(0);
    expect(JSON.parse(same.stdout)).toEqual({ attached: p1.name, existing: true, name: p1.name, interface: p1.hostIf, ip: p1.ip, mac: p1.mac });

    const onIp = flatnet('pod', 'attach', 'n1px', '--interface', 'vpx', '--ip', p1.ip, '--mac', '02:00:0a:f4:01:7f', ...sock);
    expect(onIp.code).toBe(1);
    expect(onIp.stderr).toMatch(/^flatnet: pod\.ip: already in use by pod n1p1 .*\(ERR_STATE_CONFLICT\)\n$/);
    const otherIp = flatnet('pod', 'attach', p1.name, '--interface', p1.hostIf, '--ip', '10.244.1.77', '--mac', p1.mac, ...sock);
    expect(otherIp.code).toBe(1);
    expect(otherIp.stderr).toContain('pod.ip: pod n1p1');
    expect(otherIp.stderr).toContain('(ERR_STATE_CONFLICT)');
    const badIp = flatnet('pod', 'attach', 'n1px', '--interface', 'vpx', '--ip', '10.244.1', '--mac', '02:00:0a:f4:01:7f', ...sock);
    expect([badIp.code, badIp.stderr.startsWith('flatnet: pod.ip: '), badIp.stderr.includes('(ERR_CONTROL_BAD_REQUEST)')]).toEqual([1, true, true]);

    // n1p1 is held by the file and (since the attach above) the control socket: a file without
    // it leaves it attached and reachable.
    write(without([], ['n1p1']));
    expect(await hup()).toMatchObject({ ok: true, changes: 'nothing' });
    expect(await reaches(n2.pods[0]!, p1)).toBe(true);

    expect(JSON.parse(flatnet('pod', 'detach', p1.name, ...sock).stdout)).toEqual({ detached: p1.name });
    expect(await reaches(n2.pods[0]!, p1)).toBe(false);
    const again = flatnet('pod', 'detach', p1.name, ...sock);
    expect([again.code, again.stderr.includes('(ERR_NOT_FOUND)')]).toEqual([1, true]);

    write(full);
    const reload = flatnet('reload', ...sock);
    expect(reload.code, reload.stderr).toBe(0);
    expect(JSON.parse(reload.stdout)).toMatchObject({ changes: { podsAttached: ['n1p1'], peersAdded: [] } });
    expect(await reaches(n2.pods[0]!, p1)).toBe(true);

    // The log, flushed at exit, says what each reload did or why it was refused.
    const logBefore = readFileSync(n1.log, 'utf8').length;
    await restart();
    const log = readFileSync(n1.log, 'utf8').slice(0, logBefore);
    expect(log).toContain('"msg":"config reloaded: pods +n1p1; peers +n3"');
    expect(log).toMatch(/"code":"ERR_RELOAD_NEEDS_RESTART","field":"vni".*"msg":"config reload refused; keeping the current state"/);
  });
});
