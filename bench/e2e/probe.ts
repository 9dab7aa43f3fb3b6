/**
 * What the e2e bench reads while a test runs: CPU time (of the flatnet daemons, or the OVS
 * system's ovs-vswitchd, from /proc/PID/stat; of the whole machine from /proc/stat), a pod's
 * interface and UDP counters (inside its namespace), and the daemons' own port and switch
 * counters (flatnet's control socket; ovs-vswitchd's `dpctl/show -s`, ovs.ts).
 * Everything is a snapshot; a test takes one before and one after and keeps the difference.
 */

import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { request } from '../../src/daemon/control.js';
import type { CountersSnapshot, PortRow } from '../../src/daemon/show.js';
import { run } from '../../src/lab/exec.js';

let clkTck = 0;
/** sysconf(_SC_CLK_TCK): the unit of /proc/PID/stat times. */
export function clockTicks(): number {
  if (clkTck === 0) {
    try {
      clkTck = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
    } catch {
      clkTck = 100;
    }
  }
  return clkTck;
}

/** utime + stime of PID (all its threads) in seconds; null when it is gone. */
export function processCpuSeconds(pid: number): number | null {
  try {
    const s = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = s.slice(s.lastIndexOf(')') + 2).split(' ');
    // After the command: state is field 3, so utime (14) and stime (15) are f[11] and f[12].
    return (Number(f[11]) + Number(f[12])) / clockTicks();
  } catch {
    return null;
  }
}

/** The machine's aggregate CPU line of /proc/stat, in seconds per state. */
export interface MachineCpu { readonly busy: number; readonly softirq: number; readonly total: number }
export function machineCpu(): MachineCpu {
  const line = readFileSync('/proc/stat', 'utf8').split('\n', 1)[0]!;
  const v = line.trim().split(/\s+/).slice(1).map(Number);
  // user nice system idle iowait irq softirq steal guest guest_nice (guest is already in user)
  const [user = 0, nice = 0, system = 0, idle = 0, iowait = 0, irq = 0, softirq = 0, steal = 0] = v;
  const t = clockTicks();
  const busy = user + nice + system + irq + softirq + steal;
  return { busy: busy / t, softirq: softirq / t, total: (busy + idle + iowait) / t };
}

/**
 * A data-plane daemon the bench watches: its CPU time by PID and, over its control socket, its
 * port and switch counters. `counters` replaces the flatnet control request for daemons that are
 * not flatnet (the OVS system's ovs-vswitchd).
 */
export interface Daemon {
  readonly node: string;
  readonly pid: number;
  readonly socket: string;
  readonly counters?: () => Promise<DaemonCounters | null>;
}

/** CPU used over a window: cores = CPU seconds / wall seconds. */
export interface CpuWindow {
  readonly wallSeconds: number;
  /**
   * CPU seconds (user + system) of all the system's daemons together (the flatnet daemons, or
   * the OVS system's ovs-vswitchd processes); null when the system has none.
   */
  readonly flatnetCpuSeconds: number | null;
  /** The same as cores: CPU seconds / wall seconds. */
  readonly flatnetCores: number | null;
  readonly perDaemon: Readonly<Record<string, number>>;
  /** Busy cores of the whole machine (everything, other users' work included). */
  readonly machineBusyCores: number;
  readonly machineSoftirqCores: number;
}

export interface CpuMark { readonly t: bigint; readonly daemons: readonly (number | null)[]; readonly machine: MachineCpu }

export function cpuMark(daemons: readonly Daemon[]): CpuMark {
  return { t: process.hrtime.bigint(), daemons: daemons.map((d) => processCpuSeconds(d.pid)), machine: machineCpu() };
}

export function cpuSince(mark: CpuMark, daemons: readonly Daemon[]): CpuWindow {
  const now = cpuMark(daemons);
  const wall = Number(now.t - mark.t) / 1e9;
  const perDaemon: Record<string, number> = {};
  let sum = 0;
  daemons.forEach((d, i) => {
    const a = mark.daemons[i], b = now.daemons[i];
    const cores = a == null || b == null ? 0 : (b - a) / wall;
    perDaemon[d.node] = round(cores, 3);
    sum += cores;
  });
  return {
    wallSeconds: round(wall, 3),
    flatnetCpuSeconds: daemons.length === 0 ? null : round(sum * wall, 3),
    flatnetCores: daemons.length === 0 ? null : round(sum, 3),
    perDaemon,
    machineBusyCores: round((now.machine.busy - mark.machine.busy) / wall, 3),
    machineSoftirqCores: round((now.machine.softirq - mark.machine.softirq) / wall, 3),
  };
}

export const round = (x: number, digits: number): number => {
  const f = 10 ** digits;
  return Math.round(x * f) / f;
};

