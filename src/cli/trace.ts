/**
 * `flatnet trace`: ask the running daemon what it would do with one packet, and print its
 * answer stage by stage (src/trace/render.ts) or as JSON.
 *
 *   flatnet trace --in n1p0 icmp to 10.244.2.10
 *   flatnet trace --in overlay udp 10.244.2.10:5000 '->' 10.244.1.10:53 vni 2
 *   flatnet trace --in host --hex 0e000af40100...
 *   flatnet trace --in overlay --pcap underlay.pcapng --frame 12
 *
 * The packet is given in one of three ways: as a description (the words after the options,
 * joined with spaces: src/trace/packet.ts has the grammar; it is checked here before anything
 * is sent, and built by the daemon, which knows the port's addresses), as hex (--hex), or as
 * frame N of a capture (--pcap FILE --frame N, numbered from 1 as Wireshark does), which is sent
 * as hex; --vnet gives the virtio-net header it arrives with on a port with offloads. The
 * request is `{cmd: 'trace', in, packet: {flow|hex, vnet?}}`; the answer a TraceResult.
 */

import { readFileSync } from 'node:fs';
import { z } from 'zod';
import { request } from '../daemon/control.js';
import { FlatnetError, PcapError } from '../errors.js';
import { LinkType, PcapReader, PcapRecord } from '../pcap/pcap.js';
import { STAGE_NAMES, type TraceResult } from '../pipeline/trace.js';
import { parseHexFrame, parsePacketSpec, parseVnet } from '../trace/packet.js';
import { render } from '../trace/render.js';
import { type SocketOptions, socketPath } from './client.js';

export interface TraceOptions extends SocketOptions {
  /** The ingress port: a pod's name, `host` or `overlay`. */
  readonly in: string;
  readonly json: boolean;
  readonly hex?: string;
  readonly pcap?: string;
  /** 1-based frame of --pcap; default 1. */
  readonly frame?: number;
  /** The virtio-net header the packet arrives with (parseVnet syntax). */
  readonly vnet?: string;
}

/** What the `trace` command sends as `packet`. */
export type TracePacket = ({ readonly flow: string } | { readonly hex: string }) & { readonly vnet?: string };

/**
 * The control socket reads lines of at most 64 KiB (MAX_LINE in src/daemon/control.ts); a
 * longer request would be refused there with a less helpful message.
 */
const CONTROL_MAX_LINE = 64 * 1024;

/** runTrace sends the trace request and writes the rendering (or JSON); `warn` gets remarks (stderr). */
export async function runTrace(
  words: readonly string[], o: TraceOptions, write: (s: string) => void, warn: (s: string) => void = (s) => process.stderr.write(s),
): Promise<void> {
  const packet = tracePacket(words, o, warn);
  const req = { cmd: 'trace', in: o.in, packet };
  const line = JSON.stringify({ id: 1, ...req });
  if (line.length >= CONTROL_MAX_LINE) {
    const bytes = 'hex' in packet ? `a frame of ${packet.hex.length / 2} bytes` : 'the description';
    throw new FlatnetError('ERR_TRACE_TOO_LARGE', `${bytes} does not fit one control request (${CONTROL_MAX_LINE} bytes as JSON, about ${Math.floor((CONTROL_MAX_LINE - 100) / 2)} bytes of frame)`);
  }
  const data = await request(socketPath(o), req);
  const result = checkTraceResult(data);
  write(o.json ? JSON.stringify(data, null, 2) + '\n' : render(result));
}

/** tracePacket: the `packet` of the request from the words, --hex or --pcap; checks them first. */
export function tracePacket(words: readonly string[], o: TraceOptions, warn: (s: string) => void): TracePacket {
  const given = [words.length > 0 ? 'a packet description' : '', o.hex !== undefined ? '--hex' : '', o.pcap !== undefined ? '--pcap' : ''].filter((g) => g !== '');
  if (given.length === 0) throw new FlatnetError('ERR_TRACE_USAGE', 'no packet: give a description (such as `icmp to 10.244.2.10`), --hex HEX or --pcap FILE');
  if (given.length > 1) throw new FlatnetError('ERR_TRACE_USAGE', `one packet at a time: ${given.join(' and ')} were both given`);
  if (o.frame !== undefined && o.pcap === undefined) throw new FlatnetError('ERR_TRACE_USAGE', '--frame picks a frame of --pcap FILE, and no --pcap was given');
  for (const w of words) {
    if (w === '-') {
      throw new FlatnetError('ERR_TRACE_USAGE', "a lone '-' in the packet: the shell took the '>' of '->' for a redirection (and wrote a file named after what followed it); write 'to' or quote it: icmp to 10.244.2.10");
    }
    if (w.startsWith('-') && !w.startsWith('->')) throw new FlatnetError('ERR_TRACE_USAGE', `unknown option ${w}`);
  }
  if (o.in.trim() === '') throw new FlatnetError('ERR_TRACE_USAGE', '--in needs a port: a pod name, host or overlay');
  const vnet = o.vnet === undefined ? {} : { vnet: o.vnet };
  if (o.vnet !== undefined) parseVnet(o.vnet);
  if (o.hex !== undefined) return { hex: parseHexFrame(o.hex).toString('hex'), ...vnet };
  if (o.pcap !== undefined) return { hex: pcapFrame(o.pcap, o.frame ?? 1, warn).toString('hex'), ...vnet };
  const flow = words.join(' ');
  const spec = parsePacketSpec(flow); // syntax errors here, without a daemon; the daemon applies the port's defaults
  const offload = spec.options.get('tso') ?? spec.options.get('partial-csum');
  if (offload !== undefined && o.vnet !== undefined) {
    throw new FlatnetError('ERR_TRACE_USAGE', `'${offload.name}' in the description already gives the virtio-net header: leave out --vnet`);
  }
  return { flow, ...vnet };
}

