/**
 * `flatnet trace` against a fake daemon: a control socket in a temp directory (the real
 * ControlServer) that records each request and answers a canned TraceResult. Covers how the
 * packet is given (words, --hex, --pcap/--frame), what is sent, the rendering and --json, and
 * the typed errors (bad arguments, bad input caught before anything is sent, the daemon's own
 * errors, an unreachable daemon, an answer that is not a trace).
 */

import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { buildProgram, main } from '../../src/cli/main.js';
import { checkTraceResult, runTrace, type TraceOptions } from '../../src/cli/trace.js';
import { type ControlRequest, ControlServer } from '../../src/daemon/control.js';
import { FlatnetError, TracePacketError } from '../../src/errors.js';
import { LinkType, PcapWriter } from '../../src/pcap/pcap.js';
import type { TraceResult } from '../../src/pipeline/trace.js';
import { DEFAULT_NODE } from '../../src/replay/node.js';
import { buildPacket } from '../../src/trace/packet.js';
import { render } from '../../src/trace/render.js';
import { buildClassicPcap, PcapngBuilder } from '../support/pcap.js';
import { PING, POD_DEFAULTS, dropResult, pingTunnelled, tunnelResult } from '../support/trace-results.js';

const tmp = mkdtempSync(join(tmpdir(), 'flatnet-trace-cli-'));
const SOCK = join(tmp, 'n1.sock');
const NO_SOCK = join(tmp, 'nobody.sock');

let server: ControlServer;
const requests: ControlRequest[] = [];
/** What the fake daemon answers; a test may replace it (afterEach restores it). */
let answer: (req: ControlRequest) => unknown = () => tunnelResult();

beforeAll(async () => {
  server = await ControlServer.listen(SOCK, (cmd, args) => {
    const req: ControlRequest = { cmd, ...args };
    requests.push(req);
    return answer(req);
  });
});
afterAll(async () => {
  await server.close();
  rmSync(tmp, { recursive: true, force: true });
});
afterEach(() => {
  requests.length = 0;
  answer = () => tunnelResult();
});

/** Runs `flatnet trace --socket SOCK ...args` in-process; resolves with what it printed. */
async function trace(...args: string[]): Promise<string> {
  let out = '';
  const p = buildProgram((s) => { out += s; });
  for (const c of p.commands) c.exitOverride().configureOutput({ writeErr: () => {}, writeOut: () => {} });
  await p.parseAsync(['node', 'flatnet', 'trace', '--socket', SOCK, ...args]);
  return out;
}

/** The one request the fake daemon saw, without its id. */
function sent(): Record<string, unknown> {
  expect(requests).toHaveLength(1);
  const { id: _id, ...rest } = requests[0]!;
  return rest;
}

// Frames of the capture files below: three different packets.
const FRAMES = [PING, buildPacket('tcp -> 10.244.2.10:80', POD_DEFAULTS), pingTunnelled()];
const PCAP = join(tmp, 'three.pcap');
const PCAPNG = join(tmp, 'three.pcapng');
{
  const w = new PcapWriter(PCAP);
  FRAMES.forEach((f, i) => w.write(f, 0, f.length, 1_700_000_000 + i, 0));
  w.close();
  const ng = new PcapngBuilder().shb().idb(LinkType.ETHERNET, 9);
  FRAMES.forEach((f, i) => ng.epb(0, BigInt(i) * 1000n, f));
  writeFileSync(PCAPNG, ng.build());
}

