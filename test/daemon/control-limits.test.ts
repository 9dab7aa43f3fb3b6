// The control socket's bounds (ControlLimits): a client that pipelines requests without
// reading the answers, opens too many connections, sends an endless line, goes idle, or asks
// something that never finishes costs the daemon bounded memory and time, and other clients
// are answered throughout. The memory test runs the server in a child process (its RSS is
// its own) from dist/, which `npm test` builds first.
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ControlServer, request, type ControlResponse } from '../../src/daemon/control.js';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
let dir = '';
beforeAll(() => { dir = mkdtempSync(join(tmpdir(), 'flatnet-ctl-lim-')); });
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

function open(path: string): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const s = connect(path);
    s.once('connect', () => resolve(s));
    s.once('error', reject);
  });
}

/** readLines collects response lines of `s` until `n` arrived or the socket closed. */
function readLines(s: Socket, n: number): Promise<string[]> {
  return new Promise((resolve) => {
    let buf = '';
    const lines: string[] = [];
    s.setEncoding('utf8');
    const done = (): void => { s.off('data', onData); resolve(lines); };
    const onData = (d: string): void => {
      buf += d;
      let nl: number;
      while ((nl = buf.indexOf('\n')) >= 0) { lines.push(buf.slice(0, nl)); buf = buf.slice(nl + 1); }
      if (lines.length >= n) done();
    };
    s.on('data', onData);
    s.once('close', done);
  });
}

