/**
 * tshark cross-check of what src/mtu writes: segments (TCP over IPv4 and IPv6, UDP), IPv4
 * fragments (reassembled by tshark, the UDP checksum then verified over the whole datagram),
 * the frag-needed reply and an MSS-clamped SYN. Each goes into a pcap; tshark must find every
 * checksum good, the fields as intended, and nothing malformed. Skips, saying why, without
 * tshark (unless FLATNET_REQUIRE_ORACLES=1, as in CI).
 */

import { mkdtempSync, rmSync } from 'node:fs';
import { FrameLayout } from '../../src/mtu/layout.js';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { fragmentIpv4 } from '../../src/mtu/fragment.js';
import { clampMss } from '../../src/mtu/mss.js';
import { buildFragNeeded } from '../../src/mtu/pmtu.js';
import { segmentTcp, segmentUdp } from '../../src/offload/segment.js';
import { EthernetView } from '../../src/wire/ethernet.js';
import { Icmpv4View } from '../../src/wire/icmpv4.js';
import { Ipv4View } from '../../src/wire/ipv4.js';
import { hex } from '../support/hex.js';
import { payloadOf, tcpFrame, udpFrame } from '../support/l4-frames.js';
import { ACK, CWR, FIN, PSH, SYN } from '../support/superframes.js';
import { tsharkMissing, writePcap } from '../support/tshark.js';
import { CSUM_GOOD, tsharkJson } from '../support/tshark-json.js';

const missing = await tsharkMissing();
const REQUIRE = process.env['FLATNET_REQUIRE_ORACLES'] === '1';
const SKIP = missing !== null && !REQUIRE;
if (SKIP) console.warn(`[mtu tshark] skipped: ${missing}`);

