/**
 * Running a trace (Switch.trace): the frame is copied into a private buffer, loaded into a
 * context of its own with a recorder, and taken through Pipeline.run with the acts switched
 * off. Then the frames it would leave as are built from the decisions, into private buffers,
 * with the same pure builders the acts use (the routed rewrite, EncapTemplate without advancing
 * its IPv4 ID, segmentation, fragmentation, the ARP, echo and ICMP builders). Nothing the data
 * path owns is written: no counter, FDB entry, timestamp, rate-limit token or queue.
 *
 * What a trace cannot know is said in its notes: whether the port takes the write (tx_busy,
 * tx_error), whether the ICMP rate limit has a token at that moment, how GRO would merge the
 * frame with others of its batch.
 */

import { FlatnetError } from '../errors.js';
import { fragmentIpv4 } from '../mtu/fragment.js';
import { buildFragNeeded } from '../mtu/pmtu.js';
import { RouteKind } from '../fib/route-table.js';
import type { Vtep } from '../fib/vtep.js';
import { completeChecksum } from '../offload/checksum.js';
import { segmentGso } from '../offload/segment.js';
import { formatIpv4 } from '../wire/addr.js';
import { ArpView } from '../wire/arp.js';
import { dataViewOf, dvPutU48 } from '../wire/bytes.js';
import { EtherType, IpProto } from '../wire/consts.js';
import { VXLAN_HEADROOM } from '../wire/encap.js';
import { ETH_HEADER_LEN, EthernetView } from '../wire/ethernet.js';
import { Icmpv4View } from '../wire/icmpv4.js';
import { Ipv4View, ipv4Validate } from '../wire/ipv4.js';
import { WireDrop } from '../wire/drop.js';
import { udpChecksumOk } from '../wire/udp.js';
import { formatVirtioNetHdr, type VirtioNetHdrRepr } from '../wire/virtio-net-hdr.js';
import { arpReplyInPlace } from './arp.js';
import { FrameContext, Plan, Reply, Verdict } from './context.js';
import { Drop, DROP_HELP, DROP_NAMES } from './drop.js';
import { applyRoutedRewrite } from './egress.js';
import { applyEcnDecap } from './ingress-overlay.js';
import { buildIcmpError, echoReplyInPlace, type IcmpViews } from './icmp.js';
import type { Pipeline } from './pipeline.js';
import type { SwitchState } from './state.js';
import { Framing, type SwitchPort } from './switch-port.js';
import { TraceRecorder } from './trace-recorder.js';
import type { TraceFrame, TraceResult } from './trace.js';
import { SCRATCH_SLOT_SIZE } from './transmit.js';
import { MAX_PIECES } from './tunnel.js';

export interface TraceInput {
  /** The ingress port. */
  readonly port: SwitchPort;
  /**
   * The bytes as they arrive: an Ethernet frame; for the overlay the whole outer frame, as a
   * capture on the underlay shows it (for a port that receives UDP payloads, the outer headers
   * are checked and stripped as the kernel's UDP socket would).
   */
  readonly frame: Buffer;
  /** The virtio-net header the frame arrives with on a port with offloads (default: a complete frame). */
  readonly vnet?: VirtioNetHdrRepr;
}

/** Room after the frame in the private buffer: replies and the outer headers of pieces. */
const OUT_ROOM = 64 * 1024;

