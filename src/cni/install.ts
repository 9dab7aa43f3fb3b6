/**
 * Installing the CNI plugin where runtimes look for it, under the CNI type name `flatnet`: a
 * two-line launcher that runs this installation's dist/src/cni/main.js with this Node (or, with
 * `fast`, the C launcher that hands the invocation to the node's daemon), and a
 * sample network configuration list (cniVersion 1.0.0, which podman 4.3 accepts). An existing
 * conflist is left alone unless `force`. Used by `flatnet cni install` and the tests.
 */

import { chmodSync, existsSync, mkdirSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { FlatnetError } from '../errors.js';

export interface CniInstallOptions {
  readonly binDir: string;
  readonly confDir: string | null;
  readonly socket: string;
  readonly name: string;
  readonly force: boolean;
  /**
   * Install the fast launcher (native/cni/launcher.c, built by .ci/setup): it hands each
   * invocation to the daemon at `socket`, which runs the plugin in-process, and runs the Node
   * plugin itself only when that daemon does not answer.
   */
  readonly fast?: boolean;
}

export interface CniInstallResult { readonly plugin: string; readonly conflist: string | null; readonly conflistWritten: boolean }

/** The plugin's entry point in this installation (dist/src/cni/main.js, also when this runs from src/ in tests). */
export function pluginMain(): string {
  const candidates = [new URL('./main.js', import.meta.url), new URL('../../dist/src/cni/main.js', import.meta.url)];
  for (const u of candidates) {
    const p = fileURLToPath(u);
    if (existsSync(p)) return p;
  }
  throw new FlatnetError('ERR_CNI_NO_EXECUTABLE', `cannot find flatnet's dist/src/cni/main.js next to ${fileURLToPath(import.meta.url)}; run \`npm run build\` (or .ci/setup)`);
}

/** The fast launcher's executable in this installation. */
export function launcherPath(): string {
  const candidates = [new URL('../../../native/build/flatnet-cni-fast', import.meta.url), new URL('../../native/build/flatnet-cni-fast', import.meta.url)];
  for (const u of candidates) {
    const p = fileURLToPath(u);
    if (existsSync(p)) return p;
  }
  throw new FlatnetError('ERR_CNI_NO_EXECUTABLE', 'cannot find native/build/flatnet-cni-fast; run .ci/setup (it builds native/cni/launcher.c)');
}

/** sampleConflist: one network of the flatnet plugin, talking to the daemon at `socket`. */
export function sampleConflist(name: string, socket: string): Record<string, unknown> {
  return { cniVersion: '1.0.0', name, plugins: [{ type: 'flatnet', socket }] };
}

/** writeAtomic: write to a temporary file and rename it over the target (a runtime never reads half a file). */
function writeAtomic(path: string, text: string, mode: number): void {
  writeFileSync(`${path}.tmp`, text, { mode });
  chmodSync(`${path}.tmp`, mode);
  renameSync(`${path}.tmp`, path);
}

export function installCni(o: CniInstallOptions): CniInstallResult {
  if (!/^[A-Za-z0-9][A-Za-z0-9_.-]*$/.test(o.name)) throw new FlatnetError('ERR_CNI_INSTALL', `--name ${JSON.stringify(o.name)}: letters, digits, "_", "." and "-"`);
  if (!o.socket.startsWith('/')) throw new FlatnetError('ERR_CNI_INSTALL', `--socket ${o.socket}: an absolute path`);
  mkdirSync(o.binDir, { recursive: true });
  const plugin = join(o.binDir, 'flatnet');
  const run = o.fast === true
    ? `exec ${shellQuote(launcherPath())} ${shellQuote(o.socket)} ${shellQuote(process.execPath)} ${shellQuote(pluginMain())}`
    : `exec ${shellQuote(process.execPath)} ${shellQuote(pluginMain())} "$@"`;
  writeAtomic(plugin, `#!/bin/sh\n# flatnet CNI plugin launcher (flatnet cni install${o.fast === true ? ' --fast' : ''})\n${run}\n`, 0o755);
  if (o.confDir === null) return { plugin, conflist: null, conflistWritten: false };
  mkdirSync(o.confDir, { recursive: true });
  const conflist = join(o.confDir, `10-${o.name}.conflist`);
  const write = o.force || !existsSync(conflist);
  if (write) writeAtomic(conflist, `${JSON.stringify(sampleConflist(o.name, o.socket), null, 2)}\n`, 0o644);
  return { plugin, conflist, conflistWritten: write };
}

const shellQuote = (s: string): string => `'${s.replace(/'/g, `'\\''`)}'`;

