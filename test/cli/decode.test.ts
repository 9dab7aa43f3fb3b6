import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildProgram } from '../../src/cli/main.js';
import { PcapWriter } from '../../src/pcap/pcap.js';
import { buildInner, encapsulate } from '../support/frames.js';

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

beforeAll(() => {
  craftedPath = writePcap('crafted.pcap', CRAFTED.map(([, f]) => f));
});

describe('flatnet decode FILE: drop reasons', () => {
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

  it('--json carries drop reasons and malformed layers; non-VXLAN frames have drop null', async () => {
    const objs = (await decode(craftedPath, '--json')).map((l) => JSON.parse(l) as { drop: string | null; malformed?: { layer: string; code: string } });
    expect(objs.map((o) => o.drop)).toEqual(CRAFTED.map(([, , d]) => d));
    expect(objs[4]!.malformed).toEqual(expect.objectContaining({ layer: 'vxlan', code: 'ERR_WIRE_TRUNCATED' }));
  });
});
