/**
 * tshark as an independent oracle for src/mtu output: `tshark -r file.pcap -T json -e ...` with
 * checksum verification on (`-o ip|tcp|udp.check_checksum:TRUE`) and IP reassembly on (its
 * default, set explicitly). Returns, per frame, each requested field's values (all
 * occurrences, as strings). Files only: nothing is sent. tsharkMissing (support/tshark.ts)
 * says why it cannot run.
 */

import { execFile } from 'node:child_process';
import { promisify } from 'node:util';

const run = promisify(execFile);

export type TsharkFields = Readonly<Record<string, readonly string[]>>;

/** tsharkJson dissects `pcapPath` once and returns one record of fields per frame, in order. */
export async function tsharkJson(pcapPath: string, fields: readonly string[]): Promise<TsharkFields[]> {
  const args = [
    '-n', '-r', pcapPath, '-T', 'json',
    '-o', 'ip.check_checksum:TRUE', '-o', 'tcp.check_checksum:TRUE', '-o', 'udp.check_checksum:TRUE',
    '-o', 'ip.defragment:TRUE', '-o', 'tcp.analyze_sequence_numbers:FALSE',
    ...fields.flatMap((f) => ['-e', f]),
  ];
  const { stdout } = await run('tshark', args, { maxBuffer: 256 << 20 });
  const parsed = JSON.parse(stdout) as { _source: { layers: Record<string, string[]> } }[];
  return parsed.map((p) => p._source.layers);
}

/** Wireshark's checksum status values (proto_checksum_enum_e). */
export const CSUM_GOOD = '1';
