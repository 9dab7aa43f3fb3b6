/**
 * Services: new TCP connections per second through a ClusterIP, flatnet against the kernel's
 * iptables DNAT (kube-proxy's rules, written by `flatnet kernel-agent`), side by side in one
 * lab on etcd with four nodes:
 *
 *   n1, n2  flatnet    client pods n1p0, n1p1  ->  server pod n2p0   (ClusterIP 10.96.0.20, flatnet's NAT on n1)
 *   n3, n4  kernel     client pods n3p0, n3p1  ->  server pod n4p0   (ClusterIP 10.96.0.21, iptables DNAT on n3)
 *
 * Cases, each the same short-lived connect / one byte / close generator (bench/service/connrate.c:
 * CLIENTS processes x INFLIGHT connections at once, the server answering one byte and closing):
 *   flatnet-clusterip   n1p0 -> 10.96.0.20:80      flatnet-podip   n1p1 -> 10.244.2.10:8080
 *   kernel-clusterip    n3p0 -> 10.96.0.21:80      kernel-podip    n3p1 -> 10.244.4.10:8080
 * Every case crosses nodes over VXLAN; the pod-IP cases are each side's baseline. The ClusterIP
 * and pod-IP cases use different client pods: one client reusing its ports toward the Service
 * and straight toward the same backend makes connections clash in the NAT (the backend's answer
 * tuple taken), which on the kernel node collapsed the rate to a sixth with SYNs lost (measured,
 * bench/README.md): a separate effect, kept out of the rate comparison. The cases run
 * one at a time, interleaved run by run (order reversed every other run); the median per case
 * is reported with the ratios: ClusterIP / pod IP on each side, and flatnet / kernel.
 * Meanwhile: the CPU the flatnet daemons used (n1 + n2, from /proc/PID/stat), the generators'
 * own CPU, and the machine's softirq and system time (/proc/stat): what limits each side.
 *
 * Run (root, under the bench lock): npm run bench:services [-- --runs 5 --seconds 4 --clients 2 --inflight 16 --json out.json]
 */

import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { request } from '../../src/daemon/control.js';
import { inNs, sleep } from '../../src/lab/exec.js';
import { labEtcdEndpoints, labEtcdSpecs, labPodNamespace } from '../../src/lab/etcd-lab.js';
import { flatnetMain } from '../../src/lab/flatnet-node.js';
import { labDown, labUp } from '../../src/lab/lab.js';
import type { LabNode, LabPod, LabState } from '../../src/lab/topology.js';
import { machine } from '../harness.js';

const arg = (name: string, dflt: string): string => {
  const i = process.argv.indexOf(name);
  return i > 0 && process.argv[i + 1] !== undefined ? process.argv[i + 1]! : dflt;
};
const RUNS = Number(arg('--runs', '5'));
const SECONDS = Number(arg('--seconds', '4'));
const CLIENTS = Number(arg('--clients', '2'));
const INFLIGHT = Number(arg('--inflight', '16'));
const JSON_OUT = arg('--json', '');

const CASES = ['flatnet-clusterip', 'flatnet-podip', 'kernel-clusterip', 'kernel-podip'] as const;
type Case = (typeof CASES)[number];

interface GenResult { connections: number; errors: number; timeouts: number; seconds: number; userSeconds: number; sysSeconds: number }
interface Sample {
  readonly rate: number;
  readonly connections: number;
  readonly errors: number;
  readonly timeouts: number;
  /** CPU of the flatnet daemons (n1 + n2) over the case, in cores. */
  readonly daemonCores: number;
  /** CPU of the generators (all client processes), in cores. */
  readonly clientCores: number;
  /** The machine's softirq and system time over the case, in cores. */
  readonly softirqCores: number;
  readonly systemCores: number;
  /** Everything but idle and iowait on the machine, in cores (2 = both vCPUs busy). */
  readonly busyCores: number;
}

const TICK = 100; // USER_HZ
function procTicks(pid: number): number {
  const f = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const rest = f.slice(f.lastIndexOf(')') + 2).split(' ');
  return Number(rest[11]) + Number(rest[12]); // utime, stime (fields 14, 15)
}
function machineTicks(): { system: number; softirq: number; busy: number } {
  // cpu  user nice system idle iowait irq softirq steal ...
  const cpu = readFileSync('/proc/stat', 'utf8').split('\n')[0]!.split(/\s+/).slice(1).map(Number);
  return { system: cpu[2]!, softirq: cpu[6]!, busy: cpu[0]! + cpu[1]! + cpu[2]! + cpu[5]! + cpu[6]! + cpu[7]! };
}
/** The drop reasons with a count in `flatnet show counters` output, or "none". */
function drops(counters: string): string {
  const lines = counters.split('\n');
  const at = lines.findIndex((l) => l.startsWith('drop reason'));
  if (at < 0) return 'none';
  const got = lines.slice(at + 1).map((l) => /^(\S+)\s+(\d+)/.exec(l)).filter((m) => m !== null && m[2] !== '0').map((m) => `${m![1]} ${m![2]}`);
  return got.length === 0 ? 'none' : got.join(', ');
}
const median = (xs: readonly number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 === 1 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
};

