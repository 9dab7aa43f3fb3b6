import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ControlServer, request } from '../../src/daemon/control.js';
import { ConfigError } from '../../src/errors.js';

const dir = mkdtempSync(join(tmpdir(), 'flatnet-ctl-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function rawExchange(path: string, text: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = connect(path);
    let buf = '';
    s.setEncoding('utf8');
    s.on('data', (d: string) => { buf += d; if (buf.includes('\n')) { s.end(); resolve(buf.trim()); } });
    s.on('error', reject);
    s.on('connect', () => s.write(text));
  });
}

describe('control socket', () => {
  it('answers requests in order and carries typed errors back with their code', async () => {
    const path = join(dir, 'a.sock');
    const srv = await ControlServer.listen(path, (req) => {
      if (req.cmd === 'echo') return { got: req.value };
      throw new ConfigError('ERR_CONFIG_DUPLICATE', 'ip', 'already in use');
    });
    try {
      expect(statSync(path).mode & 0o777).toBe(0o600);
      expect(await request(path, { cmd: 'echo', value: 42 })).toEqual({ got: 42 });
      await expect(request(path, { cmd: 'nope' })).rejects.toMatchObject({ code: 'ERR_CONFIG_DUPLICATE' });
    } finally {
      await srv.close();
    }
  });

  it('answers a malformed line with an error and keeps serving', async () => {
    const path = join(dir, 'b.sock');
    const srv = await ControlServer.listen(path, () => 'fine');
    try {
      expect(JSON.parse(await rawExchange(path, 'this is not json\n'))).toMatchObject({ ok: false, error: { code: 'ERR_CONTROL_BAD_REQUEST' } });
      expect(JSON.parse(await rawExchange(path, '{"no":"cmd"}\n'))).toMatchObject({ ok: false, error: { code: 'ERR_CONTROL_BAD_REQUEST' } });
      expect(await request(path, { cmd: 'x' })).toBe('fine');
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
    await expect(request(join(dir, 'none.sock'), { cmd: 'x' })).rejects.toMatchObject({ code: 'ERR_CONTROL_UNREACHABLE' });
  });
});