/** Interface counters of `ifname` inside namespace `ns` (ip -s -j link). */
export interface IfCounters { readonly rxPackets: number; readonly rxBytes: number; readonly rxDropped: number; readonly txPackets: number }
export function ifCounters(ns: string, ifname = 'eth0'): IfCounters {
  const j = JSON.parse(run('ip', ['-n', ns, '-s', '-j', 'link', 'show', 'dev', ifname])) as { stats64?: { rx?: Record<string, number>; tx?: Record<string, number> } }[];
  const s = j[0]?.stats64;
  return { rxPackets: s?.rx?.['packets'] ?? 0, rxBytes: s?.rx?.['bytes'] ?? 0, rxDropped: s?.rx?.['dropped'] ?? 0, txPackets: s?.tx?.['packets'] ?? 0 };
}

/** The Udp: line of /proc/net/snmp inside namespace `ns`, as name -> value. */
export function udpSnmp(ns: string): Record<string, number> {
  const text = run('ip', ['netns', 'exec', ns, 'cat', '/proc/net/snmp']);
  const lines = text.split('\n').filter((l) => l.startsWith('Udp: '));
  const names = lines[0]?.split(/\s+/).slice(1) ?? [];
  const vals = lines[1]?.split(/\s+/).slice(1).map(Number) ?? [];
  const out: Record<string, number> = {};
  names.forEach((n, i) => { out[n] = vals[i] ?? 0; });
  return out;
}

/** A daemon's port rows and switch counters. */
export interface DaemonCounters { readonly ports: readonly PortRow[]; readonly counters: Readonly<Record<string, number>>; readonly drops: Readonly<Record<string, number>> }

export async function daemonCounters(d: Daemon): Promise<DaemonCounters | null> {
  if (d.counters !== undefined) return d.counters();
  try {
    const ports = (await request(d.socket, { cmd: 'show', what: 'ports' }, 2000)) as PortRow[];
    const c = (await request(d.socket, { cmd: 'show', what: 'counters' }, 2000)) as CountersSnapshot;
    const drops: Record<string, number> = {};
    for (const x of c.drops) drops[x.reason] = x.count;
    return { ports, counters: c.counters, drops };
  } catch {
    return null;
  }
}

/** Per port, what moved over a window, and frames per system-call batch. */
export interface PortDelta {
  readonly name: string; readonly role: string; readonly kind: string;
  readonly rxPackets: number; readonly rxBatches: number; readonly rxPerBatch: number | null;
  readonly txPackets: number; readonly txBatches: number; readonly txPerBatch: number | null;
  readonly txDropped: number; readonly rxErrors: number; readonly txErrors: number;
}
export interface DaemonIo {
  readonly node: string;
  readonly ports: readonly PortDelta[];
  /** Switch counters and drop reasons that moved (differences). */
  readonly counters: Readonly<Record<string, number>>;
  readonly drops: Readonly<Record<string, number>>;
}

function diffRecord(a: Readonly<Record<string, number>>, b: Readonly<Record<string, number>>): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [k, v] of Object.entries(b)) {
    const d = v - (a[k] ?? 0);
    if (d !== 0) out[k] = d;
  }
  return out;
}

export function daemonIo(node: string, a: DaemonCounters | null, b: DaemonCounters | null): DaemonIo | null {
  if (a === null || b === null) return null;
  const ports: PortDelta[] = [];
  for (const p of b.ports) {
    const q = a.ports.find((x) => x.id === p.id && x.name === p.name);
    const d = (k: 'rxPackets' | 'rxBatches' | 'txPackets' | 'txBatches' | 'txDropped' | 'rxErrors' | 'txErrors'): number => p[k] - (q?.[k] ?? 0);
    const rxP = d('rxPackets'), rxB = d('rxBatches'), txP = d('txPackets'), txB = d('txBatches');
    if (rxP === 0 && txP === 0 && d('txDropped') === 0) continue;
    ports.push({
      name: p.name, role: p.role, kind: p.kind,
      rxPackets: rxP, rxBatches: rxB, rxPerBatch: rxB > 0 ? round(rxP / rxB, 2) : null,
      txPackets: txP, txBatches: txB, txPerBatch: txB > 0 ? round(txP / txB, 2) : null,
      txDropped: d('txDropped'), rxErrors: d('rxErrors'), txErrors: d('txErrors'),
    });
  }
  return { node, ports, counters: diffRecord(a.counters, b.counters), drops: diffRecord(a.drops, b.drops) };
}

export async function allCounters(daemons: readonly Daemon[]): Promise<(DaemonCounters | null)[]> {
  return Promise.all(daemons.map((d) => daemonCounters(d)));
}

export function allIo(daemons: readonly Daemon[], a: readonly (DaemonCounters | null)[], b: readonly (DaemonCounters | null)[]): DaemonIo[] {
  const out: DaemonIo[] = [];
  daemons.forEach((d, i) => {
    const io = daemonIo(d.node, a[i] ?? null, b[i] ?? null);
    if (io !== null) out.push(io);
  });
  return out;
}
