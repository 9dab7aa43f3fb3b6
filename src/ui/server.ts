/**
 * `flatnet ui`'s HTTP server (node:http): the page and its scripts, a read-only JSON API, and
 * Server-Sent Events with the cluster snapshot once a second.
 *
 *   GET /                                   the page (src/ui/web/index.html), /style.css, /js/NAME.js
 *   GET /api/cluster                        ClusterSnapshot (nodes, pods, tunnels with rates, drops, leases)
 *   GET /api/events                         SSE: `event: cluster` with a ClusterSnapshot per poll
 *   GET /api/commands                       the control commands (the daemon's registry) and which are served
 *   GET /api/nodes                          node names; /api/nodes/NODE: one NodeInfo
 *   GET /api/nodes/NODE/cmd/CMD?ARG=V       a read-only control command of the registry, its arguments
 *                                           checked with the registry's schema (`packet.flow=...` nests)
 *   GET /api/nodes/NODE/pipeline            PipelineView
 *   GET /api/encap?from=POD&to=POD|IP[&proto=icmp|udp|tcp] | ?hex=FRAME[&node=NODE]   EncapView
 *   GET /api/path?from=POD&to=POD|IP[&proto][&src=IP][&len=N]                      PathView
 *   GET /api/policies                       policies and Services per node
 *
 * Errors are JSON `{error: {code, message, field?}}`: 400 for bad parameters, 404 for an unknown
 * node, pod, command or path, 405 for anything but GET/HEAD and for commands that change state
 * (the server is read-only), 409 for a question a kernel node cannot answer, 502 when a daemon
 * does not answer. Nothing a request does reaches the packet path beyond the daemons' `show` and
 * `trace` (which copy counters or decide on a private copy of a frame).
 *
 * Safety: it listens on loopback unless told otherwise, and then only with a token (compared in
 * constant time; given as `Authorization: Bearer T`, `?token=T` once, which sets a cookie, or the
 * cookie). On loopback without a token the Host header must name loopback (no DNS rebinding).
 * Every response carries a Content-Security-Policy allowing only this origin: no CDN, no inline script.
 */

import { timingSafeEqual } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { z } from 'zod';
import { controlRegistry } from '../daemon/commands.js';
import { FlatnetError } from '../errors.js';
import { ClusterSource, UiError } from './cluster.js';
import type { ClusterSnapshot } from './model.js';
import { encapQuery, encapView, pathQuery, pathView, pipelineView, policyView } from './views.js';

export interface UiServerOptions {
  readonly host: string;
  readonly port: number;
  /** Required unless `host` is loopback. */
  readonly token: string | null;
  /** Poll period, ms (default 1000). */
  readonly pollMs?: number;
}

/** The poll keeps running this long after the last API request when nobody listens to events. */
const IDLE_AFTER_MS = 10_000;
const TOKEN_COOKIE = 'flatnet_ui_token';
/** Unread event bytes an SSE client may have before it is disconnected (it reconnects when it reads again). */
const MAX_UNREAD_EVENT_BYTES = 4 * 1024 * 1024;

/** isLoopback: 127.0.0.0/8, ::1 or localhost. */
export function isLoopback(host: string): boolean {
  return host === 'localhost' || host === '::1' || host === '[::1]' || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(host);
}

/** parseListen: HOST:PORT (an IPv4 literal, localhost, or [IPv6]), checked. */
export function parseListen(v: string): { host: string; port: number } {
  const m = /^(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.-]+):(\d{1,5})$/.exec(v);
  const port = m === null ? NaN : Number(m[2]);
  if (m === null || !Number.isInteger(port) || port < 0 || port > 65535) throw new FlatnetError('ERR_UI_LISTEN', `--listen ${JSON.stringify(v)}: HOST:PORT, such as 127.0.0.1:8080`);
  return { host: m[1]!.replace(/^\[(.*)\]$/, '$1'), port };
}

