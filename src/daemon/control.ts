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
 * `field` is present when the error names one. Every connection is bounded (ControlLimits: line
 * length, requests and bytes held, unread answers, idle and per-request time, connections); a
 * malformed line gets an error response, not a crash. The socket file is created with mode
 * 0600 (its owner only, root for a daemon run as root) and removed on close.
 */

import { chmodSync, existsSync, mkdirSync, readFileSync, statSync, unlinkSync } from 'node:fs';
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

/**
 * The limits that keep an abusive or stuck client from costing the daemon memory or stalling
 * the data path. A connection is served one request at a time, in order; it holds at most
 * `maxBufferedBytes` of requests not yet answered (reading stops until they are) and at most
 * `maxOutputBytes` of answers its client has not read (answering stops, and so does reading,
 * until the client reads: backpressure). What the daemon keeps per connection is therefore
 * bounded whatever the client sends, and the memory goes when the connection does.
 */
export interface ControlLimits {
  /** Connections served at once; one more is answered ERR_CONTROL_BUSY and closed. */
  readonly maxConnections: number;
  /** Longest request line (bytes); a longer one is answered ERR_CONTROL_TOO_LARGE and the connection closed. */
  readonly maxLineBytes: number;
  /** Requests read but not yet answered, per connection (reading pauses at this count). */
  readonly maxInFlight: number;
  /** Unanswered request bytes held per connection before reading pauses. */
  readonly maxBufferedBytes: number;
  /** Unread answer bytes per connection before answering (and reading) pauses. */
  readonly maxOutputBytes: number;
  /** A connection with no traffic either way for this long is closed (ms; 0: never). */
  readonly idleTimeoutMs: number;
  /** A request not answered within this long gets ERR_CONTROL_TIMEOUT (ms; 0: never). */
  readonly requestTimeoutMs: number;
}

export const CONTROL_LIMITS: ControlLimits = {
  maxConnections: 64,
  maxLineBytes: 64 * 1024,
  maxInFlight: 64,
  maxBufferedBytes: 256 * 1024,
  maxOutputBytes: 1024 * 1024,
  idleTimeoutMs: 60_000,
  requestTimeoutMs: 10_000,
};

/** How long a refused connection may take to read its error before it is closed. */
const CLOSE_GRACE_MS = 1000;

/** Requests answered in a row before the connection yields the event loop to packets and other clients. */
const YIELD_EVERY = 16;

export class ControlServer {
  private readonly server: Server;
  private readonly sockets = new Set<Socket>();
  readonly limits: ControlLimits;
  /** Connections refused for maxConnections, requests timed out, lines too long, idle connections closed. */
  readonly stats = { refused: 0, timedOut: 0, tooLarge: 0, idleClosed: 0 };

  private constructor(readonly path: string, handler: ControlHandler, limits: Partial<ControlLimits>) {
    this.limits = { ...CONTROL_LIMITS, ...limits };
    this.server = createServer((sock) => this.serve(sock, handler));
  }

  /** listen creates the socket at `path` (replacing a stale one) and resolves when ready. */
  static async listen(path: string, handler: ControlHandler, limits: Partial<ControlLimits> = {}): Promise<ControlServer> {
    mkdirSync(dirname(path), { recursive: true });
    if (existsSync(path)) {
      // A live daemon answers; a stale file from a crash does not and is replaced.
      if (await isAlive(path)) throw new FlatnetError('ERR_CONTROL_IN_USE', `${path}: another flatnet daemon is listening there`);
      unlinkSync(path);
    }
    const s = new ControlServer(path, handler, limits);
    await new Promise<void>((resolve, reject) => {
      s.server.once('error', reject);
      s.server.listen(path, () => { s.server.off('error', reject); resolve(); });
    });
    chmodSync(path, 0o600);
    return s;
  }

  /** Connections open now. */
  get connections(): number {
    return this.sockets.size;
  }

