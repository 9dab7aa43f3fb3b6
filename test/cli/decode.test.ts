import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildProgram } from '../../src/cli/main.js';
import { PcapWriter } from '../../src/pcap/pcap.js';
import { buildInner, encapsulate } from '../support/frames.js';
import { KERNEL_FIXTURES, REPO_ROOT, kernelFixture, readFrames } from '../support/pcap.js';

const tmp = mkdtempSync(join(tmpdir(), 'flatnet-cli-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

/** Runs `flatnet decode ...args` in-process and returns its output lines. */
async function decode(...args: string[]): Promise<string[]> {
  let out = '';
  await buildProgram((s) => { out += s; }).parseAsync(['node', 'flatnet', 'decode', ...args]);
  expect(out.endsWith('\n')).toBe(true);
  return out.slice(0, -1).split('\n');
}

function writePcap(name: string, frames: readonly Buffer[]): string {
  const path = join(tmp, name);
  const w = new PcapWriter(path);
  frames.forEach((f, i) => w.write(f, 0, f.length, 1_700_000_000 + i, 250_000));
  w.close();
  return path;
}

// A capture with one good frame and one crafted fault per line (outer UDP checksum off).
const good = (): Buffer => encapsulate(buildInner({ kind: 'icmp' }));
const fixIp = (f: Buffer): Buffer => {
  f.writeUInt16BE(0, 24);
  let s = 0;
  for (let i = 14; i < 34; i += 2) s += f.readUInt16BE(i);
  while (s > 0xffff) s = (s & 0xffff) + (s >>> 16);
  f.writeUInt16BE(0xffff - s, 24);
  return f;
};
const CRAFTED: readonly (readonly [string, Buffer, string | null])[] = [
  ['valid', good(), 'none'],
  ['I flag clear', ((f) => { f[42] = 0x00; return f; })(good()), 'vxlan_no_i_flag'],
  ['reserved bit set', ((f) => { f[49] = 0x01; return f; })(good()), 'vxlan_reserved_set'],
  ['bad outer IPv4 checksum', ((f) => { f[25]! ^= 0xff; return f; })(good()), 'ipv4_bad_checksum'],
  ['VXLAN header cut short', ((f) => { f.writeUInt16BE(15, 38); return f; })(good()), 'vxlan_truncated'],
  ['inner source MAC multicast', ((f) => { f[56] = 0x01; return f; })(good()), 'inner_src_mac_invalid'],
  ['GBP header', ((f) => { f[42] = 0x88; f.writeUInt16BE(0x1234, 44); return f; })(good()), 'vxlan_reserved_set'],
  ['fragment', fixIp(((f) => { f.writeUInt16BE(0x2000, 20); return f; })(good())), 'ipv4_fragment'],
  ['UDP length 7', ((f) => { f.writeUInt16BE(7, 38); return f; })(good()), 'udp_bad_len'],
  ['UDP length beyond the IPv4 payload', ((f) => { f.writeUInt16BE(f.length - 34 + 1, 38); return f; })(good()), 'udp_bad_len'],
  ['a later fragment (no UDP header)', fixIp(((f) => { f.writeUInt16BE(0x0010, 20); return f; })(good())), null],
  ['DNS, not VXLAN', ((f) => { f.writeUInt16BE(53, 36); return f; })(good()), null],
  ['plain ARP on the underlay', buildInner({ kind: 'arp' }), null],
];
let craftedPath = '';
let bigPath = '';

beforeAll(() => {
  craftedPath = writePcap('crafted.pcap', CRAFTED.map(([, f]) => f));
  const k = readFrames(kernelFixture(KERNEL_FIXTURES[0].file)).map((f) => f.data);
  bigPath = writePcap('big.pcap', Array.from({ length: 20_000 }, (_, i) => k[i % k.length]!));
});

describe('flatnet decode FILE', () => {
  it.each(KERNEL_FIXTURES.map((f) => [f.file, f.port] as const))('%s: a header, one line per frame with VNI and addresses, a count', async (file) => {
    const lines = await decode(kernelFixture(file));
    const frames = readFrames(kernelFixture(file));
    expect(lines).toHaveLength(1 + 21 + 1);
    expect(lines[0]).toMatch(/^\s+No\.\s+Time\s+Len\s+Summary$/);
    lines.slice(1, 22).forEach((line, i) => {
      const m = /^\s*(\d+)\s+(\d+\.\d{6})\s+(\d+)\s+(.*)$/.exec(line);
      expect(m, line).not.toBeNull();
      expect(Number(m![1])).toBe(i + 1);
      expect(Number(m![3])).toBe(frames[i]!.origLen);
      const summary = m![4]!;
      expect(summary).toContain('VXLAN vni=42');
      expect(summary).toMatch(/198\.51\.100\.[12]:\d+ → 198\.51\.100\.[12]:(4789|8472) UDP/);
      expect(summary).toMatch(/10\.244\.1\.[12]/);
      expect(summary).not.toContain('[drop:');
      expect(summary).not.toContain('malformed');
    });
    expect(Number(lines[1]!.trim().split(/\s+/)[1])).toBe(0); // time relative to the first frame
    expect(lines[22]).toBe('21 frames');
  });

  it('shows the drop reason of each crafted bad frame, and counts them', async () => {
    const lines = await decode(craftedPath);
    expect(lines).toHaveLength(1 + CRAFTED.length + 1);
    CRAFTED.forEach(([name, , drop], i) => {
      const line = lines[1 + i]!;
      if (drop === null || drop === 'none') expect(line, name).not.toContain('[drop:');
      else expect(line, name).toContain(`[drop: ${drop}]`);
    });
    expect(lines[2]).toContain('flags=0x00');
    expect(lines[5]).toContain('[malformed vxlan:');
    expect(lines[7]).toContain('gbp=4660');
    expect(lines[13]).toContain('ARP who-has');
    const dropped = CRAFTED.filter(([, , d]) => d !== null && d !== 'none').length;
    expect(lines.at(-1)).toBe(`${CRAFTED.length} frames, ${dropped} VXLAN frames the strict receive path drops`);
  });

  it('--lenient accepts reserved bits, --gbp the group policy bits', async () => {
    const lenient = await decode(craftedPath, '--lenient');
    expect(lenient[3]).not.toContain('[drop:');
    expect(lenient[2]).toContain('[drop: vxlan_no_i_flag]'); // the I flag is still required
    const gbp = await decode(craftedPath, '--gbp');
    expect(gbp[7]).not.toContain('[drop:');
    expect(gbp[3]).toContain('[drop: vxlan_reserved_set]');
  });

  it('--json prints one JSON object per frame with the decoded fields', async () => {
    const file = kernelFixture(KERNEL_FIXTURES[2].file); // 8472, udpcsum
    const frames = readFrames(file);
    const lines = await decode(file, '--json');
    expect(lines).toHaveLength(21);
    lines.forEach((line, i) => {
      const o = JSON.parse(line) as Record<string, unknown> & { layers: Record<string, unknown>[] };
      expect(o).toMatchObject({ no: i + 1, tsSec: frames[i]!.tsSec, tsNsec: frames[i]!.tsNsec, capLen: frames[i]!.data.length, origLen: frames[i]!.origLen, drop: 'none', length: frames[i]!.data.length });
      expect(typeof o.time).toBe('number');
      expect(o.summary).toContain('VXLAN vni=42');
      expect(o.layers.map((l) => l.layer).slice(0, 5)).toEqual(['eth', 'ipv4', 'udp', 'vxlan', 'eth']);
      expect(o.layers[0]).toMatchObject({ etherType: 0x0800 });
      expect([o.layers[0]!.src, o.layers[0]!.dst].sort()).toEqual(['02:00:c6:33:64:01', '02:00:c6:33:64:02']);
      expect([o.layers[1]!.src, o.layers[1]!.dst].sort()).toEqual(['198.51.100.1', '198.51.100.2']);
      expect(o.layers[2]).toMatchObject({ dstPort: 8472, checksumStatus: 'good' });
      expect(o.layers[3]).toMatchObject({ vni: 42, flags: 8, i: true, reserved24: 0, reserved8: 0 });
      expect(o.malformed).toBeUndefined();
    });
  });

  it('--json carries drop reasons and malformed layers; non-VXLAN frames have drop null', async () => {
    const objs = (await decode(craftedPath, '--json')).map((l) => JSON.parse(l) as { drop: string | null; malformed?: { layer: string; code: string } });
    expect(objs.map((o) => o.drop)).toEqual(CRAFTED.map(([, , d]) => d));
    expect(objs[4]!.malformed).toEqual(expect.objectContaining({ layer: 'vxlan', code: 'ERR_WIRE_TRUNCATED' }));
  });

  it('a missing file rejects with ENOENT before any output', async () => {
    let out = '';
    await expect(buildProgram((s) => { out += s; }).parseAsync(['node', 'flatnet', 'decode', join(tmp, 'missing.pcap')])).rejects.toMatchObject({ code: 'ENOENT' });
    expect(out).toBe('');
  });

  it('-c stops after n frames', async () => {
    const lines = await decode(kernelFixture(KERNEL_FIXTURES[0].file), '-c', '2');
    expect(lines).toHaveLength(1 + 2 + 1);
    expect(lines.at(-1)).toBe('2 frames');
  });

  it('--vxlan-port limits which ports are decoded as VXLAN', async () => {
    const lines = await decode(kernelFixture(KERNEL_FIXTURES[2].file), '--vxlan-port', '4789'); // an 8472 capture
    for (const l of lines.slice(1, 22)) {
      expect(l).not.toContain('VXLAN');
      expect(l).toContain(':8472 UDP');
    }
  });

  it('reads pcapng too', async () => {
    const path = join(tmp, 'x.pcapng');
    const frame = good();
    const u32 = (v: number): Buffer => { const b = Buffer.alloc(4); b.writeUInt32LE(v); return b; };
    const block = (type: number, body: Buffer): Buffer => Buffer.concat([u32(type), u32(12 + body.length), body, u32(12 + body.length)]);
    const pad = Buffer.alloc((4 - (frame.length % 4)) % 4);
    writeFileSync(path, Buffer.concat([
      block(0x0a0d0d0a, Buffer.from('4d3c2b1a01000000ffffffffffffffff', 'hex')),
      block(1, Buffer.from('0100000000000000', 'hex')),
      block(6, Buffer.concat([u32(0), u32(0), u32(0), u32(frame.length), u32(frame.length), frame, pad])),
    ]));
    const lines = await decode(path);
    expect(lines[1]).toContain('VXLAN vni=42');
  });
});

describe('the flatnet executable', () => {
  const main = join(REPO_ROOT, 'dist/src/cli/main.js');

  beforeAll(() => {
    // The executable runs from dist/: rebuild it when src/ is newer (CI builds it in .ci/setup).
    const newest = (dir: string): number => readdirSync(dir, { withFileTypes: true, recursive: true })
      .filter((e) => e.isFile() && e.name.endsWith('.ts'))
      .reduce((m, e) => Math.max(m, statSync(join(e.parentPath, e.name)).mtimeMs), 0);
    if (!existsSync(main) || statSync(main).mtimeMs < newest(join(REPO_ROOT, 'src'))) {
      execFileSync(join(REPO_ROOT, 'node_modules/.bin/tsc'), ['-p', join(REPO_ROOT, 'tsconfig.json')], { stdio: 'ignore' });
    }
  }, 120_000);

  it('survives `| head`: an early-closed pipe ends it quietly with status 0', () => {
    const r = spawnSync('bash', ['-c', 'set -o pipefail; node "$0" decode "$1" | head -n 3; echo "status=${PIPESTATUS[0]}"', main, bigPath], { encoding: 'utf8', timeout: 60_000 });
    const out = r.stdout.trim().split('\n');
    expect(out.slice(0, 3)).toHaveLength(3);
    expect(out[1]).toContain('VXLAN vni=42');
    expect(out.at(-1)).toBe('status=0');
    expect(r.stderr).toBe('');
  });

  it('prints all 20000 lines when nobody closes the pipe', () => {
    const r = spawnSync('node', [main, 'decode', bigPath], { encoding: 'utf8', maxBuffer: 64 << 20, timeout: 60_000 });
    expect(r.status).toBe(0);
    expect(r.stdout.trim().split('\n')).toHaveLength(20_002);
  });

  it.each([
    ['a file that does not exist', join(tmp, 'missing.pcap')],
    ['a file that is not a capture', join(tmp, 'not-a-capture.txt')],
  ])('exits with status 1 and one flatnet: line on stderr for %s', (_name, path) => {
    writeFileSync(join(tmp, 'not-a-capture.txt'), 'hello, world\n');
    const r = spawnSync('node', [main, 'decode', path], { encoding: 'utf8', timeout: 30_000 });
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/^flatnet: .*\n$/);
    expect(r.stdout).toBe(''); // regression: the table header used to be printed before the error
  });
});
