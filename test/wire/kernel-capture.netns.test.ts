/**
 * The kernel fixtures can be regenerated: run fixtures/kernel/capture.sh into a temporary
 * directory (two namespaces of its own, removed afterwards) and check that every fresh frame
 * from the kernel's vxlan driver passes flatnet's strict decapsulation and round-trips through
 * the dissector, as the committed fixtures do (test/wire/golden.test.ts).
 */

import { spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DecapResult, Decapsulator, VniSet } from '../../src/wire/decap.js';
import { dissectFrame, emitFrame, type LayerRepr } from '../../src/wire/dissect.js';
import { WIRE_DROP_MAX, WireDrop, wireDropName } from '../../src/wire/drop.js';
import { listNetns, netnsSkipReason } from '../support/netns.js';
import { KERNEL_FIXTURES, KERNEL_FIXTURE_DIR, hasTool, readFrames } from '../support/pcap.js';
import { pseudoHeaderRef, verifiesRef } from '../support/refs.js';

const SCRIPT = join(KERNEL_FIXTURE_DIR, 'capture.sh');

function skipReason(): string | null {
  const ns = netnsSkipReason();
  if (ns !== null) return ns;
  const missing = ['tcpdump', 'ethtool', 'bridge', 'capinfos', 'ping'].filter((t) => !hasTool(t));
  if (!existsSync('/usr/bin/python3')) missing.push('/usr/bin/python3');
  return missing.length === 0 ? null : `capture.sh needs ${missing.join(', ')}`;
}
const reason = skipReason();
if (reason !== null) console.warn(`kernel-capture.netns.test.ts skipped: ${reason}`);

/** Runs capture.sh; returns its exit status, output and the namespace prefix it used (fnfx<pid>). */
function runCapture(outDir: string, env: NodeJS.ProcessEnv = process.env): { status: number | null; output: string; prefix: string } {
  const r = spawnSync('bash', [SCRIPT, outDir], { encoding: 'utf8', env, timeout: 150_000, killSignal: 'SIGTERM' });
  return { status: r.status, output: `${r.stdout}${r.stderr}`, prefix: `fnfx${r.pid}` };
}

/** The layers after eth/ipv4/udp/vxlan/eth: ARP or inner IPv4, then the inner L4 layer. */
/** Pids of live processes whose command line mentions `text` (e.g. a tcpdump writing there). */
function processesMentioning(text: string): number[] {
  const pids: number[] = [];
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      if (readFileSync(`/proc/${d}/cmdline`, 'utf8').includes(text)) pids.push(Number(d));
    } catch { /* gone */ }
  }
  return pids;
}

const innerOf = (ls: readonly LayerRepr[]): LayerRepr[] => ls.slice(5);

describe.skipIf(reason !== null)(`regenerating the kernel fixtures with capture.sh${reason === null ? '' : ` (skipped: ${reason})`}`, () => {
  // Made in beforeAll, not while collecting: a skipped suite's body still runs, its hooks do not.
  let out = '';
  let run: ReturnType<typeof runCapture>;

  beforeAll(() => {
    out = mkdtempSync(join(tmpdir(), 'flatnet-capture-'));
    run = runCapture(out);
  }, 180_000);

  afterAll(() => {
    if (out !== '') rmSync(out, { recursive: true, force: true });
  });

  it('runs to completion and leaves no namespace behind', () => {
    expect(run.status, run.output).toBe(0);
    expect(listNetns(run.prefix)).toEqual([]);
  });

  it.each(KERNEL_FIXTURES.map((f) => [f.file, f] as const))('%s: every fresh frame passes the strict decap and round-trips', (file, { port, udpcsum }) => {
    const frames = readFrames(join(out, file)).map((f) => f.data);
    expect(frames.length).toBeGreaterThanOrEqual(18);
    const d = new Decapsulator({ port, strict: true, vnis: new VniSet([42]) });
    const r = new DecapResult();
    const summary: string[] = [];
    frames.forEach((f, i) => {
      expect(wireDropName(d.decapFrame(f, 0, f.length, r)), `frame ${i + 1}`).toBe('none');
      expect([r.vni, r.dstPort, r.innerStart, r.innerEnd]).toEqual([42, port, 50, f.length]);
      expect(r.srcPort).toBeGreaterThanOrEqual(32768);
      expect(r.srcPort).toBeLessThanOrEqual(60999);
      const repr = dissectFrame(f);
      expect(repr.malformed, `frame ${i + 1}`).toBeUndefined();
      expect(emitFrame(repr)).toEqual(f);
      const csum = f.readUInt16BE(40);
      if (udpcsum) expect(verifiesRef(pseudoHeaderRef(f.readUInt32BE(26), f.readUInt32BE(30), 17, f.length - 34), f.subarray(34))).toBe(true);
      else expect(csum).toBe(0);
      const [inner, l4] = innerOf(repr.layers);
      summary.push(inner?.layer === 'arp' ? `arp${inner.oper}` : l4?.layer === 'icmp' ? `icmp${l4.type}` : l4?.layer === 'tcp' ? `tcp${l4.flags & 0x12}` : `${l4?.layer}`);
    });
    // The traffic capture.sh makes (the TCP teardown may be one frame longer or shorter).
    const count = (k: string): number => summary.filter((s) => s === k).length;
    expect([count('arp1'), count('arp2'), count('icmp8'), count('icmp0'), count('icmp3'), count('udp'), count('tcp2'), count('tcp18')]).toEqual([1, 1, 3, 3, 1, 1, 1, 1]);
  });

  it('cleans up its namespaces, its tcpdump and its partial file when it fails half-way', () => {
    // A ping that fails makes the script stop while tcpdump captures inside namespace A.
    const bin = mkdtempSync(join(tmpdir(), 'flatnet-fakebin-'));
    const failedDir = join(out, 'failed');
    try {
      writeFileSync(join(bin, 'ping'), '#!/bin/sh\nexit 1\n');
      chmodSync(join(bin, 'ping'), 0o755);
      const failed = runCapture(failedDir, { ...process.env, PATH: `${bin}:${process.env.PATH ?? ''}` });
      expect(failed.status).not.toBe(0);
      expect(listNetns(failed.prefix)).toEqual([]);
      expect(readdirSync(failedDir)).toEqual([]); // neither a .pcap nor the .pcap.tmp tcpdump was writing
      expect(processesMentioning(failedDir)).toEqual([]);
    } finally {
      rmSync(bin, { recursive: true, force: true });
    }
  }, 120_000);
});
