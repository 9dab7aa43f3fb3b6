/**
 * NetworkPolicy: flatnet vs Calico-style iptables (issue 12), in one run.
 *
 * The kernel side: a node namespace with two pods on routed veths, plugged in as Calico's CNI
 * plugin does (src/lab/calico-rules.ts calicoNodeCommands), and the rules Calico's Felix would
 * program for N NetworkPolicies (calicoRules: ipsets + iptables-restore input, loaded into the node
 * namespace). The policies are those of bench/policy/policy.bench.ts: N policies isolating the
 * sending pod for egress, each allowing UDP 5201 (and TCP 5201, for the connection test) to
 * 10.(100 + i % 100).0.0/16 and 10.244.0.0/16, so every one has a rule the traffic matches.
 *   none          no rules at all (no conntrack in the node): the baseline of every ratio
 *   policy-0      Calico's rules with no policy: conntrack, dispatch, the namespace profile
 *   policy-N      N = 100, 1,000, 10,000 policies
 * Measured per case:
 *   established   64-byte UDP frames (22-byte datagrams), one fixed 5-tuple, from bench/e2e/gen.c
 *                 (sendmmsg as fast as the socket takes them) for --seconds; the rate is what
 *                 reached the destination pod's eth0 (rx_packets), where a socket that is never
 *                 read drops it. Every packet but the first is an established flow: conntrack's
 *                 ESTABLISHED accept is the first rule of the pod's chain.
 *   new conns     TCP connect + close (SO_LINGER 0: an RST, no TIME_WAIT) in a loop from the
 *                 source pod to an accept + close loop in the destination pod (both C, compiled
 *                 here), for --conn-seconds: every connection's SYN walks the chains and policies.
 *   load          ipset restore + iptables-restore of the case's rules, wall time.
 * Cases interleave run by run; medians are reported, each as a ratio to `none` of the same run.
 * The flatnet side is bench/policy/policy.bench.ts, run as a child of this process (its own
 * interleaved runs; its ratios are against its own no-table baseline).
 *
 * Root only; everything in namespaces this bench creates (i<pid>*-*) and removes, also on failure.
 * Run it under the bench lock:
 *   npm run bench:policy-iptables
 *   flock /work/.bench.lock node dist/bench/policy/iptables.bench.js [--runs 3] [--seconds 3]
 *     [--conn-seconds 3] [--backend nft|legacy|both] [--flatnet-runs 3] [--json out.json]
 */

import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { calicoNodeCommands, calicoRules } from '../../src/lab/calico-rules.js';
import type { NetworkPolicy, Pod } from '../../src/policy/objects.js';
import { Netns, netnsSkipReason, sh } from '../../test/support/netns.js';
import { machine } from '../harness.js';

const arg = (name: string, dflt: string): string => {
  const i = process.argv.indexOf(name);
  return i > 0 && process.argv[i + 1] !== undefined ? process.argv[i + 1]! : dflt;
};
const ROOT = fileURLToPath(new URL('../../..', import.meta.url));
const PORT = 5201;
const SRC = { ns: 'bench', name: 'src-0', ip: '10.244.1.10', mac: '02:00:0a:f4:01:0a', labels: { app: 'src' } };
const DST = { ns: 'bench', name: 'dst-0', ip: '10.244.1.20', mac: '02:00:0a:f4:01:14', labels: { app: 'dst' } };
const CASES = ['none', 'policy-0', 'policy-100', 'policy-1000', 'policy-10000'] as const;
type Case = (typeof CASES)[number];
/** Cases whose new-connection rate is measured (the issue asks for 0 and 1,000 policies). */
const CONN_CASES: readonly Case[] = ['none', 'policy-0', 'policy-1000'];

