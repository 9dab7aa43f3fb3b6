/**
 * The soak test (not CI): a two-node flatnet lab under mixed load for a configurable time,
 * sampling each daemon every 5 s, reporting growth.
 *
 *   npm run bench:soak -- [--minutes 10] [--name hsoak] [--out bench/results]
 *   (run it under the machine's bench lock: flock /work/.bench.lock npm run bench:soak ...)
 *
 * Load, all at once for the whole run:
 *   TCP       iperf3 n1p0 -> n2p0 (paced, --tcp-rate, default 100 Mbit/s)
 *   UDP 64 B  bench/e2e/gen.c n1p1 -> n2p1, 64-byte frames at --udp-pps (default 20,000/s)
 *   churn     a pod attached and detached on n1 through the control socket every second
 *             (four spare veths taken in turn)
 *   hostile   from n2's namespace to n1's VXLAN port, 500 datagrams/s: random bytes, VXLAN
 *             with broken headers, inner frames from spoofed sources (another node's pods,
 *             a pod CIDR's broadcast address), an endless TTL-0 stream
 * Samples (both daemons, every 5 s): resident set (/proc/PID/status VmRSS), the event-loop
 * delay the daemon measured over its last 5 s (status.eventLoopDelay: p50, p99, max), the
 * control socket's latency (a `status` round trip from here), and the drop and kernel-drop
 * totals. Report: a JSON file in --out and a summary: RSS growth from the sample at 1 minute
 * to the end (target: under 10%), the worst control latency and loop delay.
 */

import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { request } from '../../src/daemon/control.js';
import type { CountersSnapshot } from '../../src/daemon/show.js';
import { sleep } from '../../src/lab/exec.js';
import { labDown, labUp } from '../../src/lab/lab.js';
import type { LabState } from '../../src/lab/topology.js';

const ROOT = fileURLToPath(new URL('../../..', import.meta.url));

interface Options { minutes: number; name: string; out: string; tcpRate: string; udpPps: number; sampleS: number }

function parse(argv: readonly string[]): Options {
  const get = (k: string): string | undefined => { const i = argv.indexOf(k); return i >= 0 ? argv[i + 1] : undefined; };
  return {
    minutes: Number(get('--minutes') ?? 10), name: get('--name') ?? 'hsoak', out: get('--out') ?? join(ROOT, 'bench/results'),
    tcpRate: get('--tcp-rate') ?? '100M', udpPps: Number(get('--udp-pps') ?? 20_000), sampleS: Number(get('--sample') ?? 5),
  };
}

interface Sample { t: number; node: string; rssMB: number; controlMs: number; loopP50Ms: number | null; loopP99Ms: number | null; loopMaxMs: number | null; dropped: number; kernelDropped: number; pods: number }

const ns = (name: string, cmd: string, args: string[], opts: { stdio?: 'ignore' | 'pipe' } = {}): ChildProcess =>
  spawn('ip', ['netns', 'exec', name, cmd, ...args], { stdio: ['ignore', opts.stdio ?? 'ignore', 'pipe'] });

function rssMB(pid: number): number {
  const m = readFileSync(`/proc/${pid}/status`, 'utf8').match(/VmRSS:\s+(\d+) kB/);
  return m === null ? NaN : Number(m[1]) / 1024;
}

