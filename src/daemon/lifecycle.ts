/**
 * The daemon as a process: start it from a config file, then live by signals until the end.
 *   SIGHUP          reload the config file (VtepDaemon.reload: applied, or refused and logged;
 *                   the daemon keeps running either way)
 *   SIGTERM/SIGINT  stop and exit: 0 when cleanup finished, 1 when it failed or did not finish
 *                   within EXIT_DEADLINE_MS (a service manager allows 5 s)
 * Signals after the first SIGTERM/SIGINT are ignored.
 */

import type { Logger } from 'pino';
import { loadConfig } from './config.js';
import { createLogger, flushLogger } from './log.js';
import { VtepDaemon } from './vtep.js';

export const EXIT_DEADLINE_MS = 4500;

/** What the signal handlers need of the daemon. */
export interface Stoppable {
  reload(): unknown;
  stop(): Promise<void>;
}

/** Where signals come from and how the process ends (a test passes an EventEmitter and a spy). */
export interface ProcessLike {
  on(signal: NodeJS.Signals, listener: () => void): unknown;
  exit(code: number): void;
}

/** runVtep starts the daemon of `configPath` and installs the signal handlers; resolves once it runs. */
export async function runVtep(configPath: string, opts: { keep: boolean }): Promise<void> {
  const cfg = loadConfig(configPath);
  const log = createLogger(cfg.logLevel, { node: cfg.node });
  let daemon: VtepDaemon;
  try {
    daemon = await VtepDaemon.start(cfg, { keep: opts.keep, log, configPath });
  } catch (e) {
    log.error({ err: e }, 'vtep failed to start');
    flushLogger(log);
    throw e;
  }
  handleSignals(daemon, log, process);
}

/** handleSignals wires SIGHUP, SIGTERM and SIGINT of `proc` to `daemon` as described above. */
export function handleSignals(daemon: Stoppable, log: Logger, proc: ProcessLike, deadlineMs = EXIT_DEADLINE_MS): void {
  let stopping = false;
  const exit = (code: number): void => {
    flushLogger(log);
    proc.exit(code);
  };
  const stop = (signal: NodeJS.Signals): void => {
    if (stopping) return;
    stopping = true;
    log.info({ signal }, 'stopping');
    setTimeout(() => { log.error('cleanup did not finish in time; exiting'); exit(1); }, deadlineMs).unref();
    daemon.stop().then(() => exit(0), (e: unknown) => {
      log.error({ err: e }, 'cleanup failed');
      exit(1);
    });
  };
  proc.on('SIGTERM', () => stop('SIGTERM'));
  proc.on('SIGINT', () => stop('SIGINT'));
  proc.on('SIGHUP', () => {
    if (stopping) return;
    log.info({ signal: 'SIGHUP' }, 'reloading the config file');
    try {
      daemon.reload();
    } catch {
      /* refused: reload() logged why, and nothing changed */
    }
  });
}
