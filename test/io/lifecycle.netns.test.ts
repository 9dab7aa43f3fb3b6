// Process lifecycle with ports open: the addon's readiness watches and descriptors never keep
// a process from exiting when they should not, a worker thread can end with ports open (the
// addon's cleanup hook closes them before the worker's loop is closed), and an exception in a
// readiness callback surfaces as an uncaught exception. Each case is a child process
// (fixtures/lifecycle-child.mjs) run inside a namespace this file creates, with a TAP, an
// AF_PACKET socket on it and a UDP socket on loopback.
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { addonPath } from '../../src/io/native.js';
import { listNetns, Netns, netnsSkipReason } from '../support/netns.js';

const skip = netnsSkipReason() ?? (addonPath() === null ? 'the addon is not built' : null);
const CHILD = fileURLToPath(new URL('./fixtures/lifecycle-child.mjs', import.meta.url));

interface Outcome { code: number | null; signal: NodeJS.Signals | null; stdout: string; stderr: string; ms: number }

/** Runs the child in `ns`; `onReady` is called when it printed "ready". Kills it after `timeoutMs`. */
function runChild(netns: Netns, ns: string, mode: string, onReady: (kill: (s: NodeJS.Signals) => void) => void = () => {}, timeoutMs = 15_000): Promise<Outcome> {
  const t0 = Date.now();
  const p = netns.spawn(ns, process.execPath, [CHILD, addonPath()!, mode]);
  let stdout = '', stderr = '', ready = false;
  p.stdout?.on('data', (d: Buffer) => {
    stdout += d.toString();
    if (!ready && stdout.includes('ready')) {
      ready = true;
      onReady((s) => p.kill(s));
    }
  });
  p.stderr?.on('data', (d: Buffer) => { stderr += d.toString(); });
  const timer = setTimeout(() => p.kill('SIGKILL'), timeoutMs);
  return new Promise((resolve) => {
    p.on('exit', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr, ms: Date.now() - t0 });
    });
  });
}

describe.skipIf(skip !== null)(`process lifecycle with ports open${skip === null ? '' : ` (skipped: ${skip})`}`, () => {
  const netns = new Netns('lc');
  let ns = '';
  beforeAll(() => { ns = netns.add('a'); });
  afterAll(() => {
    netns.destroy();
    expect(listNetns(netns.prefix)).toEqual([]);
  });

  it('exits by itself when the watches are unref\'d', async () => {
    const r = await runChild(netns, ns, 'unref');
    expect(r.stdout).toContain('ready');
    expect([r.code, r.signal, r.stderr]).toEqual([0, null, '']);
  });

  it('exits at once on process.exit() with ref\'d watches (no thread is blocked in a read)', async () => {
    const r = await runChild(netns, ns, 'ref-exit');
    expect([r.code, r.signal, r.stderr]).toEqual([0, null, '']);
    expect(r.ms).toBeLessThan(10_000);
  });

  it('stays alive with ref\'d watches until a signal ends it', async () => {
    let readyAt = 0;
    const r = await runChild(netns, ns, 'ref-signal', (kill) => {
      readyAt = Date.now();
      setTimeout(() => kill('SIGTERM'), 500); // alive 500 ms after ready: the watches hold it
    });
    expect(r.signal).toBe('SIGTERM');
    expect(Date.now() - readyAt).toBeGreaterThanOrEqual(450);
  });

  it('a worker thread can end with ports open: its descriptors and watches are closed, no abort', async () => {
    const r = await runChild(netns, ns, 'worker');
    expect(r.stderr).toBe('');
    expect(r.stdout).toContain('ready');
    expect(r.stdout).toContain('worker exited 0, owned fds 0'); // the main thread's addon instance owns none
    expect([r.code, r.signal]).toEqual([0, null]);
  });

  it('an exception thrown by a readiness callback reaches uncaughtException (printed, exit 1)', async () => {
    const r = await runChild(netns, ns, 'throw');
    expect(r.stderr).toContain('boom from a poll callback');
    expect([r.code, r.signal]).toEqual([1, null]);
  });

  it('leaves no TAP behind', () => {
    expect(netns.ip(ns, '-o', 'link')).not.toContain('lctap0');
  });
});
