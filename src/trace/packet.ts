/**
 * `flatnet trace` packets: a short flow description, as a network person writes it, turned into
 * the bytes as they would arrive on the ingress port; or a frame given as hex.
 *
 *   tcp 10.244.1.10:40000 -> 10.244.2.10:80 flags SA
 *   udp 10.244.1.10:5000 -> 10.244.2.10:53 len 512 no-df
 *   icmp 10.244.1.10 -> 10.244.2.10 echo-request id 7 seq 1
 *   arp who-has 10.244.1.1 tell 10.244.1.10
 *   udp 10.244.2.10:5000 -> 10.244.1.10:53 vni 2 udp-csum          (--in overlay: a whole VXLAN frame)
 *
 * Grammar (words are separated by spaces; `->` may also be written `>` or `→`, and needs no
 * spaces around it; in a shell, where `>` redirects, quote it or write `to` instead):
 *
 *   packet   := flow option*                      options in any order, each at most once
 *   flow     := tcp [SRC[:PORT]] -> DST:PORT       a missing source is the port's bound IP,
 *             | udp [SRC[:PORT]] -> DST:PORT       a missing source port 40000 (`->` or `to`)
 *             | icmp [SRC] -> DST
 *             | arp who-has IP [tell IP]           request; `tell` defaults to the port's IP
 *             | arp IP is-at MAC [to IP]           reply; without `to`, a gratuitous broadcast
 *
 *   any      : src-mac MAC, dst-mac MAC (Ethernet addresses), vlan N (an 802.1Q tag, VID 0-4095;
 *              these three are the inner frame's with --in overlay)
 *   IPv4     : len N (total length, the payload is filled to reach it; `size N` says the same),
 *              payload N (L4 payload bytes), df | no-df, ttl N, tos N (the whole byte: DSCP and
 *              ECN), ipid N, bad-csum (a wrong IPv4 header checksum)
 *   tcp      : flags F (letters S A F R P U E C, `.` = A, e.g. S, SA, PA, FA, R; or names
 *              syn,ack; or a number), seq N, ack N, win N, mss N|none, tso N (a TSO
 *              super-frame with gso_size N: buildTracePacket adds its virtio-net header)
 *   tcp, udp : partial-csum (the checksum left to the device: NEEDS_CSUM, a pseudo-header sum)
 *   icmp     : echo-request | echo-reply | type N, code N, id N, seq N (id and seq: echo only)
 *   arp      : sha MAC (request: the sender hardware address, default the Ethernet source)
 *   overlay  : from IP (the sending VTEP), vni N, vxlan-flags N, sport N, dport N, outer-ttl N,
 *              outer-tos N, udp-csum, outer-bad-csum, outer-src-mac MAC, outer-dst-mac MAC
 *
 * Numbers are decimal or 0x-hex. Defaults, chosen to look like what Linux sends: DF set (Linux
 * sets it on TCP, UDP and ping through path MTU discovery), TTL 64, TOS 0, IPv4 id 1; TCP: a
 * SYN (flags S), seq 1000, ack 1 when the ACK flag is set (else 0), window 64240, an MSS option
 * 1460 on SYNs (`mss none` leaves it out, `mss N` puts it on any segment), no payload; UDP: no
 * payload; ICMP: echo request, id 1, seq 1, 56 bytes of payload (ping's default: 98-byte frames).
 * Payload bytes count up from 0 (byte i is i mod 256). Checksums are all valid unless asked.
 *
 * Per ingress role (PacketDefaults): pod and host frames go from the port's MAC (`srcMac`) to
 * the node's VTEP/gateway MAC (`dstMac`); ARP requests are broadcast. An overlay packet is the
 * whole outer frame as a capture on the underlay shows it (outer Ethernet, IPv4, UDP, VXLAN, then
 * the inner frame), built with EncapTemplate like any encapsulation: from the sending VTEP (`from`,
 * else the peer owning the inner source) to this node's underlay address and VXLAN port, VNI
 * `d.overlay.vni`, outer TTL 64, no outer UDP checksum (RFC 7348), the source port EncapTemplate
 * picks from the inner flow; the inner frame goes from the sending peer's VTEP MAC to `dstMac`.
 *
 * Errors are TracePacketError (ERR_TRACE_PACKET) naming the word and what was expected; words
 * are counted after `->` is split out (`a->b` is three words). Cold path: everything here
 * allocates freely.
 */

import { TracePacketError } from '../errors.js';
import { DEFAULT_UNDERLAY_MACS } from '../replay/node.js';
import { BROADCAST_MAC, formatIpv4, parseIpv4, parseMac } from '../wire/addr.js';
import { ArpOp } from '../wire/arp.js';
import { arpFrame, icmpv4Frame, tcpFrame, udpFrame, vxlanFrame, type L3Spec } from '../wire/build.js';
import { EncapTemplate, OUTER_IP_OFF, OUTER_UDP_OFF, VXLAN_OFF } from '../wire/encap.js';
import { ETH_HEADER_LEN, ETH_VLAN_HEADER_LEN } from '../wire/ethernet.js';
import { Icmpv4Type, ICMPV4_HEADER_LEN } from '../wire/icmpv4.js';
import { IPV4_HEADER_LEN, Ipv4View } from '../wire/ipv4.js';
import { TCP_HEADER_LEN, TcpFlag } from '../wire/tcp.js';
import { UDP_HEADER_LEN, UdpView } from '../wire/udp.js';
import { fold16, pseudoHeaderSum } from '../wire/checksum.js';
import { IpProto } from '../wire/consts.js';
import { VIRTIO_FLAG_NAMES, VIRTIO_GSO_NAMES, VirtioGso, VirtioNetFlag, type VirtioNetHdrRepr } from '../wire/virtio-net-hdr.js';
import { VXLAN_VNI_MAX } from '../wire/vxlan.js';