const HOSTILE = `
import os, random, socket, struct, time, sys
dst = (sys.argv[1], 4789)
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
vtep = bytes.fromhex(sys.argv[2].replace(':', ''))
def ip4(a): return socket.inet_aton(a)
def inner(src, dst, ttl=64):
    hdr = struct.pack('!BBHHHBBH4s4s', 0x45, 0, 28, 1, 0, ttl, 17, 0, ip4(src), ip4(dst))
    c = sum(struct.unpack('!10H', hdr)); c = (c & 0xffff) + (c >> 16); c = (~c) & 0xffff
    hdr = hdr[:10] + struct.pack('!H', c) + hdr[12:]
    return vtep + bytes.fromhex('0e000af40200') + b'\\x08\\x00' + hdr + struct.pack('!HHHH', 1234, 53, 8, 0)
while True:
    t0 = time.monotonic()
    for i in range(50):
        k = random.randrange(5)
        vx = b'\\x08\\x00\\x00\\x00\\x00\\x00\\x01\\x00'
        if k == 0: p = os.urandom(random.randrange(0, 200))
        elif k == 1: p = bytes([random.randrange(256)]) + os.urandom(7) + inner('10.244.2.5', '10.244.1.10')
        elif k == 2: p = vx + inner('10.244.3.5', '10.244.1.10')
        elif k == 3: p = vx + inner('10.244.2.255', '10.244.1.10')
        else: p = vx + inner('10.244.2.5', '10.244.1.10', 0)
        try: s.sendto(p, dst)
        except OSError: pass
    time.sleep(max(0, 0.1 - (time.monotonic() - t0)))
`;

