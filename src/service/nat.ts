/**
 * ServiceNat: ClusterIP load balancing in the service-nat stage, as kube-proxy's iptables mode
 * does it, over the connection table the policy stages share (src/conntrack).
 *
 * - A new connection from a pod or the node's host port to ClusterIP:port/protocol is DNATed to
 *   one backend (uniform random, or Maglev by the 5-tuple; ClientIP affinity first when the
 *   Service asks for it); the client address is kept. The entry's REPLY tuple is the backend's
 *   answer, so the choice sticks for the life of the connection and replies are translated back
 *   (source = the ClusterIP), also when they arrive from another node.
 * - When the backend's answer tuple is already taken (the client reused its port toward another
 *   ClusterIP with the same backend), the connection gets another source port, as the kernel's
 *   NAT makes the tuple unique; replies go back to the client's own port.
 * - A client that reuses the port of a closing connection through a Service to open one straight
 *   to the same backend: the closing connection is forgotten, so the new one's replies are not
 *   taken for its own and translated to the ClusterIP.
 * - A pod reaching itself through its Service (hairpin) is also SNATed to the node's address
 *   (`nodeIp`), as kube-proxy masquerades that case, so the reply comes back through the switch.
 * - No endpoint: the client gets ICMP port unreachable (kube-proxy's REJECT), counted as
 *   service_no_endpoints; internalTrafficPolicy Local with no endpoint on this node: dropped as
 *   service_no_local_endpoints.
 * - ICMP errors quoting a translated packet are translated back (the quoted header and the outer
 *   addresses), as netfilter does for RELATED packets.
 * - Checksums are updated incrementally (RFC 1624): the IPv4 header, TCP and UDP (a zero UDP
 *   checksum stays zero), the partial checksum of an offloaded frame (only its pseudo-header
 *   part), SCTP's CRC32c recomputed; a GSO super-frame is rewritten once, before segmentation.
 *
 * Deciding writes only the context (the new addresses in c.srcIp/c.dstIp/c.srcPort/c.dstPort, so
 * the forwarding and policy stages see the backend); acting rewrites the frame and records the
 * connection. The later packets of a connection, both ways, are rewritten by the connection
 * table's batch pre-pass instead, with the checksum changes stored here (MARK_PREPASS_DNAT,
 * MARK_PREPASS_REPLY; the stage then sees them as natted), but for hairpin connections and ones
 * on the overlay's UDP port. Not handled: IPv4 fragments after the first (no ports: they pass
 * untranslated; the kernel reassembles before NAT, flatnet does not), and the ICMP errors the
 * switch itself makes about a translated packet (TTL exceeded, fragmentation needed) quote the
 * backend address.
 */

import { ConnTable, CtProto, CtRefuse, MARK_NAT, MARK_PREPASS_DNAT, MARK_PREPASS_REPLY, packPorts } from '../conntrack/table.js';
import { QuotedPacket, TRACKED_TCP_FLAGS } from '../conntrack/packet.js';
import { TCP_STATE_NAMES, TcpFlag, TcpState } from '../conntrack/tcp.js';
import { U32Filter, U32Map } from '../fib/u32-map.js';
import type { FrameLayout } from '../mtu/layout.js';
import { Reply, Verdict, type FrameContext } from '../pipeline/context.js';
import { Drop } from '../pipeline/drop.js';
import type { Tracking } from '../pipeline/policy.js';
import type { ServiceTable } from '../pipeline/service-nat.js';
import type { TraceRecorder } from '../pipeline/trace-recorder.js';
import { formatIpv4 } from '../wire/addr.js';
import { fold16, sum16, updateChecksum16, updateChecksum32 } from '../wire/checksum.js';
import { VirtioNetFlag } from '../wire/virtio-net-hdr.js';
import { UdpPort } from '../wire/consts.js';
import type { Backend, Frontend, ServiceCatalog } from './catalog.js';
import { maglevPick } from './maglev.js';

/** The connection-table mark bit of a translated connection (the policy stages use 1 and 2; MARK_PREPASS_DNAT 8, MARK_PREPASS_REPLY 16); kept in table.ts beside them. */
export { MARK_NAT };

