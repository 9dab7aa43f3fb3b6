/**
 * The daemon as a process: start it from a config file, then live by signals until the end.
 *   SIGHUP          reload the config file (VtepDaemon.reload: applied, or refused and logged;
 *                   the daemon keeps running either way)
 *   SIGTERM/SIGINT  stop and exit: 0 when cleanup finished, 1 when it failed or did not finish
 *                   within EXIT_DEADLINE_MS (a service manager allows 5 s)
 * Signals after the first SIGTERM/SIGINT are ignored.
 */

import type { Logger } from 'pino';
import { configSchema, parseConfig, readConfigJson } from './config.js';
import { schemaError } from './validate.js';
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

/**
 * runVtep starts the daemon of `configPath` and installs the signal handlers; resolves once it
 * runs. A config with `control.etcd` joins the cluster first (src/control/join.ts: lease a
 * subnet, retrying while etcd does not answer), and its peers then come from the lease watch.
 */
export async function runVtep(configPath: string, opts: { keep: boolean }): Promise<void> {
  const json = readConfigJson(configPath);
  const r = configSchema.safeParse(json);
  if (!r.success) throw schemaError('ERR_CONFIG_INVALID', r.error);
  const log = createLogger(r.data.log.level, { node: r.data.node });
  let daemon: VtepDaemon;
  try {
    if (r.data.control === undefined) {
      daemon = await VtepDaemon.start(parseConfig(json), { keep: opts.keep, log, configPath });
    } else {
      // Loaded only here: a static node never loads the etcd client (grpc).
      const { join, completeWith } = await import('../control/join.js');
      const joined = await join(json, log);
      const c = joined.control;
      const complete = (j: unknown): unknown => completeWith(j, c.network, c.subnet, c.vtepMac);
      try {
        daemon = await VtepDaemon.start(parseConfig(joined.json), { keep: opts.keep, log, configPath, control: c, complete });
      } catch (e) {
        await c.close();
        throw e;
      }
    }
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
