/**
 * Reachability probes between pods, the way the Kubernetes NetworkPolicy e2e suite and Cyclonus
 * test a cluster: every pod runs a server on the probed ports (TCP, UDP echo, SCTP), every pod
 * tries every pod, and the answers make a grid of sources x destinations (`.` reachable, `X`
 * blocked) per port and protocol. The answers come from real connections between pod network
 * namespaces, never from the policy engine. A grid can be compared with an expected one (a
 * mismatch is a failure the caller turns into a non-zero exit); an --expect file holds one grid
 * per `PROTO/PORT` heading (parseGrids), so a printed run is a valid expectation.
 *
 * SCTP probes need the kernel's sctp module; where the kernel lacks it (these lab machines:
 * "Protocol not supported"), `probeMatrix` says so instead of guessing.
 */

import { spawn, type ChildProcess } from 'node:child_process';
import { FlatnetError } from '../errors.js';

export type ProbeProtocol = 'tcp' | 'udp' | 'sctp';

/** A pod to probe: its display name ("x/a"), network namespace and IP. */
export interface ProbePod { readonly name: string; readonly netns: string; readonly ip: string }

/** A grid: grid[from][to] is true when `from` reached `to`. */
export interface Grid {
  readonly proto: ProbeProtocol;
  readonly port: number;
  readonly pods: readonly string[];
  readonly reach: Readonly<Record<string, Readonly<Record<string, boolean>>>>;
}

const SERVER = String.raw`
import socket, sys, threading
ports = [int(p) for p in sys.argv[1].split(',')]
def tcp(p):
    s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1); s.bind(('0.0.0.0', p)); s.listen(128)
    while True:
        c, _ = s.accept(); c.close()
def udp(p):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(('0.0.0.0', p))
    while True:
        d, a = s.recvfrom(2048); s.sendto(d, a)
def sctp(s, p):
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1); s.bind(('0.0.0.0', p)); s.listen(128)
    while True:
        c, _ = s.accept(); c.close()
for p in ports:
    threading.Thread(target=tcp, args=(p,), daemon=True).start()
    threading.Thread(target=udp, args=(p,), daemon=True).start()
    try:
        threading.Thread(target=sctp, args=(socket.socket(socket.AF_INET, socket.SOCK_STREAM, 132), p), daemon=True).start()
    except OSError:
        pass  # no SCTP in this kernel: the clients say so
print('ready', flush=True)
threading.Event().wait()
`;

const CLIENT = String.raw`
import socket, sys, json, threading
targets = json.loads(sys.argv[1]); port = int(sys.argv[2]); proto = sys.argv[3]; timeout = float(sys.argv[4])
out = {}
def one(name, ip):
    try:
        if proto == 'tcp':
            s = socket.socket(); s.settimeout(timeout); s.connect((ip, port)); s.close(); out[name] = True
        elif proto == 'udp':
            s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.settimeout(timeout); s.connect((ip, port))
            ok = False
            for _ in range(3):
                s.send(b'probe')
                try:
                    ok = s.recv(64) == b'probe'; break
                except socket.timeout:
                    pass
            out[name] = ok
        else:
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_SCTP); s.settimeout(timeout); s.connect((ip, port)); s.close(); out[name] = True
    except OSError as e:
        if e.errno == 93: out['__error'] = 'sctp: protocol not supported by this kernel'
        out[name] = False
ts = [threading.Thread(target=one, args=(n, ip)) for n, ip in targets]
[t.start() for t in ts]; [t.join() for t in ts]
print(json.dumps(out))
`;

/** The Python that runs the probes: Debian's, where the lab's tools live. */
const PYTHON = '/usr/bin/python3';

function run(netns: string, script: string, args: string[], timeoutMs: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const p = spawn('ip', ['netns', 'exec', netns, PYTHON, '-c', script, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '', err = '';
    const timer = setTimeout(() => p.kill('SIGKILL'), timeoutMs);
    p.stdout.on('data', (d: Buffer) => { out += d.toString(); });
    p.stderr.on('data', (d: Buffer) => { err += d.toString(); });
    p.on('error', reject);
    p.on('close', (code) => {
      clearTimeout(timer);
      if (code === 0) resolve(out);
      else reject(new FlatnetError('ERR_PROBE_FAILED', `probe in ${netns} exited ${code}: ${err.trim().split('\n').at(-1) ?? ''}`));
    });
  });
}

/** Servers on every pod (TCP, UDP echo, and SCTP where the kernel has it, on each port); stop() ends them. */
export class ProbeServers {
  private readonly procs: ChildProcess[] = [];

  static async start(pods: readonly ProbePod[], ports: readonly number[]): Promise<ProbeServers> {
    const s = new ProbeServers();
    try {
      await Promise.all(pods.map((pod) => new Promise<void>((resolve, reject) => {
        const p = spawn('ip', ['netns', 'exec', pod.netns, PYTHON, '-c', SERVER, ports.join(',')], { stdio: ['ignore', 'pipe', 'pipe'] });
        s.procs.push(p);
        p.stdout.once('data', () => resolve());
        p.once('exit', (code) => reject(new FlatnetError('ERR_PROBE_SERVER', `probe server in ${pod.netns} exited ${code}`)));
      })));
    } catch (e) {
      s.stop();
      throw e;
    }
    return s;
  }

  stop(): void {
    for (const p of this.procs) if (p.exitCode === null && p.signalCode === null) p.kill('SIGKILL');
    this.procs.length = 0;
  }
}