const ICMP_DEST_UNREACH = 3, ICMP_PORT_UNREACH = 3;
/** How many source ports freeSourcePort tries before the clash is refused. */
const NAT_PORT_TRIES = 64;

/** What decide planned for act. */
const Plan = { NONE: 0, EXISTING: 1, NEW: 2, ICMP: 3, STALE: 4 } as const;
type Plan = (typeof Plan)[keyof typeof Plan];

export interface ServiceNatOptions {
  /** The node's address on the pod network (hairpin SNAT source): the gateway, 10.244.N.1. */
  readonly nodeIp: number;
  /** The switch's clock (milliseconds, read once per batch). */
  readonly clock: { readonly now: number };
  /** Uniform [0, 1) (tests fix it). */
  readonly random?: () => number;
  /** The overlay's UDP port (default 4789): connections on it stay out of the pre-pass (see act). */
  readonly vxlanPort?: number;
}

/** A client's last backend for one Service port (by backend address, so it outlives a catalog update). */
interface Affinity { ip: number; port: number; expires: number }

export class ServiceNat implements ServiceTable {
  catalog: ServiceCatalog;
  readonly ct: ConnTable;
  readonly tracking: Tracking;
  private readonly nodeIp: number;
  private readonly clock: { readonly now: number };
  private readonly random: () => number;
  private readonly vxlanPort: number;
  /** Frontends by ClusterIP (a short list each: one per port and protocol), behind a filter most other addresses stop at. */
  private byIp = new U32Map<Frontend[]>();
  private vips = new U32Filter();
  /** ClientIP affinity: client address -> frontend name -> backend. */
  private readonly affinity = new U32Map<Map<string, Affinity>>();
  // The plan decide made, for act (they run back to back for one frame).
  private plan: Plan = Plan.NONE;
  private node = -1;
  private fe: Frontend | null = null;
  private be: Backend | null = null;
  private hairpin = false;
  private proto = 0;
  private ports = 0;
  private tcpFlags = 0;
  private newSrc = 0;
  private newDst = 0;
  private newSport = 0;
  private newDport = 0;
  /** EXISTING: the packet's ports key before and after (packPorts), and its node's checksum changes (natSums). */
  private newPorts = 0;
  private sums = 0;
  /** ICMP error: the quoted header's new addresses and ports. */
  private inSrc = 0;
  private inDst = 0;
  private inSport = 0;
  private inDport = 0;
  /** The packet an ICMP error quotes (decide reads it, rewriteIcmp writes it). */
  private readonly quoted = new QuotedPacket();
  /** Packets translated here (the pre-pass counts the ones it translates: `translated`), connections opened. */
  private translatedHere = 0;
  opened = 0;
  /** Closing translated connections forgotten because a new connection took their reply tuple (decideStale). */
  staleRemoved = 0;

  constructor(catalog: ServiceCatalog, ct: ConnTable, opts: ServiceNatOptions) {
    this.catalog = catalog;
    this.ct = ct;
    this.nodeIp = opts.nodeIp >>> 0;
    this.clock = opts.clock;
    this.tracking = { ct, clock: opts.clock };
    this.random = opts.random ?? Math.random;
    this.vxlanPort = opts.vxlanPort ?? UdpPort.VXLAN;
    this.index(catalog);
  }

  /** Packets translated back and forth, here and by the connection table's pre-pass. */
  get translated(): number {
    return this.translatedHere + this.ct.stats.prepassTranslated;
  }

  /**
   * update installs a new catalog (Services or endpoints changed). Connections to backends that
   * remain keep going; UDP connections whose backend went away are deleted so that the client's
   * next datagram picks a live one (kube-proxy's conntrack cleanup); TCP ones are left to end.
   */
  update(catalog: ServiceCatalog): number {
    this.catalog = catalog;
    this.index(catalog);
    const ct = this.ct;
    return ct.removeWhere((o) => {
      if ((ct.mark(o) & MARK_NAT) === 0 || ct.protoOf(o) !== CtProto.UDP) return false;
      const r = o + 1;
      const fe = catalog.frontend(ct.nodeDst(o), CtProto.UDP, ct.nodePorts(o) & 0xffff);
      if (fe === undefined) return true;
      const ip = ct.nodeSrc(r), port = ct.nodePorts(r) >>> 16;
      return !fe.backends.some((b) => b.ip === ip && b.port === port);
    });
  }

