// Messages that point at the fix: a config file's JSON error names the line and column, and a
// control socket the user may not open is called a permission problem naming who may connect
// (not "is the daemon running?").
import { spawnSync } from 'node:child_process';
import { chmodSync, copyFileSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/daemon/config.js';
import { ControlServer, unreachable } from '../../src/daemon/control.js';
import { jsonErrorPosition } from '../../src/daemon/json-position.js';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
let dir = '';
beforeAll(() => { dir = mkdtempSync(join(tmpdir(), 'flatnet-msg-')); });
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('config JSON errors', () => {
  const cases: [string, string, number, number][] = [
    ['a missing comma', '{\n  "node": "n1"\n  "vni": 1\n}\n', 3, 3],
    ['a trailing comma', '{\n  "node": "n1",\n}\n', 3, 1],
    ['an unquoted value', '{\n  "node": n1\n}', 2, 11],
    ['a cut-off file', '{\n  "node": ', 2, 11],
    ['a single quote', "{\n\t'node': 1}", 2, 2],
    ['text after the object', '{"node": "n1"} x', 1, 16],
    ['a control character in a string', '{"node": "n\u00011"}', 1, 12],
    ['a bad escape', '{"node": "\\q"}', 1, 12],
    ['a number with a leading dot', '{"vni": .5}', 1, 9],
  ];
  it.each(cases)('%s: ERR_CONFIG_JSON with line and column', (_, text, line, column) => {
    const f = join(dir, 'bad.json');
    writeFileSync(f, text);
    expect(() => JSON.parse(text)).toThrow();
    expect(jsonErrorPosition(text)).toMatchObject({ line, column });
    let err: unknown;
    try { loadConfig(f); } catch (e) { err = e; }
    expect(err).toMatchObject({ code: 'ERR_CONFIG_JSON' });
    expect((err as Error).message).toContain(`${f}:${line}:${column}:`);
    expect((err as Error).message).toContain(`line ${line}, column ${column}`);
  });

  it('agrees with JSON.parse on what is JSON (valid documents and mutations of them)', () => {
    const valid = fc.json({ depthSize: 'small' });
    fc.assert(fc.property(valid, (t) => { expect(jsonErrorPosition(t)).toBeNull(); }), { numRuns: 2000 });
    const mutated = fc.tuple(valid, fc.nat(), fc.constantFrom('', ',', '}', ']', '"', ':', 'x', '0', ' ', '\\', '-', '.', 'e', '\n'))
      .map(([t, at, ins]) => { const k = at % (t.length + 1); return t.slice(0, k) + ins + t.slice(k + (ins === '' ? 1 : 0)); });
    fc.assert(fc.property(mutated, (t) => {
      let ok = true;
      try { JSON.parse(t); } catch { ok = false; }
      expect(jsonErrorPosition(t) === null).toBe(ok);
    }), { numRuns: 5000 });
  });
});

describe('control socket permissions', () => {
  it('EACCES is reported as a permission problem naming the socket owner', () => {
    const e = unreachable(join(dir, 'x.sock'), Object.assign(new Error('connect EACCES'), { code: 'EACCES' }));
    expect(e.code).toBe('ERR_CONTROL_PERMISSION');
    expect(e.message).toMatch(/permission denied/);
    expect(e.message).not.toMatch(/is `flatnet vtep` running/);
    const missing = unreachable(join(dir, 'x.sock'), Object.assign(new Error('connect ENOENT'), { code: 'ENOENT' }));
    expect(missing.code).toBe('ERR_CONTROL_UNREACHABLE');
  });

  const root = process.getuid?.() === 0;
  it.skipIf(!root)('a non-root user connecting to a root daemon socket gets ERR_CONTROL_PERMISSION naming root (real EACCES)', async () => {
    chmodSync(dir, 0o755);
    const path = join(dir, 'perm.sock');
    // The unprivileged client loads a copy of the client module (it imports node:* and
    // errors.js only) from the world-readable test directory: the checkout itself may not be
    // readable by uid 65534 (a clone in a mode-0700 mktemp directory).
    mkdirSync(join(dir, 'mod', 'daemon'), { recursive: true });
    copyFileSync(join(ROOT, 'dist/src/daemon/control.js'), join(dir, 'mod', 'daemon', 'control.js'));
    copyFileSync(join(ROOT, 'dist/src/errors.js'), join(dir, 'mod', 'errors.js'));
    writeFileSync(join(dir, 'mod', 'package.json'), '{"type":"module"}\n');
    chmodSync(join(dir, 'mod'), 0o755);
    chmodSync(join(dir, 'mod', 'daemon'), 0o755);
    const srv = await ControlServer.listen(path, () => 'ok');
    try {
      const script = `import(${JSON.stringify(join(dir, 'mod', 'daemon', 'control.js'))}).then((m) => m.request(${JSON.stringify(path)}, { cmd: 'status' }, 3000)).then(() => console.log('ok'), (e) => console.log(JSON.stringify({ code: e.code, message: e.message })))`;
      const r = spawnSync(process.execPath, ['-e', script], { uid: 65534, gid: 65534, encoding: 'utf8', timeout: 20_000 });
      const out = JSON.parse(r.stdout.trim()) as { code: string; message: string };
      expect(out.code).toBe('ERR_CONTROL_PERMISSION');
      expect(out.message).toContain('root (uid 0)');
    } finally {
      await srv.close();
    }
  });
});
