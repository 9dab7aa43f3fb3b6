/**
 * Text rendering of a TraceResult (src/pipeline/trace.ts) for `flatnet trace`, in the manner
 * of `ovs-appctl ofproto/trace` with tcpdump -v's way of writing headers:
 *
 *   packet: 98 bytes in pod n1p0: 02:00:0a:f4:01:0a > 0e:00:0a:f4:01:00 ipv4 10.244.1.10 >
 *           10.244.2.10 icmp echo-request id 1 seq 1 ttl 64 DF
 *
 *    1 ingress         ipv4 10.244.1.10 > 10.244.2.10 ttl 64 proto icmp
 *                      binding  n1p0 10.244.1.10 02:00:0a:f4:01:0a
 *                      -> next
 *    ...
 *   outcome: tunnel
 *
 *   frame 1: forwarded out overlay vxlan:4789 to 198.51.100.2:4789 (148 bytes)
 *       eth   02:00:c6:33:64:01 > 02:00:c6:33:64:fe, ipv4
 *       ipv4  198.51.100.1 > 198.51.100.2: tos 0x0, ttl 64, id 0, flags [none], proto udp (17), length 134, csum good
 *       ...
 *
 * One stage per block: its number and name, what it looked at, one line per entry it matched
 * (`what` in a column, then the entry as iproute2 writes it) and its verdict after `->`. Lines
 * are wrapped at `width` columns (100 by default) under their own column. Each frame that would
 * leave is dissected with src/wire/dissect.ts, one line per layer, the layers inside VXLAN
 * indented one step further. Cold path.
 */

import type { TraceResult, TraceStep } from '../pipeline/trace.js';
import { EtherType, IpProto, UdpPort } from '../wire/consts.js';
import { dissectFrame, type FrameRepr, type LayerRepr } from '../wire/dissect.js';
import { Icmpv4Type } from '../wire/icmpv4.js';
import { TcpFlag } from '../wire/tcp.js';

export interface RenderOptions {
  /** Terminal width to wrap at; default 100. */
  readonly width?: number;
}

export interface SummaryOptions {
  /** UDP destination ports decoded as VXLAN; default 4789 and 8472. */
  readonly vxlanPorts?: readonly number[];
  /** The frame came with NEEDS_CSUM: its TCP/UDP checksum is a partial sum, shown as such. */
  readonly partialCsum?: boolean;
}

const DEFAULT_WIDTH = 100;
const DEFAULT_VXLAN_PORTS: readonly number[] = [UdpPort.VXLAN, UdpPort.VXLAN_LINUX];
/** Stage number (2), a space, the stage name column (16): the text of a step starts here. */
const STEP_TEXT_COL = 19;
const LAYER_NAME_LEN = 6;

/** render writes the whole trace: the packet, one block per stage, the outcome, the frames, the notes. */
export function render(r: TraceResult, o: RenderOptions = {}): string {
  const width = o.width ?? DEFAULT_WIDTH;
  const ports = vxlanPortsOf(r);
  const out: string[] = [];
  const packet = Buffer.from(r.packet.hex, 'hex');
  const head = `packet: ${r.packet.length} bytes in ${r.in.role} ${r.in.port}: `;
  const partialCsum = r.packet.vnet !== null && r.packet.vnet.split(',').includes('needs-csum');
  out.push(...wrap(head + summarizeFrame(packet, { vxlanPorts: ports, partialCsum }), width, ' '.repeat('packet: '.length)));
  if (r.packet.vnet !== null) out.push(...wrap(`        virtio ${r.packet.vnet}`, width, ' '.repeat('packet: '.length)));
  out.push('');

  const whatLen = Math.max(0, ...r.steps.flatMap((s) => s.matched.map((m) => m.what.length)));
  const numLen = Math.max(2, String(r.steps.length).length);
  r.steps.forEach((s, i) => out.push(...renderStep(s, i + 1, numLen, whatLen, width)));

  out.push('');
  const lost = r.droppedCopies.length === 0 ? '' : ` (copies dropped: ${r.droppedCopies.map((d) => `${d.to} ${d.reason}`).join(', ')})`;
  const outcome = r.drop === null ? `outcome: ${r.outcome}${lost}` : `outcome: drop ${r.drop.reason}: ${r.drop.help}`;
  out.push(...wrap(outcome, width, ' '.repeat('outcome: '.length)));

  r.frames.forEach((f, i) => {
    out.push('');
    const to = f.to === null ? '' : ` to ${f.to}`;
    out.push(...wrap(`frame ${i + 1}: ${f.kind} out ${f.role} ${f.port}${to} (${f.length} bytes)`, width, '    '));
    out.push(...renderLayers(Buffer.from(f.hex, 'hex'), ports, width));
  });

  if (r.notes.length > 0) {
    out.push('', 'notes:');
    for (const n of r.notes) out.push(...wrap(`  - ${n}`, width, '    '));
  }
  return out.join('\n') + '\n';
}