  /** The time as a whole number of milliseconds (a Smi: passing it on allocates nothing). */
  private now(): number {
    return Math.floor(this.clock.now);
  }

  private index(catalog: ServiceCatalog): void {
    const m = new U32Map<Frontend[]>(), f = new U32Filter();
    for (const fe of catalog.frontends) {
      m.set(fe.ip, [...(m.get(fe.ip) ?? []), fe]);
      f.add(fe.ip);
    }
    this.byIp = m;
    this.vips = f;
  }

  decide(c: FrameContext): void {
    this.plan = Plan.NONE;
    this.fe = null;
    if (c.ipVersion !== 4) return;
    const dv = c.dv, l4 = c.l4Off, room = c.ipEnd - l4, proto = c.proto;
    if (proto === CtProto.ICMP) return this.decideIcmp(c);
    if (proto !== CtProto.TCP && proto !== CtProto.UDP && proto !== CtProto.SCTP) return;
    if ((c.flagsFrag & 0x1fff) !== 0 || room < 4) return; // a later fragment: no ports
    const ports = dv.getInt32(l4);
    this.proto = proto;
    this.ports = ports;
    this.tcpFlags = proto === CtProto.TCP && room >= 14 ? dv.getUint8(l4 + 13) & TRACKED_TCP_FLAGS : 0;
    // No connection has the packet (the pre-pass said so) and no Service its destination:
    // nothing to translate, and only a TCP SYN may find a closing one to forget (decideStale).
    if (c.ctMissed && this.tcpFlags !== TcpFlag.SYN && !this.vips.mayHave(c.dstIp)) return;
    const ct = this.ct, now = this.now();
    // The pre-pass (ConnTable.prepass) may have found the connection already, or found none.
    let n = c.ctNode >= 0 ? c.ctNode : c.ctMissed ? -1 : ct.lookup(proto, c.srcIp | 0, c.dstIp | 0, ports, now);
    if (n >= 0 && this.tcpFlags === TcpFlag.SYN && ct.reopens(n, TcpFlag.SYN)) { c.ctReopen = n; n = -1; }
    if (n >= 0) {
      c.ctNode = n;
      if ((ct.mark(n) & MARK_NAT) === 0) return;
      this.node = n;
      this.planTuple(n);
      this.sums = ct.nodeAux(n);
      this.plan = Plan.EXISTING;
      this.setContext(c);
      c.natted = true;
      return;
    }
    if (!c.ingress.isPod && !c.ingress.isHost) return;
    // New translations for routed frames only (a frame sent to a local pod's MAC is delivered there as addressed).
    const list = c.verdict === Verdict.NEXT && this.vips.mayHave(c.dstIp) ? this.byIp.get(c.dstIp) : undefined;
    if (list === undefined) {
      if (this.tcpFlags === TcpFlag.SYN) this.decideStale(c, ports, now);
      return;
    }
    const dport = ports & 0xffff;
    let fe: Frontend | null = null;
    for (let i = 0; i < list.length; i++) if (list[i]!.proto === proto && list[i]!.port === dport) { fe = list[i]!; break; }
    if (fe === null || fe.empty === 'no-endpoints') return this.reject(c, fe ?? list[0]!);
    this.fe = fe;
    if (fe.backends.length === 0) return c.dropWith(Drop.SERVICE_NO_LOCAL_ENDPOINTS);
    const be = this.choose(fe, c.srcIp, ports, now);
    this.fe = fe;
    this.be = be;
    this.hairpin = be.ip === c.srcIp >>> 0;
    this.newSrc = this.hairpin ? this.nodeIp : c.srcIp >>> 0;
    this.newSport = ports >>> 16;
    this.newDst = be.ip;
    this.newDport = be.port;
    this.plan = Plan.NEW;
    this.setContext(c);
    c.natted = true;
  }

