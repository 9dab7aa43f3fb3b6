/**
 * The control plane at scale (issue 11): one real etcd 3.4 member and one real flatnet node
 * (`flatnet vtep` with control.etcd, in a namespace of its own), and N = 100, 1,000, 5,000
 * simulated nodes: lightweight lease holders that each grant an etcd lease and create their
 * subnet record in a transaction, as a joining node does, but run no VTEP. For each N:
 *   - join: all N join (32 in flight); etcd operations per second during the join (grant + txn =
 *     2 per node); time until the real node has all N peers programmed (from the first join);
 *   - the daemon's CPU (user + system) over that time, and its RSS once programmed;
 *   - one more node joins, then leaves (its lease revoked): time until the real node has it, and
 *     has it no more;
 *   - at N = 5,000 the daemon is restarted: time from its start until the 5,000 are programmed
 *     (the list-then-watch path, the issue's "within 10 s of the watch starting");
 * then the holders leave again. Last, forwarding cost against table size: `flatnet replay` of
 * the 64-byte fixture through a node with 3 peers and one with 5,000, alternating, 5 runs each
 * of about 2 s, in the same run.
 *
 * Root only (namespaces). Run: flock /work/.bench.lock node dist/bench/control/control.bench.js
 * [--sizes 100,1000,5000] [--json FILE]. Writes bench/results/control-<timestamp>.{json,md}.
 */

import { execFileSync, spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Etcd3, Lease } from 'etcd3';
import { connectEtcd } from '../../src/control/etcd.js';
import { networkDocument, networkKey, parseNetwork, subnetAt, subnetKey } from '../../src/control/network.js';
import { recordValue } from '../../src/control/records.js';
import { request } from '../../src/daemon/control.js';
import { isRunning, sleep } from '../../src/lab/exec.js';
import { startEtcdCluster, type EtcdMember } from '../../src/lab/etcd.js';
import { DEFAULT_NODE } from '../../src/replay/node.js';
import { machine } from '../harness.js';
import { median as med2, peersAb } from './peers-ab.js';

const arg = (name: string, dflt: string): string => {
  const i = process.argv.indexOf(name);
  return i > 0 && process.argv[i + 1] !== undefined ? process.argv[i + 1]! : dflt;
};
const SIZES = arg('--sizes', '100,1000,5000').split(',').map(Number);
const RUNS = Number(arg('--replay-runs', '5'));
const CLI = fileURLToPath(new URL('../../src/cli/main.js', import.meta.url));
const FIXTURE = fileURLToPath(new URL('../../../fixtures/replay/pod-to-remote-udp64.pcap', import.meta.url));
const RESULTS = fileURLToPath(new URL('../../../bench/results/', import.meta.url));
const PREFIX = '/flatnet';
// Big enough for 5,000 /24s and more.
const NET = parseNetwork({ network: '10.0.0.0/8', subnetLen: 24, subnetMin: '10.0.1.0', vni: 1, port: 4789 });

if (process.getuid?.() !== 0) {
  process.stderr.write('control bench: needs root (network namespaces)\n');
  process.exit(2);
}

const tag = `ecb${(process.pid % 100000).toString(36)}`;
const nsEtcd = `${tag}-etcd`, nsNode = `${tag}-node`;
const dir = mkdtempSync(join(tmpdir(), 'flatnet-control-bench-'));
const sh = (cmd: string, args: string[]): string => execFileSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
let daemonPid = 0;
/** The real node's subnet, as an index of the network's subnets. */
let realIndex = -1;

function cleanup(): void {
  for (const ns of [nsNode, nsEtcd]) {
    try {
      for (const pid of sh('ip', ['netns', 'pids', ns]).split(/\s+/).filter(Boolean)) {
        try { process.kill(Number(pid), 'SIGKILL'); } catch { /* gone */ }
      }
      sh('ip', ['netns', 'del', ns]);
    } catch { /* not there */ }
  }
  rmSync(dir, { recursive: true, force: true });
}
process.on('exit', cleanup);
process.on('SIGINT', () => process.exit(130));

/** CPU seconds (user + system) and RSS of a process, from /proc. */
function usage(pid: number): { cpuS: number; rssMb: number } {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const tck = 100; // USER_HZ on Linux
  const rss = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return { cpuS: (Number(f[11]) + Number(f[12])) / tck, rssMb: rss === null ? 0 : Number(rss[1]) / 1024 };
}

const SOCK = join(dir, 'node.sock');
async function applied(): Promise<number> {
  try {
    return ((await request(SOCK, { cmd: 'control-status' }, 5000)) as { appliedPeers: number }).appliedPeers;
  } catch {
    return -1;
  }
}
async function waitApplied(n: number, timeoutMs: number): Promise<number> {
  const t0 = performance.now();
  for (;;) {
    if (await applied() === n) return performance.now() - t0;
    if (performance.now() - t0 > timeoutMs) throw new Error(`the node did not reach ${n} peers within ${timeoutMs} ms (has ${await applied()})`);
    await sleep(10);
  }
}

