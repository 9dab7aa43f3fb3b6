/**
 * `flatnet lab probe [--name LAB] [--port 80[,81]] [--protocol tcp[,udp,sctp]] [--expect FILE] [--json]`:
 * who reaches whom in a running lab, from real connections between its pods (src/lab/probe.ts):
 * a probe server on every pod, every pod tries every pod, and one grid per port and protocol is
 * printed as the Kubernetes NetworkPolicy e2e suite prints it. With --expect, each grid is
 * compared with the one in FILE (the same layout, one grid per `PROTO/PORT` heading, or a single
 * grid without one) and a mismatch exits non-zero, naming each cell that differs. A protocol the
 * kernel cannot probe (SCTP without the sctp module) is reported as skipped with the reason; a
 * grid expected but not probed is not a match.
 */

import { readFileSync } from 'node:fs';
import type { Command } from 'commander';
import { FlatnetError } from '../errors.js';
import { gridDiff, parseGrids, ProbeServers, probeMatrix, renderGrid, type Grid, type ProbePod, type ProbeProtocol } from '../lab/probe.js';
import { readState } from '../lab/topology.js';

export interface ProbeOptions { readonly name: string; readonly port: string; readonly protocol: string; readonly expect?: string; readonly json?: boolean; readonly timeout: number }

const PROTOCOLS: readonly ProbeProtocol[] = ['tcp', 'udp', 'sctp'];

/** The --port and --protocol lists. */
function combos(o: ProbeOptions): { proto: ProbeProtocol; port: number }[] {
  const ports = String(o.port).split(',').map((p) => {
    const n = Number(p.trim());
    if (!Number.isInteger(n) || n < 1 || n > 65535) throw new FlatnetError('ERR_CLI_ARGUMENT', `--port ${o.port}: ports 1-65535, comma-separated`);
    return n;
  });
  const protos = o.protocol.toLowerCase().split(',').map((p) => {
    const q = p.trim() as ProbeProtocol;
    if (!PROTOCOLS.includes(q)) throw new FlatnetError('ERR_CLI_ARGUMENT', `--protocol ${o.protocol}: tcp, udp or sctp, comma-separated`);
    return q;
  });
  return protos.flatMap((proto) => ports.map((port) => ({ proto, port })));
}

const key = (proto: string, port: number): string => `${proto.toUpperCase()}/${port}`;

/** runLabProbe prints the grids and returns whether they matched the expected ones (true without --expect). */
export async function runLabProbe(o: ProbeOptions, write: (s: string) => void): Promise<boolean> {
  const wanted = combos(o);
  const state = readState(o.name);
  if (state === null) throw new FlatnetError('ERR_LAB_NOT_FOUND', `no lab named ${o.name} (flatnet lab up --name ${o.name})`);
  const expected = o.expect === undefined ? null : parseGrids(readFileSync(o.expect, 'utf8'), wanted);
  // A manifest's pods in name order (x/a, x/b, ...), the planned ones in node order (n1p0, n1p1, n2p0, ...).
  const pods: ProbePod[] = state.nodes.flatMap((n) => n.pods.map((p) => ({ name: p.name, netns: p.ns, ip: p.ip })));
  if (state.options.manifest !== null) pods.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  const servers = await ProbeServers.start(pods, [...new Set(wanted.map((c) => c.port))]);
  const results: { proto: ProbeProtocol; port: number; grid: Grid | null; skipped: string | null }[] = [];
  try {
    for (const c of wanted) {
      try {
        results.push({ ...c, grid: await probeMatrix(pods, c.port, c.proto, o.timeout), skipped: null });
      } catch (e) {
        if (!(e instanceof FlatnetError && e.code === 'ERR_PROBE_UNSUPPORTED')) throw e;
        results.push({ ...c, grid: null, skipped: e.message });
      }
    }
  } finally {
    servers.stop();
  }
  let ok = true;
  const out = results.map((r) => {
    const want = expected?.get(key(r.proto, r.port));
    const mismatches = want === undefined ? [] : r.grid === null ? [`not probed: ${r.skipped}`] : gridDiff(r.grid, want);
    if (mismatches.length > 0) ok = false;
    const text = r.grid === null ? `${key(r.proto, r.port)}: skipped (${r.skipped})` : renderGrid(r.grid, want);
    return { r, want, mismatches, text };
  });
  if (o.json === true) {
    const rows = out.map(({ r, mismatches }) => (r.grid === null ? { proto: r.proto, port: r.port, skipped: r.skipped, mismatches } : { ...r.grid, mismatches }));
    write(`${JSON.stringify(rows.length === 1 ? rows[0] : rows, null, 2)}\n`);
    return ok;
  }
  write(out.map(({ r, want, mismatches, text }) => {
    if (expected === null) return text;
    if (want === undefined) return `${text}\n(no expected grid for ${key(r.proto, r.port)} in ${o.expect})`;
    return `${text}\n${mismatches.length === 0 ? 'matches the expected grid' : `${mismatches.length} cell(s) differ from the expected grid:\n${mismatches.map((d) => `  ${d}`).join('\n')}`}`;
  }).join('\n\n') + '\n');
  return ok;
}

export function registerLabProbe(lab: Command, nameOpt: (c: Command) => Command, write: (s: string) => void): void {
  nameOpt(lab.command('probe')
    .description('who reaches whom: real TCP/UDP probes between every pair of pods, a grid per port and protocol (. reachable, X blocked); --expect FILE compares'))
    .option('--port <n[,n]>', 'the ports probed (a server listens on each in every pod)', '80')
    .option('--protocol <p[,p]>', 'tcp, udp or sctp (comma-separated for several)', 'tcp')
    .option('--timeout <s>', 'seconds each probe waits', (v) => Number(v), 1)
    .option('--expect <file>', 'grids in the same layout (a PROTO/PORT line before each when there are several); exit 1 when a probed one differs')
    .option('--json', 'the grids as JSON')
    .action(async (o: ProbeOptions) => {
      if (!(await runLabProbe(o, write))) process.exitCode = 1;
    });
}
