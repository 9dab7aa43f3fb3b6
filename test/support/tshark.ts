/**
 * tshark as an independent field oracle: dissect a whole pcap in ONE tshark process and map
 * its fields onto the flat key schema of test/support/gen.ts (FIELD_KEYS).
 *
 * How tshark is run, and why:
 *   - `-T fields -E occurrence=a`: tshark repeats a field once per layer that has it, in
 *     dissection order, so `ip.src` is "outer;inner" (outer first). The aggregator is U+001F,
 *     which no field value (expert messages included) contains.
 *   - `-d udp.port==8472,vxlan`: Wireshark registers VXLAN on 4789 only; 8472 is Linux's default.
 *   - `-o ip|udp|tcp.check_checksum:TRUE`: checksum status is only computed when asked for.
 *   - `-o tcp.analyze_sequence_numbers:FALSE`, `-o arp.detect_duplicate_ips:FALSE`: the frames
 *     are independent random frames, not conversations; cross-frame sequence and duplicate-IP
 *     analysis would raise warnings about the *set* of frames, never about one frame's bytes.
 *   - A private configuration directory (WIRESHARK_CONFIG_DIR) whose `disabled_protos` turns off
 *     every protocol except frame, eth, ethertype, vlan, ip, arp, icmp, udp, tcp, vxlan, data and
 *     the `_ws.*` pseudo-protocols (malformed, expert). Random payloads on random ports would
 *     otherwise be dissected as DNS, mDNS, ... and "malformed" there, which says nothing about
 *     our codec; every header we build is still dissected. It also keeps a developer's personal
 *     preferences out of the run.
 */

import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { PcapWriter } from '../../src/pcap/pcap.js';
import type { Fields, FieldValue } from './fields.js';

const run = promisify(execFile);

/** Wireshark's expert severities (epan/proto.h PI_CHAT .. PI_ERROR). */
export const ExpertSeverity = { CHAT: 0x0020_0000, NOTE: 0x0040_0000, WARN: 0x0060_0000, ERROR: 0x0080_0000 } as const;

export interface ExpertItem {
  readonly severity: number;
  readonly message: string;
}

export interface TsharkFrame {
  /** 1-based frame number as tshark counts. */
  readonly number: number;
  readonly fields: Fields;
  /** Every requested tshark field, all occurrences, as printed (for assertions outside the schema). */
  readonly raw: Readonly<Record<string, readonly string[]>>;
  readonly malformed: boolean;
  readonly experts: readonly ExpertItem[];
  readonly protocols: string;
}

/** Protocols left enabled (filter names); everything else is disabled. */
const KEEP = new Set(['frame', 'eth', 'ethertype', 'vlan', 'ip', 'arp', 'icmp', 'udp', 'tcp', 'vxlan', 'data']);

const TSHARK_FIELDS = [
  'frame.number', 'frame.len', 'frame.protocols', '_ws.malformed', '_ws.expert.severity', '_ws.expert.message',
  'eth.src', 'eth.dst', 'eth.type', 'vlan.id', 'vlan.priority', 'vlan.dei', 'vlan.etype',
  'ip.src', 'ip.dst', 'ip.ttl', 'ip.id', 'ip.flags.df', 'ip.flags.mf', 'ip.dsfield.dscp', 'ip.dsfield.ecn', 'ip.hdr_len',
  'ip.len', 'ip.proto', 'ip.checksum.status', 'ip.opt.type',
  'udp.srcport', 'udp.dstport', 'udp.length', 'udp.checksum', 'udp.checksum.status',
  'vxlan.flags', 'vxlan.flag_i', 'vxlan.flag_g', 'vxlan.flag_d', 'vxlan.flag_a', 'vxlan.flags_reserved', 'vxlan.gbp',
  'vxlan.vni', 'vxlan.reserved8',
  'arp.opcode', 'arp.src.hw_mac', 'arp.src.proto_ipv4', 'arp.dst.hw_mac', 'arp.dst.proto_ipv4',
  'icmp.type', 'icmp.code', 'icmp.ident', 'icmp.seq', 'icmp.checksum.status',
  'tcp.srcport', 'tcp.dstport', 'tcp.seq_raw', 'tcp.ack_raw', 'tcp.flags', 'tcp.window_size_value', 'tcp.urgent_pointer',
  'tcp.hdr_len', 'tcp.len', 'tcp.option_kind', 'tcp.options.mss_val', 'tcp.checksum.status',
] as const;

const AGG = '\u001f';

/** tsharkMissing: why the tshark oracle cannot run here, or null when it can. */
export async function tsharkMissing(): Promise<string | null> {
  try {
    const { stdout } = await run('tshark', ['--version'], { maxBuffer: 1 << 20 });
    return /TShark/.test(stdout) ? null : 'tshark --version printed no version';
  } catch (e) {
    return `tshark not runnable (${(e as Error).message.split('\n')[0]}); install it with .ci/setup`;
  }
}

