/**
 * The encapsulation view's frame, header by header: every field with its value, byte offset and
 * length, read from the bytes a real trace (or a capture) gives. Layer boundaries and checksum
 * verdicts come from the codec's dissector (src/wire/dissect.ts); the field tables below only
 * name the bytes of each header in RFC order (RFC 894, 791, 768, 7348, 792, 9293).
 *
 *   outer Ethernet 14 | outer IPv4 20 | outer UDP 8 | VXLAN 8 | inner Ethernet 14 | inner IPv4 ...
 *   \___________________ 50 bytes: VXLAN_OVERHEAD _____________________/
 *
 * Cold path: it allocates freely, and never throws on bytes (a short frame ends the headers).
 */

import { etherTypeName, ipProtoName } from '../wire/consts.js';
import { dissectFrame, type LayerRepr } from '../wire/dissect.js';
import { ETH_HEADER_LEN } from '../wire/ethernet.js';
import { ICMPV4_HEADER_LEN } from '../wire/icmpv4.js';
import { IPV4_FLAG_DF, IPV4_FLAG_MF, IPV4_HEADER_LEN } from '../wire/ipv4.js';
import { tcpFlagsString, TCP_HEADER_LEN } from '../wire/tcp.js';
import { UDP_HEADER_LEN } from '../wire/udp.js';
import { VXLAN_HEADER_LEN } from '../wire/vxlan.js';
import type { FieldInfo, HeaderInfo } from './model.js';

const mac = (b: Buffer, o: number): string => [...b.subarray(o, o + 6)].map((x) => x.toString(16).padStart(2, '0')).join(':');
const ip = (b: Buffer, o: number): string => [...b.subarray(o, o + 4)].join('.');
const hex = (b: Buffer, o: number, n: number): string => `0x${b.toString('hex', o, o + n)}`;