/** Where the checksum field is in a TCP and a UDP header. */
const TCP_CSUM_OFFSET = 16;
const UDP_CSUM_OFFSET = 6;

/** A peer as the overlay defaults know it. */
export interface TracePeer {
  readonly underlayIp: number;
  readonly mac: number;
}

/** What a packet description leaves out, per ingress port (the daemon fills it from its config). */
export interface PacketDefaults {
  readonly role: 'pod' | 'host' | 'overlay';
  /** 48-bit MAC: the pod's bound MAC (pod), the host stack's MAC (host); overlay: the inner source when no peer is known. */
  readonly srcMac: number;
  /** The node's VTEP/gateway MAC (pod, host, and the overlay's inner destination). */
  readonly dstMac: number;
  /** The pod's bound IP (pod role; the default source and ARP sender), else null. */
  readonly srcIp: number | null;
  readonly overlay: OverlayDefaults | null;
}

export interface OverlayDefaults {
  /** This node's underlay IPv4 (outer destination). */
  readonly localUnderlay: number;
  /** VXLAN UDP port (outer destination port). */
  readonly port: number;
  readonly vni: number;
  /** The peer that owns an inner source address (its underlay IP and VTEP MAC), or null. */
  peerFor(innerSrcIp: number): TracePeer | null;
  /** The peer at an underlay address (`from IP`: whose VTEP MAC is the inner source), or null. Optional. */
  peerAt?(underlayIp: number): TracePeer | null;
  /** Outer Ethernet: this node's underlay NIC (destination) and the next hop (source). Default: DEFAULT_UNDERLAY_MACS. */
  readonly underlayMac?: number;
  readonly nextHopMac?: number;
}

/** One-line syntax, for --help. */
export const PACKET_SYNTAX =
  "tcp|udp [SRC[:PORT]] to DST:PORT | icmp [SRC] to DST | arp who-has IP [tell IP] | arp IP is-at MAC [to IP], then options (see the README); 'to' can be written '->' (quoted: a shell takes > for a redirection)";

/** The default source port of a tcp/udp flow written without one. */
export const DEFAULT_SRC_PORT = 40000;
/** ping's default payload: 56 bytes, an 84-byte IPv4 packet, a 98-byte frame. */
export const DEFAULT_ICMP_PAYLOAD = 56;
const DEFAULT_TTL = 64;
const DEFAULT_IPID = 1;
const DEFAULT_TCP_SEQ = 1000;
const DEFAULT_TCP_ACK = 1;
const DEFAULT_TCP_WINDOW = 64240;
const DEFAULT_MSS = 1460;
const DEFAULT_ICMP_ID = 1;
const DEFAULT_ICMP_SEQ = 1;
/** The largest frame parseHexFrame accepts (and the largest IPv4 total length). */
export const MAX_FRAME_LEN = 65535;

// ---------------------------------------------------------------------------------------
// Words

interface Word {
  readonly text: string;
  /** 1-based. */
  readonly n: number;
}

/** splitWords: the description's words, with `->` split out and its spellings `>` and `→` unified. */
function splitWords(spec: string): Word[] {
  const out: Word[] = [];
  for (const raw of spec.trim().split(/\s+/)) {
    for (const part of raw.split(/(->|→)/)) {
      if (part === '') continue;
      out.push({ text: part === '→' || part === '>' ? '->' : part, n: out.length + 1 });
    }
  }
  return out;
}

class Words {
  private i = 0;
  constructor(readonly words: readonly Word[]) {}

  peek(): Word | undefined { return this.words[this.i]; }
  next(): Word | undefined { return this.words[this.i++]; }
  get done(): boolean { return this.i >= this.words.length; }

  /** fail throws at word `w`, or at the end of the description when w is undefined. */
  fail(w: Word | undefined, message: string): never {
    const n = w?.n ?? this.words.length + 1;
    throw new TracePacketError(n, w === undefined ? `at the end: ${message}` : `word ${n}: ${message}`);
  }

  /** expect fails with "expected WHAT after AFTER, got ..." when there is no next word. */
  take(what: string, after: string): Word {
    const w = this.next();
    if (w === undefined) this.fail(undefined, `expected ${what} after ${after}, but the description ends there`);
    return w;
  }
}

const quote = (s: string): string => `'${s}'`;
const got = (w: Word): string => `got ${quote(w.text)}`;

function ipOf(ws: Words, w: Word, text: string, what: string, after: string): number {
  try {
    return parseIpv4(text);
  } catch {
    return ws.fail(w, `expected ${what} after ${after}, got ${quote(text)}`);
  }
}

function macOf(ws: Words, w: Word, after: string): number {
  try {
    return parseMac(w.text);
  } catch {
    return ws.fail(w, `expected a MAC address (aa:bb:cc:dd:ee:ff) after ${after}, ${got(w)}`);
  }
}