function renderStep(s: TraceStep, n: number, numLen: number, whatLen: number, width: number): string[] {
  const col = Math.max(STEP_TEXT_COL, numLen + 1 + 16);
  const indent = ' '.repeat(col);
  const head = `${String(n).padStart(numLen)} ${s.stage}`.padEnd(col - 1) + ' ';
  const verdict = `-> ${s.verdict}`;
  if (s.looked === '' && s.matched.length === 0) return wrap(head + verdict, width, indent);
  const out = wrap(head + s.looked, width, indent);
  for (const m of s.matched) {
    const what = m.what.padEnd(whatLen);
    out.push(...wrap(`${indent}${what}  ${m.detail}`, width, ' '.repeat(col + whatLen + 2)));
  }
  out.push(...wrap(indent + verdict, width, indent + '   '));
  return out;
}

/**
 * vxlanPortsOf: the ports to decode as VXLAN in this trace: the defaults, the ports frames are
 * sent to, and the destination port of a packet that entered from the overlay.
 */
function vxlanPortsOf(r: TraceResult): number[] {
  const ports = new Set(DEFAULT_VXLAN_PORTS);
  for (const f of r.frames) {
    const m = f.to === null ? null : /:(\d+)$/.exec(f.to);
    if (m !== null) ports.add(Number(m[1]));
  }
  if (r.in.role === 'overlay') {
    const p = outerUdpDstPort(Buffer.from(r.packet.hex, 'hex'));
    if (p >= 0) ports.add(p);
  }
  return [...ports];
}

/** The UDP destination port of an untagged Ethernet/IPv4/UDP frame (not a later fragment), else -1. */
function outerUdpDstPort(b: Buffer): number {
  if (b.length < 14 + 20 + 4 || b.readUInt16BE(12) !== EtherType.IPV4) return -1;
  const ip = 14;
  const hl = (b[ip]! & 0x0f) * 4;
  if (b[ip + 9] !== IpProto.UDP || (b.readUInt16BE(ip + 6) & 0x1fff) !== 0 || b.length < ip + hl + 4) return -1;
  return b.readUInt16BE(ip + hl + 2);
}

// ---------------------------------------------------------------------------------------
// One line per layer