  act(c: FrameContext): void {
    const plan = this.plan, ct = this.ct;
    // A SYN on the tuple of a closed connection: that connection goes, whatever this one becomes.
    if (c.ctReopen >= 0) { ct.remove(c.ctReopen); c.ctReopen = -1; }
    if (plan === Plan.NONE) {
      if (c.verdict === Verdict.DROP && this.fe !== null) this.fe.rejected++;
      this.fe = null;
      return;
    }
    const now = this.now(), len = c.ipEnd - c.l3Off;
    if (plan === Plan.STALE) {
      ct.remove(this.node);
      this.plan = Plan.NONE;
      this.staleRemoved++;
      return;
    }
    if (plan === Plan.EXISTING) {
      if (!c.ctSeen) { c.ctSeen = true; ct.seen(this.node, this.tcpFlags, len, now); }
    } else if (plan === Plan.NEW) {
      const src = this.frameSrc(c), dst = this.frameDst(c);
      if (ct.lookup(this.proto, this.newDst | 0, this.newSrc | 0, packPorts(this.newDport, this.newSport), now) >= 0) this.freeSourcePort(c, now);
      const r = ct.create(this.proto, src | 0, dst | 0, this.ports, this.newDst | 0, this.newSrc | 0, packPorts(this.newDport, this.newSport), this.tcpFlags, len, now);
      if (r < 0) {
        c.dropWith(r === CtRefuse.FULL ? Drop.CONNTRACK_FULL : Drop.NAT_CLASH);
        return;
      }
      // The connection's later packets, both ways, may be translated by the connection table's
      // pre-pass, before the ingress stage checks them (with their source from before): not
      // for hairpin (its source NAT makes the reply's destination the node, a VTEP address),
      // and not on the overlay's UDP port, which the ingress stage refuses from a pod towards
      // a VTEP address: there the checks must see the packet as it came.
      const vx = this.proto === CtProto.UDP && (this.newDport === this.vxlanPort || this.newSport === this.vxlanPort || this.ports >>> 16 === this.vxlanPort);
      ct.setMark(r, this.hairpin || vx ? MARK_NAT : MARK_NAT | MARK_PREPASS_DNAT | MARK_PREPASS_REPLY);
      // What the rewrite changes in the checksums, per direction, for the packets after this one.
      const newPorts = packPorts(this.newSport, this.newDport);
      ct.setNodeAux(r, natSums(src, dst, this.ports, this.newSrc, this.newDst, newPorts));
      ct.setNodeAux(r + 1, natSums(this.newDst, this.newSrc, swapPorts(newPorts), dst, src, swapPorts(this.ports)));
      c.ctNode = r;
      c.ctSeen = true;
      c.ctNew = true;
      this.be!.hits++;
      this.opened++;
      const fe = this.fe!;
      if (fe.affinityMs > 0) this.remember(fe, src, this.be!, now);
    } else {
      this.rewriteIcmp(c);
      this.translatedHere++;
      return;
    }
    this.rewrite(c);
    this.translatedHere++;
  }

  /**
   * rewrite applies the planned translation to the frame (act, and a trace's copy of the frame).
   * Exposed for the trace so that the frame a trace prints is the one the switch would send.
   */
  rewrite(c: FrameContext): void {
    if (this.plan === Plan.ICMP) return this.rewriteIcmp(c);
    if (this.plan === Plan.NONE || this.plan === Plan.STALE) return;
    if (this.plan === Plan.EXISTING && this.proto !== CtProto.SCTP) {
      natApply(c, (c.vFlags & VirtioNetFlag.NEEDS_CSUM) !== 0, this.sums, this.newSrc, this.newDst, this.newPorts);
      return;
    }
    natRewrite(c, (c.vFlags & VirtioNetFlag.NEEDS_CSUM) !== 0, this.newSrc, this.newDst, this.newSport, this.newDport);
  }

