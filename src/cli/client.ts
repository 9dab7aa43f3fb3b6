/**
 * Clients of a running daemon's control socket: `flatnet show`, `flatnet pod`, `flatnet peer`,
 * `flatnet reload`. Arguments are checked with the daemon's own command registry before
 * anything is sent (the same schemas, the same field-named errors), then sent as one request.
 * The socket is found from --socket, else from --config, else the only socket under /run/flatnet.
 */

import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { controlRegistry } from '../daemon/commands.js';
import { configSchema, readConfigJson } from '../daemon/config.js';
import { schemaError } from '../daemon/validate.js';
import { request } from '../daemon/control.js';
import { render, type ShowWhat } from '../daemon/show.js';
import { FlatnetError } from '../errors.js';

export interface SocketOptions {
  readonly socket?: string;
  readonly config?: string;
}

const RUN_DIR = '/run/flatnet';
const registry = controlRegistry();

export function socketPath(o: SocketOptions): string {
  if (o.socket !== undefined) return o.socket;
  if (o.config !== undefined) {
    // Only the socket is needed: a node on etcd has no podCidr in its file, so no full parse.
    const r = configSchema.safeParse(readConfigJson(o.config));
    if (!r.success) throw schemaError('ERR_CONFIG_INVALID', r.error);
    return r.data.controlSocket ?? `/run/flatnet/${r.data.node}.sock`;
  }
  const found = existsSync(RUN_DIR) ? readdirSync(RUN_DIR).filter((f) => f.endsWith('.sock')) : [];
  if (found.length === 1) return join(RUN_DIR, found[0]!);
  throw new FlatnetError('ERR_CONTROL_UNREACHABLE', found.length === 0
    ? `no flatnet daemon socket under ${RUN_DIR}; pass --socket or --config`
    : `several daemon sockets under ${RUN_DIR} (${found.join(', ')}); pass --socket or --config`);
}

/** send checks `args` against command `cmd`'s schema, then asks the daemon. */
async function send(cmd: string, args: Record<string, unknown>, o: SocketOptions): Promise<unknown> {
  registry.parse(cmd, args);
  return await request(socketPath(o), { cmd, ...args });
}

export async function runShow(what: ShowWhat, o: SocketOptions & { json: boolean }, write: (s: string) => void): Promise<void> {
  const data = await send('show', { what }, o);
  write(o.json ? JSON.stringify(data, null, 2) + '\n' : render(what, data));
}

export async function runControl(cmd: string, body: Record<string, unknown>, o: SocketOptions, write: (s: string) => void): Promise<void> {
  const data = await send(cmd, body, o);
  write(JSON.stringify(data) + '\n');
}

/** `flatnet show control`: the daemon's control plane (etcd lease, watch, rejected records). */
export async function runShowControl(o: SocketOptions & { json: boolean }, write: (s: string) => void): Promise<void> {
  const data = await send('control-status', {}, o);
  write(o.json ? JSON.stringify(data, null, 2) + '\n' : renderControl(data as ControlView));
}

interface ControlView {
  state: string; endpoints: string[]; prefix: string; network: Record<string, unknown> | null;
  lease: { state: string; subnet: string | null; leaseId: string | null; ttlSeconds: number; renewals: number; renewalFailures: number; lastRenewalAgoMs: number | null; reacquired: number; lastError: string | null } | null;
  watch: { state: string; revision: number; keys: number; events: number; resyncs: number; disconnects: number; lastError: string | null; downForMs: number | null } | null;
  records: number; peers: number; appliedPeers: number; rejected: Record<string, number>; rejectedNow: { key: string; reason: string; detail: string }[];
  refusedByLocal: Record<string, string>;
}

export function renderControl(c: ControlView): string {
  const l = c.lease, w = c.watch;
  const lines = [
    `state ${c.state}  etcd ${c.endpoints.join(',')}  prefix ${c.prefix}`,
    `network ${c.network === null ? '-' : Object.entries(c.network).map(([k, v]) => `${k} ${String(v)}`).join(' ')}`,
    l === null ? 'lease -' : `lease ${l.state} subnet ${l.subnet ?? '-'} id ${l.leaseId ?? '-'} ttl ${l.ttlSeconds}s renewals ${l.renewals} failures ${l.renewalFailures}${l.lastRenewalAgoMs === null ? '' : ` last ${(l.lastRenewalAgoMs / 1000).toFixed(1)}s ago`} reacquired ${l.reacquired}`,
    w === null ? 'watch -' : `watch ${w.state} revision ${w.revision} keys ${w.keys} events ${w.events} resyncs ${w.resyncs} disconnects ${w.disconnects}${w.downForMs === null ? '' : ` down ${(w.downForMs / 1000).toFixed(1)}s`}`,
    `peers ${c.peers} from ${c.records} records, ${c.appliedPeers} applied`,
    `last error ${w?.lastError ?? l?.lastError ?? 'none'}`,
  ];
  const rej = Object.entries(c.rejected).filter(([, n]) => n > 0);
  lines.push(rej.length === 0 ? 'rejected records: none' : `rejected records: ${rej.map(([r, n]) => `${r} ${n}`).join(', ')}`);
  for (const r of c.rejectedNow) lines.push(`  ignoring ${r.key}: ${r.reason} (${r.detail})`);
  for (const [n, why] of Object.entries(c.refusedByLocal)) lines.push(`  not applied ${n}: clashes with a local peer (${why})`);
  return lines.join('\n') + '\n';
}