/** writePcap writes frames as one classic pcap file (Ethernet link type). */
export function writePcap(path: string, frames: readonly Buffer[]): void {
  const w = new PcapWriter(path);
  try {
    for (let i = 0; i < frames.length; i++) {
      const f = frames[i]!;
      w.write(f, 0, f.length, 1_700_000_000 + i, 0);
    }
  } finally {
    w.close();
  }
}

/** One tshark configuration (a private config directory); close() removes it. */
export class Tshark {
  private constructor(private readonly configDir: string) {}

  static async create(): Promise<Tshark> {
    const { stdout } = await run('tshark', ['-G', 'protocols'], { maxBuffer: 64 << 20 });
    const names = stdout.split('\n').map((l) => l.split('\t')[2] ?? '').filter((n) => n !== '');
    const disabled = names.filter((n) => !KEEP.has(n) && !n.startsWith('_ws.'));
    for (const k of KEEP) if (!names.includes(k)) throw new Error(`tshark has no protocol named ${k}`);
    const dir = mkdtempSync(join(tmpdir(), 'flatnet-tshark-'));
    writeFileSync(join(dir, 'disabled_protos'), `${disabled.join('\n')}\n`);
    return new Tshark(dir);
  }

  close(): void {
    rmSync(this.configDir, { recursive: true, force: true });
  }

  /** dissect runs tshark once over a pcap and returns one TsharkFrame per frame, in order. */
  async dissect(pcapPath: string): Promise<TsharkFrame[]> {
    const args = [
      '-n', '-r', pcapPath,
      '-d', 'udp.port==8472,vxlan',
      '-o', 'ip.check_checksum:TRUE', '-o', 'udp.check_checksum:TRUE', '-o', 'tcp.check_checksum:TRUE',
      '-o', 'tcp.analyze_sequence_numbers:FALSE', '-o', 'arp.detect_duplicate_ips:FALSE',
      '-T', 'fields', '-E', 'separator=/t', '-E', 'occurrence=a', '-E', `aggregator=${AGG}`, '-E', 'quote=n',
      ...TSHARK_FIELDS.flatMap((f) => ['-e', f]),
    ];
    const { stdout } = await run('tshark', args, {
      maxBuffer: 256 << 20,
      env: { ...process.env, WIRESHARK_CONFIG_DIR: this.configDir },
    });
    const out: TsharkFrame[] = [];
    for (const line of stdout.split('\n')) {
      if (line === '') continue;
      const cols = line.split('\t');
      const raw: Record<string, string[]> = {};
      TSHARK_FIELDS.forEach((name, i) => {
        const v = cols[i] ?? '';
        raw[name] = v === '' ? [] : v.split(AGG);
      });
      out.push(toFrame(raw));
    }
    return out;
  }
}

function toFrame(raw: Record<string, string[]>): TsharkFrame {
  const sev = raw['_ws.expert.severity'] ?? [];
  const msg = raw['_ws.expert.message'] ?? [];
  return {
    number: Number(one(raw, 'frame.number')),
    fields: mapFields(raw),
    raw,
    malformed: (raw['_ws.malformed'] ?? []).length > 0,
    experts: sev.map((s, i) => ({ severity: Number(s), message: msg[i] ?? '' })),
    protocols: one(raw, 'frame.protocols') ?? '',
  };
}

function one(raw: Record<string, string[]>, name: string, occurrence = 0): string | undefined {
  return raw[name]?.[occurrence];
}

const num = (v: string): number => Number(v); // decimal or 0x-prefixed hex
const bool = (v: string): boolean => v === '1' || v === 'True' || v === 'true';
/** Wireshark's proto_checksum_enum_e: 0 bad, 1 good, 2 unverified, 3 not present, 4 illegal. */
const CSUM: Record<string, string> = { '0': 'bad', '1': 'good', '2': 'unverified', '3': 'none', '4': 'illegal' };
const csum = (v: string): string => CSUM[v] ?? `status-${v}`;
/**
 * Option kinds up to and including the first end-of-list: tshark lists every zero padding byte
 * after it as one more "End of Option List" (kind 0), scapy and our codec stop there.
 */
const kindsToEol = (kinds: readonly string[]): string => {
  const out: number[] = [];
  for (const k of kinds) {
    out.push(num(k));
    if (num(k) === 0) break;
  }
  return out.join(',');
};

/**
 * mapFields: tshark's per-occurrence fields to the flat schema. Occurrence 0 of eth/ip/udp is
 * the outer frame, occurrence 1 the inner one (the dissection order). IPv4 option kinds are
 * not attributed to a layer by tshark: they go to the one IPv4 header longer than 20 bytes.
 */
