import { Writable } from 'node:stream';
import { pino, type Logger } from "pino";
import { describe, expect, it } from 'vitest';
import { RateLimitedLog } from '../../src/daemon/log.js';

function capture(): { log: Logger; lines: Record<string, unknown>[] } {
  const lines: Record<string, unknown>[] = [];
  const sink = new Writable({ write(chunk, _enc, cb) { lines.push(JSON.parse(String(chunk))); cb(); } });
  return { log: pino({ level: "info" }, sink) as Logger, lines };
}

describe('RateLimitedLog', () => {
  it('logs a burst per window, then one "suppressed N" summary with exact counts', async () => {
    const { log, lines } = capture();
    let now = 0;
    const rl = new RateLimitedLog(log, { burst: 10, windowMs: 5000, now: () => now });
    for (let i = 0; i < 1000; i++) rl.warn('vtep_unknown', { src: '198.51.100.9' }, 'VXLAN from an unknown VTEP');
    now = 5001;
    rl.warn('vtep_unknown', { src: '198.51.100.9' }, 'VXLAN from an unknown VTEP');
    rl.close();
    await new Promise((r) => setImmediate(r));
    const summary = lines.filter((l) => 'suppressed' in l);
    expect(lines.filter((l) => !('suppressed' in l))).toHaveLength(11);
    expect(summary).toHaveLength(1);
    expect(summary[0]).toMatchObject({ event: 'vtep_unknown', suppressed: 990 });
  });

  it('keeps separate budgets per key and bounds the number of keys', async () => {
    const { log, lines } = capture();
    const rl = new RateLimitedLog(log, { burst: 1, windowMs: 60_000, maxKeys: 4, now: () => 0 });
    for (let k = 0; k < 100; k++) for (let i = 0; i < 3; i++) rl.warn(`k${k}`, {}, 'x');
    rl.close();
    await new Promise((r) => setImmediate(r));
    expect(lines.filter((l) => !('suppressed' in l))).toHaveLength(100);
    expect(lines.filter((l) => 'suppressed' in l).reduce((n, l) => n + (l.suppressed as number), 0)).toBe(200);
  });
});