  explain(c: FrameContext, t: TraceRecorder): void {
    const ct = this.ct;
    switch (this.plan) {
      case Plan.NONE: {
        if (c.verdict === Verdict.DROP && c.drop === Drop.SERVICE_NO_ENDPOINTS) t.look(`${formatIpv4(c.dstIp)} is a ClusterIP with no endpoint for this port: rejected (ICMP port unreachable to the client)`);
        else if (c.verdict === Verdict.DROP && c.drop === Drop.SERVICE_NO_LOCAL_ENDPOINTS) t.look(`service ${this.fe?.name ?? ''} has internalTrafficPolicy Local and no endpoint on this node: dropped`);
        else if (c.ctNode >= 0) t.look('a tracked connection without translation');
        else t.look('not to a ClusterIP: no translation');
        this.fe = null;
        return;
      }
      case Plan.STALE:
        t.look(`a new connection on the port of a closed translated connection (${TCP_STATE_NAMES[ct.tcpState(this.node)]}) whose replies look like this one's: that connection is forgotten, this one passes untranslated`);
        return;
      case Plan.EXISTING:
        t.look(`${(this.node & 1) === 1 ? 'reply' : 'packet'} of translated connection (${ct.tcpState(this.node) !== 0 ? 'tcp' : 'tracked'}): ${hostPort(this.newSrc, this.newSport)} > ${hostPort(this.newDst, this.newDport)}`);
        return;
      case Plan.NEW: {
        const fe = this.fe!;
        const how = fe.affinityMs > 0 && this.remembered(fe, c) ? 'by ClientIP affinity' : this.catalog.loadBalancing === 'maglev' ? 'by Maglev hash' : `at random (this trace's pick; a real packet draws again)`;
        t.look(`service ${fe.name} ${formatIpv4(fe.ip)}:${fe.port}: backend ${hostPort(this.newDst, this.newDport)} of ${fe.backends.length}, ${how}${this.hairpin ? `; hairpin: source NAT to ${formatIpv4(this.nodeIp)}` : ''}${c.ctReopen >= 0 ? `; a new connection on the port of a closed one (${TCP_STATE_NAMES[ct.tcpState(c.ctReopen)]}), which it replaces` : ''}`);
        return;
      }
      default:
        t.look(`ICMP error about a translated connection: quoted header becomes ${hostPort(this.inSrc, this.inSport)} > ${hostPort(this.inDst, this.inDport)}`);
    }
  }

  // --- internals ---------------------------------------------------------------------------

  /** reject ends the frame with ICMP port unreachable to its sender, as kube-proxy's REJECT. */
  private reject(c: FrameContext, fe: Frontend): void {
    this.fe = fe;
    c.dropWith(Drop.SERVICE_NO_ENDPOINTS);
    c.reply = Reply.ICMP_ERROR;
    c.icmpType = ICMP_DEST_UNREACH;
    c.icmpCode = ICMP_PORT_UNREACH;
    c.icmpRest = 0;
  }

  private choose(fe: Frontend, client: number, ports: number, now: number): Backend {
    if (fe.affinityMs > 0) {
      const a = this.affinity.get(client >>> 0)?.get(fe.name);
      if (a !== undefined && a.expires > now) {
        for (const b of fe.backends) if (b.ip === a.ip && b.port === a.port) return b;
      }
    }
    const bs = fe.backends;
    if (fe.maglev !== null) {
      let h = Math.imul(client ^ 0x9e3779b9, 0x85ebca6b) ^ ports;
      h = Math.imul(h ^ (h >>> 15), 0xc2b2ae35) ^ fe.port;
      return bs[maglevPick(fe.maglev, h ^ (h >>> 13))]!;
    }
    return bs[Math.min(bs.length - 1, Math.floor(this.random() * bs.length))]!;
  }

  private remember(fe: Frontend, client: number, be: Backend, now: number): void {
    let m = this.affinity.get(client >>> 0);
    if (m === undefined) { m = new Map(); this.affinity.set(client >>> 0, m); }
    m.set(fe.name, { ip: be.ip, port: be.port, expires: now + fe.affinityMs });
  }

  private remembered(fe: Frontend, c: FrameContext): boolean {
    const a = this.affinity.get(this.frameSrc(c) >>> 0)?.get(fe.name);
    return a !== undefined && a.expires > this.now() && a.ip === this.newDst && a.port === this.newDport;
  }