export function runTrace(st: SwitchState, pipe: Pipeline, input: TraceInput): TraceResult {
  const sp = input.port;
  if (!sp.attached) throw new FlatnetError('ERR_TRACE_INPUT', `port ${sp.name} is not attached`);
  const t = new TraceRecorder();
  const c = new FrameContext();
  c.trace = t;
  let frame = input.frame;
  let srcAddr = 0, srcTos = 0;
  if (sp.isOverlay && sp.rxFraming === Framing.UDP) {
    const u = udpPayload(frame, st.vxlanPort);
    frame = u.payload;
    srcAddr = u.src;
    t.note(`outer Ethernet/IPv4/UDP checked and removed as the kernel's UDP socket on port ${st.vxlanPort} does; the pipeline sees the datagram from ${formatIpv4(srcAddr)}`);
    srcTos = input.frame[ETH_HEADER_LEN + 1]!;
    const ecn = srcTos & 0x03;
    if (ecn !== 0) t.note(`the outer ECN bits (${ecn === 3 ? 'CE' : `ECT(${ecn === 2 ? 0 : 1})`}) come with the datagram (the socket's IP_TOS message) and combine into the inner packet (RFC 6040)`);
  }
  const packet = { hex: input.frame.toString('hex'), length: input.frame.length, vnet: input.vnet === undefined ? null : formatVirtioNetHdr(input.vnet) };
  const base = { in: { port: sp.name, role: sp.role }, packet };
  if (frame.length > sp.batch.slotSize - VXLAN_HEADROOM) {
    t.begin('ingress');
    t.look(`${frame.length}-byte frame, receive slots hold ${sp.batch.slotSize - VXLAN_HEADROOM}`);
    t.end(`drop ${DROP_NAMES[Drop.RX_TRUNCATED]}`);
    return finish(base, t, 'drop', Drop.RX_TRUNCATED, []);
  }
  const buf = Buffer.alloc(VXLAN_HEADROOM + frame.length + OUT_ROOM);
  frame.copy(buf, VXLAN_HEADROOM);
  const dv = dataViewOf(buf);
  c.batch(sp, buf, dv);
  c.load(VXLAN_HEADROOM, VXLAN_HEADROOM + frame.length, srcAddr);
  c.reset();
  c.srcTos = srcTos;
  const v = input.vnet;
  if (v !== undefined) {
    if (sp.vnetHdrLen === 0) throw new FlatnetError('ERR_TRACE_INPUT', `port ${sp.name} takes no virtio-net header`);
    c.vFlags = v.flags; c.vGso = v.gsoType; c.vHdrLen = v.hdrLen; c.vGsoSize = v.gsoSize; c.vCsumStart = v.csumStart; c.vCsumOff = v.csumOffset;
  }
  pipe.run(c);
  const outputs = new Outputs(st, pipe, c);
  const frames = outputs.build();
  const outcome = c.verdict === Verdict.DELIVER ? 'deliver' : c.verdict === Verdict.TUNNEL ? 'tunnel' : c.verdict === Verdict.FLOOD ? 'flood' : c.verdict === Verdict.REPLY ? 'reply' : 'drop';
  if (c.reply === Reply.ICMP_ERROR || c.reply === Reply.FRAG_NEEDED) t.note(`ICMP errors are rate limited (${st.icmpBucket.available(st.clock.now)} tokens now)`);
  if (c.plan === Plan.GRO) t.note('GRO may merge this frame with others of its batch into one super-frame');
  const ov = st.overlay;
  if (ov !== null && ov.txFraming !== Framing.ETHERNET && frames.some((f) => f.port === ov.name)) {
    t.note(`the overlay port sends from the ${ov.txFraming === Framing.IP ? 'outer IPv4' : 'VXLAN'} header on: the kernel fills in the outer Ethernet (and, for UDP, IPv4 and UDP) headers shown here`);
  }
  return finish(base, t, outcome, c.verdict === Verdict.DROP ? c.drop : Drop.NONE, frames, outputs.droppedCopies);
}

function finish(
  base: Pick<TraceResult, 'in' | 'packet'>, t: TraceRecorder, outcome: TraceResult['outcome'], drop: Drop, frames: TraceFrame[], droppedCopies: TraceResult['droppedCopies'] = [],
): TraceResult {
  return {
    ...base,
    steps: t.steps,
    outcome,
    drop: drop === Drop.NONE ? null : { reason: DROP_NAMES[drop]!, help: DROP_HELP[drop as Exclude<Drop, 0>] },
    frames,
    droppedCopies,
    notes: t.notes,
  };
}

/**
 * udpPayload: what the kernel's UDP socket on `port` would hand over for the outer frame `f`,
 * and from which address; a typed error when it would hand over nothing.
 */
function udpPayload(f: Buffer, port: number): { payload: Buffer; src: number } {
  const dv = dataViewOf(f);
  const no = (why: string): never => { throw new FlatnetError('ERR_TRACE_INPUT', `the kernel would not deliver this frame to the VXLAN socket: ${why}`); };
  if (f.length < ETH_HEADER_LEN || dv.getUint16(12) !== EtherType.IPV4) no('not an untagged IPv4 frame');
  if (ipv4Validate(dv, ETH_HEADER_LEN, f.length) !== WireDrop.NONE) no('its IPv4 header is invalid');
  const hl = (dv.getUint8(ETH_HEADER_LEN) & 0x0f) << 2, udp = ETH_HEADER_LEN + hl;
  const ipEnd = ETH_HEADER_LEN + dv.getUint16(ETH_HEADER_LEN + 2);
  if (dv.getUint8(ETH_HEADER_LEN + 9) !== IpProto.UDP || (dv.getUint16(ETH_HEADER_LEN + 6) & 0x3fff) !== 0) no('not an unfragmented UDP datagram');
  if (ipEnd - udp < 8 || dv.getUint16(udp + 4) < 8 || dv.getUint16(udp + 4) > ipEnd - udp) no('its UDP header is cut or its length is wrong');
  if (dv.getUint16(udp + 2) !== port) no(`UDP destination port ${dv.getUint16(udp + 2)} is not the VXLAN port ${port}`);
  const src = dv.getUint32(ETH_HEADER_LEN + 12), dst = dv.getUint32(ETH_HEADER_LEN + 16);
  if (!udpChecksumOk(dv, udp, dv.getUint16(udp + 4), src, dst)) no('its UDP checksum does not verify (the kernel counts it in UDP InCsumErrors)');
  return { payload: f.subarray(udp + 8, udp + dv.getUint16(udp + 4)), src };
}

