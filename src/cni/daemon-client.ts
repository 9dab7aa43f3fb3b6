/**
 * The plugin's calls to the node daemon (the `cni-*` control commands, daemon/cni.ts) over its
 * control socket, with the daemon's error codes turned into CNI codes:
 *   not running / no answer      11 try again later (STATUS says 51 itself)
 *   pool exhausted               11 try again later, the message says the pool is full
 *   unknown container            3
 *   a bad request, a conflict,   7 invalid network config (the daemon's code in details)
 *   a requested address taken
 *   anything else                5 I/O failure (the daemon's code in details)
 */

import { request } from '../daemon/control.js';
import { CniCode, CniError } from './spec.js';

const TIMEOUT_MS = 10_000;

export class DaemonClient {
  private seq = 0;
  constructor(readonly socket: string) {}

  async call<T>(cmd: string, args: Record<string, unknown> = {}): Promise<T> {
    try {
      return (await request(this.socket, { id: ++this.seq, cmd, ...args }, TIMEOUT_MS)) as T;
    } catch (e) {
      throw toCniError(e, this.socket);
    }
  }
}

/** The daemon did not answer (not running, or hung): code 11. DEL and STATUS treat it apart. */
export class DaemonDownError extends CniError {}

export function toCniError(e: unknown, socket: string): CniError {
  if (e instanceof CniError) return e;
  const f = e as { code?: string; message?: string };
  const code = f.code ?? 'ERR_UNKNOWN';
  const details = `${code}: ${f.message ?? String(e)}`;
  switch (code) {
    case 'ERR_CONTROL_UNREACHABLE':
    case 'ERR_CONTROL_TIMEOUT':
      return new DaemonDownError(CniCode.TRY_AGAIN_LATER, `the flatnet daemon is not answering on ${socket}: is \`flatnet vtep\` running on this node (and "socket" in the network configuration its controlSocket)?`, details);
    case 'ERR_IPAM_EXHAUSTED':
      return new CniError(CniCode.TRY_AGAIN_LATER, f.message ?? 'no free address', details);
    case 'ERR_CNI_UNKNOWN_CONTAINER':
      return new CniError(CniCode.UNKNOWN_CONTAINER, f.message ?? 'unknown container', details);
    case 'ERR_IPAM_BAD_REQUEST':
    case 'ERR_IPAM_ADDRESS_IN_USE':
    case 'ERR_CONTROL_BAD_REQUEST':
    case 'ERR_STATE_CONFLICT':
    case 'ERR_CONFIG_INVALID_ADDRESS':
      return new CniError(CniCode.INVALID_CONFIG, f.message ?? code, details);
    default:
      return new CniError(CniCode.IO_FAILURE, `the flatnet daemon failed: ${f.message ?? code}`, details);
  }
}