function startDaemon(endpoint: string): number {
  const cfg = {
    node: 'real', underlay: { interface: 'eth0', address: '198.51.100.1' }, stateDir: join(dir, 'state'), controlSocket: SOCK,
    log: { level: 'warn' }, control: { etcd: { endpoints: [endpoint], prefix: PREFIX, leaseTtlSeconds: 60 } },
  };
  writeFileSync(join(dir, 'node.json'), JSON.stringify(cfg));
  const child = spawn('ip', ['netns', 'exec', nsNode, process.execPath, CLI, 'vtep', '--config', join(dir, 'node.json')], { stdio: ['ignore', 'ignore', 'inherit'], detached: false });
  return child.pid!;
}

/** A simulated node: a lease and a record, created in one transaction as a joining node does. */
async function join1(client: Etcd3, i: number): Promise<Lease> {
  const lease = client.lease(600, { autoKeepAlive: false });
  const id = await lease.grant();
  const s = subnetAt(NET, 10 + i >= realIndex ? 11 + i : 10 + i); // never the real node's
  const rec = { subnet: s, node: `sim${i}`, underlayIp: (0xac100000 + i + 1) >>> 0, vtepMac: 0x0e0000000000 + i + 1, vni: 1, port: 4789, kind: 'flatnet' as const };
  const key = subnetKey(PREFIX, s);
  const t = await client.if(key, 'Create', '==', 0).then(client.put(key).value(recordValue(rec)).lease(id)).commit();
  if (!t.succeeded) throw new Error(`${key} taken`);
  return lease;
}

async function inParallel<T>(n: number, limit: number, fn: (i: number) => Promise<T>): Promise<T[]> {
  const out: T[] = new Array(n);
  let next = 0;
  await Promise.all(Array.from({ length: limit }, async () => {
    while (next < n) { const i = next++; out[i] = await fn(i); }
  }));
  return out;
}

interface Row { n: number; joinMs: number; etcdOpsPerS: number; programmedMs: number; cpuS: number; rssMb: number; oneJoinMs: number; oneLeaveMs: number; restartMs: number | null }

function replayNsPerFrame(peers: number, loop: number): { nsPerFrame: number; framesPerPass: number } {
  const extra = Array.from({ length: Math.max(0, peers - 2) }, (_, i) => ({
    name: `p${i}`, underlay: `172.16.${Math.floor(i / 250)}.${(i % 250) + 1}`, podCidr: `10.${1 + Math.floor(i / 250)}.${i % 250}.0/24`, vtepMac: `0e:00:00:00:${((i >> 8) & 0xff).toString(16).padStart(2, '0')}:${(i & 0xff).toString(16).padStart(2, '0')}`,
  }));
  const cfg = { ...DEFAULT_NODE, clusterCidr: '10.0.0.0/8', peers: [...DEFAULT_NODE.peers!, ...extra] };
  const f = join(dir, `replay-${peers}.json`);
  writeFileSync(f, JSON.stringify(cfg));
  const out = execFileSync(process.execPath, [CLI, 'replay', FIXTURE, '--config', f, '--loop', String(loop), '--json', '--no-progress'], { encoding: 'utf8', maxBuffer: 1 << 22 });
  return JSON.parse(out) as { nsPerFrame: number; framesPerPass: number };
}