/** probeMatrix probes every pod from every pod on one port and protocol (sources in parallel). */
export async function probeMatrix(pods: readonly ProbePod[], port: number, proto: ProbeProtocol, timeoutS = 1): Promise<Grid> {
  const targets = JSON.stringify(pods.map((p) => [p.name, p.ip]));
  const rows = await Promise.all(pods.map(async (from) => {
    const r = JSON.parse(await run(from.netns, CLIENT, [targets, String(port), proto, String(timeoutS)], (timeoutS * 4 + 10) * 1000)) as Record<string, boolean | string>;
    if (typeof r.__error === 'string') throw new FlatnetError('ERR_PROBE_UNSUPPORTED', r.__error);
    return [from.name, r] as const;
  }));
  const reach: Record<string, Record<string, boolean>> = {};
  for (const [from, r] of rows) {
    reach[from] = {};
    for (const to of pods) reach[from]![to.name] = r[to.name] === true;
  }
  return { proto, port, pods: pods.map((p) => p.name), reach };
}

/** renderGrid: the grid as text, a header of destinations, a row per source. */
export function renderGrid(g: Grid, expected?: Grid): string {
  const w = Math.max(...g.pods.map((p) => p.length), 4);
  const cell = (s: string): string => s.padEnd(w + 1);
  const lines = [`${g.proto.toUpperCase()}/${g.port} (. reachable, X blocked${expected ? ', ! differs from the expected grid' : ''})`];
  lines.push(cell('') + g.pods.map(cell).join('').trimEnd());
  for (const from of g.pods) {
    lines.push(cell(from) + g.pods.map((to) => {
      const got = g.reach[from]![to]!;
      if (expected !== undefined && expected.reach[from]?.[to] !== got) return cell('!');
      return cell(got ? '.' : 'X');
    }).join('').trimEnd());
  }
  return lines.join('\n');
}

/** parseGrid reads a grid as renderGrid writes it (the expected grid of a test or a file). */
export function parseGrid(text: string, proto: ProbeProtocol, port: number): Grid {
  const lines = text.split('\n').map((l) => l.trimEnd()).filter((l) => l.trim() !== '' && !/^(TCP|UDP|SCTP)\//.test(l));
  if (lines.length < 2) throw new FlatnetError('ERR_PROBE_GRID', 'a grid needs a header line of destinations and one line per source');
  const pods = lines[0]!.trim().split(/\s+/);
  const reach: Record<string, Record<string, boolean>> = {};
  lines.slice(1).forEach((l, i) => {
    const [from, ...cells] = l.trim().split(/\s+/);
    if (cells.length !== pods.length || !cells.every((c) => c === '.' || c === 'X')) {
      throw new FlatnetError('ERR_PROBE_GRID', `line ${i + 2}: ${pods.length} cells of . or X expected after the source name, got ${JSON.stringify(l)}`);
    }
    reach[from!] = Object.fromEntries(pods.map((to, j) => [to, cells[j] === '.']));
  });
  return { proto, port, pods, reach };
}

/** The cells where two grids differ, as "from -> to: expected ., got X". */
export function gridDiff(got: Grid, expected: Grid): string[] {
  const out: string[] = [];
  for (const from of expected.pods) {
    for (const to of expected.pods) {
      const e = expected.reach[from]?.[to], g = got.reach[from]?.[to];
      if (e !== g) out.push(`${from} -> ${to}: expected ${e === undefined ? '?' : e ? '.' : 'X'}, got ${g === undefined ? '?' : g ? '.' : 'X'}`);
    }
  }
  return out;
}

/**
 * parseGrids reads the grids of an --expect file: one per `PROTO/PORT` heading, as renderGrid
 * writes them (so a printed run is a valid file), keyed "TCP/80"; a text without any heading is
 * the grid of the one port and protocol probed. ERR_PROBE_GRID names the heading or line.
 */
export function parseGrids(text: string, probed: readonly { readonly proto: ProbeProtocol; readonly port: number }[]): Map<string, Grid> {
  const lines = text.split('\n');
  const heads = lines.flatMap((l, i) => {
    const m = /^(TCP|UDP|SCTP)\/(\d+)(\s|$)/i.exec(l.trim());
    return m === null ? [] : [{ i, proto: m[1]!.toLowerCase() as ProbeProtocol, port: Number(m[2]) }];
  });
  const out = new Map<string, Grid>();
  if (heads.length === 0) {
    if (probed.length !== 1) throw new FlatnetError('ERR_PROBE_GRID', `${probed.length} ports/protocols are probed: give each expected grid a heading line such as ${probed.map((p) => `${p.proto.toUpperCase()}/${p.port}`).join(', ')}`);
    out.set(`${probed[0]!.proto.toUpperCase()}/${probed[0]!.port}`, parseGrid(text, probed[0]!.proto, probed[0]!.port));
    return out;
  }
  const before = lines.slice(0, heads[0]!.i).findIndex((l) => l.trim() !== '');
  if (before >= 0) throw new FlatnetError('ERR_PROBE_GRID', `line ${before + 1}: a grid before the first PROTO/PORT heading`);
  heads.forEach((h, k) => {
    const key = `${h.proto.toUpperCase()}/${h.port}`;
    if (out.has(key)) throw new FlatnetError('ERR_PROBE_GRID', `line ${h.i + 1}: a second grid for ${key}`);
    try {
      out.set(key, parseGrid(lines.slice(h.i + 1, heads[k + 1]?.i ?? lines.length).join('\n'), h.proto, h.port));
    } catch (e) {
      throw new FlatnetError('ERR_PROBE_GRID', `${key} (line ${h.i + 1}): ${(e as Error).message}`, { cause: e });
    }
  });
  return out;
}