function renderLayers(b: Buffer, vxlanPorts: readonly number[], width: number): string[] {
  const f = dissectFrame(b, 0, b.length, { vxlanPorts });
  const out: string[] = [];
  let indent = '    ';
  for (let i = 0; i < f.layers.length; i++) {
    const l = f.layers[i]!;
    const line = (name: string, text: string): void => {
      out.push(...wrap(`${indent}${name.padEnd(LAYER_NAME_LEN)}${text}`, width, indent + ' '.repeat(LAYER_NAME_LEN)));
    };
    switch (l.layer) {
      case 'eth': {
        const vlan = l.vlan === undefined ? '' : `, vlan ${l.vlan.vid} p ${l.vlan.pcp}${l.vlan.dei ? ' dei' : ''}${l.vlan.tpid === EtherType.QINQ ? ' (802.1ad)' : ''}`;
        line('eth', `${l.src} > ${l.dst}${vlan}, ${etherTypeText(l.etherType)}`);
        break;
      }
      case 'arp':
        line('arp', `${arpText(l)} (sha ${l.sha}, tha ${l.tha})${trailerText(l.trailer)}`);
        break;
      case 'ipv4': {
        const flags = [l.reservedFlag ? 'evil' : '', l.df ? 'DF' : '', l.mf ? 'MF' : ''].filter((x) => x !== '').join(',') || 'none';
        const frag = l.fragOffset !== 0 ? `, offset ${l.fragOffset}` : '';
        const opts = l.options === '' ? '' : `, options ${l.options}`;
        line('ipv4', `${l.src} > ${l.dst}: tos 0x${((l.dscp << 2) | l.ecn).toString(16)}${ecnText(l.ecn)}, ttl ${l.ttl}, id ${l.ident}, flags [${flags}]${frag}`
          + `, proto ${protoText(l.protocol)}, length ${l.totalLen}${opts}, ${csumText(l.checksumStatus, l.checksum)}${trailerText(l.trailer)}`);
        break;
      }
      case 'udp':
        line('udp', `${l.srcPort} > ${l.dstPort}: length ${l.length}, ${l.checksum === 0 ? 'csum none' : csumText(l.checksumStatus, l.checksum)}${trailerText(l.trailer)}`);
        break;
      case 'tcp': {
        const next = f.layers[i + 1];
        const len = next?.layer === 'data' ? next.hex.length / 2 : 0;
        const ack = (l.flags & TcpFlag.ACK) !== 0 ? `, ack ${l.ack}` : '';
        const opts = l.options === '' ? '' : `, options [${tcpOptionsText(Buffer.from(l.options, 'hex'))}]`;
        line('tcp', `${l.srcPort} > ${l.dstPort}: flags [${tcpFlagsText(l.flags)}], seq ${l.seq}${ack}, win ${l.window}${opts}, length ${len}, ${csumText(l.checksumStatus, l.checksum)}`);
        if (len > 0) { line('data', `${len} bytes`); i++; }
        break;
      }
      case 'icmp':
        line('icmp', `${icmpText(l)}, ${csumText(l.checksumStatus, l.checksum)}`);
        break;
      case 'vxlan': {
        const rsvd = l.reserved24 !== 0 || l.reserved8 !== 0 ? `, reserved 0x${l.reserved24.toString(16).padStart(6, '0')}/0x${l.reserved8.toString(16).padStart(2, '0')}` : '';
        const gbp = l.gbp === undefined ? '' : `, gbp id ${l.gbp.groupPolicyId}${l.gbp.dontLearn ? ' D' : ''}${l.gbp.policyApplied ? ' A' : ''}`;
        line('vxlan', `flags 0x${l.flags.toString(16).padStart(2, '0')} [${l.i ? 'I' : 'no I'}], vni ${l.vni}${rsvd}${gbp}`);
        indent += '  ';
        break;
      }
      case 'data':
        line('data', `${l.hex.length / 2} bytes`);
        break;
    }
  }
  if (f.malformed !== undefined) out.push(...wrap(`${indent}!! malformed ${f.malformed.layer}: ${f.malformed.message}`, width, indent + '   '));
  return out;
}

const csumText = (status: string, value: number): string => (status === 'bad' ? `csum 0x${value.toString(16).padStart(4, '0')} (bad)` : `csum ${status}`);
const trailerText = (t: string | undefined): string => (t === undefined || t === '' ? '' : `, +${t.length / 2} bytes after it`);

function etherTypeText(t: number): string {
  switch (t) {
    case EtherType.IPV4: return 'ipv4';
    case EtherType.ARP: return 'arp';
    case EtherType.IPV6: return 'ipv6';
    default: return `ethertype 0x${t.toString(16).padStart(4, '0')}`;
  }
}

function protoText(p: number): string {
  switch (p) {
    case IpProto.ICMP: return 'icmp (1)';
    case IpProto.TCP: return 'tcp (6)';
    case IpProto.UDP: return 'udp (17)';
    default: return String(p);
  }
}