const NUM_RE = /^(0x[0-9a-f]+|[0-9]+)$/i;

function numOf(ws: Words, w: Word, text: string, name: string, min: number, max: number): number {
  if (!NUM_RE.test(text)) return ws.fail(w, `expected a number after ${name}, got ${quote(text)}`);
  const v = Number(text);
  if (v < min || v > max) return ws.fail(w, `${name} must be ${min}-${max}, got ${quote(text)}`);
  return v;
}

// ---------------------------------------------------------------------------------------
// Parsing: words to a PacketSpec (no defaults applied yet)

export type Proto = 'tcp' | 'udp' | 'icmp' | 'arp';
const PROTOS: readonly Proto[] = ['tcp', 'udp', 'icmp', 'arp'];

interface Endpoint {
  readonly ip: number;
  readonly port: number | null;
  readonly word: number;
}

/** An option as given: its canonical name, the word it stands at, its value (true for flags). */
interface Given<T> {
  readonly name: string;
  readonly word: number;
  readonly value: T;
}

type Kind = 'flag' | 'num' | 'mac' | 'ip' | 'tcp-flags' | 'mss';

interface OptionDef {
  readonly kind: Kind;
  /** Protocols it applies to. */
  readonly protos: readonly Proto[];
  /** Only for --in overlay. */
  readonly overlay?: true;
  readonly max?: number;
  /** The least value (default 0). */
  readonly min?: number;
  /** The name it is an alias of. */
  readonly alias?: string;
}

const IP: readonly Proto[] = ['tcp', 'udp', 'icmp'];
const ALL = PROTOS;

const OPTIONS: Readonly<Record<string, OptionDef>> = {
  'src-mac': { kind: 'mac', protos: ALL },
  'dst-mac': { kind: 'mac', protos: ALL },
  vlan: { kind: 'num', protos: ALL, max: 4095 },
  len: { kind: 'num', protos: IP, max: MAX_FRAME_LEN },
  size: { kind: 'num', protos: IP, max: MAX_FRAME_LEN, alias: 'len' },
  payload: { kind: 'num', protos: IP, max: MAX_FRAME_LEN },
  df: { kind: 'flag', protos: IP },
  'no-df': { kind: 'flag', protos: IP },
  ttl: { kind: 'num', protos: IP, max: 255 },
  tos: { kind: 'num', protos: IP, max: 255 },
  ipid: { kind: 'num', protos: IP, max: 0xffff },
  'bad-csum': { kind: 'flag', protos: IP },
  flags: { kind: 'tcp-flags', protos: ['tcp'] },
  seq: { kind: 'num', protos: ['tcp', 'icmp'], max: 0xffff_ffff },
  ack: { kind: 'num', protos: ['tcp'], max: 0xffff_ffff },
  win: { kind: 'num', protos: ['tcp'], max: 0xffff },
  mss: { kind: 'mss', protos: ['tcp'] },
  tso: { kind: 'num', protos: ['tcp'], min: 1, max: 0xffff },
  'partial-csum': { kind: 'flag', protos: ['tcp', 'udp'] },
  'echo-request': { kind: 'flag', protos: ['icmp'] },
  'echo-reply': { kind: 'flag', protos: ['icmp'] },
  type: { kind: 'num', protos: ['icmp'], max: 255 },
  code: { kind: 'num', protos: ['icmp'], max: 255 },
  id: { kind: 'num', protos: ['icmp'], max: 0xffff },
  sha: { kind: 'mac', protos: ['arp'] },
  from: { kind: 'ip', protos: ALL, overlay: true },
  vni: { kind: 'num', protos: ALL, overlay: true, max: VXLAN_VNI_MAX },
  'vxlan-flags': { kind: 'num', protos: ALL, overlay: true, max: 255 },
  sport: { kind: 'num', protos: ALL, overlay: true, max: 0xffff },
  dport: { kind: 'num', protos: ALL, overlay: true, max: 0xffff },
  'outer-ttl': { kind: 'num', protos: ALL, overlay: true, max: 255 },
  'outer-tos': { kind: 'num', protos: ALL, overlay: true, max: 255 },
  'udp-csum': { kind: 'flag', protos: ALL, overlay: true },
  'outer-bad-csum': { kind: 'flag', protos: ALL, overlay: true },
  'outer-src-mac': { kind: 'mac', protos: ALL, overlay: true },
  'outer-dst-mac': { kind: 'mac', protos: ALL, overlay: true },
};

/** Options that say contradictory things (canonical names). */
const EXCLUSIVE: readonly (readonly string[])[] = [['df', 'no-df'], ['len', 'payload'], ['echo-request', 'echo-reply', 'type']];

const protoList = (ps: readonly Proto[]): string => (ps.length === 1 ? `${ps[0]} only` : ps.join(', '));

/** The parsed description: the flow and the options as given. Defaults are applied by buildPacket. */
export interface PacketSpec {
  readonly proto: Proto;
  /** tcp/udp/icmp: the source as written (null: the port's bound IP), and the destination. */
  readonly src: Endpoint | null;
  readonly dst: Endpoint | null;
  /** The word of `->` (errors about a missing source point there). */
  readonly arrowWord: number;
  /** arp: 'request' (who-has) or 'reply' (is-at). */
  readonly arp: null | {
    readonly op: 'request' | 'reply';
    /** request: who-has IP; reply: the `to` IP, or null (gratuitous). */
    readonly target: number | null;
    /** request: tell IP (null: the port's bound IP); reply: the IP that is-at. */
    readonly sender: number | null;
    readonly senderWord: number;
    /** reply: the is-at MAC. */
    readonly isAt: number | null;
  };
  readonly options: ReadonlyMap<string, Given<number | boolean>>;
}