const dir = mkdtempSync(join(tmpdir(), 'flatnet-mtu-tshark-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const lens = new Int32Array(256);

/** Runs a splitter into a scratch buffer and returns the pieces as separate frames. */
function pieces(n: number, buf: Buffer, prefix: number): Buffer[] {
  expect(n).toBeGreaterThan(0);
  const stride = n > 1 ? prefix + lens[0]! : 0;
  return [...Array(n).keys()].map((k) => Buffer.from(buf.subarray(k * stride + prefix, k * stride + prefix + lens[k]!)));
}

const nums = (v: readonly string[] | undefined): number[] => (v ?? []).map((s) => Number(s));

describe.skipIf(SKIP)('tshark agrees with src/mtu', () => {
  it('TCP segments (IPv4 64 KB at MSS 1398, IPv6 at 1390): checksums good, seq and lengths right, flags placed', async () => {
    const x4 = tcpFrame({ seq: 4_000_000_000, payload: payloadOf(65_000), flags: ACK | PSH | FIN | CWR, csum: 'partial' });
    const x6 = tcpFrame({ v6: true, seq: 10, payload: payloadOf(10_000), flags: ACK | PSH, tcpOptions: hex('01 01 08 0a 00 00 00 07 00 00 00 09'), csum: 'partial' });
    const buf = Buffer.alloc(200_000);
    const s4 = pieces(segmentTcp(FrameLayout.of(x4), 1398, buf, 0, 8, lens), buf, 8);
    const s6 = pieces(segmentTcp(FrameLayout.of(x6), 1390, buf, 0, 0, lens), buf, 0);
    const file = join(dir, 'segments.pcap');
    writePcap(file, [...s4, ...s6]);
    const t = await tsharkJson(file, ['ip.checksum.status', 'tcp.checksum.status', 'tcp.seq_raw', 'tcp.len', 'tcp.flags', 'ip.len', 'ipv6.plen', '_ws.malformed']);
    expect(t).toHaveLength(s4.length + s6.length);
    expect(s4).toHaveLength(47);
    let seq = 4_000_000_000, total = 0;
    t.slice(0, 47).forEach((f, k) => {
      expect(f['_ws.malformed']).toBeUndefined();
      expect(f['ip.checksum.status']).toEqual([CSUM_GOOD]);
      expect(f['tcp.checksum.status']).toEqual([CSUM_GOOD]);
      expect(nums(f['tcp.seq_raw'])).toEqual([seq % 2 ** 32]);
      const len = nums(f['tcp.len'])[0]!;
      expect(len).toBe(k < 46 ? 1398 : 65_000 - 46 * 1398);
      expect(nums(f['ip.len'])).toEqual([40 + len]);
      // 0x80 CWR only first, 0x09 PSH|FIN only last
      expect(nums(f['tcp.flags'])).toEqual([k === 0 ? 0x90 : k === 46 ? 0x19 : 0x10]);
      seq += len;
      total += len;
    });
    expect(total).toBe(65_000);
    t.slice(47).forEach((f, k) => {
      expect(f['tcp.checksum.status']).toEqual([CSUM_GOOD]);
      expect(nums(f['tcp.seq_raw'])).toEqual([10 + 1390 * k]);
      expect(nums(f['ipv6.plen'])).toEqual([32 + nums(f['tcp.len'])[0]!]);
    });
  });

  it('UDP datagrams (USO) over IPv4 and IPv6: checksums good, lengths right', async () => {
    const u4 = udpFrame({ payload: payloadOf(5000), csum: 'partial' });
    const u6 = udpFrame({ v6: true, payload: payloadOf(3001), csum: 'partial' });
    const buf = Buffer.alloc(40_000);
    const d4 = pieces(segmentUdp(FrameLayout.of(u4), 1000, 1450, buf, 0, 50, lens), buf, 50);
    const d6 = pieces(segmentUdp(FrameLayout.of(u6), 1200, 1450, buf, 0, 0, lens), buf, 0);
    const file = join(dir, 'udp.pcap');
    writePcap(file, [...d4, ...d6]);
    const t = await tsharkJson(file, ['udp.checksum.status', 'udp.length', '_ws.malformed']);
    expect(t.map((f) => f['udp.checksum.status'])).toEqual(Array(d4.length + d6.length).fill([CSUM_GOOD]));
    expect(t.map((f) => nums(f['udp.length'])[0])).toEqual([1008, 1008, 1008, 1008, 1008, 1208, 1208, 609]);
    expect(t.every((f) => f['_ws.malformed'] === undefined)).toBe(true);
  });

  it('IPv4 fragments: tshark reassembles them and the UDP checksum verifies over the whole datagram', async () => {
    const x = udpFrame({ flagsFrag: 0, id: 0x5151, ipOptions: hex('94 04 00 00 | 07 07 04 00 00 00 00 | 00'), payload: payloadOf(4000), csum: 'full' });
    const buf = Buffer.alloc(20_000);
    const frags = pieces(fragmentIpv4(FrameLayout.of(x), 1450, buf, 0, 0, lens), buf, 0);
    expect(frags).toHaveLength(3);
    const file = join(dir, 'fragments.pcap');
    writePcap(file, frags);
    const t = await tsharkJson(file, ['ip.checksum.status', 'ip.id', 'ip.flags.mf', 'ip.frag_offset', 'ip.reassembled.length', 'ip.reassembled_in', 'udp.checksum.status', 'udp.length', '_ws.malformed']);
    expect(t.map((f) => f['ip.checksum.status'])).toEqual([[CSUM_GOOD], [CSUM_GOOD], [CSUM_GOOD]]);
    expect(t.map((f) => nums(f['ip.id'])[0])).toEqual([0x5151, 0x5151, 0x5151]);
    expect(t.map((f) => f['ip.flags.mf']?.[0])).toEqual(['1', '1', '0']);
    // (1450 - 32) & ~7 = 1416 data bytes per fragment; tshark 4.0 prints the field in 8-byte
    // units, other versions in bytes
    expect([[0, 177, 354], [0, 1416, 2832]]).toContainEqual(t.map((f) => nums(f['ip.frag_offset'])[0]));
    expect(nums(t[2]!['ip.reassembled.length'])).toEqual([4008]);
    expect(t[2]!['udp.checksum.status']).toEqual([CSUM_GOOD]);
    expect(nums(t[2]!['udp.length'])).toEqual([4008]);
    expect(t.every((f) => f['_ws.malformed'] === undefined)).toBe(true);
  });

  it('the frag-needed reply and an MSS-clamped SYN', async () => {
    const views = { eth: new EthernetView(), ip: new Ipv4View(), icmp: new Icmpv4View() };
    const big = tcpFrame({ payload: payloadOf(1460) });
    const reply = Buffer.alloc(600);
    const n = buildFragNeeded(FrameLayout.of(big), 1450, reply, 0, views);
    const syn = tcpFrame({ flags: SYN, tcpOptions: hex('02 04 05 b4 04 02 08 0a 00 00 00 01 00 00 00 00 01 03 03 07') });
    expect(clampMss(FrameLayout.of(syn), 1450)).toBe(1);
    const file = join(dir, 'replies.pcap');
    writePcap(file, [reply.subarray(0, n), syn]);
    const t = await tsharkJson(file, ['ip.checksum.status', 'icmp.type', 'icmp.code', 'icmp.mtu', 'icmp.checksum.status', 'ip.src', 'ip.dst', 'tcp.options.mss_val', 'tcp.checksum.status', '_ws.malformed']);
    expect(t[0]!['icmp.type']).toEqual(['3']);
    expect(t[0]!['icmp.code']).toEqual(['4']);
    expect(t[0]!['icmp.mtu']).toEqual(['1450']);
    expect(t[0]!['icmp.checksum.status']).toEqual([CSUM_GOOD]);
    // outer header first, then the quoted one: the reply goes from the original destination to its source
    expect(t[0]!['ip.src']).toEqual(['10.244.2.3', '10.244.1.1']);
    expect(t[0]!['ip.checksum.status']?.[0]).toBe(CSUM_GOOD);
    expect(t[1]!['tcp.options.mss_val']).toEqual(['1410']);
    expect(t[1]!['tcp.checksum.status']).toEqual([CSUM_GOOD]);
    expect(t.every((f) => f['_ws.malformed'] === undefined)).toBe(true);
  });
});