const ECN_NAMES = ['', ' (ECT(1))', ' (ECT(0))', ' (CE)'];
const ecnText = (ecn: number): string => ECN_NAMES[ecn] ?? '';

/** tcpdump's flag letters: S F R P U E W, `.` for ACK, `e` for AE; `none` when there are none. */
export function tcpFlagsText(flags: number): string {
  const letters: [number, string][] = [
    [TcpFlag.SYN, 'S'], [TcpFlag.FIN, 'F'], [TcpFlag.RST, 'R'], [TcpFlag.PSH, 'P'], [TcpFlag.URG, 'U'],
    [TcpFlag.ECE, 'E'], [TcpFlag.CWR, 'W'], [TcpFlag.AE, 'e'], [TcpFlag.ACK, '.'],
  ];
  const s = letters.filter(([bit]) => (flags & bit) !== 0).map(([, c]) => c).join('');
  return s === '' ? 'none' : s;
}

/** TCP options as tcpdump lists them: mss 1460,nop,wscale 7,sackOK,TS val 1 ecr 0,eol. */
function tcpOptionsText(o: Buffer): string {
  const out: string[] = [];
  let i = 0;
  while (i < o.length) {
    const kind = o[i]!;
    if (kind === 0) { out.push('eol'); break; }
    if (kind === 1) { out.push('nop'); i++; continue; }
    const len = o[i + 1] ?? 0;
    if (len < 2 || i + len > o.length) { out.push(`bad option ${kind}`); break; }
    if (kind === 2 && len === 4) out.push(`mss ${o.readUInt16BE(i + 2)}`);
    else if (kind === 3 && len === 3) out.push(`wscale ${o[i + 2]!}`);
    else if (kind === 4 && len === 2) out.push('sackOK');
    else if (kind === 8 && len === 10) out.push(`TS val ${o.readUInt32BE(i + 2)} ecr ${o.readUInt32BE(i + 6)}`);
    else out.push(`option ${kind} len ${len}`);
    i += len;
  }
  return out.join(',');
}

type Layer<K extends LayerRepr['layer']> = Extract<LayerRepr, { layer: K }>;

function arpText(l: Layer<'arp'>): string {
  if (l.oper === 1) return `who-has ${l.tpa} tell ${l.spa}`;
  if (l.oper === 2) return `reply ${l.spa} is-at ${l.sha}${l.tpa === l.spa ? ' (gratuitous)' : ` to ${l.tpa}`}`;
  return `op ${l.oper} ${l.spa} > ${l.tpa}`;
}

function icmpText(l: Layer<'icmp'>): string {
  switch (l.type) {
    case Icmpv4Type.ECHO_REQUEST: return `echo-request id ${l.ident} seq ${l.seq}`;
    case Icmpv4Type.ECHO_REPLY: return `echo-reply id ${l.ident} seq ${l.seq}`;
    case Icmpv4Type.DEST_UNREACH:
      return l.code === 4 ? `unreachable frag-needed mtu ${l.nextHopMtu}` : `unreachable code ${l.code}`;
    case Icmpv4Type.TIME_EXCEEDED: return l.code === 0 ? 'time-exceeded in-transit' : `time-exceeded code ${l.code}`;
    default: return `type ${l.type} code ${l.code}`;
  }
}

// ---------------------------------------------------------------------------------------
// One line per frame

/**
 * summarizeFrame: one line for a whole frame, tcpdump-like and short: Ethernet addresses (and
 * tag), then the IPv4 addresses and the L4 protocol with its ports or message, TTL and DF;
 * VXLAN frames go on with ` | ` and the inner frame. Checksums that do not verify and a
 * malformed layer are flagged in brackets. Never throws on bad bytes.
 */
export function summarizeFrame(b: Buffer, o: SummaryOptions = {}): string {
  return summarizeRepr(dissectFrame(b, 0, b.length, { vxlanPorts: o.vxlanPorts ?? DEFAULT_VXLAN_PORTS }), o.partialCsum ?? false);
}

