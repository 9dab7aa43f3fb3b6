#!/usr/bin/env node
/**
 * The `flatnet` command line. Each subcommand lives in its own module; this file only wires
 * arguments to them and turns typed errors into a message and an exit code.
 */

import { realpathSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Command, InvalidArgumentError } from 'commander';
import { FlatnetError } from '../errors.js';
import { UdpPort } from '../wire/consts.js';
import { runDecode } from './decode.js';

function portList(v: string, prev: number[] | undefined): number[] {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1 || n > 65535) throw new InvalidArgumentError(`not a UDP port: ${v}`);
  return [...(prev ?? []), n];
}

function positiveInt(v: string): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1) throw new InvalidArgumentError(`not a positive integer: ${v}`);
  return n;
}

export function buildProgram(write: (s: string) => void = (s) => process.stdout.write(s)): Command {
  const program = new Command('flatnet')
    .description('userspace VXLAN data plane for Kubernetes-style pod networks')
    .version('0.1.0')
    .showHelpAfterError();

  program
    .command('decode')
    .description('print one line per frame of a pcap/pcapng file (VXLAN aware), or JSON with --json')
    .argument('<file>', 'pcap or pcapng capture')
    .option('--json', 'one JSON object per frame with every decoded field', false)
    .option('--vxlan-port <port>', 'UDP port decoded as VXLAN (repeatable; default 4789 and 8472)', portList)
    .option('--lenient', 'RFC 7348 receive: ignore reserved VXLAN bits instead of dropping', false)
    .option('--gbp', 'accept the VXLAN Group Policy extension bits', false)
    .option('-c, --count <n>', 'stop after n frames', positiveInt)
    .action((file: string, o: { json: boolean; vxlanPort?: number[]; lenient: boolean; gbp: boolean; count?: number }) => {
      process.exitCode = runDecode(file, {
        json: o.json,
        vxlanPorts: o.vxlanPort ?? [UdpPort.VXLAN, UdpPort.VXLAN_LINUX],
        lenient: o.lenient,
        gbp: o.gbp,
        limit: o.count ?? Number.POSITIVE_INFINITY,
      }, write);
    });

  return program;
}

export async function main(argv: string[]): Promise<void> {
  // `flatnet decode x.pcap | head` closes the pipe early: that is the reader's choice, not an error.
  process.stdout.on('error', (e: NodeJS.ErrnoException) => {
    if (e.code === 'EPIPE') process.exit(0);
    throw e;
  });
  try {
    await buildProgram().parseAsync(argv);
  } catch (e) {
    if (e instanceof FlatnetError) {
      process.stderr.write(`flatnet: ${e.message} (${e.code})\n`);
      process.exitCode = 1;
      return;
    }
    if (e instanceof Error && 'code' in e && typeof e.code === 'string' && e.code.startsWith('E')) {
      process.stderr.write(`flatnet: ${e.message}\n`);
      process.exitCode = 1;
      return;
    }
    throw e;
  }
}

// Run when executed (directly or through the /usr/local/bin symlink), not when imported by tests.
const self = fileURLToPath(import.meta.url);
const invoked = process.argv[1] === undefined ? '' : realpathSync(process.argv[1]);
if (invoked === self) await main(process.argv);