  /**
   * decideStale: a TCP SYN that is not to a ClusterIP, from a client port whose earlier
   * connection through a Service to this same backend is closing (FIN_WAIT and after): that
   * connection's reply tuple would take this connection's replies and translate them to the
   * ClusterIP. The client's kernel has let the port go, so the entry is forgotten (in act), as
   * the kernel's conntrack lets a new connection take over a closing one's tuple.
   */
  private decideStale(c: FrameContext, ports: number, now: number): void {
    const ct = this.ct;
    const r = ct.lookup(CtProto.TCP, c.dstIp | 0, c.srcIp | 0, packPorts(ports & 0xffff, ports >>> 16), now);
    if (r < 0 || (r & 1) === 0 || (ct.mark(r) & MARK_NAT) === 0 || ct.tcpState(r) < TcpState.FIN_WAIT) return;
    this.node = r;
    this.plan = Plan.STALE;
  }

  /**
   * freeSourcePort: the backend's answer tuple is taken by another connection (the client reused
   * its port toward another ClusterIP with the same backend, or the backend's own connection to
   * the client): pick another source port, as the kernel's NAT does (nf_nat's unique tuple,
   * which keeps a port above or below 1024), trying up to NAT_PORT_TRIES ports from a point that
   * depends on the flow; none free: the port stays and create() refuses the clash (nat_clash).
   */
  private freeSourcePort(c: FrameContext, now: number): void {
    const ct = this.ct, orig = this.newSport;
    const min = orig < 1024 ? 600 : 1024, span = (orig < 1024 ? 1024 : 65536) - min;
    let off = (Math.imul(this.newSrc ^ (orig << 16) ^ this.newDst, 0x9e3779b1) >>> 0) % span;
    for (let i = 0; i < NAT_PORT_TRIES; i++, off = (off + 1) % span) {
      const port = min + off;
      if (ct.lookup(this.proto, this.newDst | 0, this.newSrc | 0, packPorts(this.newDport, port), now) < 0) {
        this.newSport = port;
        c.srcPort = port;
        return;
      }
    }
  }

  /** planTuple: the addresses a packet of node `n`'s direction leaves with (the other tuple, inverted). */
  private planTuple(n: number): void {
    const ct = this.ct, o = n ^ 1, p = ct.nodePorts(o);
    this.newSrc = ct.nodeDst(o);
    this.newDst = ct.nodeSrc(o);
    this.newSport = p & 0xffff;
    this.newDport = p >>> 16;
    this.newPorts = swapPorts(p);
  }

  private setContext(c: FrameContext): void {
    c.srcIp = this.newSrc;
    c.dstIp = this.newDst;
    c.srcPort = this.newSport;
    c.dstPort = this.newDport;
  }

  private frameSrc(c: FrameContext): number { return c.dv.getUint32(c.l3Off + 12); }
  private frameDst(c: FrameContext): number { return c.dv.getUint32(c.l3Off + 16); }

  /** decideIcmp: an ICMP error whose quoted packet belongs to a translated connection. */
  private decideIcmp(c: FrameContext): void {
    const q = this.quoted;
    if (!q.read(c.dv, c.l4Off, c.ipEnd) || !q.portsWhole) return;
    const proto = q.proto;
    if (proto !== CtProto.TCP && proto !== CtProto.UDP && proto !== CtProto.SCTP) return;
    const qd = q.dst, qp = q.ports;
    // The quoted packet went src -> dst; the error comes back the other way: look up its inverse.
    const n = this.ct.lookup(proto, qd, q.src, packPorts(qp & 0xffff, qp >>> 16), this.now());
    if (n < 0 || (this.ct.mark(n) & MARK_NAT) === 0) return;
    const ct = this.ct, o = n ^ 1;
    // The quoted header becomes what its sender sent (the other tuple); the outer one its inverse.
    this.inSrc = ct.nodeSrc(o); this.inDst = ct.nodeDst(o);
    this.inSport = ct.nodePorts(o) >>> 16; this.inDport = ct.nodePorts(o) & 0xffff;
    this.newDst = this.inSrc;
    this.newSrc = (c.srcIp | 0) === qd ? this.inDst : c.srcIp >>> 0;
    this.node = n;
    this.plan = Plan.ICMP;
    c.ctNode = n;
    c.natted = true;
    c.srcIp = this.newSrc;
    c.dstIp = this.newDst;
  }