/** parsePacketSpec parses a description without applying defaults; throws TracePacketError. */
export function parsePacketSpec(spec: string): PacketSpec {
  const ws: Words = new Words(splitWords(spec));
  const first = ws.next();
  if (first === undefined) throw new TracePacketError(null, 'the packet description is empty: expected tcp, udp, icmp or arp');
  const proto = first.text.toLowerCase() as Proto;
  if (!PROTOS.includes(proto)) ws.fail(first, `expected tcp, udp, icmp or arp, ${got(first)}`);

  let src: Endpoint | null = null, dst: Endpoint | null = null, arrowWord = 0;
  let arp: PacketSpec['arp'] = null;
  if (proto === 'arp') {
    arp = parseArp(ws);
  } else {
    const ports = proto !== 'icmp';
    let w = ws.take(ports ? "a source IP[:PORT] or '->'" : "a source IP or '->'", quote(proto));
    if (!isArrow(w)) {
      const s = endpoint(ws, w, 'the source', quote(proto), ports, false);
      w = ws.take("'->'", `the source ${quote(s.text)}`);
      if (!isArrow(w)) ws.fail(w, `expected '->' (or 'to') after the source ${quote(s.text)}, ${got(w)}`);
      src = s;
    }
    arrowWord = w.n;
    const after = quote(w.text);
    dst = endpoint(ws, ws.take(ports ? 'the destination IP:PORT' : 'the destination IP', after), 'the destination', after, ports, true);
  }

  const options = new Map<string, Given<number | boolean>>();
  while (!ws.done) {
    const w = ws.next()!;
    const name = w.text.toLowerCase();
    const def = OPTIONS[name];
    if (def === undefined) {
      const known = Object.keys(OPTIONS).filter((k) => OPTIONS[k]!.protos.includes(proto) && OPTIONS[k]!.alias === undefined);
      ws.fail(w, `unknown option ${quote(w.text)} for ${proto} (options: ${known.join(', ')})`);
    }
    if (!def.protos.includes(proto)) ws.fail(w, `${quote(name)} applies to ${protoList(def.protos)}, not to ${proto}`);
    const canon = def.alias ?? name;
    const before = options.get(canon);
    if (before !== undefined) ws.fail(w, `${quote(name)} is given twice (words ${before.word} and ${w.n})`);
    for (const group of EXCLUSIVE) {
      if (!group.includes(canon)) continue;
      const other = group.map((g) => options.get(g)).find((g) => g !== undefined);
      if (other !== undefined) ws.fail(w, `${quote(name)} contradicts ${quote(other.name)} (word ${other.word})`);
    }
    options.set(canon, { name, word: w.n, value: optionValue(ws, w, name, def, proto) });
  }
  return { proto, src, dst, arrowWord, arp, options };
}

/** `->` (also written `>` or `→`), or `to`: a shell takes an unquoted `>` for a redirection. */
const isArrow = (w: Word): boolean => w.text === '->' || w.text.toLowerCase() === 'to';

interface WrittenEndpoint extends Endpoint { readonly text: string }

/** endpoint parses IP or IP:PORT (ports: whether the protocol has ports; needPort: must it be given). */
function endpoint(ws: Words, w: Word, what: string, after: string, ports: boolean, needPort: boolean): WrittenEndpoint {
  if (isArrow(w)) ws.fail(w, `expected ${what} after ${after}, ${got(w)}`);
  const colon = w.text.lastIndexOf(':');
  const ipText = colon < 0 ? w.text : w.text.slice(0, colon);
  const ip = ipOf(ws, w, ipText, `an IPv4 address (${what})`, after);
  if (colon < 0) {
    if (ports && needPort) ws.fail(w, `expected IP:PORT after ${after}, got ${quote(w.text)}: ${what} needs a port`);
    return { ip, port: null, word: w.n, text: w.text };
  }
  if (!ports) ws.fail(w, `expected an IPv4 address (${what}) after ${after}, got ${quote(w.text)}: icmp has no ports`);
  const portText = w.text.slice(colon + 1);
  if (!/^[0-9]+$/.test(portText) || Number(portText) > 0xffff) ws.fail(w, `expected a port (0-65535) after ${quote(`${ipText}:`)}, got ${quote(portText)}`);
  return { ip, port: Number(portText), word: w.n, text: w.text };
}

