// The error watch: one rate-limited warning per error counter that rose, naming the port, the
// counter, the rise and the errno; a port seen for the first time is compared with 0 (its
// counters start when it opens), so loss between its attach and the first look is not hidden.
import pino from 'pino';
import { describe, expect, it } from 'vitest';
import { ErrorWatch, type WatchedPort } from '../../src/daemon/error-watch.js';
import { RateLimitedLog } from '../../src/daemon/log.js';

interface Line { port?: string; counter?: string; rose?: number; total?: number; errno?: string; msg: string }

function harness(extra: Record<string, Record<string, number>> = {}): { watch: ErrorWatch; lines: Line[] } {
  const lines: Line[] = [];
  const log = pino({ base: null, timestamp: false }, { write: (s: string) => { lines.push(JSON.parse(s) as Line); } });
  const watch = new ErrorWatch(new RateLimitedLog(log), (sp) => extra[sp.name] ?? null);
  return { watch, lines };
}

const port = (name: string, rxErrors = 0, txErrors = 0, txDropped = 0, lastError = 0): WatchedPort =>
  ({ name, role: 'pod', port: { stats: { rxErrors, txErrors, txDropped }, lastError } });

describe('ErrorWatch', () => {
  const cases: { name: string; looks: WatchedPort[][]; logged: Partial<Line>[] }[] = [
    { name: 'quiet ports log nothing', looks: [[port('p0')], [port('p0')]], logged: [] },
    { name: 'a rise between looks is logged with its size and total', looks: [[port('p0', 0, 2)], [port('p0', 0, 7)]], logged: [{ port: 'p0', counter: 'tx_error', rose: 2, total: 2 }, { port: 'p0', counter: 'tx_error', rose: 5, total: 7 }] },
    { name: 'a new port is compared with 0 (loss before the first look)', looks: [[port('p0')], [port('p0'), port('p1', 3)]], logged: [{ port: 'p1', counter: 'rx_error', rose: 3, total: 3 }] },
    { name: 'the errno is named', looks: [[port('p0', 0, 0, 4, -105)]], logged: [{ port: 'p0', counter: 'tx_dropped', rose: 4, errno: 'ENOBUFS' }] },
    { name: 'a counter that did not rise is not logged again', looks: [[port('p0', 1)], [port('p0', 1)], [port('p0', 1)]], logged: [{ counter: 'rx_error', rose: 1 }] },
    { name: 'a port that went away and came back starts from its own 0', looks: [[port('p0', 5)], [], [port('p0', 2)]], logged: [{ rose: 5, total: 5 }, { rose: 2, total: 2 }] },
  ];
  for (const c of cases) {
    it(c.name, () => {
      const { watch, lines } = harness();
      for (const l of c.looks) watch.check(l);
      expect(lines.length).toBe(c.logged.length);
      c.logged.forEach((want, i) => expect(lines[i]).toMatchObject(want));
    });
  }

  it('logs the kernel drop counters the extra sampler reports, per port', () => {
    const extra: Record<string, Record<string, number>> = { p0: { kernel_socket_drops: 0 } };
    const { watch, lines } = harness(extra);
    watch.check([port('p0')]);
    extra['p0'] = { kernel_socket_drops: 19835, kernel_if_rx_dropped: 0 };
    watch.check([port('p0')]);
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatchObject({ port: 'p0', counter: 'kernel_socket_drops', rose: 19835 });
    expect(lines[0]!.msg).toContain('dropped by the kernel before flatnet read them');
  });
});