async function main(): Promise<void> {
  sh('ip', ['netns', 'add', nsEtcd]);
  sh('ip', ['-n', nsEtcd, 'link', 'set', 'lo', 'up']);
  sh('ip', ['netns', 'add', nsNode]);
  sh('ip', ['-n', nsNode, 'link', 'set', 'lo', 'up']);
  sh('ip', ['-n', nsNode, 'link', 'add', 'eth0', 'type', 'veth', 'peer', 'name', 'eth1']);
  sh('ip', ['-n', nsNode, 'addr', 'add', '198.51.100.1/24', 'dev', 'eth0']);
  sh('ip', ['-n', nsNode, 'link', 'set', 'eth0', 'up']);
  sh('ip', ['-n', nsNode, 'link', 'set', 'eth1', 'up']);
  const [m] = await startEtcdCluster([{ name: 'b1', ns: nsEtcd, ip: '127.0.0.1', dir: join(dir, 'etcd') }]) as [EtcdMember];
  const client = connectEtcd([m.unixUrl]);
  await client.put(networkKey(PREFIX)).value(JSON.stringify(networkDocument(NET)));
  daemonPid = startDaemon(m.unixUrl);
  await waitApplied(0, 30_000);
  const held = ((await request(SOCK, { cmd: 'control-status' })) as { lease: { subnet: string } }).lease.subnet;
  realIndex = (Number(held.split('.')[1]) * 256 + Number(held.split('.')[2])) - 1;
  const rows: Row[] = [];
  for (const n of SIZES) {
    process.stderr.write(`control bench: ${n} simulated nodes\n`);
    const u0 = usage(daemonPid);
    const t0 = performance.now();
    const leases = await inParallel(n, 32, (i) => join1(client, i));
    const joinMs = performance.now() - t0;
    await waitApplied(n, 120_000);
    const programmedMs = performance.now() - t0;
    const u1 = usage(daemonPid);
    const tj = performance.now();
    const extra = await join1(client, n);
    await waitApplied(n + 1, 30_000);
    const oneJoinMs = performance.now() - tj;
    const tl = performance.now();
    await extra.revoke();
    await waitApplied(n, 30_000);
    const oneLeaveMs = performance.now() - tl;
    let restartMs: number | null = null;
    if (n === Math.max(...SIZES)) {
      process.kill(daemonPid, 'SIGTERM');
      for (let i = 0; i < 500 && isRunning(daemonPid); i++) await sleep(10);
      const ts = performance.now();
      daemonPid = startDaemon(m.unixUrl);
      await waitApplied(n, 120_000);
      restartMs = performance.now() - ts;
    }
    rows.push({ n, joinMs, etcdOpsPerS: (2 * n) / (joinMs / 1000), programmedMs, cpuS: u1.cpuS - u0.cpuS, rssMb: u1.rssMb, oneJoinMs, oneLeaveMs, restartMs });
    await inParallel(leases.length, 32, (i) => leases[i]!.revoke());
    await waitApplied(0, 120_000);
  }
  client.close();
  process.kill(daemonPid, 'SIGTERM');

  process.stderr.write('control bench: replay with 3 and 5,000 peers\n');
  const probe = replayNsPerFrame(3, 4);
  const loop = Math.max(4, Math.ceil(2e9 / (probe.nsPerFrame * probe.framesPerPass)));
  const r3: number[] = [], r5k: number[] = [];
  for (let i = 0; i < RUNS; i++) { r3.push(replayNsPerFrame(3, loop).nsPerFrame); r5k.push(replayNsPerFrame(5000, loop).nsPerFrame); }
  const med = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
  process.stderr.write('control bench: in-process A/B, 3 and 5,000 peers\n');
  const ab = peersAb(FIXTURE, 3, 5000, 40);

  const when = new Date().toISOString().replace(/:/g, '-').replace(/\.\d+Z$/, 'Z');
  const md = [
    `control plane bench, ${when}, ${machine()}, etcd ${sh('etcd', ['--version']).split('\n')[0]!.replace('etcd Version: ', '')}`,
    '',
    '| simulated nodes | join (all) | etcd ops/s during join | all programmed on the real node | daemon CPU | daemon RSS | one join reaches it | one leave reaches it | daemon restart to all programmed |',
    '|---:|---:|---:|---:|---:|---:|---:|---:|---:|',
    ...rows.map((r) => `| ${r.n.toLocaleString('en')} | ${(r.joinMs / 1000).toFixed(2)} s | ${Math.round(r.etcdOpsPerS).toLocaleString('en')} | ${(r.programmedMs / 1000).toFixed(2)} s | ${r.cpuS.toFixed(2)} s | ${r.rssMb.toFixed(0)} MB | ${r.oneJoinMs.toFixed(0)} ms | ${r.oneLeaveMs.toFixed(0)} ms | ${r.restartMs === null ? '-' : `${(r.restartMs / 1000).toFixed(2)} s`} |`),
    '',
    `replay of pod-to-remote-udp64 in one process, 40 alternating rounds of ${ab.loops} passes (${ab.framesPerPass} frames a pass): 3 peers ${med2(ab.small).toFixed(1)} ns/frame, 5,000 peers ${med2(ab.large).toFixed(1)} ns/frame, median ratio of adjacent passes ${med2(ab.ratios).toFixed(3)} (ratios: min ${Math.min(...ab.ratios).toFixed(3)}, max ${Math.max(...ab.ratios).toFixed(3)})`,
    '',
    `replay of pod-to-remote-udp64, separate processes (median of ${RUNS}, alternating, loop ${loop}, ${probe.framesPerPass} frames a pass): 3 peers ${med(r3).toFixed(1)} ns/frame, 5,000 peers ${med(r5k).toFixed(1)} ns/frame, ratio ${(med(r5k) / med(r3)).toFixed(3)} (runs: ${r3.map((x) => x.toFixed(1)).join(', ')} / ${r5k.map((x) => x.toFixed(1)).join(', ')})`,
    '',
  ].join('\n');
  process.stdout.write(md);
  mkdirSync(RESULTS, { recursive: true });
  writeFileSync(join(RESULTS, `control-${when}.md`), md);
  const json = { when, machine: machine(), rows, replay: { loop, threePeers: r3, fiveThousandPeers: r5k }, inProcess: ab };
  writeFileSync(join(RESULTS, `control-${when}.json`), `${JSON.stringify(json, null, 2)}\n`);
  if (arg('--json', '') !== '') writeFileSync(arg('--json', ''), JSON.stringify(json, null, 2));
}

main().then(() => process.exit(0), (e: unknown) => {
  process.stderr.write(`control bench failed: ${(e as Error).stack ?? String(e)}\n`);
  process.exit(1);
});