describe('control socket limits', () => {
  it('stops answering and reading a connection whose answers are not read, and catches up when they are', async () => {
    const path = join(dir, 'bp.sock');
    let calls = 0;
    const big = 'x'.repeat(8 * 1024);
    const srv = await ControlServer.listen(path, () => { calls++; return big; }, { maxOutputBytes: 64 * 1024, maxBufferedBytes: 16 * 1024, maxInFlight: 8 });
    try {
      const s = await open(path);
      s.pause(); // the client reads nothing
      const N = 4000;
      const reqs = Array.from({ length: N }, (_, i) => JSON.stringify({ id: i, cmd: 'big' })).join('\n') + '\n';
      s.write(reqs);
      await sleep(1000);
      // 4000 answers of 8 KiB are 32 MB; the daemon stopped after about its output limit plus
      // what the kernel's socket buffers hold.
      const answeredWhileStalled = calls;
      expect(answeredWhileStalled).toBeLessThan(N / 4);
      await sleep(300);
      expect(calls).toBe(answeredWhileStalled);
      // Another client is answered meanwhile.
      expect(await request(path, { cmd: 'x' }, 3000)).toBe(big);
      // The client reads: every answer arrives, in order.
      const got = readLines(s, N);
      s.resume();
      const lines = await got;
      expect(lines).toHaveLength(N);
      expect(lines.map((l) => (JSON.parse(l) as ControlResponse).id)).toEqual(Array.from({ length: N }, (_, i) => i));
      s.destroy();
    } finally {
      await srv.close();
    }
  });

  it('refuses connections beyond maxConnections with ERR_CONTROL_BUSY and serves again when one closes', async () => {
    const path = join(dir, 'max.sock');
    const srv = await ControlServer.listen(path, () => 'ok', { maxConnections: 3 });
    try {
      const held = await Promise.all([open(path), open(path), open(path)]);
      await sleep(50);
      await expect(request(path, { cmd: 'x' }, 3000)).rejects.toMatchObject({ code: 'ERR_CONTROL_BUSY' });
      expect(srv.stats.refused).toBe(1);
      held[0]!.destroy();
      await sleep(100);
      expect(await request(path, { cmd: 'x' }, 3000)).toBe('ok');
      for (const s of held) s.destroy();
    } finally {
      await srv.close();
    }
  });

  it('closes a connection whose line grows past maxLineBytes without a newline, answering ERR_CONTROL_TOO_LARGE', async () => {
    const path = join(dir, 'line.sock');
    const srv = await ControlServer.listen(path, () => 'ok', { maxLineBytes: 1024 });
    try {
      const s = await open(path);
      const got = readLines(s, 1);
      s.write('{"cmd":"' + 'a'.repeat(5000));
      const [line] = await got;
      expect(JSON.parse(line!)).toMatchObject({ ok: false, error: { code: 'ERR_CONTROL_TOO_LARGE' } });
      // A long line with its newline in the same chunk is refused the same way.
      const s2 = await open(path);
      const got2 = readLines(s2, 1);
      s2.write(JSON.stringify({ cmd: 'x', pad: 'b'.repeat(5000) }) + '\n');
      expect(JSON.parse((await got2)[0]!)).toMatchObject({ ok: false, error: { code: 'ERR_CONTROL_TOO_LARGE' } });
      expect(srv.stats.tooLarge).toBe(2);
      // The refused connections are closed by the daemon.
      await Promise.all([s, s2].map((x) => new Promise((r) => (x.closed ? r(null) : x.once('close', r)))));
    } finally {
      await srv.close();
    }
  });

  it('closes an idle connection after idleTimeoutMs', async () => {
    const path = join(dir, 'idle.sock');
    const srv = await ControlServer.listen(path, () => 'ok', { idleTimeoutMs: 200 });
    try {
      const s = await open(path);
      const closed = new Promise<void>((r) => s.once('close', () => r()));
      s.resume();
      await closed;
      expect(srv.stats.idleClosed).toBe(1);
      for (let i = 0; i < 50 && srv.connections > 0; i++) await sleep(20);
      expect(srv.connections).toBe(0);
    } finally {
      await srv.close();
    }
  });

  it('answers a request that does not finish within requestTimeoutMs with ERR_CONTROL_TIMEOUT and goes on with the next', async () => {
    const path = join(dir, 'slow.sock');
    const srv = await ControlServer.listen(path, (cmd) => (cmd === 'hang' ? new Promise(() => {}) : 'ok'), { requestTimeoutMs: 200 });
    try {
      const s = await open(path);
      const got = readLines(s, 2);
      s.write('{"id":1,"cmd":"hang"}\n{"id":2,"cmd":"x"}\n');
      const [a, b] = (await got).map((l) => JSON.parse(l) as ControlResponse);
      expect(a).toMatchObject({ id: 1, ok: false, error: { code: 'ERR_CONTROL_TIMEOUT' } });
      expect(b).toEqual({ id: 2, ok: true, data: 'ok' });
      s.destroy();
    } finally {
      await srv.close();
    }
  });

  it('keeps its memory and answers others while a client pipelines 25 MB of status requests without reading (child process)', async () => {
    const main = join(ROOT, 'dist/src/daemon/control.js');
    expect(existsSync(main), `${main} (run npx tsc -p . or npm test)`).toBe(true);
    const path = join(dir, 'rss.sock');
    const child: ChildProcess = spawn(process.execPath, ['--expose-gc', join(ROOT, 'test/support/control-child.mjs'), path, ROOT], { stdio: ['pipe', 'pipe', 'inherit'] });
    try {
      await new Promise<void>((resolve, reject) => {
        child.stdout!.once('data', () => resolve());
        child.once('exit', (c) => reject(new Error(`child exited ${c}`)));
      });
      const rss = async (): Promise<number> => ((await request(path, { cmd: 'rss' }, 10_000)) as { rss: number }).rss;
      // Warm up (JIT, buffers) with well-behaved clients, then take the baseline.
      for (let i = 0; i < 200; i++) await request(path, { cmd: 'status' }, 10_000);
      const baseline = await rss();

      const abuser = await open(path);
      abuser.pause(); // never reads an answer
      const chunk = '{"cmd":"status"}\n'.repeat(4096); // 68 KiB
      const target = 25 * 1024 * 1024;
      let sent = 0;
      let probes = 0;
      let stop = false;
      // `show counters` from another client every 200 ms, each answered within 10 s.
      const prober = (async (): Promise<void> => {
        while (!stop) {
          await request(path, { cmd: 'counters' }, 10_000);
          probes++;
          await sleep(200);
        }
      })();
      const deadline = Date.now() + 8000;
      while (sent < target && Date.now() < deadline) {
        if (!abuser.write(chunk)) {
          await Promise.race([new Promise((r) => abuser.once('drain', r)), sleep(Math.max(0, deadline - Date.now()))]);
        }
        sent += chunk.length;
      }
      await sleep(1000);
      const during = await rss();
      abuser.destroy();
      stop = true;
      await prober;
      expect(probes).toBeGreaterThan(3);
      // Memory back within 10% of the baseline once the abuser left (polled: GC and the
      // allocator return memory in their own time on a loaded machine).
      let after = await rss();
      for (let i = 0; i < 20 && after > baseline * 1.1; i++) {
        await sleep(500);
        after = await rss();
      }
      console.log(`control RSS: baseline ${(baseline / 1e6).toFixed(1)} MB, during ${(during / 1e6).toFixed(1)} MB, after ${(after / 1e6).toFixed(1)} MB; abuser sent ${(sent / 1e6).toFixed(1)} MB; ${probes} probes answered`);
      expect(during).toBeLessThan(baseline * 1.5);
      expect(after).toBeLessThanOrEqual(baseline * 1.1);
    } finally {
      child.stdin!.end();
      await new Promise((r) => { if (child.exitCode !== null) r(null); else { child.once('exit', r); setTimeout(() => { child.kill('SIGKILL'); r(null); }, 5000); } });
    }
  });
});
