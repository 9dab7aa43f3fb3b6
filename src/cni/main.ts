#!/usr/bin/env node
/**
 * `flatnet-cni`: the CNI plugin executable (installed as `flatnet` in a CNI bin directory by
 * `flatnet cni install`). A runtime runs it once per operation: CNI_* in the environment, the
 * network configuration on stdin, the result or a CNI error object on stdout, exit 0 or 1.
 * Diagnostics go to stderr. See commands.ts for what each operation does.
 *
 * Start-up cost is most of an ADD's latency, so this path loads no third-party module: node:*
 * and the plugin's own files only (the daemon does the heavy work).
 */

import { readFileSync, realpathSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { mark, timingLine } from './timing.js';
import { CniCode, CniError, decode, parseConf, parseEnv, requireVersion, versionOf, type CniEnv } from './spec.js';

function readStdin(): string {
  try {
    return readFileSync(0, 'utf8');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'EAGAIN' || code === 'EOF') return '';
    throw new CniError(CniCode.IO_FAILURE, `cannot read the network configuration from stdin: ${(e as Error).message}`);
  }
}

/**
 * run performs one invocation and returns the exit status (what to print is written to `out`).
 * `netnsRoot` prefixes CNI_NETNS where this process opens it (the daemon running an invocation
 * for the fast launcher passes /proc/PID/root of the launcher).
 */
export async function run(envVars: NodeJS.ProcessEnv, stdin: () => string, out: (s: string) => void, netnsRoot = ''): Promise<number> {
  mark('main');
  let version = versionOf(null);
  try {
    const text = stdin();
    // Errors are answered in the configuration's version, also those found before it is checked.
    try { version = versionOf(JSON.parse(text)); } catch { /* decode() reports it below */ }
    const parsed: CniEnv = parseEnv(envVars);
    const env: CniEnv = netnsRoot === '' || parsed.netns === '' ? parsed : { ...parsed, netnsPath: `${netnsRoot}${parsed.netns}` };
    if (env.command === 'VERSION') {
      const { version: versionReply } = await import('./commands.js');
      let requested: string | null = null;
      if (text.trim() !== '') {
        const v = decode(text)['cniVersion'];
        requested = typeof v === 'string' ? v : null;
      }
      out(JSON.stringify(versionReply(requested)));
      return 0;
    }
    const json = decode(text);
    const conf = parseConf(json, text, env);
    requireVersion(conf, env.command);
    const c = await import('./commands.js');
    switch (env.command) {
      case 'ADD': out(JSON.stringify(await c.add(env, conf))); break;
      case 'DEL': await c.del(env, conf); break;
      case 'CHECK': await c.check(env, conf); break;
      case 'GC': await c.gc(conf); break;
      case 'STATUS': await c.status(conf); break;
    }
    return 0;
  } catch (e) {
    const err = e instanceof CniError ? e : new CniError(CniCode.IO_FAILURE, `flatnet-cni failed: ${(e as Error).message ?? String(e)}`, (e as Error).stack ?? '');
    out(JSON.stringify(err.toJSON(version)));
    return 1;
  }
}

// Run when executed (directly, through a symlink or the installed launcher), not when imported by tests.
if (process.argv[1] !== undefined && realpathSync(process.argv[1]) === fileURLToPath(import.meta.url)) {
  process.exitCode = await run(process.env, readStdin, (s) => process.stdout.write(`${s}\n`));
  if (process.env['FLATNET_CNI_TRACE'] === '1') {
    mark('done');
    process.stderr.write(`${timingLine()}\n`);
  }
}
