/**
 * CNI ADD and DEL latency (issue 10): flatnet-cni (the Node plugin, and the fast launcher that
 * hands the invocation to the daemon) against the reference `bridge` + `host-local` plugins
 * (containernetworking-plugins, Go), in the same run, in the same node namespace, each
 * invoked the way a runtime invokes it (nsenter into the node's namespace, CNI_* environment,
 * configuration on stdin), timed from spawn to exit.
 *
 *   npm run bench:cni            # setup, build, then: node dist/bench/cni/cni.bench.js [--pods 100] [--parallel 20]
 *
 *   sequential  N pods one after the other: ADD each (the three in a rotating order), then DEL each
 *   parallel    P ADDs started at once for one plugin, then the next; then P DELs each
 *   start-up    VERSION of each plugin and `node -e 0`: the floor of a process start
 *
 * Root only. A lab of one flatnet node (namespaces fl-cbXXXX-*) gives the daemon; the pods'
 * namespaces are cbXXXX-f<i> / -q<i> / -r<i>; all of it is removed at the end, also on failure.
 * flatnet's pods get addresses from the node's 10.244.1.0/24, the reference's from
 * 10.244.250.0/24 on a bridge cnibr0 in the node's namespace (MTU 1450 both).
 */

import { execFile, execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { cpus, loadavg, release, tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import { launcherPath, pluginMain } from '../../src/cni/install.js';
import { labDown, labUp } from '../../src/lab/lab.js';

const log = (l: string): void => { process.stderr.write(`${l}\n`); };
const REF = '/usr/lib/cni';

interface Call { readonly command: 'ADD' | 'DEL' | 'VERSION'; readonly id: string; readonly netns: string }

/** flatnet-cni's FLATNET_CNI_TRACE marks of each sequential ADD (ms since its process started). */
const phases: Record<string, number>[] = [];

/** invoke: one plugin run as a runtime does it; resolves with its wall time in ms (rejects on failure). */
function invoke(nodeNs: string, bin: readonly string[], c: Call, conf: string, keepPhases = false): Promise<number> {
  const env = [`CNI_COMMAND=${c.command}`, `CNI_CONTAINERID=${c.id}`, `CNI_NETNS=/run/netns/${c.netns}`, 'CNI_IFNAME=eth0', `CNI_PATH=${REF}`, 'CNI_ARGS=IgnoreUnknown=1', 'FLATNET_CNI_TRACE=1'];
  const t0 = performance.now();
  return new Promise((resolve, reject) => {
    const child = execFile('nsenter', [`--net=/run/netns/${nodeNs}`, 'env', ...env, ...bin], { encoding: 'utf8', timeout: 60_000 }, (err, stdout, stderr) => {
      const ms = performance.now() - t0;
      if (err !== null) {
        reject(new Error(`${bin.join(' ')} ${c.command} ${c.id}: ${stdout || err.message}`));
        return;
      }
      const line = /flatnet-cni timing: (.*)/.exec(stderr)?.[1];
      if (keepPhases && line !== undefined) phases.push(Object.fromEntries(line.split(' ').map((kv) => [kv.split('=')[0]!, Number(kv.split('=')[1])])));
      resolve(ms);
    });
    child.stdin!.on('error', () => {});
    child.stdin!.end(conf);
  });
}

function pct(xs: readonly number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.ceil((p / 100) * s.length) - 1)]!;
}

interface Row { readonly what: string; readonly flatnet: readonly number[]; readonly fast: readonly number[]; readonly ref: readonly number[] }