/** The repository (or installed package) root: the directory with our package.json above this file. */
function packageRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    if (existsSync(join(dir, 'package.json')) && existsSync(join(dir, 'src', 'ui', 'web', 'index.html'))) return dir;
    const up = dirname(dir);
    if (up === dir) throw new FlatnetError('ERR_UI_ASSETS', 'cannot find the web page (src/ui/web/index.html) above the running module');
    dir = up;
  }
}

const TYPES: Record<string, string> = { '.html': 'text/html; charset=utf-8', '.css': 'text/css; charset=utf-8', '.js': 'text/javascript; charset=utf-8', '.map': 'application/json' };

export class UiServer {
  private readonly server: Server;
  private readonly root = packageRoot();
  private readonly registry = controlRegistry();
  private readonly subscribers = new Set<ServerResponse>();
  private latest: ClusterSnapshot | null = null;
  private inFlight: Promise<ClusterSnapshot> | null = null;
  private timer: NodeJS.Timeout | null = null;
  private lastRequestAt = 0;
  private readonly pollMs: number;
  private closed = false;

  constructor(readonly source: ClusterSource, readonly options: UiServerOptions) {
    if (!isLoopback(options.host) && (options.token === null || options.token.length < 16)) {
      throw new FlatnetError('ERR_UI_TOKEN', `--listen ${options.host} is not loopback: give --token with at least 16 characters (every request must carry it)`);
    }
    this.pollMs = options.pollMs ?? 1000;
    this.server = createServer((req, res) => {
      this.handle(req, res).catch((e: unknown) => this.fail(res, e));
    });
  }

  /** listen resolves with the address it listens on (the port the system picked for port 0). */
  async listen(): Promise<{ host: string; port: number; url: string }> {
    await new Promise<void>((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(this.options.port, this.options.host, () => { this.server.off('error', reject); resolve(); });
    });
    const a = this.server.address();
    const port = typeof a === 'object' && a !== null ? a.port : this.options.port;
    const h = this.options.host.includes(':') ? `[${this.options.host}]` : this.options.host;
    return { host: this.options.host, port, url: `http://${h}:${port}/` };
  }

  async close(): Promise<void> {
    this.closed = true;
    if (this.timer !== null) clearTimeout(this.timer);
    for (const s of this.subscribers) s.end();
    this.subscribers.clear();
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
    this.source.close();
  }

  /** snapshot: the latest poll if it is fresh, else a new one (one at a time). */
  async snapshot(maxAgeMs = this.pollMs): Promise<ClusterSnapshot> {
    if (this.latest !== null && Date.now() - this.latest.at < maxAgeMs) return this.latest;
    return await this.pollNow();
  }

  private pollNow(): Promise<ClusterSnapshot> {
    this.inFlight ??= this.source.poll().then((s) => {
      this.latest = s;
      const event = `event: cluster\ndata: ${JSON.stringify(s)}\n\n`;
      for (const r of this.subscribers) {
        // A client that stopped reading is let go rather than buffered for.
        if (r.writableLength > MAX_UNREAD_EVENT_BYTES) { this.subscribers.delete(r); r.destroy(); continue; }
        r.write(event);
      }
      return s;
    }).finally(() => { this.inFlight = null; });
    return this.inFlight;
  }

  /** The poll loop runs while someone listens to events or asked recently. */
  private schedule(): void {
    if (this.timer !== null || this.closed) return;
    const tick = (): void => {
      this.timer = null;
      if (this.closed) return;
      if (this.subscribers.size === 0 && Date.now() - this.lastRequestAt > IDLE_AFTER_MS) return;
      this.pollNow().catch(() => {}).finally(() => {
        if (!this.closed && this.timer === null) this.timer = setTimeout(tick, this.pollMs);
      });
    };
    this.timer = setTimeout(tick, 0);
  }

