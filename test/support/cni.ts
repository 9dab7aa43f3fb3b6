/**
 * Driving CNI plugins as a runtime does, for the namespace tests and the CNI bench: the
 * CNI_* environment and the configuration on stdin, the plugin run inside a node's namespace
 * (nsenter, as podman runs it), its stdout parsed. Also what the bad-input tests list after
 * each refusal: the node's links, the daemon's allocations and pod ports.
 */

import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { request } from '../../src/daemon/control.js';
import type { IpamSnapshot } from '../../src/daemon/ipam.js';
import type { PortRow } from '../../src/daemon/show.js';
import { REPO_ROOT } from './lab.js';

export const PLUGIN = join(REPO_ROOT, 'dist/src/cni/main.js');
export const REF_DIR = '/usr/lib/cni';

export interface PluginRun { readonly rc: number | null; readonly out: Record<string, unknown> | null; readonly stdout: string; readonly stderr: string }

export interface CniCall {
  readonly command: string;
  readonly containerId?: string;
  readonly netns?: string;
  readonly ifname?: string;
  readonly args?: string;
  readonly path?: string;
}

export function cniEnv(c: CniCall): Record<string, string> {
  const e: Record<string, string> = { CNI_COMMAND: c.command, CNI_PATH: c.path ?? REF_DIR };
  if (c.containerId !== undefined) e['CNI_CONTAINERID'] = c.containerId;
  if (c.netns !== undefined) e['CNI_NETNS'] = c.netns;
  if (c.ifname !== undefined) e['CNI_IFNAME'] = c.ifname;
  if (c.args !== undefined) e['CNI_ARGS'] = c.args;
  return e;
}

/** invoke runs `bin` (flatnet-cni by default) inside namespace `nodeNs` with `call` and `conf` on stdin. */
export function invoke(nodeNs: string, call: CniCall, conf: unknown, bin: string[] = [process.execPath, PLUGIN]): PluginRun {
  const env = Object.entries(cniEnv(call)).map(([k, v]) => `${k}=${v}`);
  const r = spawnSync('nsenter', [`--net=/run/netns/${nodeNs}`, 'env', ...env, ...bin], {
    input: typeof conf === 'string' ? conf : JSON.stringify(conf), encoding: 'utf8', timeout: 60_000,
  });
  let out: Record<string, unknown> | null = null;
  try { out = r.stdout.trim() === '' ? null : (JSON.parse(r.stdout) as Record<string, unknown>); } catch { /* left null: stdout is in the result */ }
  return { rc: r.status, out, stdout: r.stdout, stderr: r.stderr };
}

/** A reference plugin from /usr/lib/cni. */
export const ref = (name: string): string[] => [join(REF_DIR, name)];

/** The link names in namespace `ns`. */
export function links(ns: string): string[] {
  const r = spawnSync('ip', ['-n', ns, '-j', 'link', 'show'], { encoding: 'utf8' });
  return (JSON.parse(r.stdout) as { ifname: string }[]).map((l) => l.ifname);
}

export async function ipamOf(socket: string): Promise<IpamSnapshot> {
  return (await request(socket, { cmd: 'show', what: 'ipam' })) as IpamSnapshot;
}

export async function podPorts(socket: string): Promise<string[]> {
  return ((await request(socket, { cmd: 'show', what: 'ports' })) as PortRow[]).filter((p) => p.role === 'pod').map((p) => p.name);
}
