/**
 * `flatnet vtep --config FILE [--keep]`: run one node's VTEP in the current network namespace
 * until SIGTERM or SIGINT, then clean up (within the 5 s a service manager allows).
 */

import { loadConfig } from '../daemon/config.js';
import { createLogger, flushLogger } from '../daemon/log.js';
import { VtepDaemon } from '../daemon/vtep.js';

const EXIT_DEADLINE_MS = 4500;

export async function runVtep(configPath: string, opts: { keep: boolean }): Promise<void> {
  const cfg = loadConfig(configPath);
  const log = createLogger(cfg.logLevel, { node: cfg.node });
  let daemon: VtepDaemon;
  try {
    daemon = await VtepDaemon.start(cfg, { keep: opts.keep, log });
  } catch (e) {
    log.error({ err: e }, 'vtep failed to start');
    flushLogger(log);
    throw e;
  }
  let stopping = false;
  const stop = (signal: string): void => {
    if (stopping) return;
    stopping = true;
    log.info({ signal }, 'stopping');
    setTimeout(() => { log.error('cleanup did not finish in time; exiting'); flushLogger(log); process.exit(1); }, EXIT_DEADLINE_MS).unref();
    daemon.stop().then(() => { flushLogger(log); process.exit(0); }, (e: unknown) => {
      log.error({ err: e }, 'cleanup failed');
      flushLogger(log);
      process.exit(1);
    });
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
}
