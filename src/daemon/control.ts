/**
 * The local control socket: a unix-domain stream socket carrying newline-delimited JSON, one
 * request and one response per line. `flatnet show|pod|peer` are its clients.
 *
 *   -> {"id": 1, "cmd": "show", "what": "routes"}
 *   <- {"id": 1, "ok": true, "data": [...]}
 *   <- {"id": 1, "ok": false, "error": {"code": "ERR_CONFIG_DUPLICATE", "message": "..."}}
 *
 * Requests are bounded (64 KiB per line); a malformed line gets an error response, not a crash.
 * The socket file is created with mode 0600 (root only) and removed on close.
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

export type ControlResponse =
  | { readonly id: number | null; readonly ok: true; readonly data: unknown }
  | { readonly id: number | null; readonly ok: false; readonly error: { readonly code: string; readonly message: string } };

export type ControlHandler = (req: ControlRequest) => Promise<unknown> | unknown;

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
        sock.end(JSON.stringify(errorResponse(null, 'ERR_CONTROL_TOO_LARGE', `request line exceeds ${MAX_LINE} bytes`)) + '\n');
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
          const resp = await handle(line, handler);
          if (!sock.destroyed) sock.write(JSON.stringify(resp) + '\n');
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

async function handle(line: string, handler: ControlHandler): Promise<ControlResponse> {
  let req: ControlRequest;
  try {
    const v: unknown = JSON.parse(line);
    if (typeof v !== 'object' || v === null || typeof (v as { cmd?: unknown }).cmd !== 'string') {
      return errorResponse(null, 'ERR_CONTROL_BAD_REQUEST', 'a request is a JSON object with a string "cmd"');
    }
    req = v as ControlRequest;
  } catch {
    return errorResponse(null, 'ERR_CONTROL_BAD_REQUEST', 'request is not valid JSON');
  }
  const id = typeof req.id === 'number' ? req.id : null;
  try {
    return { id, ok: true, data: await handler(req) };
  } catch (e) {
    if (e instanceof FlatnetError) return errorResponse(id, e.code, e.message);
    return errorResponse(id, 'ERR_CONTROL_FAILED', e instanceof Error ? e.message : String(e));
  }
}

function errorResponse(id: number | null, code: string, message: string): ControlResponse {
  return { id, ok: false, error: { code, message } };
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
 * FlatnetError carrying the daemon's code. ERR_CONTROL_UNREACHABLE when nothing listens.
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
      else reject(new FlatnetError(resp.error.code, resp.error.message));
    });
    sock.once('connect', () => sock.write(JSON.stringify({ id: 1, ...req }) + '\n'));
  });
}