/** pcapFrame: frame `n` (1-based) of a pcap or pcapng file, copied. */
export function pcapFrame(path: string, n: number, warn: (s: string) => void): Buffer {
  let data: Buffer;
  try {
    data = readFileSync(path);
  } catch (e) {
    throw new FlatnetError('ERR_TRACE_READ', `cannot read ${path}: ${(e as Error).message}`, { cause: e });
  }
  const reader = new PcapReader(data);
  const rec = new PcapRecord();
  let count = 0;
  while (reader.next(rec)) {
    if (++count < n) continue;
    if (rec.linkType !== LinkType.ETHERNET) throw new PcapError('ERR_PCAP_LINKTYPE', `${path}: frame ${n} has link type ${rec.linkType}, not Ethernet`);
    if (rec.capLen < rec.origLen) warn(`flatnet: frame ${n} of ${path} was captured with ${rec.capLen} of its ${rec.origLen} bytes; tracing what was captured\n`);
    return Buffer.from(rec.data.subarray(rec.off, rec.off + rec.capLen));
  }
  const cut = reader.truncated ? ' (the capture ends in the middle of a frame)' : '';
  throw new FlatnetError('ERR_TRACE_FRAME', `${path} has ${count} frame${count === 1 ? '' : 's'}${cut}: there is no frame ${n}`);
}

// ---------------------------------------------------------------------------------------
// The answer: checked against the TraceResult contract before it is rendered.

const matchSchema = z.object({ what: z.string(), detail: z.string() });
const stepSchema = z.object({ stage: z.enum(STAGE_NAMES), looked: z.string(), matched: z.array(matchSchema), verdict: z.string() });
const frameSchema = z.object({
  port: z.string(), role: z.string(), kind: z.string(), to: z.string().nullable(), hex: z.string().regex(/^([0-9a-f]{2})*$/i), length: z.number().int().nonnegative(),
});
const traceResultSchema = z.object({
  in: z.object({ port: z.string(), role: z.string() }),
  packet: z.object({ hex: z.string().regex(/^([0-9a-f]{2})*$/i), length: z.number().int().nonnegative(), vnet: z.string().nullable() }),
  steps: z.array(stepSchema),
  outcome: z.enum(['deliver', 'tunnel', 'flood', 'reply', 'drop']),
  drop: z.object({ reason: z.string(), help: z.string() }).nullable(),
  frames: z.array(frameSchema),
  droppedCopies: z.array(z.object({ to: z.string(), reason: z.string() })),
  notes: z.array(z.string()),
});

// The schema must describe the contract: this stops compiling when src/pipeline/trace.ts changes.
type Parsed = z.infer<typeof traceResultSchema>;
const _schemaIsContract = (x: Parsed): TraceResult => x;
const _contractIsSchema = (x: TraceResult): Parsed => ({
  ...x, steps: x.steps.map((s) => ({ ...s, matched: [...s.matched] })), frames: [...x.frames], droppedCopies: [...x.droppedCopies], notes: [...x.notes],
});
void _schemaIsContract;
void _contractIsSchema;

/** checkTraceResult: the daemon's answer as a TraceResult, or ERR_CONTROL_BAD_RESPONSE saying what is off. */
export function checkTraceResult(data: unknown): TraceResult {
  const r = traceResultSchema.safeParse(data);
  if (r.success) return r.data;
  const issue = r.error.issues[0]!;
  const at = issue.path.length === 0 ? 'the answer' : issue.path.join('.');
  throw new FlatnetError('ERR_CONTROL_BAD_RESPONSE', `the daemon's trace answer is not a trace result (${at}: ${issue.message}); are the daemon and this command the same version?`);
}