  private rewriteIcmp(c: FrameContext): void {
    const dv = c.dv, l3 = c.l3Off, l4 = c.l4Off, end = c.ipEnd;
    const q = this.quoted, ip = q.ip, ihl = q.ihl, proto = q.proto;
    // The quoted header: addresses (its IP checksum), ports (its L4 checksum when quoted whole enough).
    let qsum = dv.getUint16(ip + 10);
    const qs = dv.getUint32(ip + 12), qd = dv.getUint32(ip + 16);
    qsum = updateChecksum32(updateChecksum32(qsum, qs, this.inSrc), qd, this.inDst);
    dv.setUint32(ip + 12, this.inSrc);
    dv.setUint32(ip + 16, this.inDst);
    dv.setUint16(ip + 10, qsum);
    const q4 = ip + ihl;
    const csumAt = proto === CtProto.TCP ? q4 + 16 : proto === CtProto.UDP ? q4 + 6 : -1;
    const oldSport = dv.getUint16(q4), oldDport = dv.getUint16(q4 + 2);
    if (csumAt >= 0 && csumAt + 2 <= end) {
      let s = dv.getUint16(csumAt);
      if (!(proto === CtProto.UDP && s === 0)) {
        s = updateChecksum32(updateChecksum32(s, qs, this.inSrc), qd, this.inDst);
        s = updateChecksum16(updateChecksum16(s, oldSport, this.inSport), oldDport, this.inDport);
        dv.setUint16(csumAt, proto === CtProto.UDP && s === 0 ? 0xffff : s);
      }
    }
    dv.setUint16(q4, this.inSport);
    dv.setUint16(q4 + 2, this.inDport);
    // The ICMP checksum covers the whole message: recompute it.
    dv.setUint16(l4 + 2, 0);
    dv.setUint16(l4 + 2, ~fold16(sum16(c.buf, l4, end - l4)) & 0xffff);
    // The outer header.
    let sum = dv.getUint16(l3 + 10);
    const os = dv.getUint32(l3 + 12), od = dv.getUint32(l3 + 16);
    sum = updateChecksum32(updateChecksum32(sum, os, this.newSrc), od, this.newDst);
    dv.setUint32(l3 + 12, this.newSrc);
    dv.setUint32(l3 + 16, this.newDst);
    dv.setUint16(l3 + 10, sum);
  }
}

const hostPort = (ip: number, port: number): string => `${formatIpv4(ip)}:${port}`;

/**
 * natRewrite sets the packet's addresses and ports, keeping every checksum right: the IPv4
 * header's, TCP's and UDP's incrementally (a zero UDP checksum stays zero), an offloaded frame's
 * partial checksum (`partial`: the pseudo-header sum the device completes, addresses only),
 * SCTP's CRC32c recomputed. Requires a parsed IPv4 packet with its first 4 transport bytes.
 */
export function natRewrite(c: FrameLayout, partial: boolean, src: number, dst: number, sport: number, dport: number): void {
  const dv = c.dv, l3 = c.l3Off, l4 = c.l4Off, proto = c.proto;
  const os = dv.getUint32(l3 + 12), od = dv.getUint32(l3 + 16);
  dv.setUint16(l3 + 10, updateChecksum32(updateChecksum32(dv.getUint16(l3 + 10), os, src), od, dst));
  dv.setUint32(l3 + 12, src);
  dv.setUint32(l3 + 16, dst);
  const osp = dv.getUint16(l4), odp = dv.getUint16(l4 + 2);
  dv.setUint16(l4, sport);
  dv.setUint16(l4 + 2, dport);
  if (proto === CtProto.SCTP) {
    if (c.ipEnd - l4 >= 12) {
      dv.setUint32(l4 + 8, 0);
      dv.setUint32(l4 + 8, crc32c(c.buf, l4, c.ipEnd), true);
    }
    return;
  }
  const at = proto === CtProto.TCP ? l4 + 16 : l4 + 6;
  if (at + 2 > c.ipEnd) return;
  const old = dv.getUint16(at);
  if (proto === CtProto.UDP && old === 0) return;
  let s: number;
  if (partial) {
    // CHECKSUM_PARTIAL: the field holds the folded pseudo-header sum, not complemented; ports
    // are in the part the device sums.
    s = ~updateChecksum32(updateChecksum32(~old & 0xffff, os, src), od, dst) & 0xffff;
  } else {
    s = updateChecksum32(updateChecksum32(old, os, src), od, dst);
    s = updateChecksum16(updateChecksum16(s, osp, sport), odp, dport);
    if (proto === CtProto.UDP && s === 0) s = 0xffff;
  }
  dv.setUint16(at, s);
}