export async function soak(o: Options, say: (l: string) => void): Promise<{ samples: Sample[]; summary: Record<string, unknown> }> {
  const tmp = mkdtempSync(join(tmpdir(), 'flatnet-soak-'));
  const gen = join(tmp, 'gen');
  execFileSync('gcc', ['-O2', '-Wall', '-o', gen, join(ROOT, 'bench/e2e/gen.c')], { stdio: ['ignore', 'ignore', 'inherit'] });
  const procs: ChildProcess[] = [];
  let s: LabState | null = null;
  const samples: Sample[] = [];
  try {
    s = await labUp({ name: o.name, nodes: 2, kernelNodes: 0, pods: 2 }, say);
    const n1 = s.nodes[0]!, n2 = s.nodes[1]!;
    const seconds = Math.round(o.minutes * 60);
    // Spare veths in n1 for the churned pod (both ends in the node namespace).
    for (let k = 0; k < 4; k++) execFileSync('ip', ['-n', n1.ns, 'link', 'add', `hc${k}`, 'type', 'veth', 'peer', 'name', `hc${k}p`]);
    for (let k = 0; k < 4; k++) for (const i of [`hc${k}`, `hc${k}p`]) execFileSync('ip', ['-n', n1.ns, 'link', 'set', i, 'up']);
    execFileSync('ip', ['netns', 'exec', n1.pods[0]!.ns, 'ping', '-c', '3', '-i', '0.2', n2.pods[0]!.ip]);
    execFileSync('ip', ['netns', 'exec', n1.pods[1]!.ns, 'ping', '-c', '3', '-i', '0.2', n2.pods[1]!.ip]);

    procs.push(ns(n2.pods[0]!.ns, 'iperf3', ['-s']));
    procs.push(ns(n2.pods[1]!.ns, gen, ['sink', '5000']));
    await sleep(500);
    procs.push(ns(n1.pods[0]!.ns, 'iperf3', ['-c', n2.pods[0]!.ip, '-t', String(seconds + 10), '-b', o.tcpRate]));
    procs.push(ns(n1.pods[1]!.ns, gen, ['send', n2.pods[1]!.ip, '5000', String(o.udpPps), String(seconds + 10), '22']));
    procs.push(ns(n2.ns, 'python3', ['-c', HOSTILE, n1.underlayIp, n1.vtepMac]));
    say(`soak: ${o.minutes} min of TCP ${o.tcpRate}, UDP 64 B at ${o.udpPps}/s, pod churn 1/s, hostile 500/s; sampling every ${o.sampleS} s`);

    let churnIdx = 0, attached = false, churnErrors = 0, churnOps = 0;
    const churn = setInterval(() => {
      const k = churnIdx % 4;
      const p = attached
        ? request(n1.socket!, { cmd: 'pod-detach', name: `churn${k}` })
        : request(n1.socket!, { cmd: 'pod-attach', pod: { name: `churn${k}`, interface: `hc${k}`, ip: `10.244.1.${200 + k}`, mac: `02:00:0a:f4:01:${(200 + k).toString(16)}` } });
      if (attached) churnIdx++;
      attached = !attached;
      p.then(() => { churnOps++; }, () => { churnErrors++; });
    }, 1000);

    const t0 = Date.now();
    try {
      while (Date.now() - t0 < seconds * 1000) {
        await sleep(o.sampleS * 1000 - ((Date.now() - t0) % (o.sampleS * 1000)));
        const t = Math.round((Date.now() - t0) / 1000);
        for (const n of [n1, n2]) {
          const pid = s.daemons[n.name]!.pid;
          const c0 = performance.now();
          const st = (await request(n.socket!, { cmd: 'status' }, 10_000)) as { pods: number; eventLoopDelay: { p50Ms: number; p99Ms: number; maxMs: number } | null };
          const controlMs = performance.now() - c0;
          const cs = (await request(n.socket!, { cmd: 'show', what: 'counters' }, 10_000)) as CountersSnapshot;
          samples.push({
            t, node: n.name, rssMB: rssMB(pid), controlMs: Math.round(controlMs * 100) / 100,
            loopP50Ms: st.eventLoopDelay?.p50Ms ?? null, loopP99Ms: st.eventLoopDelay?.p99Ms ?? null, loopMaxMs: st.eventLoopDelay?.maxMs ?? null,
            dropped: cs.counters['dropped'] ?? 0, kernelDropped: cs.counters['kernel_dropped'] ?? 0, pods: st.pods,
          });
        }
        const last = samples.slice(-2);
        say(`  t=${String(t).padStart(4)} s  ${last.map((x) => `${x.node} rss ${x.rssMB.toFixed(1)} MB ctl ${x.controlMs.toFixed(1)} ms loop p99 ${x.loopP99Ms ?? '-'} ms`).join('  |  ')}`);
      }
    } finally {
      clearInterval(churn);
    }
    const summary: Record<string, unknown> = { minutes: o.minutes, churnOps, churnErrors };
    for (const n of [n1, n2]) {
      const xs = samples.filter((x) => x.node === n.name);
      const at1 = xs.find((x) => x.t >= 60) ?? xs[0]!;
      const end = xs.at(-1)!;
      const after1 = xs.filter((x) => x.t >= 60);
      summary[n.name] = {
        rssAt1MinMB: round(at1.rssMB), rssEndMB: round(end.rssMB), rssMaxAfter1MinMB: round(Math.max(...after1.map((x) => x.rssMB))),
        rssGrowthPct: round((100 * (end.rssMB - at1.rssMB)) / at1.rssMB),
        controlMsMedian: round(median(xs.map((x) => x.controlMs))), controlMsMax: round(Math.max(...xs.map((x) => x.controlMs))),
        loopP99MsMedian: round(median(xs.map((x) => x.loopP99Ms ?? 0))), loopMaxMs: round(Math.max(...xs.map((x) => x.loopMaxMs ?? 0))),
        dropped: end.dropped, kernelDropped: end.kernelDropped,
      };
    }
    return { samples, summary };
  } finally {
    for (const p of procs) if (p.exitCode === null) p.kill('SIGKILL');
    await labDown(o.name, say);
    rmSync(tmp, { recursive: true, force: true });
  }
}

const round = (x: number): number => Math.round(x * 100) / 100;
function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s.length === 0 ? NaN : s[Math.floor(s.length / 2)]!;
}

async function main(): Promise<void> {
  const o = parse(process.argv.slice(2));
  const say = (l: string): void => { process.stderr.write(`${l}\n`); };
  const r = await soak(o, say);
  mkdirSync(o.out, { recursive: true });
  const file = join(o.out, `soak-${new Date().toISOString().replace(/[:.]/g, '-').slice(0, 19)}Z.json`);
  writeFileSync(file, JSON.stringify({ options: o, ...r }, null, 1) + '\n');
  process.stdout.write(`${JSON.stringify(r.summary, null, 2)}\nsamples: ${file}\n`);
}

if (process.argv[1] !== undefined && fileURLToPath(import.meta.url) === process.argv[1]) {
  main().catch((e: unknown) => { process.stderr.write(`${(e as Error).stack ?? String(e)}\n`); process.exit(1); });
}
