/**
 * Delegated IPAM, as the reference plugins do it: the plugin named by `ipam.type` is looked up
 * in CNI_PATH and run with the invocation's CNI_* variables (CNI_COMMAND set to the operation)
 * and the whole network configuration on stdin. Its error object is passed on with its own code.
 */

import { execFile } from 'node:child_process';
import { accessSync, constants } from 'node:fs';
import { join } from 'node:path';
import { CniCode, CniError, type CniEnv } from './spec.js';

export function findPlugin(type: string, path: readonly string[]): string {
  for (const dir of path) {
    const p = join(dir, type);
    try {
      accessSync(p, constants.X_OK);
      return p;
    } catch { /* next directory */ }
  }
  throw new CniError(CniCode.INVALID_CONFIG, `ipam.type: no plugin ${JSON.stringify(type)} in CNI_PATH (${path.join(':') || 'empty'})`);
}

/** delegate runs the IPAM plugin for `command` and returns its parsed stdout (null when it printed nothing). */
export async function delegate(type: string, env: CniEnv, command: string, stdin: string): Promise<unknown> {
  const bin = findPlugin(type, env.path);
  const { err, stdout, stderr } = await new Promise<{ err: Error | null; stdout: string; stderr: string }>((resolve) => {
    const child = execFile(bin, [], { encoding: 'utf8', env: { PATH: process.env['PATH'] ?? '/usr/sbin:/usr/bin:/sbin:/bin', ...env.vars, CNI_COMMAND: command }, timeout: 30_000 }, (e, out, errOut) => resolve({ err: e, stdout: out, stderr: errOut }));
    child.stdin?.on('error', () => {}); // a plugin that exits early: its exit status says why
    child.stdin?.end(stdin);
  });
  if (err !== null) {
    type Reply = { code?: unknown; msg?: unknown; details?: unknown } | null;
    let reply: Reply = null;
    try { reply = JSON.parse(stdout) as Reply; } catch { /* not an error object */ }
    if (reply !== null && typeof reply.code === 'number') {
      throw new CniError(reply.code, `IPAM plugin ${type}: ${String(reply.msg ?? '')}`, typeof reply.details === 'string' ? reply.details : '');
    }
    throw new CniError(CniCode.IO_FAILURE, `IPAM plugin ${type} failed on ${command}`, stderr.trim() || err.message);
  }
  return stdout.trim() === '' ? null : JSON.parse(stdout);
}