function parseArp(ws: Words): NonNullable<PacketSpec['arp']> {
  const w = ws.take("'who-has IP' or 'IP is-at MAC'", "'arp'");
  if (w.text.toLowerCase() === 'who-has') {
    const t = ws.take('an IPv4 address', "'who-has'");
    const target = ipOf(ws, t, t.text, 'an IPv4 address', "'who-has'");
    if (ws.peek()?.text.toLowerCase() !== 'tell') return { op: 'request', target, sender: null, senderWord: t.n, isAt: null };
    ws.next();
    const s = ws.take('an IPv4 address', "'tell'");
    return { op: 'request', target, sender: ipOf(ws, s, s.text, 'an IPv4 address', "'tell'"), senderWord: s.n, isAt: null };
  }
  if (!/^[0-9.]+$/.test(w.text)) ws.fail(w, `expected 'who-has IP' or 'IP is-at MAC' after 'arp', ${got(w)}`);
  const sender = ipOf(ws, w, w.text, 'an IPv4 address', "'arp'");
  const k = ws.take("'is-at'", quote(w.text));
  if (k.text.toLowerCase() !== 'is-at') ws.fail(k, `expected 'is-at MAC' after ${quote(w.text)}, ${got(k)}`);
  const isAt = macOf(ws, ws.take('a MAC address', "'is-at'"), "'is-at'");
  if (ws.peek()?.text.toLowerCase() !== 'to') return { op: 'reply', target: null, sender, senderWord: w.n, isAt };
  ws.next();
  const t = ws.take('an IPv4 address', "'to'");
  return { op: 'reply', target: ipOf(ws, t, t.text, 'an IPv4 address', "'to'"), sender, senderWord: w.n, isAt };
}

function optionValue(ws: Words, w: Word, name: string, def: OptionDef, proto: Proto): number | boolean {
  if (def.kind === 'flag') return true;
  const v = ws.take(def.kind === 'mac' ? 'a MAC address' : def.kind === 'ip' ? 'an IPv4 address' : def.kind === 'tcp-flags' ? 'TCP flags' : 'a number', quote(name));
  switch (def.kind) {
    case 'mac': return macOf(ws, v, quote(name));
    case 'ip': return ipOf(ws, v, v.text, 'an IPv4 address', quote(name));
    case 'tcp-flags': {
      const f = parseTcpFlags(v.text);
      if (f === null) ws.fail(v, `expected TCP flags after 'flags' (letters S A F R P U E C as in SA or PA, names as in syn,ack, or a number), ${got(v)}`);
      return f;
    }
    case 'mss': return v.text.toLowerCase() === 'none' ? -1 : numOf(ws, v, v.text, quote(name), 0, 0xffff);
    default: {
      // seq is 32 bits in TCP and 16 in an ICMP echo.
      const max = name === 'seq' && proto === 'icmp' ? 0xffff : def.max ?? 0;
      return numOf(ws, v, v.text, quote(name), def.min ?? 0, max);
    }
  }
}

const FLAG_LETTERS: Readonly<Record<string, number>> = {
  S: TcpFlag.SYN, A: TcpFlag.ACK, '.': TcpFlag.ACK, F: TcpFlag.FIN, R: TcpFlag.RST, P: TcpFlag.PSH,
  U: TcpFlag.URG, E: TcpFlag.ECE, C: TcpFlag.CWR, W: TcpFlag.CWR,
};
const FLAG_NAMES: Readonly<Record<string, number>> = {
  syn: TcpFlag.SYN, ack: TcpFlag.ACK, fin: TcpFlag.FIN, rst: TcpFlag.RST, psh: TcpFlag.PSH,
  urg: TcpFlag.URG, ece: TcpFlag.ECE, cwr: TcpFlag.CWR, ae: TcpFlag.AE, ns: TcpFlag.AE,
};

/**
 * parseTcpFlags: "SA", "S.", "[P.]", "syn,ack", "SYN|ACK", "none", "0x12" to the nine flag
 * bits, or null when the text is none of those.
 */
export function parseTcpFlags(text: string): number | null {
  const t = text.replace(/^\[(.*)\]$/, '$1');
  if (NUM_RE.test(t)) return Number(t) <= 0x1ff ? Number(t) : null;
  if (t.toLowerCase() === 'none') return 0;
  const names = t.toLowerCase().split(/[,|+]/);
  if (names.every((n) => FLAG_NAMES[n] !== undefined)) return names.reduce((f, n) => f | FLAG_NAMES[n]!, 0);
  if (t === '' || /[,|+]/.test(t)) return null;
  let f = 0;
  for (const c of t.toUpperCase()) {
    const bit = FLAG_LETTERS[c];
    if (bit === undefined) return null;
    f |= bit;
  }
  return f;
}

// ---------------------------------------------------------------------------------------
// Building: a PacketSpec and the port's defaults to bytes

/** buildPacket turns a description into the frame as it arrives on the ingress port; throws TracePacketError. */
export function buildPacket(spec: string, d: PacketDefaults): Buffer {
  return buildFromSpec(parsePacketSpec(spec), d);
}

/** A packet as it arrives: the frame, and the virtio-net header in front of it (null: none, a complete frame). */
export interface TracePacket {
  readonly frame: Buffer;
  readonly vnet: VirtioNetHdrRepr | null;
}

/**
 * buildTracePacket: buildPacket, and for `tso N` and `partial-csum` the virtio-net header a pod
 * or host port with offloads receives the frame with (as Linux hands over a TSO super-frame or
 * a packet whose checksum the device is to fill): NEEDS_CSUM with the L4 checksum's start and
 * offset, the folded pseudo-header sum in the checksum field, and for `tso` GSO_TCPV4 with
 * gso_size N and hdr_len the length of the headers.
 */