describe('what is sent', () => {
  it.each([
    ['words, to', ['--in', 'n1p0', 'icmp', 'to', '10.244.2.10'], { flow: 'icmp to 10.244.2.10' }],
    ['words with ->, options after', ['--in', 'n1p0', 'tcp', '10.244.1.10:40000', '->', '10.244.2.10:80', 'flags', 'SA'], { flow: 'tcp 10.244.1.10:40000 -> 10.244.2.10:80 flags SA' }],
    ['one quoted word', ['--in', 'n1p0', 'udp 10.244.1.10:5000 -> 10.244.2.10:53 len 512'], { flow: 'udp 10.244.1.10:5000 -> 10.244.2.10:53 len 512' }],
    ['our options among the words', ['icmp', '--in', 'host', 'to', '10.244.2.10', '--json'], { flow: 'icmp to 10.244.2.10' }],
    ['the overlay, with overlay options', ['--in', 'overlay', 'udp', '10.244.2.10:1', 'to', '10.244.1.10:2', 'vni', '2', 'udp-csum'], { flow: 'udp 10.244.2.10:1 to 10.244.1.10:2 vni 2 udp-csum' }],
    ['hex with spaces and colons, normalized', ['--in', 'n1p0', '--hex', '02:00:0A:F4 010a'], { hex: '02000af4010a' }],
    ['frame 1 of a pcap by default', ['--in', 'n1p0', '--pcap', PCAP], { hex: FRAMES[0]!.toString('hex') }],
    ['frame 2 of a pcap', ['--in', 'n1p0', '--pcap', PCAP, '--frame', '2'], { hex: FRAMES[1]!.toString('hex') }],
    ['the last frame of a pcapng', ['--in', 'overlay', '--pcap', PCAPNG, '--frame', '3'], { hex: FRAMES[2]!.toString('hex') }],
  ])('%s', async (_name, args, packet) => {
    await trace(...args);
    const input = args[args.indexOf('--in') + 1];
    expect(sent()).toEqual({ cmd: 'trace', in: input, packet });
  });

  it('finds the socket through --config', async () => {
    const cfg = join(tmp, 'n1.json');
    writeFileSync(cfg, JSON.stringify({ ...DEFAULT_NODE, controlSocket: SOCK }));
    let out = '';
    await buildProgram((s) => { out += s; }).parseAsync(['node', 'flatnet', 'trace', '-c', cfg, '--in', 'pod-a', 'icmp', 'to', '10.244.2.10']);
    expect(sent()).toMatchObject({ in: 'pod-a', packet: { flow: 'icmp to 10.244.2.10' } });
    expect(out).toBe(render(tunnelResult()));
  });
});

describe('what is printed', () => {
  it('the rendering of the answer', async () => {
    expect(await trace('--in', 'n1p0', 'icmp', 'to', '10.244.2.10')).toBe(render(tunnelResult()));
  });

  it('a drop', async () => {
    answer = () => dropResult();
    const out = await trace('--in', 'n1p0', 'icmp', '10.244.1.99', 'to', '10.244.2.10');
    expect(out).toBe(render(dropResult()));
    expect(out).toContain("outcome: drop spoof_src_ip: pod packet whose source IP is not the pod's");
  });

  it('--json: the answer as JSON, fields the renderer does not know kept', async () => {
    const extra = { ...tunnelResult(), future: { x: 1 } };
    answer = () => extra;
    const out = await trace('--in', 'n1p0', '--json', 'icmp', 'to', '10.244.2.10');
    expect(JSON.parse(out)).toEqual(extra);
    expect(out.endsWith('}\n')).toBe(true);
  });
});

/** Runs the CLI and returns the error it fails with (and checks the daemon saw no request when `quiet`). */
async function failure(args: readonly string[], quiet = true): Promise<FlatnetError> {
  const e = await trace(...args).then(() => null, (x: unknown) => x);
  expect(e, `${args.join(' ')} should fail`).toBeInstanceOf(FlatnetError);
  if (quiet) expect(requests, 'nothing may reach the daemon').toEqual([]);
  return e as FlatnetError;
}

