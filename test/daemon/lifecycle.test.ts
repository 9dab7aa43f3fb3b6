// Signals: SIGHUP reloads (a refused reload does not end the daemon), SIGTERM/SIGINT stop and
// exit once, with status 0 after a clean stop and 1 after a failed or late one.
import { EventEmitter } from 'node:events';
import { pino } from 'pino';
import { describe, expect, it, vi } from 'vitest';
import { handleSignals, type ProcessLike, type Stoppable } from '../../src/daemon/lifecycle.js';
import { FlatnetError } from '../../src/errors.js';

class FakeProcess extends EventEmitter implements ProcessLike {
  readonly exits: number[] = [];
  exit(code: number): void { this.exits.push(code); }
  signal(s: NodeJS.Signals): void { this.emit(s); }
}

const quiet = pino({ level: 'silent' });
const tick = (): Promise<void> => new Promise((r) => setTimeout(r, 0));

describe('daemon signals', () => {
  it('SIGHUP reloads, also again after a refused reload', () => {
    const proc = new FakeProcess();
    let n = 0;
    const d: Stoppable = { reload: () => { if (++n === 1) throw new FlatnetError('ERR_CONFIG_JSON', 'bad'); }, stop: async () => {} };
    handleSignals(d, quiet, proc);
    proc.signal('SIGHUP');
    proc.signal('SIGHUP');
    expect(n).toBe(2);
    expect(proc.exits).toEqual([]);
  });

  it('SIGTERM stops once and exits 0; later signals are ignored', async () => {
    const proc = new FakeProcess();
    const d = { reload: vi.fn(), stop: vi.fn(async () => {}) };
    handleSignals(d, quiet, proc);
    proc.signal('SIGTERM');
    proc.signal('SIGINT');
    proc.signal('SIGHUP');
    await tick();
    expect(d.stop).toHaveBeenCalledTimes(1);
    expect(d.reload).not.toHaveBeenCalled();
    expect(proc.exits).toEqual([0]);
  });

  it('exits 1 when cleanup fails, and when it does not finish in time', async () => {
    const failing = new FakeProcess();
    handleSignals({ reload: () => {}, stop: async () => { throw new Error('stuck socket'); } }, quiet, failing);
    failing.signal('SIGINT');
    await tick();
    expect(failing.exits).toEqual([1]);

    const late = new FakeProcess();
    handleSignals({ reload: () => {}, stop: () => new Promise<void>(() => {}) }, quiet, late, 5);
    late.signal('SIGTERM');
    await new Promise((r) => setTimeout(r, 30));
    expect(late.exits).toEqual([1]);
  });
});