function render(rows: readonly Row[]): string {
  const f = (x: number): string => x.toFixed(1);
  const lines = [
    '| measurement | flatnet-cni (Node) p50 / p99 | fast launcher p50 / p99 | bridge+host-local p50 / p99 | Node / reference | fast / reference |',
    '|---|---:|---:|---:|---:|---:|',
  ];
  for (const r of rows) {
    const fp = pct(r.flatnet, 50), qp = pct(r.fast, 50), rp = pct(r.ref, 50);
    lines.push(`| ${r.what} (n=${r.flatnet.length}) | ${f(fp)} / ${f(pct(r.flatnet, 99))} ms | ${f(qp)} / ${f(pct(r.fast, 99))} ms | ${f(rp)} / ${f(pct(r.ref, 99))} ms | ${(fp / rp).toFixed(2)}x | ${(qp / rp).toFixed(2)}x |`);
  }
  return lines.join('\n');
}

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { pods: { type: 'string', default: '100' }, parallel: { type: 'string', default: '20' } } });
  const nPods = Number(values.pods), nPar = Number(values.parallel);
  if (process.getuid?.() !== 0) throw new Error('root only (network namespaces)');
  const tag = `cb${(process.pid % 100000).toString(36)}`;
  const labName = tag;
  const dataDir = mkdtempSync(join(tmpdir(), 'flatnet-cni-bench-'));
  const made: string[] = [];
  const addNs = (name: string): string => { execFileSync('ip', ['netns', 'add', name]); made.push(name); return name; };
  const cleanup = async (): Promise<void> => {
    for (const n of made.splice(0)) try { execFileSync('ip', ['netns', 'del', n]); } catch { /* gone */ }
    await labDown(labName);
    rmSync(dataDir, { recursive: true, force: true });
  };
  process.once('SIGINT', () => { void cleanup().finally(() => process.exit(130)); });
  try {
    const lab = await labUp({ name: labName, nodes: 1, kernelNodes: 0, pods: 1 });
    const node = lab.nodes[0]!;
    const flat = { bin: [process.execPath, pluginMain()], conf: JSON.stringify({ cniVersion: '1.0.0', name: 'fbench', type: 'flatnet', socket: node.socket }) };
    const ref = {
      bin: [join(REF, 'bridge')],
      conf: JSON.stringify({
        cniVersion: '1.0.0', name: 'rbench', type: 'bridge', bridge: 'cnibr0', isGateway: true, isDefaultGateway: true, mtu: 1450,
        ipam: { type: 'host-local', ranges: [[{ subnet: '10.244.250.0/24' }]], dataDir },
      }),
    };
    // The fast launcher (native/cni/launcher.c): the daemon runs the plugin in-process.
    const fast = { bin: [launcherPath(), node.socket!, process.execPath, pluginMain()], conf: flat.conf };
    const run = (p: typeof flat, c: Call, keepPhases = false): Promise<number> => invoke(node.ns, p.bin, c, p.conf, keepPhases);

    // Warm the page cache and the daemon once for each (not counted).
    const wf = addNs(`${tag}-fw`), wr = addNs(`${tag}-rw`);
    await run(flat, { command: 'ADD', id: 'warm', netns: wf });
    await run(ref, { command: 'ADD', id: 'warm', netns: wr });
    await run(flat, { command: 'DEL', id: 'warm', netns: wf });
    await run(fast, { command: 'ADD', id: 'warm', netns: wf });
    await run(fast, { command: 'DEL', id: 'warm', netns: wf });
    await run(ref, { command: 'DEL', id: 'warm', netns: wr });

    const rows: Row[] = [];
    // Start-up floor.
    const startF: number[] = [], startQ: number[] = [], startR: number[] = [], bare: number[] = [];
    for (let i = 0; i < 20; i++) {
      startF.push(await run(flat, { command: 'VERSION', id: 'v', netns: wf }));
      startQ.push(await run(fast, { command: 'VERSION', id: 'v', netns: wf }));
      startR.push(await run(ref, { command: 'VERSION', id: 'v', netns: wf }));
      const t0 = performance.now();
      execFileSync('nsenter', [`--net=/run/netns/${node.ns}`, process.execPath, '-e', '0']);
      bare.push(performance.now() - t0);
    }

    log(`sequential: ${nPods} pods each`);
    const fNs: string[] = [], qNs: string[] = [], rNs: string[] = [];
    for (let i = 0; i < nPods; i++) { fNs.push(addNs(`${tag}-f${i}`)); qNs.push(addNs(`${tag}-q${i}`)); rNs.push(addNs(`${tag}-r${i}`)); }
    const seq = async (command: 'ADD' | 'DEL'): Promise<{ f: number[]; q: number[]; r: number[] }> => {
      const out = { f: [] as number[], q: [] as number[], r: [] as number[] };
      for (let i = 0; i < nPods; i++) {
        // The three in a rotating order, so that none always runs first.
        const jobs = [
          async (): Promise<void> => { out.f.push(await run(flat, { command, id: `s${i}`, netns: fNs[i]! }, command === 'ADD')); },
          async (): Promise<void> => { out.q.push(await run(fast, { command, id: `q${i}`, netns: qNs[i]! })); },
          async (): Promise<void> => { out.r.push(await run(ref, { command, id: `s${i}`, netns: rNs[i]! })); },
        ];
        for (let k = 0; k < 3; k++) await jobs[(i + k) % 3]!();
      }
      return out;
    };
    const adds = await seq('ADD');
    const dels = await seq('DEL');
    rows.push({ what: 'ADD, sequential', flatnet: adds.f, fast: adds.q, ref: adds.r }, { what: 'DEL, sequential', flatnet: dels.f, fast: dels.q, ref: dels.r });

    log(`parallel: ${nPar} at once`);
    const pF = fNs.slice(0, nPar), pQ = qNs.slice(0, nPar), pR = rNs.slice(0, nPar);
    const par = async (p: typeof flat, command: 'ADD' | 'DEL', nss: readonly string[], prefix: string): Promise<{ each: number[]; wall: number }> => {
      const t0 = performance.now();
      const each = await Promise.all(nss.map((ns, i) => run(p, { command, id: `${prefix}${i}`, netns: ns })));
      return { each, wall: performance.now() - t0 };
    };
    const paf = await par(flat, 'ADD', pF, 'p'), paq = await par(fast, 'ADD', pQ, 'pq'), par_ = await par(ref, 'ADD', pR, 'p');
    const pdf = await par(flat, 'DEL', pF, 'p'), pdq = await par(fast, 'DEL', pQ, 'pq'), pdr = await par(ref, 'DEL', pR, 'p');
    rows.push({ what: `ADD, ${nPar} in parallel`, flatnet: paf.each, fast: paq.each, ref: par_.each }, { what: `DEL, ${nPar} in parallel`, flatnet: pdf.each, fast: pdq.each, ref: pdr.each });
    rows.push({ what: 'VERSION (process start)', flatnet: startF, fast: startQ, ref: startR });

    const table = render(rows);
    const wall = `wall time of the ${nPar} parallel ADDs: flatnet-cni ${paf.wall.toFixed(0)} ms, fast launcher ${paq.wall.toFixed(0)} ms, reference ${par_.wall.toFixed(0)} ms; DELs: ${pdf.wall.toFixed(0)} / ${pdq.wall.toFixed(0)} / ${pdr.wall.toFixed(0)} ms`;
    const floor = `\`node -e 0\` under nsenter: p50 ${pct(bare, 50).toFixed(1)} ms (n=${bare.length})`;
    const med = (k: string): string => pct(phases.map((p) => p[k] ?? NaN).filter((x) => !Number.isNaN(x)), 50).toFixed(1);
    const steps = `flatnet ADD, sequential, p50 of each mark (ms since the plugin's process started): main ${med('main')} (Node started, modules loaded), lease ${med('lease')} (the daemon allocated), veth ${med('veth')} (nsenter + ip -batch), attach ${med('attach')} (the daemon attached the port), done ${med('done')}`;
    const machine = `${cpus().length} x ${cpus()[0]?.model ?? '?'}, Linux ${release()}, Node ${process.version}, load ${loadavg().map((x) => x.toFixed(2)).join(' ')}`;
    process.stdout.write(`${machine}\n\n${table}\n\n${wall}\n${floor}\n${steps}\n`);
  } finally {
    await cleanup();
  }
}

await main();
