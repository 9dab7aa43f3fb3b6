// The drop table is a published interface: counter indexes (/metrics and `show counters` read
// them by name, dashboards by label) are append-only, the codec's reasons are its first entries
// with the codec's own numbers, every reason explains itself, and an MTU or offload refusal
// means one reason wherever it comes from.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { MtuStatus } from '../../src/mtu/status.js';
import { DROP_COUNT, DROP_HELP, DROP_NAMES, Drop, dropForStatus } from '../../src/pipeline/drop.js';
import { WIRE_DROP_MAX, WireDrop, wireDropName } from '../../src/wire/drop.js';

/** The published order. New reasons go at the end; nothing here is ever renumbered or renamed. */
const PUBLISHED = [
  'none', 'eth_truncated', 'outer_not_ipv4', 'ipv4_truncated', 'ipv4_bad_version', 'ipv4_bad_ihl', 'ipv4_bad_total_len',
  'ipv4_bad_checksum', 'ipv4_fragment', 'outer_not_udp', 'udp_truncated', 'udp_bad_len', 'udp_bad_checksum',
  'udp_port_mismatch', 'vxlan_truncated', 'vxlan_no_i_flag', 'vxlan_reserved_set', 'vxlan_vni_unknown',
  'inner_eth_truncated', 'inner_src_mac_invalid', 'inner_src_mac_ours', 'ecn_ce_not_ect', 'vtep_unknown',
  'inner_src_not_in_peer_cidr', 'inner_dst_mac_not_ours', 'overlay_loop', 'vlan_tagged', 'spoof_src_mac', 'spoof_src_ip',
  'arp_spoof', 'pod_sent_vxlan', 'arp_malformed', 'arp_unanswered', 'ethertype_unsupported', 'l3_broadcast',
  'unknown_dst_mac', 'hairpin', 'no_route', 'ttl_exceeded', 'fdb_full', 'fdb_static_conflict', 'mtu_exceeded',
  'rx_truncated', 'tx_busy', 'tx_error', 'offload_invalid', 'gso_unsupported', 'no_buffer', 'too_many_segments',
  'no_egress_port', 'port_detached', 'gateway_unanswered', 'ipv4_bad_options', 'policy_denied_ingress', 'policy_denied_egress',
  'conntrack_full', 'service_no_endpoints', 'service_no_local_endpoints', 'nat_clash', 'inner_src_broadcast',
];

describe('the drop table', () => {
  it('keeps every published reason at its counter index (append-only)', () => {
    expect(DROP_NAMES.slice(0, PUBLISHED.length)).toEqual(PUBLISHED);
    expect(DROP_COUNT).toBe(DROP_NAMES.length);
    expect(new Set(DROP_NAMES).size).toBe(DROP_NAMES.length);
    expect(DROP_NAMES.every((n) => /^[a-z][a-z0-9_]*$/.test(n))).toBe(true);
  });

  it("starts with the codec's reasons, under the codec's numbers and names", () => {
    const wire = Object.entries(WireDrop);
    expect(wire).toHaveLength(WIRE_DROP_MAX + 1);
    for (const [k, v] of wire) {
      expect((Drop as Record<string, number>)[k]).toBe(v);
      expect(DROP_NAMES[v]).toBe(wireDropName(v));
    }
    expect(wireDropName(999)).toBe('wire_drop_999');
  });

  it('explains every reason in one line (what `show counters` and /metrics print)', () => {
    for (let i = 1; i < DROP_COUNT; i++) {
      const help = (DROP_HELP as Record<number, string>)[i];
      expect(help, DROP_NAMES[i]).toMatch(/^\S.{10,}$/);
      expect(help, DROP_NAMES[i]).not.toMatch(/\n/);
    }
    expect(Object.keys(DROP_HELP)).toHaveLength(DROP_COUNT - 1);
  });

  it("is the README's drop table: every reason in it, nothing in it that is not a reason", () => {
    const readme = readFileSync(new URL('../../README.md', import.meta.url), 'utf8');
    const section = readme.slice(readme.indexOf('## Drop reasons'), readme.indexOf('\n## ', readme.indexOf('## Drop reasons') + 1));
    const listed = new Set([...section.matchAll(/^\| (.+?) \|/gm)].flatMap((m) => [...m[1]!.matchAll(/`([a-z0-9_]+)`/g)].map((n) => n[1]!)));
    expect([...listed].filter((n) => !DROP_NAMES.includes(n))).toEqual([]);
    expect(DROP_NAMES.slice(1).filter((n) => !listed.has(n))).toEqual([]);
  });

  it.each<[string, number, string]>([
    ['a GSO type flatnet does not segment', MtuStatus.GSO_TYPE_UNSUPPORTED, 'gso_unsupported'],
    ['more pieces than one frame may make', MtuStatus.TOO_MANY_SEGMENTS, 'too_many_segments'],
    ['no room in the work area', MtuStatus.NO_ROOM, 'no_buffer'],
    ['a UDP-GSO datagram that cannot fit', MtuStatus.DATAGRAM_TOO_BIG, 'mtu_exceeded'],
    ['an MTU too small for fragments', MtuStatus.MTU_TOO_SMALL, 'mtu_exceeded'],
    ['a header checksum to launder', MtuStatus.BAD_IP_CHECKSUM, 'ipv4_bad_checksum'],
    ['options that do not parse', MtuStatus.BAD_IP_OPTIONS, 'ipv4_bad_options'],
    ['checksum offsets outside the frame', MtuStatus.CSUM_OUT_OF_RANGE, 'offload_invalid'],
    ['a GSO type for the other IP version', MtuStatus.GSO_TYPE_MISMATCH, 'offload_invalid'],
    ['gso_size 0', MtuStatus.BAD_GSO_SIZE, 'offload_invalid'],
  ])('maps an MTU/offload refusal to one reason: %s', (_what, status, reason) => {
    expect(DROP_NAMES[dropForStatus(status)]).toBe(reason);
  });

  it('maps every MtuStatus refusal to some reason other than none', () => {
    for (const v of Object.values(MtuStatus)) if (v < 0) expect(dropForStatus(v)).not.toBe(Drop.NONE);
  });
});