  private authorized(req: IncomingMessage, url: URL, res: ServerResponse): boolean {
    const token = this.options.token;
    if (token === null) {
      const host = (req.headers.host ?? '').replace(/:\d+$/, '');
      return isLoopback(host);
    }
    const given = [
      /^Bearer (.+)$/.exec(req.headers.authorization ?? '')?.[1],
      url.searchParams.get('token') ?? undefined,
      (req.headers.cookie ?? '').split(/;\s*/).find((c) => c.startsWith(`${TOKEN_COOKIE}=`))?.slice(TOKEN_COOKIE.length + 1),
    ];
    const ok = given.some((g) => g !== undefined && equal(g, token));
    if (ok && url.searchParams.get('token') !== null) {
      res.setHeader('Set-Cookie', `${TOKEN_COOKIE}=${encodeURIComponent(token)}; HttpOnly; SameSite=Strict; Path=/`);
    }
    return ok;
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://ui.invalid');
    res.setHeader('Content-Security-Policy', "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; connect-src 'self'; base-uri 'none'; frame-ancestors 'none'");
    res.setHeader('X-Content-Type-Options', 'nosniff');
    res.setHeader('Referrer-Policy', 'no-referrer');
    if (!this.authorized(req, url, res)) {
      throw new UiError(this.options.token === null ? 403 : 401, 'ERR_UI_UNAUTHORIZED', this.options.token === null ? 'the Host header must name loopback' : 'a token is required (Authorization: Bearer TOKEN, or ?token=TOKEN)');
    }
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.setHeader('Allow', 'GET, HEAD');
      throw new UiError(405, 'ERR_UI_READ_ONLY', `${req.method ?? '?'}: the visualizer is read-only (GET and HEAD only)`);
    }
    const path = url.pathname;
    if (!path.startsWith('/api/')) return this.serveStatic(path, res);
    this.lastRequestAt = Date.now();
    this.schedule();
    const parts = path.split('/').filter((p) => p !== '').map((p) => decodeURIComponent(p));
    const query = Object.fromEntries([...url.searchParams].filter(([k]) => k !== 'token'));
    const route = `${parts[1] ?? ''}${parts.length > 2 ? `/${parts.length}` : ''}`;
    switch (route) {
      case 'cluster': return this.json(res, await this.snapshot());
      case 'events': return this.events(res);
      case 'commands': return this.json(res, this.registry.names.map((n) => {
        const c = this.registry.get(n)!;
        return { name: n, summary: c.summary, mutates: c.mutates, served: !c.mutates };
      }));
      case 'nodes': return this.json(res, (await this.snapshot()).nodes.map((n) => n.name));
      case 'nodes/3': {
        const snap = await this.snapshot();
        const node = snap.nodes.find((n) => n.name === parts[2]);
        if (node === undefined) this.source.target(parts[2]!); // 404 with the names
        return this.json(res, node);
      }
      case 'nodes/4':
        if (parts[3] !== 'pipeline') break;
        return this.json(res, pipelineView(this.source, await this.snapshot(), parts[2]!));
      case 'nodes/5':
        if (parts[3] !== 'cmd') break;
        return this.json(res, await this.command(parts[2]!, parts[4]!, query));
      case 'encap': return this.json(res, await encapView(this.source, await this.snapshot(), parse(encapQuery, query)));
      case 'path': return this.json(res, await pathView(this.source, await this.snapshot(), parse(pathQuery, query)));
      case 'policies': return this.json(res, await policyView(this.source, await this.snapshot()));
    }
    throw new UiError(404, 'ERR_UI_NOT_FOUND', `no API at ${path}`);
  }

  /** command: a read-only command of the daemon's registry, checked with its schema before it is sent. */
  private async command(node: string, cmd: string, query: Record<string, string>): Promise<unknown> {
    const c = this.registry.get(cmd);
    if (c === undefined) throw new UiError(404, 'ERR_UI_NO_COMMAND', `no command ${JSON.stringify(cmd)}; one of ${this.registry.names.filter((n) => !this.registry.get(n)!.mutates).join(', ')}`);
    if (c.mutates) throw new UiError(405, 'ERR_UI_READ_ONLY', `${cmd} changes the node's state; the visualizer serves only the commands that read`);
    const target = this.source.target(node);
    const args: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(query)) {
      const path = k.split('.');
      if (path.some((p) => !/^[A-Za-z][A-Za-z0-9]*$/.test(p)) || path.length > 3) throw new UiError(400, 'ERR_UI_BAD_QUERY', `parameter ${JSON.stringify(k)}: names are words joined by dots (packet.flow)`);
      let o = args;
      for (const p of path.slice(0, -1)) o = (o[p] ??= {}) as Record<string, unknown>;
      o[path[path.length - 1]!] = v;
    }
    this.registry.parse(cmd, args); // ERR_CONTROL_BAD_REQUEST (400) before anything is sent
    return await this.source.call(target, cmd, args);
  }

  private events(res: ServerResponse): void {
    res.writeHead(200, { 'Content-Type': 'text/event-stream; charset=utf-8', 'Cache-Control': 'no-store', 'Connection': 'keep-alive' });
    res.write('retry: 1000\n\n');
    if (this.latest !== null) res.write(`event: cluster\ndata: ${JSON.stringify(this.latest)}\n\n`);
    this.subscribers.add(res);
    res.on('close', () => this.subscribers.delete(res));
    this.schedule();
  }

  private serveStatic(path: string, res: ServerResponse): void {
    let file: string | null = null;
    if (path === '/' || path === '/index.html') file = join(this.root, 'src/ui/web/index.html');
    else if (path === '/style.css') file = join(this.root, 'src/ui/web/style.css');
    else {
      const m = /^\/js\/([a-z][a-z0-9-]*\.js(?:\.map)?)$/.exec(path);
      if (m !== null) file = join(this.root, 'dist/ui-web/web', m[1]!);
    }
    if (path === '/favicon.ico') { res.writeHead(204); res.end(); return; }
    if (file === null || !existsSync(file)) throw new UiError(404, 'ERR_UI_NOT_FOUND', `no file at ${path}`);
    const body = readFileSync(file);
    res.writeHead(200, { 'Content-Type': TYPES[file.slice(file.lastIndexOf('.'))] ?? 'application/octet-stream', 'Cache-Control': 'no-cache', 'Content-Length': body.length });
    res.end(body);
  }

  private json(res: ServerResponse, data: unknown): void {
    const body = JSON.stringify(data ?? null);
    res.writeHead(200, { 'Content-Type': 'application/json; charset=utf-8', 'Cache-Control': 'no-store' });
    res.end(body);
  }

  private fail(res: ServerResponse, e: unknown): void {
    const status = statusOf(e);
    const fe = e instanceof FlatnetError ? e : null;
    const field = (e as { field?: unknown }).field;
    const error = { code: fe?.code ?? 'ERR_UI_FAILED', message: e instanceof Error ? e.message : String(e), ...(typeof field === 'string' && field !== '' ? { field } : {}) };
    if (res.headersSent) { res.end(); return; }
    res.writeHead(status, { 'Content-Type': 'application/json; charset=utf-8', 'Cache-Control': 'no-store' });
    res.end(JSON.stringify({ error }));
  }
}