/** Builds the frames a traced packet would leave as, from the context's decisions. */
class Outputs {
  private readonly frames: TraceFrame[] = [];
  private readonly views: IcmpViews = { eth: new EthernetView(), ip: new Ipv4View(), icmp: new Icmpv4View() };

  /** Outputs of a flood that would be dropped (each counted under its reason), the others still going. */
  readonly droppedCopies: { to: string; reason: string }[] = [];

  constructor(private readonly st: SwitchState, private readonly pipe: Pipeline, private readonly c: FrameContext) {}

  build(): TraceFrame[] {
    const c = this.c, st = this.st;
    switch (c.verdict) {
      case Verdict.DELIVER:
        this.rewrite();
        this.local(c.out!);
        break;
      case Verdict.TUNNEL:
        this.rewrite();
        this.tunnel(c.vtep!, 'forwarded');
        break;
      case Verdict.FLOOD:
        this.flood();
        break;
      case Verdict.REPLY:
        if (c.reply === Reply.ARP) {
          const len = arpReplyInPlace(c.buf, c.start, c.end, c.replyMac, new ArpView(), this.views.eth);
          this.push(c.ingress, 'reply', null, c.buf, c.start, c.start + len);
        } else {
          echoReplyInPlace(c, this.views);
          dvPutU48(c.dv, c.start, c.srcMac);
          dvPutU48(c.dv, c.start + 6, st.vtepMac);
          this.push(c.ingress, 'reply', null, c.buf, c.start, c.ipEnd);
        }
        break;
      default:
        if (c.reply === Reply.ICMP_ERROR) this.icmpError();
        else if (c.reply === Reply.FRAG_NEEDED) this.fragNeeded();
    }
    return this.frames;
  }

  /**
   * flood: what Egress.flood sends, output by output, with the same plans: each local port but
   * the ingress, then (unless the frame came from the overlay) each VTEP of the flood list,
   * the first in place and the others as copies in scratch slots.
   */
  private flood(): void {
    const c = this.c, st = this.st, egress = this.pipe.egress;
    let localVnet = false;
    for (const sp of st.ports) {
      if (sp === null || sp === c.ingress || sp.isOverlay) continue;
      if (sp.vnetHdrLen > 0) localVnet = true;
      const d = egress.planLocal(c, sp);
      if (d !== Drop.NONE) { this.lose(`${sp.role} port ${sp.name}`, d); continue; }
      if (c.completeCsum) completeChecksum(c.buf, c.start, c.end, c.vCsumStart, c.vCsumOff);
      this.local(sp, 'flood-copy');
    }
    const list = st.fdb.floodList;
    if (c.ingress.isOverlay || list.length === 0) return;
    const d = egress.planTunnel(c);
    if (d !== Drop.NONE) {
      for (const v of list) this.lose(`VTEP ${v.name}`, d);
      if (c.reply === Reply.FRAG_NEEDED) this.fragNeeded();
      return;
    }
    if (c.completeCsum) completeChecksum(c.buf, c.start, c.end, c.vCsumStart, c.vCsumOff);
    const inPlace = c.plan === Plan.ENCAP && !localVnet ? 1 : 0;
    list.forEach((v, i) => {
      if (c.plan === Plan.ENCAP && i >= inPlace && c.end - c.start > SCRATCH_SLOT_SIZE - VXLAN_HEADROOM) this.lose(`VTEP ${v.name}`, Drop.NO_BUFFER);
      else this.tunnel(v, 'flood-copy');
    });
  }

  private lose(to: string, d: Drop): void {
    this.droppedCopies.push({ to, reason: DROP_NAMES[d]! });
  }

