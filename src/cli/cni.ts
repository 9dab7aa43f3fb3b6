/**
 * `flatnet cni install [--bin-dir DIR] [--conf-dir DIR] [--socket PATH] [--name NET] [--force] [--fast]`:
 * see src/cni/install.ts.
 */

import type { Command } from 'commander';
import { installCni } from '../cni/install.js';
import { DEFAULT_SOCKET } from '../cni/spec.js';

/** registerCni adds `flatnet cni install` to the program. */
export function registerCni(program: Command, write: (s: string) => void): void {
  const cni = program.command('cni').description('the CNI plugin (flatnet-cni)');
  cni.command('install')
    .description('install the CNI plugin as type "flatnet" and write a sample conflist')
    .option('--bin-dir <dir>', 'CNI plugin directory', '/opt/cni/bin')
    .option('--conf-dir <dir>', 'CNI network configuration directory (no conflist when omitted)')
    .option('--socket <path>', "the node daemon's control socket (its controlSocket)", DEFAULT_SOCKET)
    .option('--name <net>', 'network name', 'flatnet')
    .option('--force', 'overwrite an existing conflist', false)
    .option('--fast', 'install the C launcher: the daemon at --socket runs each invocation in-process (the Node plugin when it does not answer)', false)
    .action((o: { binDir: string; confDir?: string; socket: string; name: string; force: boolean; fast: boolean }) => {
      const r = installCni({ binDir: o.binDir, confDir: o.confDir ?? null, socket: o.socket, name: o.name, force: o.force, fast: o.fast });
      write(`plugin ${r.plugin}\n`);
      if (r.conflist !== null) write(`conflist ${r.conflist}${r.conflistWritten ? '' : ' (exists; kept, --force to overwrite)'}\n`);
    });
}