function parse<S extends z.ZodType>(schema: S, query: Record<string, string>): z.output<S> {
  const r = schema.safeParse(query);
  if (r.success) return r.data;
  const issue = r.error.issues[0]!;
  const field = issue.path.join('.');
  const e = new UiError(400, 'ERR_UI_BAD_QUERY', `${field === '' ? 'query' : field}: ${issue.message}`);
  (e as unknown as { field: string }).field = field;
  throw e;
}

/** statusOf: the HTTP status of an error: UiError's own, else by the daemon's or registry's code. */
export function statusOf(e: unknown): number {
  if (e instanceof UiError) return e.status;
  const code = e instanceof FlatnetError ? e.code : '';
  if (code === 'ERR_CONTROL_BAD_REQUEST' || code.startsWith('ERR_TRACE') || code.includes('INVALID') || code.includes('BAD')) return 400;
  if (code.includes('NOT_FOUND') || code === 'ERR_CONTROL_UNKNOWN_COMMAND') return 404;
  if (code === 'ERR_CONTROL_DISABLED') return 409;
  if (code === 'ERR_CONTROL_UNREACHABLE' || code === 'ERR_CONTROL_TIMEOUT') return 502;
  return 500;
}

function equal(a: string, b: string): boolean {
  const x = Buffer.from(a), y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}
