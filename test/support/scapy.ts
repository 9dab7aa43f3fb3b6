/**
 * Runs the scapy helper scripts (scapy_dissect.py, scapy_build.py), one Python process per batch.
 *
 * Debian's scapy is installed for the system interpreter only: the `python3` first on PATH may
 * be another build without it, so the interpreter is always /usr/bin/python3 (override with
 * FLATNET_SCAPY_PYTHON).
 */

import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import type { Fields } from './fields.js';

const run = promisify(execFile);

export const SCAPY_PYTHON = process.env['FLATNET_SCAPY_PYTHON'] ?? '/usr/bin/python3';
const DISSECT = fileURLToPath(new URL('./scapy_dissect.py', import.meta.url));
const BUILD = fileURLToPath(new URL('./scapy_build.py', import.meta.url));

/** scapyMissing: why the scapy oracle cannot run here, or null when it can. */
export async function scapyMissing(): Promise<string | null> {
  try {
    const { stdout } = await run(SCAPY_PYTHON, ['-c', 'import scapy, scapy.layers.vxlan; print(scapy.VERSION)']);
    return stdout.trim() === '' ? 'scapy printed no version' : null;
  } catch (e) {
    return `scapy not importable by ${SCAPY_PYTHON} (${(e as Error).message.split('\n')[0]}); install python3-scapy with .ci/setup`;
  }
}

export async function scapyVersion(): Promise<string> {
  const { stdout } = await run(SCAPY_PYTHON, ['-c', 'import scapy; print(scapy.VERSION)']);
  return stdout.trim();
}

export interface ScapyFrame {
  readonly index: number;
  /** Absent when scapy raised on this frame (then `error` says why). */
  readonly fields?: Fields;
  readonly layers?: string;
  readonly error?: string;
}

/** scapyDissect runs scapy_dissect.py once over a pcap; one entry per frame, in order. */
export async function scapyDissect(pcapPath: string): Promise<ScapyFrame[]> {
  const { stdout } = await run(SCAPY_PYTHON, [DISSECT, pcapPath], { maxBuffer: 256 << 20 });
  return stdout.split('\n').filter((l) => l !== '').map((l) => JSON.parse(l) as ScapyFrame);
}

export interface ScapyBuiltFrame {
  readonly fields: Fields;
  readonly dport: number;
  readonly gbp: boolean;
  /** UDP datagrams whose checksum was steered to compute to zero: on the wire it must read 0xffff. */
  readonly allOnesUdp: readonly ('outer' | 'inner')[];
  readonly desc: string;
}

/** scapyBuild runs scapy_build.py: `count` frames into `pcapPath`, their intended values returned. */
export async function scapyBuild(seed: number, count: number, pcapPath: string, jsonPath: string): Promise<ScapyBuiltFrame[]> {
  await run(SCAPY_PYTHON, [BUILD, String(seed), String(count), pcapPath, jsonPath], { maxBuffer: 16 << 20 });
  return JSON.parse(readFileSync(jsonPath, 'utf8')) as ScapyBuiltFrame[];
}
