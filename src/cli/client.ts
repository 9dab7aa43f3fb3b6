/**
 * Clients of a running daemon's control socket: `flatnet show`, `flatnet pod`, `flatnet peer`,
 * `flatnet reload`. Arguments are checked with the daemon's own command registry before
 * anything is sent (the same schemas, the same field-named errors), then sent as one request.
 * The socket is found from --socket, else from --config, else the only socket under /run/flatnet.
 */

import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { controlRegistry } from '../daemon/commands.js';
import { loadConfig } from '../daemon/config.js';
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
  if (o.config !== undefined) return loadConfig(o.config).controlSocket;
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
