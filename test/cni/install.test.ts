// `flatnet cni install` into temporary directories: a launcher named after the CNI type that
// runs this installation's plugin (it answers VERSION), a 1.0.0 conflist for the given socket,
// an existing conflist kept unless --force, bad names refused.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { installCni } from '../../src/cni/install.js';
import { ensureDist } from '../support/lab.js';

const dir = mkdtempSync(join(tmpdir(), 'flatnet-cni-install-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('flatnet cni install', () => {
  it('installs a launcher that runs the plugin, and a sample conflist', () => {
    ensureDist();
    const r = installCni({ binDir: join(dir, 'bin'), confDir: join(dir, 'net.d'), socket: '/run/flatnet/n1.sock', name: 'flatnet', force: false });
    expect(r).toEqual({ plugin: join(dir, 'bin', 'flatnet'), conflist: join(dir, 'net.d', '10-flatnet.conflist'), conflistWritten: true });
    expect(statSync(r.plugin).mode & 0o777).toBe(0o755);
    const out = execFileSync(r.plugin, [], { input: '{"cniVersion":"1.0.0"}', env: { ...process.env, CNI_COMMAND: 'VERSION' }, encoding: 'utf8' });
    expect(JSON.parse(out)).toEqual({ cniVersion: '1.0.0', supportedVersions: ['0.3.1', '0.4.0', '1.0.0', '1.1.0'] });
    expect(JSON.parse(readFileSync(r.conflist!, 'utf8'))).toEqual({ cniVersion: '1.0.0', name: 'flatnet', plugins: [{ type: 'flatnet', socket: '/run/flatnet/n1.sock' }] });
  });

  it('keeps an existing conflist unless forced', () => {
    const o = { binDir: join(dir, 'bin2'), confDir: join(dir, 'net2.d'), socket: '/run/flatnet/a.sock', name: 'net', force: false };
    installCni(o);
    writeFileSync(join(o.confDir, '10-net.conflist'), 'mine\n');
    expect(installCni({ ...o, socket: '/run/flatnet/b.sock' }).conflistWritten).toBe(false);
    expect(readFileSync(join(o.confDir, '10-net.conflist'), 'utf8')).toBe('mine\n');
    expect(installCni({ ...o, socket: '/run/flatnet/b.sock', force: true }).conflistWritten).toBe(true);
    expect(readFileSync(join(o.confDir, '10-net.conflist'), 'utf8')).toContain('/run/flatnet/b.sock');
  });

  it.each([[{ name: '../x' }], [{ socket: 'relative.sock' }]])('refuses %j', (bad) => {
    expect(() => installCni({ binDir: join(dir, 'bin3'), confDir: null, socket: '/run/flatnet/a.sock', name: 'n', force: false, ...bad })).toThrow(expect.objectContaining({ code: 'ERR_CNI_INSTALL' }));
  });
});