function summarizeRepr(f: FrameRepr, partialCsum: boolean): string {
  // A frame whose checksum the device is to fill carries a pseudo-header sum: not "bad".
  const l4Csum = (proto: string, status: string): string => (status !== 'bad' ? '' : partialCsum ? ' [partial csum]' : ` [bad ${proto} csum]`);
  const parts: string[] = [];
  let ipTail = '';
  const flushIp = (): void => {
    if (ipTail !== '') parts.push(ipTail);
    ipTail = '';
  };
  for (let i = 0; i < f.layers.length; i++) {
    const l = f.layers[i]!;
    switch (l.layer) {
      case 'eth': {
        flushIp();
        if (parts.length > 0) parts.push('|');
        parts.push(`${l.src} > ${l.dst}${l.vlan === undefined ? '' : ` vlan ${l.vlan.vid}`}`);
        if (l.etherType !== EtherType.IPV4 && l.etherType !== EtherType.ARP) parts.push(etherTypeText(l.etherType));
        break;
      }
      case 'arp':
        parts.push(`arp ${arpText(l)}`);
        break;
      case 'ipv4': {
        parts.push(`ipv4 ${l.src} > ${l.dst}`);
        if (l.protocol !== IpProto.TCP && l.protocol !== IpProto.UDP && l.protocol !== IpProto.ICMP) parts.push(`proto ${l.protocol}`);
        const frag = l.mf || l.fragOffset !== 0 ? ` frag ${l.fragOffset}${l.mf ? '+' : ''}` : '';
        ipTail = `ttl ${l.ttl}${l.df ? ' DF' : ''}${frag}${l.checksumStatus === 'bad' ? ' [bad ip csum]' : ''}`;
        if (l.mf || l.fragOffset !== 0) flushIp();
        break;
      }
      case 'udp': {
        const vx = f.layers[i + 1]?.layer === 'vxlan';
        parts.push(`udp ${l.srcPort} > ${l.dstPort}${vx ? '' : ` len ${l.length - 8}`}${l4Csum('udp', l.checksumStatus)}`);
        flushIp();
        break;
      }
      case 'tcp': {
        const next = f.layers[i + 1];
        const len = next?.layer === 'data' ? next.hex.length / 2 : 0;
        parts.push(`tcp ${l.srcPort} > ${l.dstPort} [${tcpFlagsText(l.flags)}]${len > 0 ? ` len ${len}` : ''}${l4Csum('tcp', l.checksumStatus)}`);
        flushIp();
        break;
      }
      case 'icmp':
        parts.push(`icmp ${icmpText(l)}${l.checksumStatus === 'bad' ? ' [bad icmp csum]' : ''}`);
        flushIp();
        break;
      case 'vxlan':
        parts.push(`vxlan vni ${l.vni}${l.flags !== 0x08 ? ` flags 0x${l.flags.toString(16).padStart(2, '0')}` : ''}${l.reserved24 !== 0 || l.reserved8 !== 0 ? ' [reserved bits set]' : ''}`);
        break;
      case 'data':
        break;
    }
  }
  flushIp();
  if (f.malformed !== undefined) parts.push(`[malformed ${f.malformed.layer}: ${f.malformed.message}]`);
  return parts.join(' ');
}

// ---------------------------------------------------------------------------------------

/**
 * wrap breaks `text` into lines of at most `width` columns at spaces; continuation lines start
 * with `indent`. A word longer than a line stays whole (the line overflows rather than the word
 * breaks). Leading spaces of `text` are kept.
 */
export function wrap(text: string, width: number, indent: string): string[] {
  if (text.length <= width) return [text];
  const lines: string[] = [];
  let cur = '';
  for (const m of text.matchAll(/( *)(\S+)/g)) {
    const [, space, word] = m as unknown as [string, string, string];
    if (cur.trim() !== '' && cur.length + space.length + word.length > width) {
      lines.push(cur);
      cur = indent + word;
    } else {
      cur += space + word;
    }
  }
  lines.push(cur);
  return lines;
}