/** ~w as a 16-bit word. */
const neg16 = (w: number): number => ~w & 0xffff;
/** The sum RFC 1624 (eqn. 3) adds for a 32-bit field changing from `o` to `n`: ~o + n, by 16-bit words. */
const change32 = (o: number, n: number): number => neg16(o >>> 16) + neg16(o) + ((n >>> 16) & 0xffff) + (n & 0xffff);
/** fold2: a sum of a few 16-bit words folded to 16 bits (end-around carry). */
const fold2 = (s: number): number => {
  s = (s >>> 16) + (s & 0xffff);
  return (s >>> 16) + (s & 0xffff);
};

/**
 * natSums: what rewriting a packet from (os, od, oports) to (ns, nd, nports) adds to its
 * checksums (ports keys as packPorts makes them), folded: the IPv4 header's (addresses) in the
 * high 16 bits, TCP's and UDP's (addresses of the pseudo-header and ports) in the low 16 bits.
 * Stored with each direction of a translated connection (ConnTable.setNodeAux): every packet of
 * that direction changes the same fields the same way.
 */
export function natSums(os: number, od: number, oports: number, ns: number, nd: number, nports: number): number {
  const ip = fold2(change32(os, ns) + change32(od, nd));
  return (ip << 16) | fold2(ip + change32(oports, nports));
}

/**
 * natApply: natRewrite for a packet of a translated connection whose tuple is the one `sums`
 * was made for (natSums): the same bytes, with the checksum changes added instead of worked out
 * from the old fields. Not for SCTP (its CRC32c is recomputed: natRewrite).
 */
export function natApply(c: FrameLayout, partial: boolean, sums: number, src: number, dst: number, ports: number): void {
  const dv = c.dv, l3 = c.l3Off, l4 = c.l4Off, proto = c.proto, ip = sums >>> 16;
  dv.setUint16(l3 + 10, neg16(fold2(neg16(dv.getUint16(l3 + 10)) + ip)));
  dv.setUint32(l3 + 12, src);
  dv.setUint32(l3 + 16, dst);
  dv.setInt32(l4, ports);
  const at = proto === CtProto.TCP ? l4 + 16 : l4 + 6;
  if (at + 2 > c.ipEnd) return;
  const old = dv.getUint16(at);
  if (proto === CtProto.UDP && old === 0) return;
  let s: number;
  if (partial) {
    s = fold2(old + ip); // the pseudo-header sum, not complemented: the addresses only
  } else {
    s = neg16(fold2(neg16(old) + (sums & 0xffff)));
    if (proto === CtProto.UDP && s === 0) s = 0xffff;
  }
  dv.setUint16(at, s);
}

/** swapPorts: the ports key the other way (packPorts(dport, sport)). */
const swapPorts = (ports: number): number => packPorts(ports & 0xffff, ports >>> 16);

const CRC32C_TABLE = (() => {
  const t = new Uint32Array(256);
  for (let i = 0; i < 256; i++) {
    let c = i;
    for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ 0x82f63b78 : c >>> 1;
    t[i] = c >>> 0;
  }
  return t;
})();

/** crc32c (Castagnoli, RFC 9260 Appendix A) of b[start, end). */
export function crc32c(b: Buffer, start: number, end: number): number {
  let c = 0xffffffff;
  for (let i = start; i < end; i++) c = CRC32C_TABLE[(c ^ b[i]!) & 0xff]! ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}
