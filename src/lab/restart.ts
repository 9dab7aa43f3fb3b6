/**
 * `flatnet lab restart NODE`: start a node's flatnet daemon again (after a crash, a SIGKILL, or
 * to pick up a new build), and the live daemon of a node as `lab test` finds it.
 *
 * The lab state (lab.json) records the pid each daemon was started with; a daemon started by
 * hand or by a restart has another. liveDaemon looks the pid up in the node's namespace, so a
 * stale record does not fail `lab test` while traffic flows, and restart records the new one.
 */

import { FlatnetError } from '../errors.js';
import { nsPids } from './exec.js';
import { isOurDaemon, spawnDaemon, stopDaemon, waitReady } from './flatnet-node.js';
import { loadLab, writeState, type DaemonRecord, type LabNode, type LabState } from './topology.js';

/** liveDaemon: the pid of the node's running `flatnet vtep`, the recorded one first; null when none runs. */
export function liveDaemon(node: LabNode, recorded: DaemonRecord | undefined): number | null {
  if (recorded !== undefined && isOurDaemon(node, recorded.pid)) return recorded.pid;
  for (const pid of nsPids(node.ns)) if (isOurDaemon(node, pid)) return pid;
  return null;
}

export interface RestartResult {
  readonly node: string;
  /** The daemon stopped first (null: none was running, e.g. after a crash). */
  readonly stoppedPid: number | null;
  readonly pid: number;
}

/**
 * labRestart stops the node's daemon if one runs (SIGTERM, SIGKILL after 5 s), starts a new
 * one with the same config and log file (appended), waits until it answers, and records its
 * pid in lab.json. ERR_LAB_NODE for a node the lab does not have or that is a kernel node.
 */
export async function labRestart(name: string, nodeName: string, progress: (line: string) => void = () => {}): Promise<RestartResult> {
  const state: LabState = loadLab(name);
  const node = state.nodes.find((n) => n.name === nodeName);
  if (node === undefined) throw new FlatnetError('ERR_LAB_NODE', `lab ${name} has no node ${nodeName} (nodes: ${state.nodes.map((n) => n.name).join(', ')})`);
  if (node.kind !== 'flatnet') throw new FlatnetError('ERR_LAB_NODE', `${nodeName} is a kernel vxlan node: it has no flatnet daemon to restart`);
  const old = state.daemons[node.name];
  const running = liveDaemon(node, old);
  if (running !== null) {
    const r = await stopDaemon(node, running, 'SIGTERM', 5000);
    progress(`  ${node.name}: stopped pid ${running}${r.killed ? ' (SIGKILL after 5 s)' : ''}`);
  }
  const rec = spawnDaemon(node, { keep: old?.keep ?? false });
  state.daemons[node.name] = rec;
  writeState(state);
  await waitReady(node, rec.pid);
  progress(`  ${node.name}: flatnet daemon up (pid ${rec.pid}), log ${node.log}`);
  return { node: node.name, stoppedPid: running, pid: rec.pid };
}