describe('errors', () => {
  it.each([
    ['no packet at all', ['--in', 'n1p0'], 'ERR_TRACE_USAGE'],
    ['words and --hex', ['--in', 'n1p0', '--hex', '00', 'icmp', 'to', '10.244.2.10'], 'ERR_TRACE_USAGE'],
    ['--hex and --pcap', ['--in', 'n1p0', '--hex', '00', '--pcap', PCAP], 'ERR_TRACE_USAGE'],
    ['--frame without --pcap', ['--in', 'n1p0', '--frame', '2', 'icmp', 'to', '10.244.2.10'], 'ERR_TRACE_USAGE'],
    ['an empty --in', ['--in', ' ', 'icmp', 'to', '10.244.2.10'], 'ERR_TRACE_USAGE'],
    ["a '>' the shell took for a redirection", ['--in', 'n1p0', 'icmp', '10.244.1.10', '-'], 'ERR_TRACE_USAGE'],
    ['an unknown option', ['--in', 'n1p0', '--jsn', 'icmp', 'to', '10.244.2.10'], 'ERR_TRACE_USAGE'],
    ['a description with a syntax error', ['--in', 'n1p0', 'tcp', '10.244.1.10:40000', '->', '10.244.2:80'], 'ERR_TRACE_PACKET'],
    ['hex that is not hex', ['--in', 'n1p0', '--hex', '02zz'], 'ERR_TRACE_PACKET'],
    ['hex with an odd number of digits', ['--in', 'n1p0', '--hex', '020'], 'ERR_TRACE_PACKET'],
    ['a frame too large for one control request', ['--in', 'n1p0', '--hex', 'ab'.repeat(40_000)], 'ERR_TRACE_TOO_LARGE'],
    ['a capture that does not exist', ['--in', 'n1p0', '--pcap', join(tmp, 'missing.pcap')], 'ERR_TRACE_READ'],
    ['a file that is not a capture', ['--in', 'n1p0', '--pcap', join(tmp, 'n1.txt')], 'ERR_PCAP_BAD_MAGIC'],
    ['a frame beyond the capture', ['--in', 'n1p0', '--pcap', PCAP, '--frame', '4'], 'ERR_TRACE_FRAME'],
    ['a frame beyond an empty capture', ['--in', 'n1p0', '--pcap', join(tmp, 'empty.pcap')], 'ERR_TRACE_FRAME'],
    ['a frame that is not Ethernet', ['--in', 'n1p0', '--pcap', join(tmp, 'raw.pcap')], 'ERR_PCAP_LINKTYPE'],
    ["a pcapng frame on a non-Ethernet interface", ['--in', 'n1p0', '--pcap', join(tmp, 'mixed.pcapng'), '--frame', '2'], 'ERR_PCAP_LINKTYPE'],
  ])('%s', async (_name, args, code) => {
    writeFileSync(join(tmp, 'n1.txt'), 'hello, world: this is not a capture\n');
    writeFileSync(join(tmp, 'empty.pcap'), buildClassicPcap([]));
    writeFileSync(join(tmp, 'raw.pcap'), buildClassicPcap([{ data: PING.subarray(14), tsSec: 0, tsNsec: 0, origLen: 84 }], { linkType: LinkType.RAW }));
    writeFileSync(join(tmp, 'mixed.pcapng'), new PcapngBuilder().shb().idb(LinkType.ETHERNET).idb(LinkType.RAW).epb(0, 0n, PING).epb(1, 1n, PING.subarray(14)).build());
    expect((await failure(args)).code).toBe(code);
  });

  it('a syntax error names its word, and is found without a daemon', async () => {
    const e = await trace('--in', 'n1p0', 'tcp', '10.244.1.10:40000', '->', '10.244.2:80').catch((x: unknown) => x);
    expect(e).toBeInstanceOf(TracePacketError);
    expect(e).toMatchObject({ word: 4 });
  });

  it('--frame 0 is refused by the argument parser', async () => {
    await expect(trace('--in', 'n1p0', '--pcap', PCAP, '--frame', '0')).rejects.toMatchObject({ code: 'commander.invalidArgument' });
    expect(requests).toEqual([]);
  });

  it('--in is required', async () => {
    await expect(trace('icmp', 'to', '10.244.2.10')).rejects.toMatchObject({ code: 'commander.missingMandatoryOptionValue' });
  });

  it("the daemon's error comes back with its code", async () => {
    answer = () => { throw new TracePacketError(5, "word 5: 'vni' applies to packets entering the overlay (--in overlay) only"); };
    const e = await failure(['--in', 'n1p0', 'tcp', 'to', '10.244.2.10:80', 'vni', '3'], false);
    expect(e.code).toBe('ERR_TRACE_PACKET');
    expect(requests).toHaveLength(1);
  });

  it('an unknown port, as the daemon would refuse it', async () => {
    answer = () => { throw new FlatnetError('ERR_TRACE_PORT', 'no port n9p9: ...'); };
    expect((await failure(['--in', 'n9p9', 'icmp', 'to', '10.244.2.10'], false)).code).toBe('ERR_TRACE_PORT');
  });

  it('no daemon on the socket', async () => {
    let out = '';
    const e = await buildProgram((s) => { out += s; }).parseAsync(['node', 'flatnet', 'trace', '--socket', NO_SOCK, '--in', 'n1p0', 'icmp', 'to', '10.244.2.10']).catch((x: unknown) => x);
    expect(e).toMatchObject({ code: 'ERR_CONTROL_UNREACHABLE' });
    expect(out).toBe('');
  });

  it('an answer that is not a trace result', async () => {
    answer = () => ({ routes: [] });
    expect((await failure(['--in', 'n1p0', 'icmp', 'to', '10.244.2.10'], false)).code).toBe('ERR_CONTROL_BAD_RESPONSE');
  });

  it('exits with status 1 and one flatnet: line on stderr', async () => {
    const err: string[] = [];
    const spy = vi.spyOn(process.stderr, 'write').mockImplementation((s: string | Uint8Array) => { err.push(String(s)); return true; });
    const before = process.exitCode;
    try {
      await main(['node', 'flatnet', 'trace', '--socket', NO_SOCK, '--in', 'n1p0', 'icmp', 'to', '10.244.2.10']);
      expect(process.exitCode).toBe(1);
    } finally {
      spy.mockRestore();
      process.exitCode = before;
    }
    expect(err).toHaveLength(1);
    expect(err[0]).toMatch(/^flatnet: cannot reach the flatnet daemon at .*nobody\.sock .*\(ERR_CONTROL_UNREACHABLE\)\n$/);
  });
});

