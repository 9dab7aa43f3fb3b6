/**
 * etcd for labs and tests: members run as plain processes (Debian's etcd 3.4), each inside a
 * namespace the caller created, with its data in a directory the caller owns. Nothing listens
 * outside those namespaces; a member may also listen on a unix socket in its directory, so that
 * a test process in another namespace can reach it without any packet leaving a namespace.
 *
 * In a lab, member i (1-based) has its own namespace `fl-NAME-e<i>` on the underlay bridge with
 * address 198.51.100.(240+i): client URL http://198.51.100.(240+i):2379, peers on :2380.
 */

import { spawn } from 'node:child_process';
import { closeSync, mkdirSync, openSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { FlatnetError } from '../errors.js';
import { inNsAsync, isRunning, sleep } from './exec.js';

export const ETCD_CLIENT_PORT = 2379;
export const ETCD_PEER_PORT = 2380;
export const MAX_ETCD_MEMBERS = 5;
/** Lab member i's underlay address. */
export const etcdIpOf = (i: number): string => `198.51.100.${240 + i}`;

export interface EtcdMemberSpec {
  readonly name: string;
  /** The namespace it runs in (must exist). */
  readonly ns: string;
  /** The address it listens on (in its namespace): a lab address or 127.0.0.1. */
  readonly ip: string;
  /** Its own directory: data in DIR/data, log in DIR/etcd.log, the unix socket DIR/localhost:2379. */
  readonly dir: string;
}

export interface EtcdMember extends EtcdMemberSpec {
  readonly pid: number;
  readonly clientUrl: string;
  /** unix:///DIR/localhost:2379, reachable from any namespace. */
  readonly unixUrl: string;
  readonly log: string;
}

const clientUrl = (m: EtcdMemberSpec): string => `http://${m.ip}:${ETCD_CLIENT_PORT}`;
const peerUrl = (m: EtcdMemberSpec): string => `http://${m.ip}:${ETCD_PEER_PORT}`;

/**
 * startEtcdCluster starts one member per spec as one cluster (detached, so that they outlive a
 * `lab up`), and waits until every member reports healthy. Throws ERR_ETCD_START with the end of
 * a member's log when one exits or the cluster is not healthy within `timeoutMs`.
 */
export async function startEtcdCluster(specs: readonly EtcdMemberSpec[], opts: { token?: string; timeoutMs?: number } = {}): Promise<EtcdMember[]> {
  const initial = specs.map((m) => `${m.name}=${peerUrl(m)}`).join(',');
  const members: EtcdMember[] = [];
  for (const m of specs) {
    mkdirSync(m.dir, { recursive: true });
    // A member killed with SIGKILL leaves its socket behind; etcd would not bind over it.
    rmSync(join(m.dir, `localhost:${ETCD_CLIENT_PORT}`), { force: true });
    const log = join(m.dir, 'etcd.log');
    const fd = openSync(log, 'a');
    try {
      const args = ['netns', 'exec', m.ns, 'etcd', '--name', m.name, '--data-dir', join(m.dir, 'data'),
        '--listen-client-urls', `${clientUrl(m)},unix://localhost:${ETCD_CLIENT_PORT}`, '--advertise-client-urls', clientUrl(m),
        '--listen-peer-urls', peerUrl(m), '--initial-advertise-peer-urls', peerUrl(m),
        '--initial-cluster', initial, '--initial-cluster-state', 'new', '--initial-cluster-token', opts.token ?? `flatnet-${specs[0]!.ns}`,
        '--logger=zap', '--log-level', 'warn', '--snapshot-count', '10000'];
      // cwd: etcd makes the unix socket `localhost:2379` relative to it.
      const child = spawn('ip', args, { detached: true, stdio: ['ignore', fd, fd], cwd: m.dir });
      if (child.pid === undefined) throw new FlatnetError('ERR_ETCD_START', `cannot start etcd member ${m.name}`);
      child.unref();
      members.push({ ...m, pid: child.pid, clientUrl: clientUrl(m), unixUrl: `unix://${join(m.dir, `localhost:${ETCD_CLIENT_PORT}`)}`, log });
    } finally {
      closeSync(fd);
    }
  }
  const deadline = Date.now() + (opts.timeoutMs ?? 20_000);
  for (const m of members) {
    for (;;) {
      if (!isRunning(m.pid)) throw new FlatnetError('ERR_ETCD_START', `etcd member ${m.name} (pid ${m.pid}) exited; ${m.log} ends with:\n${tail(m.log)}`);
      const r = await inNsAsync(m.ns, 'etcdctl', ['--endpoints', m.clientUrl, '--command-timeout=1s', 'endpoint', 'health'], { timeoutMs: 5000 });
      if (r.code === 0) break;
      if (Date.now() > deadline) throw new FlatnetError('ERR_ETCD_START', `etcd member ${m.name} not healthy within ${opts.timeoutMs ?? 20_000} ms; ${m.log} ends with:\n${tail(m.log)}`);
      await sleep(100);
    }
  }
  return members;
}

/** stopEtcdMember kills one member by its pid (SIGKILL unless told otherwise) and waits until it is gone. */
export async function stopEtcdMember(m: EtcdMember, signal: NodeJS.Signals = 'SIGKILL'): Promise<void> {
  try { process.kill(m.pid, signal); } catch { return; }
  for (let i = 0; i < 200 && isRunning(m.pid); i++) await sleep(20);
}

/**
 * restartEtcdMember starts a stopped member again on its data dir: etcd then ignores the
 * initial-cluster flags and rejoins the cluster recorded in its data.
 */
export async function restartEtcdMember(m: EtcdMember, timeoutMs = 20_000): Promise<EtcdMember> {
  const [again] = await startEtcdCluster([{ name: m.name, ns: m.ns, ip: m.ip, dir: m.dir }], { timeoutMs });
  return again!;
}

function tail(path: string, lines = 8): string {
  try {
    return readFileSync(path, 'utf8').trimEnd().split('\n').slice(-lines).join('\n');
  } catch {
    return '(no log)';
  }
}