export function buildTracePacket(spec: string, d: PacketDefaults): TracePacket {
  const p = parsePacketSpec(spec);
  const frame = buildFromSpec(p, d);
  const tso = p.options.get('tso'), partial = p.options.get('partial-csum');
  const given = tso ?? partial;
  if (given === undefined) return { frame, vnet: null };
  if (d.role === 'overlay') {
    throw new TracePacketError(given.word, `word ${given.word}: ${quote(given.name)} describes a frame from a pod or the host (a virtio-net header comes with it); a VXLAN datagram carries complete frames`);
  }
  const l3 = p.options.has('vlan') ? ETH_VLAN_HEADER_LEN : ETH_HEADER_LEN;
  const ihl = (frame[l3]! & 0x0f) << 2, l4 = l3 + ihl;
  const proto = p.proto === 'tcp' ? IpProto.TCP : IpProto.UDP;
  const l4Len = frame.readUInt16BE(l3 + 2) - ihl;
  const csumOffset = p.proto === 'tcp' ? TCP_CSUM_OFFSET : UDP_CSUM_OFFSET;
  frame.writeUInt16BE(fold16(pseudoHeaderSum(frame.readUInt32BE(l3 + 12), frame.readUInt32BE(l3 + 16), proto, l4Len)), l4 + csumOffset);
  const base = { flags: VirtioNetFlag.NEEDS_CSUM, csumStart: l4, csumOffset };
  if (tso === undefined) return { frame, vnet: { ...base, gsoType: VirtioGso.NONE, gsoSize: 0, hdrLen: 0 } };
  const hdrLen = l4 + ((frame[l4 + 12]! >>> 4) << 2);
  return { frame, vnet: { ...base, gsoType: VirtioGso.TCPV4, gsoSize: tso.value as number, hdrLen } };
}

/**
 * parseVnet reads a virtio-net header as formatVirtioNetHdr writes it: comma-separated items,
 * each at most once: flag names (needs-csum, data-valid, rsc-info) or `flags=N`, `gso=TYPE`
 * (none, tcpv4, udp, tcpv6, udp-l4, or a number; `+ecn` adds the ECN bit), `gso-size=N`,
 * `hdr-len=N`, `csum-start=N`, `csum-offset=N`; fields not given are zero; `none` alone is
 * the all-zero header. Throws TracePacketError naming the item.
 */
export function parseVnet(text: string): VirtioNetHdrRepr {
  const bad = (m: string): never => { throw new TracePacketError(null, `--vnet: ${m}`); };
  const f = { flags: 0, gsoType: 0, hdrLen: 0, gsoSize: 0, csumStart: 0, csumOffset: 0 };
  const items = text.split(',').map((i) => i.trim());
  if (items.length === 1 && items[0]!.toLowerCase() === 'none') return f;
  const seen = new Set<string>();
  const FIELDS: Readonly<Record<string, keyof typeof f>> = { 'gso-size': 'gsoSize', 'hdr-len': 'hdrLen', 'csum-start': 'csumStart', 'csum-offset': 'csumOffset', flags: 'flags' };
  for (const item of items) {
    if (item === '') bad(`an empty item in ${quote(text)}`);
    const eq = item.indexOf('=');
    const key = (eq < 0 ? item : item.slice(0, eq)).toLowerCase(), value = eq < 0 ? null : item.slice(eq + 1);
    if (seen.has(key)) bad(`${quote(key)} is given twice`);
    seen.add(key);
    const flag = VIRTIO_FLAG_NAMES.get(key);
    if (flag !== undefined && value === null) {
      f.flags |= flag;
      continue;
    }
    if (value === null) return bad(`unknown item ${quote(item)} (flags: ${[...VIRTIO_FLAG_NAMES.keys()].join(', ')}; fields: gso=TYPE, ${Object.keys(FIELDS).map((k) => `${k}=N`).join(', ')})`);
    if (key === 'gso') {
      const [type, ecn, ...more] = value.toLowerCase().split('+');
      const t = VIRTIO_GSO_NAMES.get(type!) ?? (NUM_RE.test(type!) && Number(type) < VirtioGso.ECN ? Number(type) : undefined);
      if (t === undefined || more.length > 0 || (ecn !== undefined && ecn !== 'ecn')) return bad(`gso=${value}: expected ${[...VIRTIO_GSO_NAMES.keys()].join(', ')} or a number below 128, optionally +ecn`);
      f.gsoType = t | (ecn === undefined ? 0 : VirtioGso.ECN);
      continue;
    }
    const field = FIELDS[key];
    if (field === undefined) return bad(`unknown item ${quote(key)} (flags: ${[...VIRTIO_FLAG_NAMES.keys()].join(', ')}; fields: gso=TYPE, ${Object.keys(FIELDS).map((k) => `${k}=N`).join(', ')})`);
    const max = field === 'flags' ? 0xff : 0xffff;
    if (!NUM_RE.test(value) || Number(value) > max) bad(`${key}=${value}: expected a number 0-${max}`);
    f[field] |= Number(value);
  }
  return f;
}

