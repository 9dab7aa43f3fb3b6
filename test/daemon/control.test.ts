import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ControlServer, request, type ControlResponse } from '../../src/daemon/control.js';
import { ConfigError, FlatnetError } from '../../src/errors.js';

let dir = '';
beforeAll(() => { dir = mkdtempSync(join(tmpdir(), 'flatnet-ctl-')); });
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** exchange writes `text` on one connection and resolves with the first `lines` response lines. */
function exchange(path: string, text: string, lines = 1): Promise<string[]> {
  return new Promise((resolve, reject) => {
    const s = connect(path);
    let buf = '';
    s.setEncoding('utf8');
    s.on('data', (d: string) => {
      buf += d;
      const got = buf.split('\n').filter((l) => l !== '');
      if (buf.endsWith('\n') && got.length >= lines) { s.end(); resolve(got); }
    });
    s.on('error', reject);
    s.on('connect', () => s.write(text));
  });
}

describe('control socket', () => {
  it('answers pipelined requests on one connection in request order, slow ones included, each with its id', async () => {
    const path = join(dir, 'order.sock');
    const started: number[] = [];
    const srv = await ControlServer.listen(path, async (cmd, args) => {
      started.push(args['n'] as number);
      if (cmd === 'slow') await sleep(args['ms'] as number);
      if (cmd === 'fail') throw new ConfigError('ERR_CONFIG_DUPLICATE', 'pod.ip', 'already in use');
      return { cmd, n: args['n'] };
    });
    try {
      // Six requests in one write; the slow ones would finish last if answered as they complete.
      const reqs = [
        { id: 11, cmd: 'slow', n: 1, ms: 60 },
        { id: 12, cmd: 'fast', n: 2 },
        { id: 13, cmd: 'slow', n: 3, ms: 30 },
        { id: 14, cmd: 'fail', n: 4 },
        { id: 15, cmd: 'fast', n: 5 },
        { id: 16, cmd: 'slow', n: 6, ms: 1 },
      ];
      const lines = await exchange(path, reqs.map((r) => JSON.stringify(r)).join('\n') + '\n', reqs.length);
      const resps = lines.map((l) => JSON.parse(l) as ControlResponse);
      expect(resps.map((r) => r.id)).toEqual([11, 12, 13, 14, 15, 16]);
      expect(resps.map((r) => (r.ok ? (r.data as { n: number }).n : r.error.code))).toEqual([1, 2, 3, 'ERR_CONFIG_DUPLICATE', 5, 6]);
      expect(resps[3]).toEqual({ id: 14, ok: false, error: { code: 'ERR_CONFIG_DUPLICATE', message: 'pod.ip: already in use', field: 'pod.ip' } });
      // One at a time per connection: a mutation never overtakes the one before it.
      expect(started).toEqual([1, 2, 3, 4, 5, 6]);
    } finally {
      await srv.close();
    }
  });

  it('passes the arguments without id and cmd, and carries typed errors back with their code and field', async () => {
    const path = join(dir, 'a.sock');
    const seen: unknown[] = [];
    const srv = await ControlServer.listen(path, (cmd, args) => {
      seen.push([cmd, args]);
      if (cmd === 'echo') return { got: args['value'] };
      if (cmd === 'plain') throw new Error('boom');
      throw new ConfigError('ERR_CONFIG_DUPLICATE', 'ip', 'already in use');
    });
    try {
      expect(statSync(path).mode & 0o777).toBe(0o600);
      expect(await request(path, { cmd: 'echo', value: 42 })).toEqual({ got: 42 });
      expect(seen[0]).toEqual(['echo', { value: 42 }]);
      await expect(request(path, { cmd: 'nope' })).rejects.toMatchObject({ code: 'ERR_CONFIG_DUPLICATE', field: 'ip' });
      await expect(request(path, { cmd: 'plain' })).rejects.toMatchObject({ code: 'ERR_CONTROL_FAILED', message: 'boom' });
    } finally {
      await srv.close();
    }
  });

  it('answers a malformed line with an error and keeps serving the same connection', async () => {
    const path = join(dir, 'b.sock');
    const srv = await ControlServer.listen(path, () => 'fine');
    try {
      const [bad, noCmd, array, good] = (await exchange(path, 'this is not json\n{"no":"cmd"}\n[1]\n{"id":3,"cmd":"x"}\n', 4)).map((l) => JSON.parse(l) as ControlResponse);
      expect(bad).toMatchObject({ id: null, ok: false, error: { code: 'ERR_CONTROL_BAD_REQUEST' } });
      expect(noCmd).toMatchObject({ id: null, ok: false, error: { code: 'ERR_CONTROL_BAD_REQUEST', field: 'cmd' } });
      expect(array).toMatchObject({ ok: false, error: { code: 'ERR_CONTROL_BAD_REQUEST' } });
      expect(good).toEqual({ id: 3, ok: true, data: 'fine' });
    } finally {
      await srv.close();
    }
  });

  it('answers an unserialisable result with an error instead of stalling the connection', async () => {
    const path = join(dir, 'd.sock');
    const srv = await ControlServer.listen(path, (cmd) => (cmd === 'big' ? { n: 1n } : 'ok'));
    try {
      const [a, b] = (await exchange(path, '{"id":1,"cmd":"big"}\n{"id":2,"cmd":"x"}\n', 2)).map((l) => JSON.parse(l) as ControlResponse);
      expect(a).toMatchObject({ id: 1, ok: false, error: { code: 'ERR_CONTROL_FAILED' } });
      expect(b).toEqual({ id: 2, ok: true, data: 'ok' });
    } finally {
      await srv.close();
    }
  });

  it('refuses to start over a live daemon but replaces a stale socket file', async () => {
    const path = join(dir, 'c.sock');
    const a = await ControlServer.listen(path, () => 1);
    await expect(ControlServer.listen(path, () => 2)).rejects.toMatchObject({ code: 'ERR_CONTROL_IN_USE' });
    await a.close();
    const b = await ControlServer.listen(path, () => 3);
    expect(await request(path, { cmd: 'x' })).toBe(3);
    await b.close();
  });

  it('reports a missing daemon as unreachable', async () => {
    await expect(request(join(dir, 'none.sock'), { cmd: 'x' })).rejects.toSatisfy((e) => e instanceof FlatnetError && e.code === 'ERR_CONTROL_UNREACHABLE');
  });
});
