/**
 * The flat field schema of the differential tests, and the comparison that reports mismatches.
 *
 * Four sources fill the same schema: the generators' *intended* values (gen.ts and
 * scapy_build.py), tshark (tshark.ts), scapy (scapy_dissect.py) and our own dissector
 * (fieldsOfRepr below). A key that is absent means "this decoder saw no such field", so an extra
 * or a missing layer shows up as a mismatch as well.
 */

import type { FrameRepr } from '../../src/wire/dissect.js';

export type FieldValue = string | number | boolean;
export type Fields = Record<string, FieldValue>;

/**
 * The keys, by layer: `o.` is the outer (underlay) frame, `vx.` the VXLAN header, `i.` the inner
 * frame. Checksum statuses are 'good' | 'bad' | 'none' (a zero UDP checksum). `*.opts` are
 * option kinds, comma-separated, up to and including the first end-of-list (what both
 * dissectors list: padding after it is not an option). `vx.b1` is byte 1 of the VXLAN header
 * (GBP flags), `vx.b23` bytes 2-3 (GBP group policy id); both are reserved without GBP.
 */
export const FIELD_KEYS = {
  frame: ['frame.len'],
  outerEth: ['o.eth.src', 'o.eth.dst', 'o.eth.type'],
  outerIp: ['o.ip.src', 'o.ip.dst', 'o.ip.ttl', 'o.ip.id', 'o.ip.df', 'o.ip.mf', 'o.ip.dscp', 'o.ip.ecn', 'o.ip.hdr_len', 'o.ip.len', 'o.ip.proto', 'o.ip.csum', 'o.ip.opts'],
  outerUdp: ['o.udp.sport', 'o.udp.dport', 'o.udp.len', 'o.udp.csum'],
  // vx.gpe_next_protocol: scapy only, when it reads flag 0x04 as VXLAN-GPE (never on valid frames).
  vxlan: ['vx.flags', 'vx.i', 'vx.g', 'vx.d', 'vx.a', 'vx.b1', 'vx.b23', 'vx.vni', 'vx.rsvd8', 'vx.gpe_next_protocol'],
  innerEth: ['i.eth.src', 'i.eth.dst', 'i.eth.type', 'i.vlan.id', 'i.vlan.pcp', 'i.vlan.dei'],
  arp: ['i.arp.op', 'i.arp.sha', 'i.arp.spa', 'i.arp.tha', 'i.arp.tpa'],
  innerIp: ['i.ip.src', 'i.ip.dst', 'i.ip.ttl', 'i.ip.id', 'i.ip.df', 'i.ip.mf', 'i.ip.dscp', 'i.ip.ecn', 'i.ip.hdr_len', 'i.ip.len', 'i.ip.proto', 'i.ip.csum', 'i.ip.opts'],
  icmp: ['i.icmp.type', 'i.icmp.code', 'i.icmp.ident', 'i.icmp.seq', 'i.icmp.csum'],
  udp: ['i.udp.sport', 'i.udp.dport', 'i.udp.len', 'i.udp.csum'],
  tcp: ['i.tcp.sport', 'i.tcp.dport', 'i.tcp.seq', 'i.tcp.ack', 'i.tcp.flags', 'i.tcp.win', 'i.tcp.urg', 'i.tcp.hdr_len', 'i.tcp.len', 'i.tcp.opts', 'i.tcp.mss', 'i.tcp.csum'],
  // Our Decapsulator's verdict: the Drop name, the inner frame's window "start-end", the GBP id it reports.
  decap: ['decap.drop', 'decap.inner', 'decap.gpid'],
} as const;

export const KNOWN_KEYS: ReadonlySet<string> = new Set(Object.values(FIELD_KEYS).flat());

/** The option kinds of an IPv4 or TCP option list, up to and including the first end-of-list. */
export function optionKinds(opts: ArrayLike<number>): string {
  const kinds: number[] = [];
  let i = 0;
  while (i < opts.length) {
    const k = opts[i]!;
    kinds.push(k);
    if (k === 0) break;
    if (k === 1) { i++; continue; }
    const len = opts[i + 1] ?? 0;
    if (len < 2) break; // malformed: stop rather than loop
    i += len;
  }
  return kinds.join(',');
}

export function sortKeys(f: Fields): Fields {
  const out: Fields = {};
  for (const k of Object.keys(f).sort()) out[k] = f[k]!;
  return out;
}

/**
 * fieldsOfRepr maps our own dissector's output (dissectFrame) onto the schema. Layers before the
 * VXLAN header are the outer frame, layers after it the inner one.
 */