  private rewrite(): void {
    const c = this.c;
    // The Service translation the NAT stage chose (the real pipeline applies it as that stage acts).
    if (c.natted) this.pipe.serviceNat.table?.rewrite(c);
    if (c.decapsulated && !this.st.l2) applyEcnDecap(c, this.views.ip);
    if (c.routed) applyRoutedRewrite(c);
    if (c.completeCsum) completeChecksum(c.buf, c.start, c.end, c.vCsumStart, c.vCsumOff);
  }

  private local(out: SwitchPort, kind = 'forwarded'): void {
    const c = this.c;
    if (c.plan !== Plan.SEGMENT) { this.push(out, kind, null, c.buf, c.start, c.end); return; }
    const w = Buffer.alloc(c.end - c.start + MAX_PIECES * 128), lens = new Int32Array(MAX_PIECES);
    const n = segmentGso(c, c.vGso, c.vGsoSize, this.st.podMtu, w, 0, 0, lens);
    let at = 0;
    for (let k = 0; k < n; k++) { this.push(out, 'segment', null, w, at, at + lens[k]!); at += lens[k]!; }
  }

  /** tunnel: the frame (or its pieces) encapsulated to `vtep`, each in its own outer frame. */
  private tunnel(vtep: Vtep, kind: string): void {
    const c = this.c, st = this.st;
    const ov = st.overlay!;
    if (c.plan === Plan.ENCAP) {
      const b = Buffer.alloc(VXLAN_HEADROOM + c.end - c.start);
      c.buf.copy(b, VXLAN_HEADROOM, c.start, c.end);
      this.encap(ov, vtep, kind, b, VXLAN_HEADROOM, b.length);
      return;
    }
    const w = Buffer.alloc(c.end - c.start + MAX_PIECES * (VXLAN_HEADROOM + 128)), lens = new Int32Array(MAX_PIECES);
    const n = c.plan === Plan.ENCAP_FRAGMENTS
      ? fragmentIpv4(c, st.maxInnerIpLen, w, 0, VXLAN_HEADROOM, lens)
      : segmentGso(c, c.vGso, c.vGsoSize, st.maxInnerIpLen, w, 0, VXLAN_HEADROOM, lens);
    const piece = c.plan === Plan.ENCAP_FRAGMENTS ? 'fragment' : 'segment';
    let at = 0;
    for (let k = 0; k < n; k++) {
      this.encap(ov, vtep, piece, w, at + VXLAN_HEADROOM, at + VXLAN_HEADROOM + lens[k]!, k);
      at += VXLAN_HEADROOM + lens[k]!;
    }
  }

  /** Encapsulates one datagram for `vtep`, the `ahead`-th of its frame's train (its outer IPv4 ID). */
  private encap(ov: SwitchPort, vtep: Vtep, kind: string, b: Buffer, s: number, e: number, ahead = 0): void {
    const o = vtep.template.encapPreview(b, s, e, ahead);
    this.push(ov, kind, `${formatIpv4(vtep.underlayIp)}:${vtep.port}`, b, o, e);
  }

  private icmpError(): void {
    const c = this.c, st = this.st;
    const b = Buffer.alloc(VXLAN_HEADROOM + 600);
    const src = c.ingress.isPod ? st.gatewayIp : st.vtepIp;
    const len = buildIcmpError(b, VXLAN_HEADROOM, c.srcMac, st.vtepMac, src, c.icmpType, c.icmpCode, c.icmpRest, c, this.views);
    if (!c.ingress.isOverlay) { this.push(c.ingress, 'icmp-error', null, b, VXLAN_HEADROOM, VXLAN_HEADROOM + len); return; }
    const r = st.routes.lookup(c.srcIp);
    if (r === null || r.kind !== RouteKind.VTEP || st.overlay === null) return;
    dvPutU48(dataViewOf(b), VXLAN_HEADROOM, r.vtep!.mac);
    this.encap(st.overlay, r.vtep!, 'icmp-error', b, VXLAN_HEADROOM, VXLAN_HEADROOM + len);
  }

  private fragNeeded(): void {
    const c = this.c;
    const b = Buffer.alloc(VXLAN_HEADROOM + 600);
    const len = buildFragNeeded(c, this.st.maxInnerIpLen, b, VXLAN_HEADROOM, this.views);
    if (len > 0) this.push(c.ingress, 'icmp-error', null, b, VXLAN_HEADROOM, VXLAN_HEADROOM + len);
  }

  private push(sp: SwitchPort, kind: string, to: string | null, b: Buffer, s: number, e: number): void {
    this.frames.push({ port: sp.name, role: sp.role, kind, to, hex: b.toString('hex', s, e), length: e - s });
  }
}