function mapFields(raw: Record<string, string[]>): Fields {
  const f: Fields = {};
  const put = (key: string, name: string, occ: number, conv: (v: string) => FieldValue): void => {
    const v = one(raw, name, occ);
    if (v !== undefined) f[key] = conv(v);
  };
  const len = one(raw, 'frame.len');
  if (len !== undefined) f['frame.len'] = num(len);

  const layers: [string, number][] = [['o', 0], ['i', 1]];
  for (const [p, occ] of layers) {
    put(`${p}.eth.src`, 'eth.src', occ, String);
    put(`${p}.eth.dst`, 'eth.dst', occ, String);
  }
  put('o.eth.type', 'eth.type', 0, num);
  // Inner EtherType: after the 802.1Q tag when there is one (the outer frame is never tagged here).
  if ((raw['vlan.id'] ?? []).length > 0) {
    put('i.eth.type', 'vlan.etype', 0, num);
    put('i.vlan.id', 'vlan.id', 0, num);
    put('i.vlan.pcp', 'vlan.priority', 0, num);
    put('i.vlan.dei', 'vlan.dei', 0, bool);
  } else {
    put('i.eth.type', 'eth.type', 1, num);
  }

  const ipHdrLens = (raw['ip.hdr_len'] ?? []).map(num);
  for (const [p, occ] of layers) {
    put(`${p}.ip.src`, 'ip.src', occ, String);
    put(`${p}.ip.dst`, 'ip.dst', occ, String);
    put(`${p}.ip.ttl`, 'ip.ttl', occ, num);
    put(`${p}.ip.id`, 'ip.id', occ, num);
    put(`${p}.ip.df`, 'ip.flags.df', occ, bool);
    put(`${p}.ip.mf`, 'ip.flags.mf', occ, bool);
    put(`${p}.ip.dscp`, 'ip.dsfield.dscp', occ, num);
    put(`${p}.ip.ecn`, 'ip.dsfield.ecn', occ, num);
    put(`${p}.ip.hdr_len`, 'ip.hdr_len', occ, num);
    put(`${p}.ip.len`, 'ip.len', occ, num);
    put(`${p}.ip.proto`, 'ip.proto', occ, num);
    put(`${p}.ip.csum`, 'ip.checksum.status', occ, csum);
  }
  const optKinds = raw['ip.opt.type'] ?? [];
  if (optKinds.length > 0) {
    const withOpts = ipHdrLens.flatMap((l, i) => (l > 20 ? [i] : []));
    const key = withOpts.length === 1 ? `${withOpts[0] === 0 ? 'o' : 'i'}.ip.opts` : 'ip.opts(ambiguous)';
    f[key] = kindsToEol(optKinds);
  }

  // UDP: occurrence 0 is the outer datagram only if it sits in the outer IPv4 header.
  const outerUdp = one(raw, 'ip.proto', 0) === '17';
  const udpLayers: [string, number][] = outerUdp ? [['o', 0], ['i', 1]] : [['i', 0]];
  for (const [p, occ] of udpLayers) {
    put(`${p}.udp.sport`, 'udp.srcport', occ, num);
    put(`${p}.udp.dport`, 'udp.dstport', occ, num);
    put(`${p}.udp.len`, 'udp.length', occ, num);
    put(`${p}.udp.csum`, 'udp.checksum.status', occ, csum);
  }

  const vxFlags = one(raw, 'vxlan.flags');
  if (vxFlags !== undefined) {
    const fl = num(vxFlags);
    f['vx.flags'] = fl >>> 8;
    f['vx.b1'] = fl & 0xff;
    put('vx.i', 'vxlan.flag_i', 0, bool);
    put('vx.g', 'vxlan.flag_g', 0, bool);
    put('vx.d', 'vxlan.flag_d', 0, bool);
    put('vx.a', 'vxlan.flag_a', 0, bool);
    put('vx.b23', 'vxlan.gbp', 0, num);
    put('vx.vni', 'vxlan.vni', 0, num);
    put('vx.rsvd8', 'vxlan.reserved8', 0, num);
  }

  put('i.arp.op', 'arp.opcode', 0, num);
  put('i.arp.sha', 'arp.src.hw_mac', 0, String);
  put('i.arp.spa', 'arp.src.proto_ipv4', 0, String);
  put('i.arp.tha', 'arp.dst.hw_mac', 0, String);
  put('i.arp.tpa', 'arp.dst.proto_ipv4', 0, String);

  put('i.icmp.type', 'icmp.type', 0, num);
  put('i.icmp.code', 'icmp.code', 0, num);
  put('i.icmp.ident', 'icmp.ident', 0, num);
  put('i.icmp.seq', 'icmp.seq', 0, num);
  put('i.icmp.csum', 'icmp.checksum.status', 0, csum);

  put('i.tcp.sport', 'tcp.srcport', 0, num);
  put('i.tcp.dport', 'tcp.dstport', 0, num);
  put('i.tcp.seq', 'tcp.seq_raw', 0, num);
  put('i.tcp.ack', 'tcp.ack_raw', 0, num);
  put('i.tcp.flags', 'tcp.flags', 0, num);
  put('i.tcp.win', 'tcp.window_size_value', 0, num);
  put('i.tcp.urg', 'tcp.urgent_pointer', 0, num);
  put('i.tcp.hdr_len', 'tcp.hdr_len', 0, num);
  put('i.tcp.len', 'tcp.len', 0, num);
  const kinds = raw['tcp.option_kind'] ?? [];
  if (kinds.length > 0) f['i.tcp.opts'] = kindsToEol(kinds);
  put('i.tcp.mss', 'tcp.options.mss_val', 0, num);
  put('i.tcp.csum', 'tcp.checksum.status', 0, csum);
  return f;
}