/** buildFromSpec: buildPacket after parsing. */
export function buildFromSpec(p: PacketSpec, d: PacketDefaults): Buffer {
  const opt = <T extends number | boolean>(name: string): Given<T> | undefined => p.options.get(name) as Given<T> | undefined;
  const num = (name: string): number | undefined => opt<number>(name)?.value;
  const fail = (word: number | null, message: string): never => {
    throw new TracePacketError(word, word === null ? message : `word ${word}: ${message}`);
  };

  const ov = d.role === 'overlay' ? d.overlay : null;
  if (d.role === 'overlay' && ov === null) throw new TracePacketError(null, 'the overlay port has no VXLAN settings to build a frame with');
  if (ov === null) {
    for (const g of p.options.values()) {
      if (OPTIONS[g.name]?.overlay === true) fail(g.word, `${quote(g.name)} applies to packets entering the overlay (--in overlay) only`);
    }
  }

  // Addresses of the (inner) packet.
  let srcIp: number;
  if (p.arp !== null) {
    const s = p.arp.sender ?? d.srcIp;
    if (s === null) return fail(p.arp.senderWord, `this port has no bound IP to ask from: say who asks with 'tell IP'`);
    srcIp = s;
  } else {
    const s = p.src?.ip ?? d.srcIp;
    if (s === null) return fail(p.arrowWord, `no source address before '->', and this port has no bound IP to default to: write ${p.proto} SRC${p.proto === 'icmp' ? '' : ':PORT'} -> ...`);
    srcIp = s;
  }

  // The sending VTEP (overlay): `from`, else the peer owning the inner source.
  const from = opt<number>('from');
  let peer: TracePeer | null = null;
  let outerSrc = 0;
  if (ov !== null) {
    if (from !== undefined) {
      peer = ov.peerAt?.(from.value) ?? null;
      outerSrc = from.value;
    } else {
      peer = ov.peerFor(srcIp);
      if (peer === null) {
        return fail(p.src?.word ?? p.arp?.senderWord ?? null, `no peer owns the inner source ${formatIpv4(srcIp)}, so the sending VTEP is unknown: give its underlay address with 'from IP'`);
      }
      outerSrc = peer.underlayIp;
    }
  }

  const srcMac = num('src-mac') ?? (peer !== null ? peer.mac : d.srcMac);
  const vlan = num('vlan');
  const inner = p.arp !== null ? buildArp(p, num, srcMac, srcIp, d) : buildIp(p, num, fail, {
    srcMac, dstMac: num('dst-mac') ?? d.dstMac, src: srcIp, dst: p.dst!.ip,
    ttl: num('ttl') ?? DEFAULT_TTL, tos: num('tos') ?? 0, ident: num('ipid') ?? DEFAULT_IPID,
    df: opt('no-df') === undefined, ...(vlan === undefined ? {} : { vlan }),
  });
  if (opt('bad-csum') !== undefined) spoilIpv4Checksum(inner, vlan === undefined ? ETH_HEADER_LEN : ETH_VLAN_HEADER_LEN);
  if (ov === null) return inner;

  const udpCsum = opt('udp-csum') !== undefined;
  const t = new EncapTemplate({
    srcMac: num('outer-src-mac') ?? ov.nextHopMac ?? DEFAULT_UNDERLAY_MACS.nextHop,
    dstMac: num('outer-dst-mac') ?? ov.underlayMac ?? DEFAULT_UNDERLAY_MACS.local,
    srcIp: outerSrc, dstIp: ov.localUnderlay, vni: num('vni') ?? ov.vni, dstPort: num('dport') ?? ov.port,
    ttl: num('outer-ttl') ?? DEFAULT_TTL, udpChecksum: udpCsum,
  });
  const f = vxlanFrame(t, inner);
  const sport = num('sport'), flags = num('vxlan-flags'), tos = num('outer-tos');
  if (sport !== undefined) f.writeUInt16BE(sport, OUTER_UDP_OFF);
  if (flags !== undefined) f[VXLAN_OFF] = flags;
  if (udpCsum && (sport !== undefined || flags !== undefined)) new UdpView().reset(f, OUTER_UDP_OFF, f.length).fillChecksum(outerSrc, ov.localUnderlay);
  if (tos !== undefined) {
    f[OUTER_IP_OFF + 1] = tos;
    new Ipv4View().reset(f, OUTER_IP_OFF, f.length).fillChecksum();
  }
  if (opt('outer-bad-csum') !== undefined) spoilIpv4Checksum(f, OUTER_IP_OFF);
  return f;
}

/**
 * spoilIpv4Checksum makes the header checksum at `ip` wrong. XOR with 0x5555 moves it by an
 * amount that is never a multiple of 0xffff, so it cannot land on the other ones'-complement
 * zero (0x0000 and 0xffff verify alike).
 */
function spoilIpv4Checksum(b: Buffer, ip: number): void {
  b.writeUInt16BE(b.readUInt16BE(ip + 10) ^ 0x5555, ip + 10);
}

function buildArp(p: PacketSpec, num: (n: string) => number | undefined, srcMac: number, spa: number, d: PacketDefaults): Buffer {
  const a = p.arp!;
  const vlan = num('vlan');
  const tagged = vlan === undefined ? {} : { vlan };
  if (a.op === 'request') {
    return arpFrame({ srcMac, dstMac: num('dst-mac') ?? BROADCAST_MAC, sha: num('sha') ?? srcMac, spa, tpa: a.target!, ...tagged });
  }
  // Reply: to someone (unicast to the gateway MAC), or gratuitous (broadcast, target = sender).
  const sha = p.options.get('sha');
  if (sha !== undefined) throw new TracePacketError(sha.word, `word ${sha.word}: 'sha' applies to ARP requests; a reply's sender hardware address is its is-at MAC`);
  if (a.target === null) {
    return arpFrame({ srcMac, dstMac: num('dst-mac') ?? BROADCAST_MAC, oper: ArpOp.REPLY, sha: a.isAt!, spa, tha: 0, tpa: spa, ...tagged });
  }
  const dstMac = num('dst-mac') ?? d.dstMac;
  return arpFrame({ srcMac, dstMac, oper: ArpOp.REPLY, sha: a.isAt!, spa, tha: dstMac, tpa: a.target, ...tagged });
}