export function fieldsOfRepr(fr: FrameRepr): Fields {
  const f: Fields = { 'frame.len': fr.length };
  let p = 'o';
  const layers = fr.layers;
  for (let n = 0; n < layers.length; n++) {
    const l = layers[n]!;
    switch (l.layer) {
      case 'eth':
        f[`${p}.eth.src`] = l.src;
        f[`${p}.eth.dst`] = l.dst;
        f[`${p}.eth.type`] = l.etherType;
        if (l.vlan !== undefined) {
          f[`${p}.vlan.id`] = l.vlan.vid;
          f[`${p}.vlan.pcp`] = l.vlan.pcp;
          f[`${p}.vlan.dei`] = l.vlan.dei;
        }
        break;
      case 'ipv4':
        Object.assign(f, {
          [`${p}.ip.src`]: l.src, [`${p}.ip.dst`]: l.dst, [`${p}.ip.ttl`]: l.ttl, [`${p}.ip.id`]: l.ident,
          [`${p}.ip.df`]: l.df, [`${p}.ip.mf`]: l.mf, [`${p}.ip.dscp`]: l.dscp, [`${p}.ip.ecn`]: l.ecn,
          [`${p}.ip.hdr_len`]: l.ihl * 4, [`${p}.ip.len`]: l.totalLen, [`${p}.ip.proto`]: l.protocol,
          [`${p}.ip.csum`]: l.checksumStatus,
        });
        if (l.options !== '') f[`${p}.ip.opts`] = optionKinds(Buffer.from(l.options, 'hex'));
        break;
      case 'udp':
        Object.assign(f, {
          [`${p}.udp.sport`]: l.srcPort, [`${p}.udp.dport`]: l.dstPort, [`${p}.udp.len`]: l.length, [`${p}.udp.csum`]: l.checksumStatus,
        });
        break;
      case 'vxlan': {
        const b1 = l.reserved24 >>> 16;
        Object.assign(f, {
          'vx.flags': l.flags, 'vx.i': l.i, 'vx.g': (l.flags & 0x80) !== 0, 'vx.d': (b1 & 0x40) !== 0, 'vx.a': (b1 & 0x08) !== 0,
          'vx.b1': b1, 'vx.b23': l.reserved24 & 0xffff, 'vx.vni': l.vni, 'vx.rsvd8': l.reserved8,
        });
        p = 'i';
        break;
      }
      case 'arp':
        Object.assign(f, { 'i.arp.op': l.oper, 'i.arp.sha': l.sha, 'i.arp.spa': l.spa, 'i.arp.tha': l.tha, 'i.arp.tpa': l.tpa });
        break;
      case 'icmp':
        Object.assign(f, { 'i.icmp.type': l.type, 'i.icmp.code': l.code, 'i.icmp.csum': l.checksumStatus });
        if (l.ident !== undefined) f['i.icmp.ident'] = l.ident;
        if (l.seq !== undefined) f['i.icmp.seq'] = l.seq;
        break;
      case 'tcp': {
        const next = layers[n + 1];
        Object.assign(f, {
          'i.tcp.sport': l.srcPort, 'i.tcp.dport': l.dstPort, 'i.tcp.seq': l.seq, 'i.tcp.ack': l.ack, 'i.tcp.flags': l.flags,
          'i.tcp.win': l.window, 'i.tcp.urg': l.urgent, 'i.tcp.hdr_len': l.dataOffset * 4,
          'i.tcp.len': next?.layer === 'data' ? next.hex.length / 2 : 0, 'i.tcp.csum': l.checksumStatus,
        });
        if (l.options !== '') f['i.tcp.opts'] = optionKinds(Buffer.from(l.options, 'hex'));
        if (l.mss !== undefined) f['i.tcp.mss'] = l.mss;
        break;
      }
      case 'data':
        break;
    }
  }
  return sortKeys(f);
}

const show = (v: FieldValue | undefined): string => (v === undefined ? '<absent>' : JSON.stringify(v));

/**
 * diffFields compares each decoder's fields with the intended ones, over the union of their
 * keys, and returns one line per mismatching field, e.g.
 *   frame #12 (seed 123; tcp+vlan vni=7 ...): i.tcp.mss: intended=1460 tshark=1461 scapy=1460 ours=1460
 * `decoders` maps a decoder name to its fields (undefined: that decoder produced nothing).
 * Keys outside the schema are reported too, so a typo cannot silently pass.
 */
export function diffFields(
  index: number,
  context: string,
  intended: Fields,
  decoders: Readonly<Record<string, Fields | undefined>>,
): string[] {
  const names = Object.keys(decoders);
  const keys = new Set(Object.keys(intended));
  for (const n of names) for (const k of Object.keys(decoders[n] ?? {})) keys.add(k);
  const out: string[] = [];
  const head = `frame #${index} (${context})`;
  for (const n of names) if (decoders[n] === undefined) out.push(`${head}: ${n}: produced no output`);
  for (const k of [...keys].sort()) {
    const want = intended[k];
    const bad = !KNOWN_KEYS.has(k) || names.some((n) => decoders[n] !== undefined && decoders[n]![k] !== want);
    if (!bad) continue;
    const got = names.map((n) => `${n}=${decoders[n] === undefined ? '<none>' : show(decoders[n]![k])}`).join(' ');
    out.push(`${head}: ${k}${KNOWN_KEYS.has(k) ? '' : ' (not in the schema)'}: intended=${show(want)} ${got}`);
  }
  return out;
}

/** A failure message body: the first `max` lines and a per-field count of all of them. */
export function summarize(lines: readonly string[], max = 40): string {
  const perField = new Map<string, number>();
  for (const l of lines) {
    const m = /\): ([^:]+?)(?: \(not in the schema\))?:/.exec(l);
    const k = m?.[1] ?? '?';
    perField.set(k, (perField.get(k) ?? 0) + 1);
  }
  const counts = [...perField].map(([k, n]) => `${k}: ${n}`).join(', ');
  const more = lines.length > max ? `\n... and ${lines.length - max} more` : '';
  return `${lines.length} mismatches (${counts})\n${lines.slice(0, max).join('\n')}${more}`;
}
