/**
 * `flatnet lab probe [--name LAB] [--port 80] [--protocol tcp|udp|sctp] [--expect FILE] [--json]`:
 * who reaches whom in a running lab, from real connections between its pods (src/lab/probe.ts):
 * a probe server on every pod, every pod tries every pod, and the grid is printed as the
 * Kubernetes NetworkPolicy e2e suite prints it. With --expect, the grid is compared with the one
 * in FILE (the same layout) and a mismatch exits non-zero, naming each cell that differs.
 */

import { readFileSync } from 'node:fs';
import type { Command } from 'commander';
import { FlatnetError } from '../errors.js';
import { gridDiff, parseGrid, ProbeServers, probeMatrix, renderGrid, type ProbePod, type ProbeProtocol } from '../lab/probe.js';
import { readState } from '../lab/topology.js';

export interface ProbeOptions { readonly name: string; readonly port: number; readonly protocol: string; readonly expect?: string; readonly json?: boolean; readonly timeout: number }

/** runLabProbe prints the grid and returns whether it matched the expected one (true without --expect). */
export async function runLabProbe(o: ProbeOptions, write: (s: string) => void): Promise<boolean> {
  const proto = o.protocol.toLowerCase();
  if (proto !== 'tcp' && proto !== 'udp' && proto !== 'sctp') throw new FlatnetError('ERR_CLI_ARGUMENT', `--protocol ${o.protocol}: tcp, udp or sctp`);
  const state = readState(o.name);
  if (state === null) throw new FlatnetError('ERR_LAB_NOT_FOUND', `no lab named ${o.name} (flatnet lab up --name ${o.name})`);
  const expected = o.expect === undefined ? null : parseGrid(readFileSync(o.expect, 'utf8'), proto, o.port);
  const pods: ProbePod[] = state.nodes.flatMap((n) => n.pods.map((p) => ({ name: p.name, netns: p.ns, ip: p.ip })));
  const servers = await ProbeServers.start(pods, [o.port]);
  let grid;
  try {
    grid = await probeMatrix(pods, o.port, proto as ProbeProtocol, o.timeout);
  } finally {
    servers.stop();
  }
  const diff = expected === null ? [] : gridDiff(grid, expected);
  if (o.json === true) write(`${JSON.stringify({ ...grid, mismatches: diff }, null, 2)}\n`);
  else {
    write(`${renderGrid(grid, expected ?? undefined)}\n`);
    if (expected !== null) write(diff.length === 0 ? 'matches the expected grid\n' : `${diff.length} cell(s) differ from the expected grid:\n${diff.map((d) => `  ${d}\n`).join('')}`);
  }
  return diff.length === 0;
}

export function registerLabProbe(lab: Command, nameOpt: (c: Command) => Command, write: (s: string) => void): void {
  nameOpt(lab.command('probe')
    .description('who reaches whom: real TCP/UDP probes between every pair of pods, as a grid (. reachable, X blocked); --expect FILE compares'))
    .option('--port <n>', 'the port probed (a server listens on it in every pod)', (v) => Number(v), 80)
    .option('--protocol <p>', 'tcp, udp or sctp', 'tcp')
    .option('--timeout <s>', 'seconds each probe waits', (v) => Number(v), 1)
    .option('--expect <file>', 'a grid in the same layout; exit 1 when the probed one differs')
    .option('--json', 'the grid as JSON')
    .action(async (o: ProbeOptions) => {
      if (!(await runLabProbe(o, write))) process.exitCode = 1;
    });
}