function repoRoot(): string {
  return fileURLToPath(new URL('../../..', import.meta.url));
}

async function main(): Promise<void> {
  if (process.getuid?.() !== 0) throw new Error('the bench builds a lab of network namespaces: run it as root');
  const tmp = mkdtempSync(join(tmpdir(), 'flatnet-connrate-'));
  const gen = join(tmp, 'connrate');
  execFileSync('gcc', ['-O2', '-Wall', '-o', gen, join(repoRoot(), 'bench/service/connrate.c')], { stdio: ['ignore', 'ignore', 'inherit'] });
  const name = `sc${Math.random().toString(36).slice(2, 8)}`;
  const procs: ChildProcess[] = [];
  const started = new Date();
  const load0 = loadavg().map((x) => x.toFixed(2)).join(' ');
  let lab: LabState | null = null;
  try {
    lab = await labUp({ name, nodes: 4, kernelNodes: 2, pods: 2, etcd: 1 });
    const [n1, n2, n3, n4] = lab.nodes as [LabNode, LabNode, LabNode, LabNode];
    const servers: LabPod[] = [n2.pods[0]!, n4.pods[0]!];
    for (const s of servers) {
      await new Promise<void>((resolve, reject) => {
        const p = spawn('ip', ['netns', 'exec', s.ns, gen, 'serve', '8080'], { stdio: ['ignore', 'pipe', 'inherit'] });
        procs.push(p);
        p.stdout!.once('data', () => resolve());
        p.once('exit', (code) => reject(new Error(`the server in ${s.name} exited (${code})`)));
      });
    }
    const ns = labPodNamespace(name);
    const docs = [['to-flatnet', '10.96.0.20', servers[0]!], ['to-kernel', '10.96.0.21', servers[1]!]].flatMap(([svc, ip, pod]) => {
      const p = pod as LabPod;
      return [
        { apiVersion: 'v1', kind: 'Service', metadata: { name: svc, namespace: ns }, spec: { clusterIP: ip, ports: [{ name: 'tcp', port: 80, protocol: 'TCP', targetPort: 8080 }] } },
        { apiVersion: 'discovery.k8s.io/v1', kind: 'EndpointSlice', addressType: 'IPv4', metadata: { name: `${svc as string}-1`, namespace: ns, labels: { 'kubernetes.io/service-name': svc } },
          ports: [{ name: 'tcp', port: 8080, protocol: 'TCP' }], endpoints: [{ addresses: [p.ip], nodeName: p.node }] },
      ];
    });
    const f = join(lab.stateDir, 'connrate-services.json');
    writeFileSync(f, docs.map((d) => JSON.stringify(d)).join('\n---\n'));
    inNs(labEtcdSpecs(lab)[0]!.ns, process.execPath, [flatnetMain(), 'apply', '-f', f, '--etcd', labEtcdEndpoints(lab).join(',')]);

    const target: Record<Case, { client: LabPod; dst: string; port: string }> = {
      'flatnet-clusterip': { client: n1.pods[0]!, dst: '10.96.0.20', port: '80' },
      'flatnet-podip': { client: n1.pods[1]!, dst: servers[0]!.ip, port: '8080' },
      'kernel-clusterip': { client: n3.pods[0]!, dst: '10.96.0.21', port: '80' },
      'kernel-podip': { client: n3.pods[1]!, dst: servers[1]!.ip, port: '8080' },
    };
    const daemonPids = Object.values(lab.daemons).map((d) => d.pid);
    const runCase = async (c: Case, seconds: number, clients: number): Promise<Sample> => {
      const t = target[c];
      const d0 = daemonPids.reduce((s, p) => s + procTicks(p), 0), m0 = machineTicks(), w0 = performance.now();
      const outs = await Promise.all(Array.from({ length: clients }, () => new Promise<GenResult>((resolve, reject) => {
        const p = spawn('ip', ['netns', 'exec', t.client.ns, gen, 'client', t.dst, t.port, String(seconds), String(INFLIGHT)], { stdio: ['ignore', 'pipe', 'inherit'] });
        let out = '';
        p.stdout!.on('data', (b: Buffer) => { out += b.toString(); });
        p.once('exit', (code) => code === 0 ? resolve(JSON.parse(out) as GenResult) : reject(new Error(`${c}: the generator exited ${code}`)));
      })));
      const wall = (performance.now() - w0) / 1000;
      const d1 = daemonPids.reduce((s, p) => s + procTicks(p), 0), m1 = machineTicks();
      const connections = outs.reduce((s, o) => s + o.connections, 0);
      return {
        rate: connections / Math.max(...outs.map((o) => o.seconds)), connections,
        errors: outs.reduce((s, o) => s + o.errors, 0), timeouts: outs.reduce((s, o) => s + o.timeouts, 0),
        daemonCores: (d1 - d0) / TICK / wall, clientCores: outs.reduce((s, o) => s + o.userSeconds + o.sysSeconds, 0) / wall,
        softirqCores: (m1.softirq - m0.softirq) / TICK / wall, systemCores: (m1.system - m0.system) / TICK / wall,
        busyCores: (m1.busy - m0.busy) / TICK / wall,
      };
    };

    // Until both sides serve their ClusterIP (the kernel agent's rules, the daemons' tables).
    for (const c of CASES) {
      const t0 = Date.now();
      for (;;) {
        const s = await runCase(c, 0.5, 1);
        if (s.connections > 0 && s.errors === 0 && s.timeouts === 0) break;
        if (Date.now() - t0 > 20_000) throw new Error(`${c}: no connection within 20 s (${JSON.stringify(s)})`);
        await sleep(200);
      }
    }
    console.log(`connrate: lab ${name} up; ${RUNS} runs of ${SECONDS} s per case, ${CLIENTS} client processes x ${INFLIGHT} connections in flight`);
    const samples = new Map<Case, Sample[]>(CASES.map((c) => [c, []]));
    for (let r = 1; r <= RUNS; r++) {
      const order = r % 2 === 1 ? CASES : [...CASES].reverse();
      for (const c of order) {
        const s = await runCase(c, SECONDS, CLIENTS);
        samples.get(c)!.push(s);
        console.log(`  run ${r} ${c.padEnd(18)} ${s.rate.toFixed(0).padStart(6)} conn/s  errors ${s.errors} timeouts ${s.timeouts}  flatnet daemons ${s.daemonCores.toFixed(2)} cores, generators ${s.clientCores.toFixed(2)}, softirq ${s.softirqCores.toFixed(2)}, system ${s.systemCores.toFixed(2)}, machine busy ${s.busyCores.toFixed(2)}`);
      }
    }
    const counters = inNs(n1.ns, process.execPath, [flatnetMain(), 'show', 'counters', '--socket', n1.socket!]);
    const st = (await request(n1.socket!, { cmd: 'status' })) as { cluster: { conntrack: Record<string, number> } };
    const ct = Object.entries(st.cluster.conntrack).map(([k, v]) => `${k} ${v}`).join(', ');

    const med = (c: Case, k: keyof Sample): number => median(samples.get(c)!.map((s) => s[k]));
    const rate = (c: Case): number => med(c, 'rate');
    const rows = CASES.map((c) => `| ${c} | ${rate(c).toFixed(0)} | ${samples.get(c)!.map((s) => s.rate.toFixed(0)).join(', ')} | ${samples.get(c)!.reduce((s, x) => s + x.errors + x.timeouts, 0)} | ${med(c, 'daemonCores').toFixed(2)} | ${med(c, 'clientCores').toFixed(2)} | ${med(c, 'softirqCores').toFixed(2)} | ${med(c, 'systemCores').toFixed(2)} | ${med(c, 'busyCores').toFixed(2)} |`);
    const ratios = {
      flatnetClusterIpVsKernelClusterIp: rate('flatnet-clusterip') / rate('kernel-clusterip'),
      flatnetPodIpVsKernelPodIp: rate('flatnet-podip') / rate('kernel-podip'),
      flatnetClusterIpVsPodIp: rate('flatnet-clusterip') / rate('flatnet-podip'),
      kernelClusterIpVsPodIp: rate('kernel-clusterip') / rate('kernel-podip'),
    };
    const report = [
      `Run of ${started.toISOString().slice(0, 16).replace('T', ' ')} UTC (load ${load0} at the start; ${machine()}); ${RUNS} runs of ${SECONDS} s per case, ${CLIENTS} generators x ${INFLIGHT} connections in flight:`,
      '',
      '| case | conn/s (median) | conn/s, all runs | errors + timeouts | flatnet daemons (cores) | generators (cores) | softirq (cores) | system (cores) | machine busy (cores) |',
      '|---|---:|---|---:|---:|---:|---:|---:|---:|',
      ...rows,
      '',
      `Ratios (medians): flatnet ClusterIP / kernel ClusterIP **${ratios.flatnetClusterIpVsKernelClusterIp.toFixed(2)}**; flatnet pod IP / kernel pod IP ${ratios.flatnetPodIpVsKernelPodIp.toFixed(2)}; ClusterIP / pod IP: flatnet ${ratios.flatnetClusterIpVsPodIp.toFixed(2)}, kernel ${ratios.kernelClusterIpVsPodIp.toFixed(2)}.`,
      '',
      `n1's connection table after the run: ${ct.trim()}`,
      `n1's drops after the run: ${drops(counters)}`,
    ].join('\n');
    console.log(`\n${report}`);
    if (JSON_OUT !== '') writeFileSync(JSON_OUT, JSON.stringify({ started: started.toISOString(), machine: machine(), load: load0, runs: RUNS, seconds: SECONDS, clients: CLIENTS, inflight: INFLIGHT, samples: Object.fromEntries(samples), ratios }, null, 2));
  } finally {
    for (const p of procs) if (p.exitCode === null) p.kill('SIGTERM');
    if (lab !== null) await labDown(name);
    else await labDown(name).catch(() => undefined);
    rmSync(tmp, { recursive: true, force: true });
  }
}

main().catch((e: unknown) => {
  console.error(e);
  process.exitCode = 1;
});
