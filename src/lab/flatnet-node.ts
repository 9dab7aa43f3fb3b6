/**
 * A lab node that runs flatnet: its node config file (the same format as any `flatnet vtep
 * --config`, see src/daemon/config.ts) and its daemon process, started inside the node's
 * namespace with `ip netns exec NS node .../main.js vtep --config FILE`, detached from the
 * starting process so that it outlives `flatnet lab up`. Its stdout and stderr (pino JSON) go to
 * the node's log file in the lab directory; its pid is kept in the lab state.
 */

import { spawn } from 'node:child_process';
import { closeSync, existsSync, mkdirSync, openSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { ConfigInput } from '../daemon/config.js';
import { request } from '../daemon/control.js';
import { FlatnetError } from '../errors.js';
import { podsViaCni } from './cni-pods.js';
import { cmdline, isRunning, sleep } from './exec.js';
import type { DaemonRecord, LabNode, LabPlan } from './topology.js';
import { labEtcdEndpoints, writeLabSubnetEnv } from './etcd-lab.js';

/** The flatnet executable this module belongs to (dist/src/cli/main.js), also when run from src/ by tests. */
export function flatnetMain(): string {
  const candidates = [new URL('../cli/main.js', import.meta.url), new URL('../../dist/src/cli/main.js', import.meta.url)];
  for (const u of candidates) {
    const p = fileURLToPath(u);
    if (existsSync(p)) return p;
  }
  throw new FlatnetError('ERR_LAB_NO_EXECUTABLE', `cannot find flatnet's dist/src/cli/main.js next to ${fileURLToPath(import.meta.url)}; run \`npm run build\` (or .ci/setup)`);
}

/** nodeConfig is the config file of flatnet node `node`: every other node is a peer. */
export function nodeConfig(plan: LabPlan, node: LabNode): ConfigInput {
  const o = plan.options;
  const cfg: ConfigInput = {
    node: node.name,
    vni: o.vni,
    port: o.port,
    mode: o.mode,
    underlay: { interface: 'eth0', address: node.underlayIp },
    podCidr: node.podCidr,
    stateDir: plan.stateDir,
    controlSocket: node.socket!,
    // Each node has its own network namespace, so every daemon can use the same address.
    metrics: '127.0.0.1:9465',
    peers: plan.nodes.filter((n) => n !== node).map((n) => ({ name: n.name, underlay: n.underlayIp, podCidr: n.podCidr, vtepMac: n.vtepMac })),
    // Pods the CNI plugin makes are the daemon's CNI producer's, not the file's.
    pods: podsViaCni(o, node.kind) ? [] : node.pods.map((p) => ({ name: p.name, interface: p.hostIf, ip: p.ip, mac: p.mac })),
  };
  if (o.etcd > 0) {
    // The subnet and the peers come from etcd (src/lab/etcd-lab.ts): no podCidr, no peer list.
    delete cfg.podCidr;
    delete cfg.vni; delete cfg.port; delete cfg.mode;
    cfg.peers = [];
    cfg.control = { etcd: { endpoints: labEtcdEndpoints(plan), leaseTtlSeconds: o.leaseTtlSeconds } };
  }
  if (o.vtepMacSource === 'config') cfg.vtepMac = node.vtepMac;
  if (o.fdbLimit !== null) cfg.fdb = { limit: o.fdbLimit };
  if (o.flatnetOffloads === false) cfg.offloads = false;
  if (o.flatnetIo !== null) cfg.io = o.flatnetIo;
  if (o.flatnetBusyPoll !== null) cfg.busyPoll = typeof o.flatnetBusyPoll === 'object' ? { ...o.flatnetBusyPoll } : o.flatnetBusyPoll;
  return cfg;
}

/** The file in which the daemon keeps its VTEP MAC when the config has none (see resolveVtepMac). */
export const vtepMacFile = (plan: LabPlan, node: LabNode): string => join(plan.stateDir, `${node.name}.vtep-mac`);

/**
 * writeNodeConfig writes the config file (and, with vtepMacSource 'state', the persisted VTEP
 * MAC the daemon will read instead of generating one).
 */
export function writeNodeConfig(plan: LabPlan, node: LabNode): void {
  mkdirSync(plan.stateDir, { recursive: true });
  writeFileSync(node.config!, `${JSON.stringify(nodeConfig(plan, node), null, 2)}\n`);
  if (plan.options.vtepMacSource === 'state') writeFileSync(vtepMacFile(plan, node), `${node.vtepMac}\n`);
  if (plan.options.etcd > 0) writeLabSubnetEnv(plan, node);
}

/** spawnDaemon starts the node's daemon (detached, logging to its log file) and returns its record. */
export function spawnDaemon(node: LabNode, opts: { keep?: boolean; nodeArgs?: readonly string[] } = {}): DaemonRecord {
  const keep = opts.keep ?? false;
  const fd = openSync(node.log, 'a');
  try {
    // nodeArgs: options for node itself (the e2e bench's --cpu-prof), before the script.
    const args = ['netns', 'exec', node.ns, process.execPath, ...(opts.nodeArgs ?? []), flatnetMain(), 'vtep', '--config', node.config!];
    if (keep) args.push('--keep');
    const child = spawn('ip', args, { detached: true, stdio: ['ignore', fd, fd] });
    if (child.pid === undefined) throw new FlatnetError('ERR_LAB_DAEMON', `cannot start the daemon of ${node.name}`);
    child.unref();
    // `ip netns exec` execs the command: the pid is the daemon's own.
    return { pid: child.pid, startedAt: new Date().toISOString(), keep };
  } finally {
    closeSync(fd);
  }
}

/** isOurDaemon: PID is alive and is the `flatnet vtep` of this node (not a recycled pid). */
export function isOurDaemon(node: LabNode, pid: number): boolean {
  if (!isRunning(pid)) return false;
  const argv = cmdline(pid);
  return argv !== null && argv.includes('vtep') && argv.includes(node.config!);
}

/** The last `lines` lines of a node's log, for error messages. */
export function logTail(node: LabNode, lines = 8): string {
  try {
    return readFileSync(node.log, 'utf8').trimEnd().split('\n').slice(-lines).join('\n');
  } catch {
    return '(no log)';
  }
}

/**
 * waitReady resolves once the daemon answers `status` on its control socket; throws
 * ERR_LAB_DAEMON (with the end of its log) if it exits or does not answer within `timeoutMs`.
 */
export async function waitReady(node: LabNode, pid: number, timeoutMs = 15_000): Promise<Record<string, unknown>> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (!isRunning(pid)) {
      throw new FlatnetError('ERR_LAB_DAEMON', `the flatnet daemon of ${node.name} (pid ${pid}) exited while starting; ${node.log} ends with:\n${logTail(node)}`);
    }
    try {
      return (await request(node.socket!, { cmd: 'status' }, 1000)) as Record<string, unknown>;
    } catch {
      /* not listening yet */
    }
    if (Date.now() > deadline) {
      throw new FlatnetError('ERR_LAB_DAEMON', `the flatnet daemon of ${node.name} (pid ${pid}) did not answer on ${node.socket} within ${timeoutMs} ms; ${node.log} ends with:\n${logTail(node)}`);
    }
    await sleep(50);
  }
}

export interface StopResult {
  /** It exited by itself after the signal within the grace period. */
  readonly exited: boolean;
  /** Milliseconds from the signal to the exit (or to the SIGKILL). */
  readonly ms: number;
  /** It had to be killed with SIGKILL. */
  readonly killed: boolean;
}

/**
 * stopDaemon sends `signal` and waits up to `graceMs` for the process to end, then SIGKILLs it.
 * A pid that is gone (or not this node's daemon any more) counts as exited at once.
 */
export async function stopDaemon(node: LabNode, pid: number, signal: NodeJS.Signals = 'SIGTERM', graceMs = 5000): Promise<StopResult> {
  if (!isOurDaemon(node, pid)) return { exited: true, ms: 0, killed: false };
  const t0 = Date.now();
  try {
    process.kill(pid, signal);
  } catch {
    return { exited: true, ms: 0, killed: false };
  }
  while (Date.now() - t0 < graceMs) {
    if (!isRunning(pid)) return { exited: true, ms: Date.now() - t0, killed: false };
    await sleep(10);
  }
  try { process.kill(pid, 'SIGKILL'); } catch { /* gone meanwhile */ }
  return { exited: false, ms: Date.now() - t0, killed: true };
}
