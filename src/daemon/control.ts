/**
 * The local control socket: a unix-domain stream socket carrying newline-delimited JSON, one
 * request and one response per line. It is a transport only: it frames lines, answers each
 * connection's requests in order, and maps errors to responses; what the commands are and
 * mean is the registry's (registry.ts, commands.ts). `flatnet show|pod|peer|reload` are its
 * clients.
 *
 *   -> {"id": 1, "cmd": "show", "what": "routes"}
 *   <- {"id": 1, "ok": true, "data": [...]}
 *   <- {"id": 2, "ok": false, "error": {"code": "ERR_STATE_CONFLICT", "message": "pod.ip: ...", "field": "pod.ip"}}
 *
 * `field` is present when the error names one. Requests are bounded (64 KiB per line); a
 * malformed line gets an error response, not a crash. The socket file is created with mode
 * 0600 (root only) and removed on close.
 */

import { chmodSync, existsSync, mkdirSync, unlinkSync } from 'node:fs';
import { connect, createServer, type Server, type Socket } from 'node:net';
import { dirname } from 'node:path';
import { FlatnetError } from '../errors.js';

export interface ControlRequest {
  readonly id?: number;
  readonly cmd: string;
  readonly [key: string]: unknown;
}

export interface ControlErrorBody { readonly code: string; readonly message: string; readonly field?: string }

export type ControlResponse =
  | { readonly id: number | null; readonly ok: true; readonly data: unknown }
  | { readonly id: number | null; readonly ok: false; readonly error: ControlErrorBody };

/** What the server calls per request: the command's name and its arguments (the request without id and cmd). */
export type ControlHandler = (cmd: string, args: Readonly<Record<string, unknown>>) => Promise<unknown> | unknown;

/** An error answered by the daemon, as a client sees it: the daemon's code, message and field. */
export class ControlError extends FlatnetError {
  readonly field: string | null;
  constructor(body: ControlErrorBody) {
    super(body.code, body.message);
    this.field = body.field ?? null;
  }
}

const MAX_LINE = 64 * 1024;

export class ControlServer {
  private readonly server: Server;
  private readonly sockets = new Set<Socket>();

  private constructor(readonly path: string, handler: ControlHandler) {
    this.server = createServer((sock) => this.serve(sock, handler));
  }

  /** listen creates the socket at `path` (replacing a stale one) and resolves when ready. */
  static async listen(path: string, handler: ControlHandler): Promise<ControlServer> {
    mkdirSync(dirname(path), { recursive: true });
    if (existsSync(path)) {
      // A live daemon answers; a stale file from a crash does not and is replaced.
      if (await isAlive(path)) throw new FlatnetError('ERR_CONTROL_IN_USE', `${path}: another flatnet daemon is listening there`);
      unlinkSync(path);
    }
    const s = new ControlServer(path, handler);
    await new Promise<void>((resolve, reject) => {
      s.server.once('error', reject);
      s.server.listen(path, () => { s.server.off('error', reject); resolve(); });
    });
    chmodSync(path, 0o600);
    return s;
  }