  private serve(sock: Socket, handler: ControlHandler): void {
    const lim = this.limits;
    if (this.sockets.size >= lim.maxConnections) {
      this.stats.refused++;
      sock.on('error', () => sock.destroy());
      sock.resume(); // discard what it sends, so that its end is seen
      sock.end(JSON.stringify(errorResponse(null, { code: 'ERR_CONTROL_BUSY', message: `the daemon serves at most ${lim.maxConnections} control connections at once; try again` })) + '\n');
      setTimeout(() => sock.destroy(), CLOSE_GRACE_MS).unref();
      return;
    }
    this.sockets.add(sock);
    sock.setEncoding('utf8');
    if (lim.idleTimeoutMs > 0) {
      sock.setTimeout(lim.idleTimeoutMs, () => { this.stats.idleClosed++; sock.destroy(); });
    }
    // Unanswered input (whole lines and a partial last one), and the request lines taken from it.
    let buf = '';
    const queue: string[] = [];
    let busy = false;
    let waitingDrain = false;
    let closing = false;

    const tooLarge = (): void => {
      this.stats.tooLarge++;
      closing = true;
      buf = '';
      queue.length = 0;
      sock.end(JSON.stringify(errorResponse(null, { code: 'ERR_CONTROL_TOO_LARGE', message: `request line exceeds ${lim.maxLineBytes} bytes` })) + '\n');
      sock.resume();
      setTimeout(() => sock.destroy(), CLOSE_GRACE_MS).unref();
    };
    /** split moves whole lines from buf into the queue, up to maxInFlight. */
    const split = (): void => {
      let nl: number;
      while (!closing && queue.length < lim.maxInFlight && (nl = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        if (line.length > lim.maxLineBytes) return tooLarge();
        if (line.trim() !== '') queue.push(line);
      }
      if (!closing && buf.length > lim.maxLineBytes && buf.indexOf('\n') < 0) tooLarge();
    };
    /** Reading goes on only while the connection's unanswered input and unread output are under their limits. */
    const flowControl = (): void => {
      if (sock.destroyed || !sock.writable || closing) return;
      const full = queue.length >= lim.maxInFlight || buf.length >= lim.maxBufferedBytes || waitingDrain;
      if (full) sock.pause();
      else if (sock.isPaused()) sock.resume();
    };
    const run = async (): Promise<void> => {
      if (busy) return;
      busy = true;
      try {
        let n = 0;
        while (!sock.destroyed) {
          if (queue.length === 0) split();
          const line = queue.shift();
          if (line === undefined) break;
          const resp = await answer(line, handler, lim.requestTimeoutMs, this.stats);
          if (sock.destroyed) break;
          if (!sock.write(encode(resp) + '\n') || sock.writableLength > lim.maxOutputBytes) {
            // The client is not reading its answers: stop answering and reading until it does.
            waitingDrain = true;
            flowControl();
            await new Promise<void>((r) => { const done = (): void => { sock.off('drain', done); sock.off('close', done); r(); }; sock.on('drain', done); sock.on('close', done); });
            waitingDrain = false;
          }
          if (++n % YIELD_EVERY === 0) {
            flowControl();
            await new Promise<void>((r) => setImmediate(r));
          }
        }
      } finally {
        busy = false;
        flowControl();
      }
    };
    sock.on('data', (chunk: string) => {
      if (closing) return;
      buf += chunk;
      split();
      flowControl();
      void run();
    });
    sock.on('error', () => sock.destroy());
    sock.on('close', () => {
      this.sockets.delete(sock);
      buf = '';
      queue.length = 0;
    });
  }

  async close(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
    try { unlinkSync(this.path); } catch { /* already gone */ }
  }
}

async function answer(line: string, handler: ControlHandler, timeoutMs: number, stats: { timedOut: number }): Promise<ControlResponse> {
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
  let timer: NodeJS.Timeout | undefined;
  try {
    const result = Promise.resolve().then(() => handler(cmd, args));
    if (timeoutMs <= 0) return { id, ok: true, data: await result };
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        stats.timedOut++;
        reject(new FlatnetError('ERR_CONTROL_TIMEOUT', `${cmd}: no answer within ${timeoutMs} ms`));
      }, timeoutMs);
    });
    // A late result of a timed-out request is dropped; its rejection must not go unhandled.
    result.catch(() => {});
    return { id, ok: true, data: await Promise.race([result, timeout]) };
  } catch (e) {
    return errorResponse(id, errorBody(e));
  } finally {
    clearTimeout(timer);
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
 * unreachable: why a connection to the control socket failed, in words that point at the fix.
 * EACCES/EPERM is a permission problem (the socket is mode 0600: only its owner may connect),
 * not a missing daemon; ENOENT/ECONNREFUSED mean nothing listens there.
 */
export function unreachable(path: string, e: NodeJS.ErrnoException): FlatnetError {
  if (e.code === 'EACCES' || e.code === 'EPERM') {
    let owner = 'its owner';
    try {
      const uid = statSync(path).uid;
      owner = `its owner, ${userName(uid)} (uid ${uid})`;
    } catch { /* the socket's directory is not readable either */ }
    return new FlatnetError('ERR_CONTROL_PERMISSION', `permission denied on ${path} (${e.code}): the control socket is mode 0600, only ${owner} may connect; run flatnet as that user (for a daemon run as root: with sudo)`, { cause: e });
  }
  return new FlatnetError('ERR_CONTROL_UNREACHABLE', `cannot reach the flatnet daemon at ${path} (${e.code ?? e.message}): is \`flatnet vtep\` running in this network namespace?`, { cause: e });
}

/** userName: the login name of `uid` from /etc/passwd, or "uid N" when it has none. */
function userName(uid: number): string {
  try {
    for (const line of readFileSync('/etc/passwd', 'utf8').split('\n')) {
      const f = line.split(':');
      if (f.length > 2 && Number(f[2]) === uid && f[2] !== '') return f[0]!;
    }
  } catch { /* no passwd file */ }
  return `uid ${uid}`;
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
      reject(unreachable(path, e));
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