describe('pcap frames', () => {
  const opts = (o: Partial<TraceOptions>): TraceOptions => ({ in: 'n1p0', json: false, socket: SOCK, ...o });

  it('a frame cut by the snaplen is traced as captured, with a warning', async () => {
    const cut = join(tmp, 'cut.pcap');
    writeFileSync(cut, buildClassicPcap([{ data: PING.subarray(0, 60), tsSec: 0, tsNsec: 0, origLen: PING.length }]));
    const warnings: string[] = [];
    await runTrace([], opts({ pcap: cut }), () => {}, (s) => warnings.push(s));
    expect(sent()).toMatchObject({ packet: { hex: PING.subarray(0, 60).toString('hex') } });
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toContain('60 of its 98 bytes');
  });

  it('a whole frame gives no warning', async () => {
    const warnings: string[] = [];
    await runTrace([], opts({ pcap: PCAP, frame: 3 }), () => {}, (s) => warnings.push(s));
    expect(warnings).toEqual([]);
  });
});

describe('checkTraceResult', () => {
  const good = tunnelResult();
  it('passes a trace result through', () => {
    expect(checkTraceResult(JSON.parse(JSON.stringify(good)))).toEqual(good);
  });

  it.each([
    ['not an object', 'hello'],
    ['no steps', { ...good, steps: undefined }],
    ['an unknown stage', { ...good, steps: [{ ...good.steps[0]!, stage: 'warp' }] }],
    ['an unknown outcome', { ...good, outcome: 'explode' }],
    ['a frame whose hex is not hex', { ...good, frames: [{ ...good.frames[0]!, hex: 'xyz' }] }],
    ['a drop without its help', { ...good, drop: { reason: 'no_route' } }],
    ['notes that are not strings', { ...good, notes: [1] }],
  ])('refuses %s', (_name, data) => {
    expect(() => checkTraceResult(data as unknown as TraceResult)).toThrow(expect.objectContaining({ code: 'ERR_CONTROL_BAD_RESPONSE' }));
  });
});