/** The TCP connection tools: `conn server PORT` and `conn client IP PORT SECONDS`. */
const CONN_C = String.raw`
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>
static double now(void) { struct timespec t; clock_gettime(CLOCK_MONOTONIC, &t); return t.tv_sec + t.tv_nsec * 1e-9; }
int main(int argc, char **argv) {
  if (argc == 3 && strcmp(argv[1], "server") == 0) {
    int s = socket(AF_INET, SOCK_STREAM, 0), one = 1;
    setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons(atoi(argv[2])) };
    if (bind(s, (struct sockaddr *)&a, sizeof a) || listen(s, 4096)) { perror("listen"); return 1; }
    printf("ready\n"); fflush(stdout);
    for (;;) { int c = accept(s, NULL, NULL); if (c >= 0) close(c); }
  }
  if (argc != 5 || strcmp(argv[1], "client") != 0) { fprintf(stderr, "usage: conn server PORT | conn client IP PORT SECONDS\n"); return 2; }
  struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons(atoi(argv[3])) };
  inet_pton(AF_INET, argv[2], &a.sin_addr);
  double t0 = now(), end = t0 + atof(argv[4]);
  long ok = 0, failed = 0;
  struct linger lg = { 1, 0 };
  struct timeval tv = { 1, 0 };
  while (now() < end) {
    int c = socket(AF_INET, SOCK_STREAM, 0);
    setsockopt(c, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
    setsockopt(c, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    if (connect(c, (struct sockaddr *)&a, sizeof a) == 0) ok++; else failed++;
    close(c);
  }
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  printf("{\"connections\":%ld,\"failed\":%ld,\"seconds\":%.6f,\"cpuSeconds\":%.6f}\n", ok, failed, now() - t0,
         ru.ru_utime.tv_sec + ru.ru_utime.tv_usec * 1e-6 + ru.ru_stime.tv_sec + ru.ru_stime.tv_usec * 1e-6);
  return 0;
}
`;

function objects(n: number): { pods: Pod[]; policies: NetworkPolicy[] } {
  const pods: Pod[] = [SRC, DST].map((p) => ({ metadata: { name: p.name, namespace: p.ns, labels: p.labels }, status: { podIP: p.ip } }));
  const policies: NetworkPolicy[] = Array.from({ length: n }, (_, i) => ({
    metadata: { name: `p${i}`, namespace: 'bench' },
    spec: {
      podSelector: { matchLabels: { app: 'src' } }, policyTypes: ['Egress'],
      egress: [{ to: [{ ipBlock: { cidr: `10.${100 + (i % 100)}.0.0/16` } }, { ipBlock: { cidr: '10.244.0.0/16' } }], ports: [{ protocol: 'UDP', port: PORT }, { protocol: 'TCP', port: PORT }] }],
    },
  }));
  return { pods, policies };
}