  private serve(sock: Socket, handler: ControlHandler): void {
    this.sockets.add(sock);
    sock.setEncoding('utf8');
    let buf = '';
    let chain = Promise.resolve();
    sock.on('data', (chunk: string) => {
      buf += chunk;
      if (buf.length > MAX_LINE && !buf.includes('\n')) {
        sock.end(JSON.stringify(errorResponse(null, { code: 'ERR_CONTROL_TOO_LARGE', message: `request line exceeds ${MAX_LINE} bytes` })) + '\n');
        buf = '';
        return;
      }
      let nl: number;
      while ((nl = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        if (line.trim() === '') continue;
        // Answer in order, one request at a time per connection.
        chain = chain.then(async () => {
          const resp = await answer(line, handler);
          if (!sock.destroyed) sock.write(encode(resp) + '\n');
        });
      }
    });
    sock.on('error', () => sock.destroy());
    sock.on('close', () => this.sockets.delete(sock));
  }

  async close(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
    try { unlinkSync(this.path); } catch { /* already gone */ }
  }
}

async function answer(line: string, handler: ControlHandler): Promise<ControlResponse> {
  let req: ControlRequest;
  try {
    const v: unknown = JSON.parse(line);
    if (typeof v !== 'object' || v === null || Array.isArray(v) || typeof (v as { cmd?: unknown }).cmd !== 'string') {
      return errorResponse(null, { code: 'ERR_CONTROL_BAD_REQUEST', message: 'a request is a JSON object with a string "cmd"', field: 'cmd' });
    }
    req = v as ControlRequest;
  } catch {
    return errorResponse(null, { code: 'ERR_CONTROL_BAD_REQUEST', message: 'request is not valid JSON' });
  }
  const { id: rawId, cmd, ...args } = req;
  const id = typeof rawId === 'number' ? rawId : null;
  try {
    return { id, ok: true, data: await handler(cmd, args) };
  } catch (e) {
    return errorResponse(id, errorBody(e));
  }
}

/** errorBody: a thrown error as the wire carries it (a FlatnetError keeps its code, and its field if it has one). */
export function errorBody(e: unknown): ControlErrorBody {
  if (e instanceof FlatnetError) {
    const field = (e as { field?: unknown }).field;
    return typeof field === 'string' && field !== '' ? { code: e.code, message: e.message, field } : { code: e.code, message: e.message };
  }
  return { code: 'ERR_CONTROL_FAILED', message: e instanceof Error ? e.message : String(e) };
}

/** encode: one response line; data that cannot be serialised becomes an error, not a stalled connection. */
function encode(resp: ControlResponse): string {
  try {
    return JSON.stringify(resp);
  } catch (e) {
    return JSON.stringify(errorResponse(resp.id, { code: 'ERR_CONTROL_FAILED', message: `the answer cannot be serialised: ${(e as Error).message}` }));
  }
}

function errorResponse(id: number | null, error: ControlErrorBody): ControlResponse {
  return { id, ok: false, error };
}

function isAlive(path: string): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect(path);
    s.once('connect', () => { s.destroy(); resolve(true); });
    s.once('error', () => resolve(false));
  });
}

/**
 * request sends one request and resolves with its data; a daemon-side error rejects with a
 * ControlError carrying the daemon's code (and field). ERR_CONTROL_UNREACHABLE when nothing listens.
 */
export function request(path: string, req: ControlRequest, timeoutMs = 5000): Promise<unknown> {
  return new Promise((resolve, reject) => {
    const sock = connect(path);
    sock.setEncoding('utf8');
    let buf = '';
    const timer = setTimeout(() => { sock.destroy(); reject(new FlatnetError('ERR_CONTROL_TIMEOUT', `no answer from ${path} within ${timeoutMs} ms`)); }, timeoutMs);
    sock.once('error', (e: NodeJS.ErrnoException) => {
      clearTimeout(timer);
      reject(new FlatnetError('ERR_CONTROL_UNREACHABLE', `cannot reach the flatnet daemon at ${path} (${e.code ?? e.message}): is \`flatnet vtep\` running in this network namespace?`, { cause: e }));
    });
    sock.on('data', (chunk: string) => {
      buf += chunk;
      const nl = buf.indexOf('\n');
      if (nl < 0) return;
      clearTimeout(timer);
      sock.end();
      let resp: ControlResponse;
      try {
        resp = JSON.parse(buf.slice(0, nl)) as ControlResponse;
      } catch (e) {
        reject(new FlatnetError('ERR_CONTROL_BAD_RESPONSE', 'the daemon sent something that is not JSON', { cause: e }));
        return;
      }
      if (resp.ok) resolve(resp.data);
      else reject(new ControlError(resp.error));
    });
    sock.once('connect', () => sock.write(JSON.stringify({ id: 1, ...req }) + '\n'));
  });
}
