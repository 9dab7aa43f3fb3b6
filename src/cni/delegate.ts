/**
 * Delegated IPAM, as the reference plugins do it: the plugin named by `ipam.type` is looked up
 * in CNI_PATH and run with the same environment (CNI_COMMAND set to the operation) and the
 * whole network configuration on stdin. Its error object is passed on with its own code.
 */

import { execFileSync } from 'node:child_process';
import { accessSync, constants } from 'node:fs';
import { join } from 'node:path';
import { CniCode, CniError } from './spec.js';

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
export function delegate(type: string, path: readonly string[], command: string, stdin: string): unknown {
  const bin = findPlugin(type, path);
  let out: string;
  try {
    out = execFileSync(bin, [], { input: stdin, encoding: 'utf8', env: { ...process.env, CNI_COMMAND: command }, stdio: ['pipe', 'pipe', 'pipe'], timeout: 30_000 });
  } catch (e) {
    const err = e as { stdout?: string; stderr?: string; message: string };
    type Reply = { code?: unknown; msg?: unknown; details?: unknown } | null;
    let reply: Reply = null;
    try { reply = JSON.parse(err.stdout ?? '') as Reply; } catch { /* not an error object */ }
    if (reply !== null && typeof reply.code === 'number') {
      throw new CniError(reply.code, `IPAM plugin ${type}: ${String(reply.msg ?? '')}`, typeof reply.details === 'string' ? reply.details : '');
    }
    throw new CniError(CniCode.IO_FAILURE, `IPAM plugin ${type} failed on ${command}`, (err.stderr ?? '').trim() || err.message);
  }
  return out.trim() === '' ? null : JSON.parse(out);
}