const median = (xs: readonly number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

interface Node { readonly ns: Netns; readonly node: string; readonly src: string; readonly dst: string }

function buildNode(): Node {
  const ns = new Netns('i');
  try {
    const node = ns.add('node'), src = ns.add('src'), dst = ns.add('dst');
    for (const n of [node, src, dst]) ns.exec(n, 'sysctl', ['-qw', 'net.ipv6.conf.all.disable_ipv6=1', 'net.ipv6.conf.default.disable_ipv6=1']);
    const r = calicoRules({ namespaces: [{ metadata: { name: 'bench' } }], ...objects(0) });
    const iface = (p: typeof SRC): string => r.endpoints.get(`${p.ns}/${p.name}`)!.iface;
    for (const [cmd, args] of calicoNodeCommands(node, [{ ns: src, ip: SRC.ip, mac: SRC.mac, iface: iface(SRC) }, { ns: dst, ip: DST.ip, mac: DST.mac, iface: iface(DST) }])) sh(cmd, [...args]);
    // A connection closed by RST stays in conntrack for nf_conntrack_tcp_timeout_close (10 s);
    // 1 s keeps the table small at tens of thousands of connections per second.
    ns.exec(node, 'sysctl', ['-qw', 'net.netfilter.nf_conntrack_tcp_timeout_close=1']);
    return { ns, node, src, dst };
  } catch (e) {
    ns.destroy();
    throw e;
  }
}

type Backend = 'nft' | 'legacy';
const restoreCmd = (b: Backend): string => (b === 'nft' ? 'iptables-nft-restore' : 'iptables-legacy-restore');
const iptablesCmd = (b: Backend): string => (b === 'nft' ? 'iptables-nft' : 'iptables-legacy');

/** clearRules empties the node's filter table (of the backends in use: touching one creates its table) and its ipsets. */
function clearRules(n: Node, backends: readonly Backend[]): void {
  for (const b of backends) {
    n.ns.exec(n.node, iptablesCmd(b), ['-F']);
    n.ns.exec(n.node, iptablesCmd(b), ['-X']);
  }
  n.ns.exec(n.node, 'ipset', ['destroy']);
}

/** loadRules loads a case's rules; returns the wall time of ipset restore + iptables-restore and the rule counts. */
function loadRules(n: Node, c: Case, backend: Backend, backends: readonly Backend[], rendered: Map<Case, ReturnType<typeof calicoRules>>): { ms: number; rules: number; chains: number; sets: number } {
  clearRules(n, backends);
  if (c === 'none') return { ms: 0, rules: 0, chains: 0, sets: 0 };
  let r = rendered.get(c);
  if (r === undefined) {
    r = calicoRules({ namespaces: [{ metadata: { name: 'bench' } }], ...objects(Number(c.split('-')[1])) });
    rendered.set(c, r);
  }
  const t = performance.now();
  n.ns.exec(n.node, 'ipset', ['restore'], { input: r.ipset, timeoutMs: 600_000 });
  n.ns.exec(n.node, restoreCmd(backend), ['--noflush'], { input: r.iptables, timeoutMs: 600_000 });
  return { ms: performance.now() - t, rules: r.counts.rules, chains: r.counts.chains, sets: r.counts.sets };
}

function spawnReady(n: Node, ns: string, cmd: string, args: string[]): Promise<ChildProcess> {
  return new Promise((resolve, reject) => {
    const p = n.ns.spawn(ns, cmd, args);
    p.stdout!.once('data', () => resolve(p));
    p.once('exit', (code) => reject(new Error(`${cmd} ${args.join(' ')} exited ${code}`)));
  });
}

function rxPackets(ns: Netns, pod: string): number {
  const j = JSON.parse(ns.ip(pod, '-j', '-s', 'link', 'show', 'eth0')) as { stats64: { rx: { packets: number } } }[];
  return j[0]!.stats64.rx.packets;
}

/**
 * The established-flow rate: delivered datagrams per second at the destination pod, and the
 * generator's CPU time per delivered datagram. The whole path (the source pod's stack, the node's
 * forwarding and rules, the destination's UDP receive) runs in softirq in the generator's own
 * context, and without IRQ time accounting (this kernel) it is charged to the generator: so the
 * CPU figure is the path's cost, less disturbed than the rate by whatever else shares the cores.
 */
function udpFlood(n: Node, gen: string, seconds: number): { deliveredPps: number; sentPps: number; cpuNs: number } {
  const before = rxPackets(n.ns, n.dst);
  const out = JSON.parse(n.ns.exec(n.src, gen, ['send', DST.ip, String(PORT), '0', String(seconds), '22'], { timeoutMs: (seconds + 30) * 1000 })) as { sent: number; seconds: number; userSeconds: number; sysSeconds: number };
  const delivered = rxPackets(n.ns, n.dst) - before;
  return { deliveredPps: delivered / out.seconds, sentPps: out.sent / out.seconds, cpuNs: ((out.userSeconds + out.sysSeconds) * 1e9) / delivered };
}

/** New connections per second (wall), and the client's CPU time per connection. */
function connRate(n: Node, conn: string, seconds: number): { perSecond: number; failed: number; cpuUs: number } {
  const out = JSON.parse(n.ns.exec(n.src, conn, ['client', DST.ip, String(PORT), String(seconds)], { timeoutMs: (seconds + 30) * 1000 })) as { connections: number; failed: number; seconds: number; cpuSeconds: number };
  return { perSecond: out.connections / out.seconds, failed: out.failed, cpuUs: (out.cpuSeconds * 1e6) / out.connections };
}

interface Row { udp: number[]; sent: number[]; cpuNs: number[]; conn: number[]; connCpuUs: number[]; connFailed: number; loadMs: number[]; rules: number; chains: number; sets: number }

async function kernelSide(backends: readonly Backend[], runs: number, seconds: number, connSeconds: number, log: (s: string) => void): Promise<Map<string, Row>> {
  const tmp = mkdtempSync(join(tmpdir(), 'flatnet-ipt-'));
  const gen = join(tmp, 'gen'), conn = join(tmp, 'conn');
  execFileSync('gcc', ['-O2', '-Wall', '-o', gen, join(ROOT, 'bench/e2e/gen.c')], { stdio: ['ignore', 'ignore', 'inherit'] });
  writeFileSync(join(tmp, 'conn.c'), CONN_C);
  execFileSync('gcc', ['-O2', '-Wall', '-o', conn, join(tmp, 'conn.c')], { stdio: ['ignore', 'ignore', 'inherit'] });
  const n = buildNode();
  const onSignal = (): void => { n.ns.destroy(); rmSync(tmp, { recursive: true, force: true }); process.exit(130); };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  const rows = new Map<string, Row>();
  const rendered = new Map<Case, ReturnType<typeof calicoRules>>();
  try {
    await spawnReady(n, n.dst, gen, ['sink', String(PORT)]);
    await spawnReady(n, n.dst, conn, ['server', String(PORT)]);
    // Warm-up: neighbours, caches, the generator's pages.
    udpFlood(n, gen, 0.5);
    connRate(n, conn, 0.3);
    const keys = ['none', ...backends.flatMap((b) => CASES.filter((c) => c !== 'none').map((c) => `${b}:${c}`))];
    for (let r = 0; r < runs; r++) {
      for (const key of keys) {
        const [backend, c] = key === 'none' ? ['nft', 'none'] as const : key.split(':') as [Backend, Case];
        const loaded = loadRules(n, c, backend, backends, rendered);
        const row = rows.get(key) ?? { udp: [], sent: [], cpuNs: [], conn: [], connCpuUs: [], connFailed: 0, loadMs: [], rules: loaded.rules, chains: loaded.chains, sets: loaded.sets };
        rows.set(key, row);
        row.loadMs.push(loaded.ms);
        const u = udpFlood(n, gen, seconds);
        row.udp.push(u.deliveredPps);
        row.sent.push(u.sentPps);
        row.cpuNs.push(u.cpuNs);
        if (CONN_CASES.includes(c)) {
          const k = connRate(n, conn, connSeconds);
          row.conn.push(k.perSecond);
          row.connCpuUs.push(k.cpuUs);
          row.connFailed += k.failed;
        }
        log(`run ${r + 1}/${runs} ${key}: ${(u.deliveredPps / 1000).toFixed(1)} kpps delivered of ${(u.sentPps / 1000).toFixed(1)} sent, ${u.cpuNs.toFixed(0)} ns CPU/pkt${row.conn.length > 0 ? `, ${row.conn.at(-1)!.toFixed(0)} conn/s` : ''}, load ${loaded.ms.toFixed(0)} ms`);
      }
    }
  } finally {
    n.ns.destroy();
    rmSync(tmp, { recursive: true, force: true });
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
  return rows;
}

interface FlatnetCase { ns: number[] }
interface FlatnetResult { cases: Record<string, FlatnetCase>; compileMs: { policies: number; services: number } }
function flatnetSide(runs: number, log: (s: string) => void): FlatnetResult | null {
  if (runs <= 0) return null;
  const tmp = mkdtempSync(join(tmpdir(), 'flatnet-pol-'));
  try {
    const out = join(tmp, 'policy.json');
    log(`flatnet: bench/policy/policy.bench.js --runs ${runs}`);
    execFileSync(process.execPath, ['--expose-gc', fileURLToPath(new URL('./policy.bench.js', import.meta.url)), '--runs', String(runs), '--json', out], { stdio: ['ignore', 'ignore', 'inherit'], timeout: 3_600_000 });
    return JSON.parse(readFileSync(out, 'utf8')) as FlatnetResult;
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
}

async function main(): Promise<void> {
  const skip = netnsSkipReason();
  if (skip !== null) { process.stderr.write(`iptables bench: ${skip}\n`); process.exit(1); }
  const runs = Number(arg('--runs', '3')), seconds = Number(arg('--seconds', '3')), connSeconds = Number(arg('--conn-seconds', '3'));
  const b = arg('--backend', 'nft');
  const backends: Backend[] = b === 'both' ? ['nft', 'legacy'] : [b as Backend];
  if (!backends.every((x) => x === 'nft' || x === 'legacy')) throw new Error(`--backend ${b}: nft, legacy or both`);
  const log = (s: string): void => { process.stderr.write(`${s}\n`); };
  const started = new Date().toISOString();
  const rows = await kernelSide(backends, runs, seconds, connSeconds, log);
  const flatnetRun = flatnetSide(Number(arg('--flatnet-runs', '3')), log);
  const flatnet = flatnetRun?.cases ?? null;

  const base = rows.get('none')!;
  const baseUdp = median(base.udp), baseCpu = median(base.cpuNs), baseConn = median(base.conn), baseConnCpu = median(base.connCpuUs);
  // Best runs too: on a shared machine the fastest run of a case is the one least disturbed.
  const fBase = flatnet === null ? 0 : median(flatnet['pod-ip']!.ns), fBest = flatnet === null ? 0 : Math.min(...flatnet['pod-ip']!.ns);
  const fRatio = (c: string): string => (flatnet === null || flatnet[c] === undefined ? '' : `${(fBase / median(flatnet[c]!.ns)).toFixed(3)} (${(fBest / Math.min(...flatnet[c]!.ns)).toFixed(3)})`);
  const baseCpuBest = Math.min(...base.cpuNs);
  const lines = [
    `NetworkPolicy, flatnet vs Calico-style iptables: ${machine()}; started ${started}; ${runs} runs per kernel case (UDP ${seconds} s, TCP connections ${connSeconds} s), cases interleaved`,
    '',
    'Established flow (64-byte UDP, one 5-tuple); ratios are rates (higher = faster) against `none` (kernel) and `pod-ip` (flatnet) of the same run; (in brackets: best run against best run)',
    '',
    '| case | backend | chains / rules / ipsets | load ms | kpps delivered (median) | all runs | kernel: rate ratio | CPU ns/pkt (median) | kernel: CPU ratio | flatnet: ns/frame (median) | flatnet: rate ratio |',
    '|---|---|---|---:|---:|---|---:|---:|---:|---:|---:|',
  ];
  for (const [key, row] of rows) {
    const [backend, c] = key === 'none' ? ['-', 'none'] : key.split(':') as [string, string];
    const u = median(row.udp), cpu = median(row.cpuNs), fc = flatnet?.[c === 'none' ? 'pod-ip' : c];
    lines.push(`| ${c} | ${backend} | ${row.chains} / ${row.rules} / ${row.sets} | ${median(row.loadMs).toFixed(0)} | ${(u / 1000).toFixed(1)} | ${row.udp.map((x) => (x / 1000).toFixed(0)).join(', ')} | ${(u / baseUdp).toFixed(3)} | ${cpu.toFixed(0)} | ${(baseCpu / cpu).toFixed(3)} (${(baseCpuBest / Math.min(...row.cpuNs)).toFixed(3)}) | ${fc === undefined ? '' : `${median(fc.ns).toFixed(1)} (${fc.ns.map((x) => x.toFixed(0)).join(', ')})`} | ${fRatio(c === 'none' ? 'pod-ip' : c)} |`);
  }
  lines.push('', 'New connections (TCP connect + RST close, one client)', '', '| case | backend | conns/s (median) | all runs | rate ratio | client CPU us/conn (median) | CPU ratio |', '|---|---|---:|---|---:|---:|---:|');
  for (const [key, row] of rows) {
    if (row.conn.length === 0) continue;
    const [backend, c] = key === 'none' ? ['-', 'none'] : key.split(':') as [string, string];
    const k = median(row.conn), cpu = median(row.connCpuUs);
    lines.push(`| ${c} | ${backend} | ${k.toFixed(0)} | ${row.conn.map((x) => x.toFixed(0)).join(', ')} | ${(k / baseConn).toFixed(3)} | ${cpu.toFixed(1)} | ${(baseConnCpu / cpu).toFixed(3)} |`);
  }
  if (flatnet !== null) {
    lines.push('', `flatnet (bench/policy/policy.bench.ts, same invocation): pod-ip ${fBase.toFixed(1)} ns/frame; policy-100-new (every packet a new connection) ratio ${fRatio('policy-100-new')}; compiling 10,000 policies over 1,000 pods ${flatnetRun!.compileMs.policies.toFixed(0)} ms`);
  }
  const failed = [...rows.values()].reduce((s, r) => s + r.connFailed, 0);
  if (failed > 0) lines.push('', `failed connects (1 s timeout) over all runs: ${failed}`);
  process.stdout.write(`${lines.join('\n')}\n`);
  const json = arg('--json', '');
  if (json !== '') writeFileSync(json, JSON.stringify({ machine: machine(), started, runs, seconds, connSeconds, backends, kernel: Object.fromEntries(rows), flatnet: flatnetRun }, null, 2));
}

await main();
