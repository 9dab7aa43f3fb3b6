/**
 * Independent observers for kernel-backed port tests: a Python packet socket inside a namespace
 * (not our addon), a Python sender for datagrams and raw frames, and a loop that reads a port
 * through its readiness callback until enough frames arrived.
 */

import type { ChildProcess } from 'node:child_process';
import type { Batch } from '../../src/buf/batch.js';
import type { Port } from '../../src/pipeline/port.js';
import type { Netns } from './netns.js';

/** A Python 3 that is not a pyenv shim (shims do not work under `ip netns exec` as root). */
export const PYTHON = '/usr/bin/python3';

export interface Capture {
  /** Resolves with the captured frames once `count` arrived (or at the timeout: what came). */
  readonly frames: Promise<Buffer[]>;
}

/**
 * sniff starts an independent observer in namespace `ns`: a Python AF_PACKET socket on
 * `ifname` (plain recvfrom, no ring) that keeps frames of `etherType` (any when null) seen in
 * `direction` ('in': received by the interface, 'out': sent by it) until `count` arrived.
 * Resolves once the socket is bound.
 */
export async function sniff(netns: Netns, ns: string, ifname: string, count: number, etherType: number | null, direction: 'in' | 'out', timeoutMs = 10_000): Promise<Capture> {
  const script = `
import socket, sys, time
s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(0x0003))
s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8 << 20)
s.bind((${JSON.stringify(ifname)}, 0))
s.settimeout(0.2)
print('ready', flush=True)
want, got, deadline = ${count}, 0, time.time() + ${timeoutMs / 1000}
while got < want and time.time() < deadline:
    try:
        data, addr = s.recvfrom(65536)
    except socket.timeout:
        continue
    outgoing = addr[2] == socket.PACKET_OUTGOING
    if outgoing != ${direction === 'out' ? 'True' : 'False'}:
        continue
    if ${etherType ?? -1} >= 0 and int.from_bytes(data[12:14], 'big') != ${etherType ?? -1}:
        continue
    print(data.hex(), flush=True)
    got += 1
`;
  const p: ChildProcess = netns.spawn(ns, PYTHON, ['-c', script]);
  let out = '', err = '';
  p.stderr?.on('data', (d: Buffer) => { err += d.toString(); });
  const ready = new Promise<void>((resolve, reject) => {
    p.stdout?.on('data', (d: Buffer) => {
      out += d.toString();
      if (out.startsWith('ready\n')) resolve();
    });
    p.on('exit', () => reject(new Error(`sniffer exited: ${err}`)));
  });
  await ready;
  const frames = new Promise<Buffer[]>((resolve, reject) => {
    p.on('exit', (code) => {
      if (code !== 0) reject(new Error(`sniffer failed (${code}): ${err}`));
      else resolve(out.split('\n').slice(1).filter((l) => l !== '').map((l) => Buffer.from(l, 'hex')));
    });
  });
  return { frames };
}

/** python runs a Python 3 script inside `ns` (stdin = script), returning its stdout. */
export function python(netns: Netns, ns: string, script: string): string {
  return netns.exec(ns, PYTHON, ['-'], { input: script });
}

/** podSendFrames sends raw frames (whole Ethernet frames) on `ns`'s eth0 through a packet socket. */
export function podSendFrames(netns: Netns, ns: string, frames: readonly Buffer[]): void {
  python(netns, ns, `
import socket
s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
s.bind(('eth0', 0))
for h in ${JSON.stringify(frames.map((f) => f.toString('hex')))}:
    s.send(bytes.fromhex(h))
`);
}

/**
 * readFrames collects frames from `port` through its readiness callback until `want` frames
 * matching `keep` arrived or `timeoutMs` passed; returns copies of the matching frames.
 */
export function readFrames(port: Port, batch: Batch, headroom: number, want: number, keep: (b: Buffer) => boolean = () => true, timeoutMs = 10_000): Promise<Buffer[]> {
  const out: Buffer[] = [];
  return new Promise((resolve) => {
    const finish = (): void => {
      clearTimeout(t);
      port.onReadable(null);
      resolve(out);
    };
    const t = setTimeout(finish, timeoutMs);
    port.onReadable(() => {
      for (;;) {
        const n = port.read(batch, headroom);
        if (n <= 0) break;
        for (let i = 0; i < n; i++) {
          const f = Buffer.from(batch.arena.subarray(batch.start(i), batch.end(i)));
          if (keep(f)) out.push(f);
        }
      }
      if (out.length >= want) finish();
    });
  });
}

/** sleep for `ms` milliseconds. */
export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** countFds counts this process's open descriptors (/proc/self/fd). */
export async function countFds(): Promise<number> {
  const { readdirSync } = await import('node:fs');
  return readdirSync('/proc/self/fd').length;
}
