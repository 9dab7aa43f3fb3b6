// The daemon's log as an operator meets it after trouble: every line is in the file as soon as
// it is logged (also after SIGKILL), no line carries a key twice, and an error counter that
// rises is explained by a line naming the port, the counter and the errno.
import { spawn } from 'node:child_process';
import { closeSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/daemon/config.js';
import { createLogger } from '../../src/daemon/log.js';
import { VtepDaemon } from '../../src/daemon/vtep.js';
import { FakeHost } from '../support/fake-host.js';
import { ip, mac, udp } from '../support/pod-frames.js';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
let dir = '';
beforeAll(() => { dir = mkdtempSync(join(tmpdir(), 'flatnet-log-')); });
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** The file's lines, each checked to be JSON that names every key once. */
function lines(file: string): Record<string, unknown>[] {
  return readFileSync(file, 'utf8').split('\n').filter((l) => l !== '').map((l) => {
    const o = JSON.parse(l) as Record<string, unknown>;
    // JSON.parse keeps the last of two equal keys; written again, the line would be shorter.
    expect(JSON.stringify(o), 'a key written twice').toBe(l);
    return o;
  });
}

describe('daemon log', () => {
  it('writes each line when it is logged, with unique keys, and explains a rising tx_error with its errno', async () => {
    const logFile = join(dir, 'n1.log');
    const fd = openSync(logFile, 'w');
    const cfgFile = join(dir, 'n1.json');
    writeFileSync(cfgFile, JSON.stringify({
      node: 'n1', underlay: { interface: 'eth0', address: '198.51.100.1', mtu: 1500 }, podCidr: '10.244.1.0/24', vtepMac: '0e:00:0a:f4:01:00',
      stateDir: dir, controlSocket: join(dir, 'n1.sock'),
      peers: [{ name: 'n2', underlay: '198.51.100.2', podCidr: '10.244.2.0/24', vtepMac: '0e:00:0a:f4:02:00' }],
      pods: [{ name: 'a', interface: 'va', ip: '10.244.1.10', mac: '02:00:00:00:01:0a' }],
    }));
    const log = createLogger('info', { node: 'n1' }, fd);
    const host = new FakeHost();
    const d = await VtepDaemon.start(loadConfig(cfgFile), { log, configPath: cfgFile, host });
    try {
      // In the file at once: nothing waits in a buffer.
      const up = lines(logFile).find((l) => l['msg'] === 'vtep up');
      expect(up).toMatchObject({ node: 'n1', vni: 1 });
      // The overlay port fails: pod traffic to n2 rises tx_error, and a line says why.
      host.overlayPort!.close();
      for (let i = 0; i < 5; i++) {
        host.port('va')[0]!.inject(udp({ srcMac: mac('02:00:00:00:01:0a'), dstMac: mac('0e:00:0a:f4:01:00'), src: ip('10.244.1.10'), dst: ip('10.244.2.20') }));
        d.sw.pump();
      }
      expect(d.sw.stats.dropsByName()['tx_error']).toBe(5);
      let why: Record<string, unknown> | undefined;
      for (let i = 0; i < 40 && why === undefined; i++) {
        await sleep(100);
        why = lines(logFile).find((l) => l['counter'] === 'tx_error');
      }
      expect(why).toMatchObject({ level: 40, role: 'overlay', port: 'vxlan:4789', counter: 'tx_error', rose: 5, errno: 'EBADF' });
    } finally {
      await d.stop();
      closeSync(fd);
    }
    expect(lines(logFile).at(-1)).toMatchObject({ msg: 'vtep down', node: 'n1' });
  });

  it('keeps every line logged before a SIGKILL (child process)', async () => {
    const logFile = join(dir, 'killed.log');
    const script = `
      const { createLogger } = await import(${JSON.stringify(join(ROOT, 'dist/src/daemon/log.js'))});
      const log = createLogger('info', { node: 'k1' }, 3);
      log.info({ vni: 1 }, 'vtep up');
      for (let i = 0; i < 20; i++) log.warn({ i }, 'frames dropped');
      process.stderr.write('logged\\n');
      setInterval(() => {}, 1000);`;
    const fd = openSync(logFile, 'w');
    const child = spawn(process.execPath, ['--input-type=module', '-e', script], { stdio: ['ignore', 'ignore', 'pipe', fd] });
    closeSync(fd);
    await new Promise<void>((resolve, reject) => {
      child.stderr!.on('data', (d: Buffer) => { if (String(d).includes('logged')) resolve(); });
      child.once('exit', (c) => reject(new Error(`child exited early (${c})`)));
    });
    child.kill('SIGKILL');
    await new Promise((r) => child.once('exit', r));
    const got = lines(logFile);
    expect(got[0]).toMatchObject({ msg: 'vtep up', node: 'k1' });
    expect(got).toHaveLength(21);
  });
});