/** annotateFrame: the headers of `frame` (an Ethernet frame; VXLAN inside UDP to `vxlanPort` is followed). */
export function annotateFrame(frame: Buffer, vxlanPort: number): HeaderInfo[] {
  const layers = dissectFrame(frame, 0, frame.length, { vxlanPorts: [vxlanPort] }).layers;
  const out: HeaderInfo[] = [];
  let off = 0;
  let inner = false;
  let overhead = true;
  const f = (name: string, o: number, length: number, value: string, note: string | null = null): FieldInfo => ({ name, value, offset: o, length, note });
  const push = (layer: string, title: string, length: number, fields: FieldInfo[]): void => {
    out.push({ layer, title, offset: off, length, overhead: overhead && !inner, fields });
    off += length;
  };
  for (const l of layers) {
    const side = inner ? 'inner' : 'outer';
    const left = frame.length - off;
    const checksum = (st: string): string => (st === 'none' ? 'zero: not computed' : st === 'good' ? 'correct' : 'WRONG');
    switch (l.layer) {
      case 'eth': {
        if (left < ETH_HEADER_LEN) return out;
        const tagged = frame.readUInt16BE(off + 12) === 0x8100;
        const len = tagged ? ETH_HEADER_LEN + 4 : ETH_HEADER_LEN;
        const fields = [f('destination MAC', off, 6, mac(frame, off)), f('source MAC', off + 6, 6, mac(frame, off + 6))];
        if (tagged) fields.push(f('802.1Q tag', off + 12, 4, hex(frame, off + 12, 4)));
        const t = frame.readUInt16BE(off + len - 2);
        fields.push(f('EtherType', off + len - 2, 2, `0x${t.toString(16).padStart(4, '0')} (${etherTypeName(t)})`));
        push(`${side}-eth`, `${inner ? 'Inner' : 'Outer'} Ethernet`, len, fields);
        break;
      }
      case 'ipv4': {
        const hl = l.ihl * 4;
        if (left < IPV4_HEADER_LEN) return out;
        const flags = frame.readUInt16BE(off + 6);
        const flagText = [flags & IPV4_FLAG_DF ? 'DF' : '', flags & IPV4_FLAG_MF ? 'MF' : ''].filter((x) => x !== '').join(' ') || 'none';
        const fields = [
          f('version, IHL', off, 1, `4, ${l.ihl} (${hl} bytes)`),
          f('DSCP, ECN', off + 1, 1, hex(frame, off + 1, 1)),
          f('total length', off + 2, 2, String(l.totalLen)),
          f('identification', off + 4, 2, String(l.ident)),
          f('flags, fragment offset', off + 6, 2, `${flagText}, ${flags & 0x1fff}`),
          f('TTL', off + 8, 1, String(l.ttl)),
          f('protocol', off + 9, 1, `${l.protocol} (${ipProtoName(l.protocol)})`),
          f('header checksum', off + 10, 2, hex(frame, off + 10, 2), checksum(l.checksumStatus)),
          f('source', off + 12, 4, ip(frame, off + 12)),
          f('destination', off + 16, 4, ip(frame, off + 16)),
        ];
        if (hl > IPV4_HEADER_LEN) fields.push(f('options', off + IPV4_HEADER_LEN, hl - IPV4_HEADER_LEN, hex(frame, off + IPV4_HEADER_LEN, hl - IPV4_HEADER_LEN)));
        push(`${side}-ipv4`, `${inner ? 'Inner' : 'Outer'} IPv4`, hl, fields);
        break;
      }
      case 'udp': {
        if (left < UDP_HEADER_LEN) return out;
        const isVxlan = !inner && l.dstPort === vxlanPort;
        push(inner ? 'inner-l4' : 'outer-udp', inner ? 'UDP' : 'Outer UDP', UDP_HEADER_LEN, [
          f('source port', off, 2, String(l.srcPort), isVxlan ? 'a hash of the inner flow (ECMP entropy)' : null),
          f('destination port', off + 2, 2, String(l.dstPort), isVxlan ? 'VXLAN' : null),
          f('length', off + 4, 2, String(frame.readUInt16BE(off + 4))),
          f('checksum', off + 6, 2, hex(frame, off + 6, 2), checksum(l.checksumStatus)),
        ]);
        break;
      }
      case 'vxlan': {
        if (left < VXLAN_HEADER_LEN) return out;
        push('vxlan', 'VXLAN', VXLAN_HEADER_LEN, [
          f('flags', off, 1, `${hex(frame, off, 1)}${(frame[off]! & 0x08) !== 0 ? ' (I: VNI valid)' : ''}`),
          f('reserved', off + 1, 3, hex(frame, off + 1, 3)),
          f('VNI', off + 4, 3, String(l.vni)),
          f('reserved', off + 7, 1, hex(frame, off + 7, 1)),
        ]);
        inner = true;
        overhead = false;
        break;
      }
      case 'icmp': {
        if (left < ICMPV4_HEADER_LEN) return out;
        push(inner ? 'inner-l4' : 'outer-l4', 'ICMP', ICMPV4_HEADER_LEN, [
          f('type', off, 1, String(frame[off])), f('code', off + 1, 1, String(frame[off + 1])),
          f('checksum', off + 2, 2, hex(frame, off + 2, 2), checksum(l.checksumStatus)),
          f('rest of header', off + 4, 4, hex(frame, off + 4, 4), icmpRest(l)),
        ]);
        break;
      }
      case 'tcp': {
        const hl = l.dataOffset * 4;
        if (left < TCP_HEADER_LEN) return out;
        const fields = [
          f('source port', off, 2, String(l.srcPort)), f('destination port', off + 2, 2, String(l.dstPort)),
          f('sequence', off + 4, 4, String(l.seq)), f('acknowledgment', off + 8, 4, String(l.ack)),
          f('data offset, flags', off + 12, 2, `${hl} bytes, ${tcpFlagsString(l.flags)}`), f('window', off + 14, 2, String(l.window)),
          f('checksum', off + 16, 2, hex(frame, off + 16, 2), checksum(l.checksumStatus)), f('urgent pointer', off + 18, 2, String(l.urgent)),
        ];
        if (hl > TCP_HEADER_LEN) fields.push(f('options', off + TCP_HEADER_LEN, hl - TCP_HEADER_LEN, hex(frame, off + TCP_HEADER_LEN, Math.min(hl - TCP_HEADER_LEN, left - TCP_HEADER_LEN))));
        push(inner ? 'inner-l4' : 'outer-l4', 'TCP', hl, fields);
        break;
      }
      case 'arp':
        push(inner ? 'inner-arp' : 'arp', 'ARP', Math.min(28, left), [f('ARP', off, Math.min(28, left), l.oper === 1 ? `who-has ${l.tpa} tell ${l.spa}` : `${l.spa} is-at ${l.sha}`)]);
        break;
      case 'data': {
        const n = l.hex.length / 2;
        if (n > 0) push('payload', 'Payload', n, [f('data', off, n, `${n} bytes`)]);
        break;
      }
    }
  }
  return out;
}

function icmpRest(l: Extract<LayerRepr, { layer: 'icmp' }>): string | null {
  if (l.ident !== undefined) return `id ${l.ident} seq ${l.seq ?? 0}`;
  if (l.nextHopMtu !== undefined) return `next-hop MTU ${l.nextHopMtu}`;
  return null;
}