function buildIp(
  p: PacketSpec, num: (n: string) => number | undefined, fail: (word: number | null, message: string) => never, l3: L3Spec,
): Buffer {
  const sport = p.src?.port ?? DEFAULT_SRC_PORT, dport = p.dst!.port ?? 0;
  // The L4 header, then the payload length from `len`, `payload` or the protocol's default.
  let l4Header: number;
  let defaultPayload = 0;
  let tcpOptions = Buffer.alloc(0);
  const flags = num('flags') ?? TcpFlag.SYN;
  const type = num('type') ?? (p.options.has('echo-reply') ? Icmpv4Type.ECHO_REPLY : Icmpv4Type.ECHO_REQUEST);
  const echo = type === Icmpv4Type.ECHO_REQUEST || type === Icmpv4Type.ECHO_REPLY;
  if (p.proto === 'tcp') {
    const mss = num('mss');
    const withMss = mss === undefined ? (flags & TcpFlag.SYN) !== 0 : mss >= 0;
    if (withMss) {
      tcpOptions = Buffer.alloc(4);
      tcpOptions[0] = 2;
      tcpOptions[1] = 4;
      tcpOptions.writeUInt16BE(mss === undefined || mss < 0 ? DEFAULT_MSS : mss, 2);
    }
    l4Header = TCP_HEADER_LEN + tcpOptions.length;
  } else if (p.proto === 'udp') {
    l4Header = UDP_HEADER_LEN;
  } else {
    l4Header = ICMPV4_HEADER_LEN;
    if (echo) defaultPayload = DEFAULT_ICMP_PAYLOAD;
    for (const n of ['id', 'seq']) {
      const g = p.options.get(n);
      if (g !== undefined && !echo) fail(g.word, `${quote(n)} applies to echo-request and echo-reply, not to ICMP type ${type}`);
    }
  }
  const headers = IPV4_HEADER_LEN + l4Header;
  const len = p.options.get('len');
  let payloadLen = num('payload') ?? defaultPayload;
  if (len !== undefined) {
    const total = len.value as number;
    if (total < headers) {
      fail(len.word, `${len.name} ${total} is shorter than the IPv4 and ${p.proto.toUpperCase()} headers (${headers} bytes)`);
    }
    payloadLen = total - headers;
  }
  if (headers + payloadLen > MAX_FRAME_LEN) {
    fail(p.options.get('payload')?.word ?? null, `payload ${payloadLen} makes an IPv4 packet of ${headers + payloadLen} bytes (at most ${MAX_FRAME_LEN})`);
  }
  const payload = Buffer.alloc(payloadLen);
  for (let i = 0; i < payloadLen; i++) payload[i] = i & 0xff;

  if (p.proto === 'tcp') {
    const ack = num('ack') ?? ((flags & TcpFlag.ACK) !== 0 ? DEFAULT_TCP_ACK : 0);
    return tcpFrame({ ...l3, sport, dport, seq: num('seq') ?? DEFAULT_TCP_SEQ, ack, flags, window: num('win') ?? DEFAULT_TCP_WINDOW, options: tcpOptions, payload });
  }
  if (p.proto === 'udp') return udpFrame({ ...l3, sport, dport, payload });
  const rest = (((num('id') ?? DEFAULT_ICMP_ID) << 16) | (num('seq') ?? DEFAULT_ICMP_SEQ)) >>> 0;
  return icmpv4Frame({ ...l3, type, code: num('code') ?? 0, rest: echo ? rest : 0, payload });
}

// ---------------------------------------------------------------------------------------
// Hex

/**
 * parseHexFrame reads a frame written as hex: a plain hex stream (Wireshark's "Copy as Hex
 * Stream"), optionally with a leading 0x, with spaces, newlines or colons between bytes, or
 * tcpdump -xx lines (their "0x0010:" offsets are skipped). Throws TracePacketError for an empty
 * input, a character that is not a hex digit, an odd number of digits, or more than
 * MAX_FRAME_LEN bytes.
 */
export function parseHexFrame(hex: string): Buffer {
  const body = hex
    .split(/\r?\n/)
    .map((l) => l.replace(/^\s*0x[0-9a-f]+:\s/i, ''))
    .join(' ')
    .trim()
    .replace(/^0x/i, '');
  let digits = '';
  for (const c of body) {
    if (/[0-9a-f]/i.test(c)) digits += c;
    else if (!/[\s:]/.test(c)) throw new TracePacketError(null, `hex: ${quote(c)} after ${digits.length} hex digits is not a hex digit`);
  }
  if (digits.length === 0) throw new TracePacketError(null, 'hex: no bytes given');
  if (digits.length % 2 !== 0) throw new TracePacketError(null, `hex: an odd number of hex digits (${digits.length}): every byte needs two`);
  if (digits.length / 2 > MAX_FRAME_LEN) throw new TracePacketError(null, `hex: ${digits.length / 2} bytes is longer than any frame (at most ${MAX_FRAME_LEN})`);
  return Buffer.from(digits, 'hex');
}
