/**
 * podman 4.3 as a real CNI client for the namespace tests (see REAL-COMPONENTS.md): its CNI
 * backend with a private containers.conf, plugin and config directories of the test's own (the
 * plugin installed with --fast: the first network's daemon runs its invocations), runc,
 * and a rootfs made from busybox-static (no registry is reachable). Everything podman keeps is
 * under one temporary directory: --root, --runroot, its tmp dir, and libcni's result cache,
 * which podman always writes to /var/lib/cni: a holder process keeps a private mount namespace
 * in which a directory of ours is bind-mounted over /var/lib, and every podman command runs in
 * that mount namespace (nsenter --mount) and in a node's network namespace (nsenter --net, not
 * `ip netns exec`, which remounts /sys and leaves podman without cgroups).
 */

import { execFile, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { installCni } from '../../src/cni/install.js';
import { sleep } from '../../src/lab/exec.js';

export interface PodmanRun { readonly code: number | null; readonly stdout: string; readonly stderr: string }

const BUSYBOX = '/bin/busybox';
const APPLETS = ['sh', 'ping', 'ip', 'sleep', 'cat', 'hostname', 'true'];

/**
 * Why podman tests cannot run here (null: they can). In CI (FLATNET_REQUIRE_ORACLES=1, where
 * .ci/setup installed them) a missing piece fails the tests instead of skipping them.
 */
export function podmanSkipReason(): string | null {
  if (process.env['FLATNET_REQUIRE_ORACLES'] === '1') return null;
  for (const [cmd, args] of [['podman', ['--version']], ['runc', ['--version']], [BUSYBOX, ['true']], ['/usr/lib/cni/host-local', []]] as const) {
    const r = spawnSync(cmd, [...args], { stdio: 'ignore', input: '' });
    if (r.error !== undefined) return `${cmd} is missing (install with .ci/setup)`;
  }
  return null;
}

export class Podman {
  readonly dir: string;
  readonly rootfs: string;
  private readonly conf: string;
  private readonly holder: ChildProcess;
  /** Containers started through startContainer, by node namespace (removed from there by destroy). */
  private readonly started = new Map<string, Set<string>>();

  private constructor(dir: string, holder: ChildProcess) {
    this.dir = dir;
    this.rootfs = join(dir, 'rootfs');
    this.conf = join(dir, 'containers.conf');
    this.holder = holder;
  }

  /** start prepares the directories, one network per (name, daemon socket), and the mount-namespace holder. */
  static async start(networks: readonly { readonly name: string; readonly socket: string }[]): Promise<Podman> {
    const dir = mkdtempSync(join(tmpdir(), 'flatnet-podman-'));
    try {
      return await Podman.prepare(dir, networks);
    } catch (e) {
      rmSync(dir, { recursive: true, force: true });
      throw e;
    }
  }

  private static async prepare(dir: string, networks: readonly { readonly name: string; readonly socket: string }[]): Promise<Podman> {
    for (const d of ['bin', 'net.d', 'root', 'runroot', 'tmp', 'varlib/cni', 'rootfs/bin', 'rootfs/proc', 'rootfs/sys', 'rootfs/dev', 'rootfs/etc', 'rootfs/tmp']) mkdirSync(join(dir, d), { recursive: true });
    copyFileSync(BUSYBOX, join(dir, 'rootfs/bin/busybox'));
    for (const a of APPLETS) symlinkSync('busybox', join(dir, 'rootfs/bin', a));
    // The fast launcher, bound to the first network's daemon: that network's invocations run in
    // its daemon, the others' through the launcher's fallback, the Node plugin.
    for (const n of networks) installCni({ binDir: join(dir, 'bin'), confDir: join(dir, 'net.d'), socket: n.socket, name: n.name, force: true });
    if (networks[0] !== undefined) installCni({ binDir: join(dir, 'bin'), confDir: null, socket: networks[0].socket, name: networks[0].name, force: false, fast: true });
    writeFileSync(join(dir, 'containers.conf'), [
      '[containers]',
      'default_ulimits = ["nofile=20000:20000", "nproc=32768:32768"]',
      '[network]',
      'network_backend = "cni"',
      `cni_plugin_dirs = ["${join(dir, 'bin')}", "/usr/lib/cni"]`,
      `network_config_dir = "${join(dir, 'net.d')}"`,
      '[engine]',
      `tmp_dir = "${join(dir, 'tmp')}"`,
      '',
    ].join('\n'));
    const holder = spawn('unshare', ['--mount', '--propagation', 'private', 'sh', '-c', `mount --bind ${join(dir, 'varlib')} /var/lib && echo ready && exec sleep 100000`], { stdio: ['ignore', 'pipe', 'inherit'] });
    await new Promise<void>((resolve, reject) => {
      holder.stdout!.once('data', () => resolve());
      holder.once('exit', (code) => reject(new Error(`the mount namespace holder exited (${code})`)));
    });
    return new Podman(dir, holder);
  }

  private argv(nodeNs: string, args: readonly string[]): string[] {
    return [`--mount=/proc/${this.holder.pid}/ns/mnt`, `--net=/run/netns/${nodeNs}`, 'env', `CONTAINERS_CONF=${this.conf}`,
      'podman', '--root', join(this.dir, 'root'), '--runroot', join(this.dir, 'runroot'), '--runtime', 'runc', ...args];
  }

  /** podman ARGS in node namespace `nodeNs` (never throws for a non-zero exit). */
  run(nodeNs: string, args: readonly string[], timeoutMs = 60_000): Promise<PodmanRun> {
    return new Promise((resolve) => {
      execFile('nsenter', this.argv(nodeNs, args), { encoding: 'utf8', timeout: timeoutMs, killSignal: 'SIGKILL' }, (err, stdout, stderr) => {
        const e = err as (Error & { code?: number | string }) | null;
        resolve({ code: e === null ? 0 : typeof e.code === 'number' ? e.code : null, stdout, stderr: e !== null && typeof e.code !== 'number' ? `${stderr}${e.message}` : stderr });
      });
    });
  }

  /**
   * start a detached container `name` on network `net` (every flag before --rootfs: the path
   * after it is the image argument, and podman takes later flags for the command).
   */
  async startContainer(nodeNs: string, name: string, net: string): Promise<string> {
    const r = await this.run(nodeNs, ['run', '-d', '--name', name, '--network', net, '--rootfs', this.rootfs, 'sleep', '100000']);
    if (r.code !== 0) throw new Error(`podman run ${name}: ${r.stderr}`);
    if (!this.started.has(nodeNs)) this.started.set(nodeNs, new Set());
    this.started.get(nodeNs)!.add(name);
    return r.stdout.trim();
  }

  /**
   * destroy removes the containers it started, each from its node's namespace (where its CNI DEL
   * must run), then any other (a test's `run` without --rm), the holder and the directory.
   */
  async destroy(): Promise<void> {
    for (const [ns, names] of this.started) await this.run(ns, ['rm', '-f', '-t', '0', '-i', ...names]);
    const first = [...this.started.keys()][0];
    if (first !== undefined) await this.run(first, ['rm', '-a', '-f', '-t', '0']);
    this.holder.kill('SIGKILL');
    await sleep(100);
    rmSync(this.dir, { recursive: true, force: true });
  }
}
