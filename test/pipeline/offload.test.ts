// The switch with offloads and at the MTU boundary (issue 5), over TestPorts:
//   - TCP super-frames (TSO/GSO) from a pod with virtio-net headers become trains of ordinary
//     VXLAN datagrams (UDP-GSO entries, or one encapsulated frame per segment without GSO);
//   - partial checksums are completed before leaving, passed through to virtio ports;
//   - segments from the overlay are coalesced back into one super-frame for a virtio pod port;
//   - an inner packet too big for the underlay: frag-needed with DF, fragments without;
//   - MSS clamping on SYNs.
// Expectations come from the frames the test builds (l4-frames.ts shares no code with src/).
import { describe, expect, it } from 'vitest';
import { Cidr } from '../../src/fib/cidr.js';
import { FakeClock } from '../../src/fib/clock.js';
import type { VtepSpec } from '../../src/fib/vtep.js';
import { Framing, Switch, type OverlayAttach, type SwitchOptions } from '../../src/pipeline/switch.js';
import { dissectFrame, type LayerRepr } from '../../src/wire/dissect.js';
import { EncapTemplate, VXLAN_HEADROOM } from '../../src/wire/encap.js';
import { VirtioGso, VirtioNetFlag } from '../../src/wire/virtio-net-hdr.js';
import { tcpFrame } from '../support/l4-frames.js';
import { ip, mac } from '../support/pod-frames.js';
import { testPort } from '../support/test-port.js';
import type { MemoryPort, WireFrame } from '../../src/io/memory-port.js';
import { AllocationMeter } from '../../src/replay/alloc-meter.js';
import pino from 'pino';
import { ErrorWatch } from '../../src/daemon/error-watch.js';
import { RateLimitedLog } from '../../src/daemon/log.js';

const VTEP_MAC = mac('0e:00:0a:f4:01:00');
const N2_MAC = mac('0e:00:0a:f4:02:00');
const POD = { ip: ip('10.244.1.2'), mac: mac('02:00:0a:f4:01:02') };
const POD2 = { ip: ip('10.244.1.3'), mac: mac('02:00:0a:f4:01:03') };
const REMOTE = ip('10.244.2.5');
const UL1 = ip('198.51.100.1'), UL2 = ip('198.51.100.2');
const PEERS: VtepSpec[] = [{ name: 'n2', underlayIp: UL2, mac: N2_MAC, vni: 1, port: 4789, podCidr: Cidr.parse('10.244.2.0/24') }];

const macBuf = (m: number): Buffer => Buffer.from(m.toString(16).padStart(12, '0'), 'hex');
const ipBuf = (a: number): Buffer => { const b = Buffer.alloc(4); b.writeUInt32BE(a >>> 0); return b; };

function node(overlay: OverlayAttach, opts: Partial<SwitchOptions> = {}, podVnet = 10) {
  const sw = new Switch({
    mode: 'l3', vni: 1, vtepMac: VTEP_MAC, vtepIp: ip('10.244.1.0'), podCidr: Cidr.parse('10.244.1.0/24'),
    clusterCidr: Cidr.parse('10.244.0.0/16'), gatewayIp: ip('10.244.1.1'), underlayIp: UL1, port: 4789,
    encap: { localUnderlayMac: 2, nextHopMac: 4, ttl: 64, df: 'unset', udpChecksum: false, srcPortRange: [49152, 65535] },
    clock: new FakeClock(1000), underlayMtu: 1500, ...opts,
  });
  const pod = testPort('pod', podVnet), pod2 = testPort('pod2', 0), ov = testPort('ov');
  sw.attachPod(pod, POD.ip, POD.mac);
  sw.attachPod(pod2, POD2.ip, POD2.mac);
  sw.attachOverlay(ov, overlay);
  sw.setPeers(PEERS);
  return { sw, pod, pod2, ov };
}

/** A virtio-net header. */
function vnet(flags: number, gsoType: number, hdrLen: number, gsoSize: number, csumStart: number, csumOffset: number): Buffer {
  const h = Buffer.alloc(10);
  h[0] = flags; h[1] = gsoType;
  h.writeUInt16LE(hdrLen, 2); h.writeUInt16LE(gsoSize, 4); h.writeUInt16LE(csumStart, 6); h.writeUInt16LE(csumOffset, 8);
  return h;
}

const payloadOf = (n: number, salt = 0): Buffer => Buffer.from(Array.from({ length: n }, (_, i) => (i * 7 + salt) & 0xff));

/** A pod -> remote pod TCP super-frame as a virtio port hands it over (partial checksum). */
function superFrame(payloadLen: number, seq = 1000, flags = 0x18): { frame: Buffer; hdr: Buffer; payload: Buffer } {
  const payload = payloadOf(payloadLen);
  const frame = tcpFrame({ srcMac: macBuf(POD.mac), dstMac: macBuf(VTEP_MAC), src: ipBuf(POD.ip), dst: ipBuf(REMOTE), seq, flags, payload, csum: 'partial', flagsFrag: 0x4000 });
  return { frame, payload, hdr: vnet(VirtioNetFlag.NEEDS_CSUM, VirtioGso.TCPV4, 54, 1448, 34, 16) };
}

function layer<K extends LayerRepr['layer']>(layers: readonly LayerRepr[], kind: K, nth = 0): Extract<LayerRepr, { layer: K }> {
  const l = layers.filter((x) => x.layer === kind)[nth];
  if (l === undefined) throw new Error(`no ${kind} #${nth}`);
  return l as Extract<LayerRepr, { layer: K }>;
}

/** Splits UDP-GSO entries into their datagrams (each a VXLAN header + inner frame). */
function datagrams(sent: readonly WireFrame[]): Buffer[] {
  const out: Buffer[] = [];
  for (const s of sent) {
    if (s.gsoSize === 0) out.push(s.frame);
    else for (let o = 0; o < s.frame.length; o += s.gsoSize) out.push(s.frame.subarray(o, Math.min(o + s.gsoSize, s.frame.length)));
  }
  return out;
}

/** Inner TCP segments of VXLAN datagrams: fields, checksum status and payload. */
function innerSegments(ds: readonly Buffer[]) {
  return ds.map((d) => {
    const f = dissectFrame(d, 8);
    const i4 = layer(f.layers, 'ipv4'), t = layer(f.layers, 'tcp');
    const data = f.layers.find((l) => l.layer === 'data');
    return { ipLen: i4.totalLen, ipCsum: i4.checksumStatus, ttl: i4.ttl, seq: t.seq, flags: t.flags, tcpCsum: t.checksumStatus, payload: Buffer.from(data?.layer === 'data' ? data.hex : '', 'hex'), vni: d.readUInt32BE(4) >>> 8 };
  });
}

describe('switch offloads', () => {
  it('turns a TSO super-frame into a UDP-GSO train of complete VXLAN datagrams that fit the underlay', () => {
    const n = node({ rx: Framing.UDP, tx: Framing.IP, gso: true });
    const { frame, hdr, payload } = superFrame(30_000);
    n.pod.inject(frame, 0, 0, { vnet: hdr });
    n.sw.pump();
    const sent = n.ov.take();
    expect(sent.every((s) => s.gsoSize > 0 && s.addr === UL2 >>> 0 && s.port === 4789)).toBe(true);
    const segs = innerSegments(datagrams(sent));
    // The sender's gso_size (1448, an MSS for a 1500-byte MTU) does not fit the underlay after
    // 50 bytes of VXLAN: segments carry 1450 - 40 = 1410 bytes, so 21 full ones and one of 390.
    expect(segs.map((s) => s.payload.length)).toEqual([...Array(21).fill(1410), 30_000 - 21 * 1410]);
    expect(Buffer.concat(segs.map((s) => s.payload))).toEqual(payload);
    for (const [k, s] of segs.entries()) {
      expect([s.vni, s.ipCsum, s.tcpCsum, s.ttl]).toEqual([1, 'good', 'good', 63]);
      expect(s.seq).toBe(1000 + k * 1410);
      expect(s.ipLen + 50).toBeLessThanOrEqual(1500);
      // PSH only on the last segment.
      expect((s.flags & 0x08) !== 0).toBe(k === segs.length - 1);
    }
    expect(n.sw.stats.gsoSegments).toBe(segs.length);
    expect(n.sw.stats.totalDrops()).toBe(0);
  });

  it('sends the same train in pieces (payload in place) to an overlay port that gathers them: byte for byte what the copy path sends', () => {
    // 64,000 bytes at MSS 1410: 46 segments, more than one UDP_SEGMENT send holds (44 of 1,468
    // bytes), so the train leaves as two sends either way.
    const copy = node({ rx: Framing.UDP, tx: Framing.IP, gso: true });
    const { frame, hdr, payload } = superFrame(64_000);
    copy.pod.inject(frame, 0, 0, { vnet: hdr });
    copy.sw.pump();
    const whole = copy.ov.take();
    const sg = node({ rx: Framing.UDP, tx: Framing.IP, gso: true });
    const ov2 = testPort('ov2', 0, { scatter: true });
    sg.sw.detach(sg.sw.allPorts.find((p) => p.port === sg.ov)!.id);
    sg.sw.attachOverlay(ov2, { rx: Framing.UDP, tx: Framing.IP, gso: true });
    sg.sw.setPeers(PEERS);
    sg.pod.inject(frame, 0, 0, { vnet: hdr });
    sg.sw.pump();
    const pieces = ov2.take();
    expect(whole.length).toBe(2);
    expect(pieces.map((f) => [f.frame.toString('hex'), f.gsoSize, f.addr, f.port])).toEqual(whole.map((f) => [f.frame.toString('hex'), f.gsoSize, f.addr, f.port]));
    expect(Buffer.concat(innerSegments(datagrams(pieces)).map((s) => s.payload))).toEqual(payload);
    expect([sg.sw.stats.gsoSegments, sg.sw.stats.gsoSegmentsInPlace, copy.sw.stats.gsoSegmentsInPlace]).toEqual([46, 46, 0]);
    expect(sg.sw.stats.totalDrops()).toBe(0);
  });

  it('without UDP GSO on the overlay, sends one encapsulated frame per segment', () => {
    const n = node({ rx: Framing.ETHERNET, tx: Framing.ETHERNET });
    const { frame, hdr, payload } = superFrame(5000);
    n.pod.inject(frame, 0, 0, { vnet: hdr });
    n.sw.pump();
    const sent = n.ov.take();
    expect(sent.every((s) => s.gsoSize === 0)).toBe(true);
    const frames = sent.map((s) => dissectFrame(s.frame));
    expect(frames.map((f) => layer(f.layers, 'ipv4', 0).dst)).toEqual(Array(4).fill('198.51.100.2'));
    const pay = frames.map((f) => { const d = f.layers.filter((l) => l.layer === 'data').pop(); return Buffer.from(d?.layer === 'data' ? d.hex : '', 'hex'); });
    expect(Buffer.concat(pay)).toEqual(payload);
    for (const f of frames) expect(layer(f.layers, 'tcp').checksumStatus).toBe('good');
  });

  it('completes a partial checksum before encapsulating, and passes it through to a virtio pod port', () => {
    const n = node({ rx: Framing.ETHERNET, tx: Framing.ETHERNET });
    const small = tcpFrame({ srcMac: macBuf(POD.mac), dstMac: macBuf(VTEP_MAC), src: ipBuf(POD.ip), dst: ipBuf(REMOTE), payload: payloadOf(300), csum: 'partial' });
    const csumHdr = vnet(VirtioNetFlag.NEEDS_CSUM, 0, 0, 0, 34, 16);
    n.pod.inject(small, 0, 0, { vnet: csumHdr });
    n.sw.pump();
    const [out] = n.ov.take();
    expect(layer(dissectFrame(out!.frame).layers, 'tcp').checksumStatus).toBe('good');
    // To a virtio port on the same node the header travels with the frame: the checksum stays partial.
    const n2 = node({ rx: Framing.ETHERNET, tx: Framing.ETHERNET }, {}, 10);
    const pod3 = testPort('pod3', 10);
    n2.sw.attachPod(pod3, ip('10.244.1.4'), mac('02:00:0a:f4:01:04'));
    const local = tcpFrame({ srcMac: macBuf(POD.mac), dstMac: macBuf(mac('02:00:0a:f4:01:04')), src: ipBuf(POD.ip), dst: ipBuf(ip('10.244.1.4')), payload: payloadOf(300), csum: 'partial' });
    n2.pod.inject(local, 0, 0, { vnet: csumHdr });
    n2.sw.pump();
    const [got] = pod3.take();
    expect(got!.vnet).toEqual(csumHdr);
    expect(got!.frame).toEqual(local);
  });

  it('segments a super-frame for a local port without virtio headers to the pod MTU', () => {
    const n = node({ rx: Framing.ETHERNET, tx: Framing.ETHERNET });
    const payload = payloadOf(10_000);
    const frame = tcpFrame({ srcMac: macBuf(POD.mac), dstMac: macBuf(POD2.mac), src: ipBuf(POD.ip), dst: ipBuf(POD2.ip), payload, csum: 'partial' });
    n.pod.inject(frame, 0, 0, { vnet: vnet(VirtioNetFlag.NEEDS_CSUM, VirtioGso.TCPV4, 54, 1410, 34, 16) });
    n.sw.pump();
    const segs = n.pod2.take().map((s) => dissectFrame(s.frame));
    expect(segs.length).toBe(Math.ceil(10_000 / 1410));
    for (const f of segs) {
      expect(layer(f.layers, 'ipv4').totalLen).toBeLessThanOrEqual(1450);
      expect(layer(f.layers, 'tcp').checksumStatus).toBe('good');
    }
  });

  it('coalesces in-order TCP segments from a peer into one super-frame with a GSO header for a virtio pod', () => {
    const n = node({ rx: Framing.UDP, tx: Framing.IP, gso: true, gro: true });
    const tpl = new EncapTemplate({ srcMac: 0, dstMac: 0, srcIp: UL2, dstIp: UL1, vni: 1 });
    const datagram = (seq: number, payload: Buffer): Buffer => {
      const inner = tcpFrame({ srcMac: macBuf(N2_MAC), dstMac: macBuf(VTEP_MAC), src: ipBuf(REMOTE), dst: ipBuf(POD.ip), seq, payload, csum: 'full', ttl: 63 });
      const b = Buffer.alloc(VXLAN_HEADROOM + inner.length);
      inner.copy(b, VXLAN_HEADROOM);
      const o = tpl.encap(b, VXLAN_HEADROOM, b.length);
      return b.subarray(o + 42); // the UDP payload, as a UDP socket delivers it
    };
    const parts = [0, 1, 2, 3, 4, 5].map((k) => payloadOf(1398, k));
    const ds = parts.map((p, k) => datagram(5000 + k * 1398, p));
    // One UDP_GRO read: six datagrams of the same size back to back.
    n.ov.inject(Buffer.concat(ds), UL2, 4789, { gsoSize: ds[0]!.length });
    n.sw.pump();
    const got = n.pod.take();
    expect(got).toHaveLength(1);
    const h = got[0]!.vnet!;
    expect([h[0], h[1], h.readUInt16LE(4), h.readUInt16LE(6), h.readUInt16LE(8)]).toEqual([VirtioNetFlag.NEEDS_CSUM, VirtioGso.TCPV4, 1398, 34, 16]);
    const f = dissectFrame(got[0]!.frame);
    expect(layer(f.layers, 'ipv4').totalLen).toBe(20 + 20 + 6 * 1398);
    expect(layer(f.layers, 'tcp').seq).toBe(5000);
    const data = f.layers.find((l) => l.layer === 'data');
    expect(Buffer.from(data?.layer === 'data' ? data.hex : '', 'hex')).toEqual(Buffer.concat(parts));
    expect([n.sw.stats.groSuperFrames, n.sw.stats.groSegmentsMerged]).toEqual([1, 6]);
  });

  it('passes segments in an arena the overlay port lent (AF_XDP) as they are, and writes nothing into that arena', () => {
    // An AF_XDP read lends the batch the UMEM as its arena; the batch's spare region (the work
    // area, where the coalescer builds super-frames) is not in it, and the coalescer's output
    // must be in one arena: such frames pass uncoalesced (behind an all-zero virtio header).
    // This port lends a buffer of its own the same way.
    const n = node({ rx: Framing.UDP, tx: Framing.IP, gso: true, gro: true });
    const read = n.ov.read.bind(n.ov);
    let lent: Buffer | null = null, spareOff = 0;
    n.ov.read = (batch, headroom) => {
      const k = read(batch, headroom);
      lent ??= Buffer.alloc(batch.slots.length);
      batch.slots.copy(lent, 0, 0, batch.spareOff); // the slots only: the rest stays as the switch left it
      batch.arena = lent;
      spareOff = batch.spareOff;
      return k;
    };
    const tpl = new EncapTemplate({ srcMac: 0, dstMac: 0, srcIp: UL2, dstIp: UL1, vni: 1 });
    const parts = [0, 1, 2].map((k) => payloadOf(1398, k));
    const ds = parts.map((p, k) => {
      const inner = tcpFrame({ srcMac: macBuf(N2_MAC), dstMac: macBuf(VTEP_MAC), src: ipBuf(REMOTE), dst: ipBuf(POD.ip), seq: 7000 + k * 1398, payload: p, csum: 'full', ttl: 63 });
      const b = Buffer.alloc(VXLAN_HEADROOM + inner.length);
      inner.copy(b, VXLAN_HEADROOM);
      return b.subarray(tpl.encap(b, VXLAN_HEADROOM, b.length) + 42);
    });
    n.ov.inject(Buffer.concat(ds), UL2, 4789, { gsoSize: ds[0]!.length });
    n.sw.pump();
    const got = n.pod.take();
    expect(got.map((f) => layer(dissectFrame(f.frame).layers, 'tcp').seq)).toEqual([7000, 8398, 9796]);
    expect(got.every((f) => f.vnet!.every((b, i) => b === 0 || i >= 10))).toBe(true);
    expect(n.sw.stats.groSuperFrames).toBe(0);
    // Nothing was built in the lent arena past its frames (there, it would overwrite other chunks).
    expect(spareOff).toBeGreaterThan(0);
    expect(lent!.subarray(spareOff).every((b) => b === 0)).toBe(true);
  });

  it('answers an oversize DF packet with ICMP fragmentation needed carrying the underlay MTU - 50', () => {
    const n = node({ rx: Framing.ETHERNET, tx: Framing.ETHERNET }, {}, 0);
    // A pod misconfigured with MTU 1500: a 1500-byte IP packet (1472-byte ping) does not fit.
    const big = tcpFrame({ srcMac: macBuf(POD.mac), dstMac: macBuf(VTEP_MAC), src: ipBuf(POD.ip), dst: ipBuf(REMOTE), payload: payloadOf(1460), flagsFrag: 0x4000 });
    n.pod.inject(big);
    n.sw.pump();
    expect(n.ov.take()).toHaveLength(0);
    const [reply] = n.pod.take();
    const f = dissectFrame(reply!.frame);
    const i4 = layer(f.layers, 'ipv4'), icmp = layer(f.layers, 'icmp'), eth = layer(f.layers, 'eth');
    expect([icmp.type, icmp.code, icmp.nextHopMtu, icmp.checksumStatus]).toEqual([3, 4, 1450, 'good']);
    // Addressed to the pod's own MAC (else its kernel drops it as for another host), from the
    // MAC the pod sent to, and quoting the packet as the pod sent it (TTL not yet decremented).
    expect([eth.dst, eth.src]).toEqual(['02:00:0a:f4:01:02', '0e:00:0a:f4:01:00']);
    expect(Buffer.from((f.layers.find((l) => l.layer === 'data') as { hex: string }).hex, 'hex').subarray(0, 20)).toEqual(big.subarray(14, 34));
    // As the kernel's tunnel PMTU reply: from the original destination, to the original source.
    expect([i4.src, i4.dst, i4.df]).toEqual(['10.244.2.5', '10.244.1.2', true]);
    expect(n.sw.stats.dropsByName()).toEqual({ mtu_exceeded: 1 });
    expect(n.sw.stats.fragNeededSent).toBe(1);
  });

  it('fragments an oversize packet without DF before encapsulation; the fragments reassemble to it', () => {
    const n = node({ rx: Framing.ETHERNET, tx: Framing.ETHERNET }, {}, 0);
    // The largest packet a pod misconfigured with MTU 1500 sends: 1500 bytes, 50 too many.
    const payload = payloadOf(1460);
    const big = tcpFrame({ srcMac: macBuf(POD.mac), dstMac: macBuf(VTEP_MAC), src: ipBuf(POD.ip), dst: ipBuf(REMOTE), payload, flagsFrag: 0, id: 0x4242 });
    n.pod.inject(big);
    n.sw.pump();
    const frags = n.ov.take().map((s) => s.frame);
    expect(frags).toHaveLength(2);
    const inner = frags.map((fr) => dissectFrame(fr));
    const ips = inner.map((f) => layer(f.layers, 'ipv4', 1));
    expect(ips.map((x) => [x.ident, x.mf, x.fragOffset, x.checksumStatus])).toEqual([[0x4242, true, 0, 'good'], [0x4242, false, ips[0]!.totalLen - 20, 'good']]);
    for (const fr of frags) expect(fr.length).toBeLessThanOrEqual(1514);
    // Reassemble: the IP payloads in offset order are the original TCP segment.
    const ipPayload = (fr: Buffer): Buffer => fr.subarray(50 + 14 + 20);
    expect(Buffer.concat(frags.map(ipPayload))).toEqual(big.subarray(14 + 20));
    expect(n.sw.stats.fragmented).toBe(1);
  });

  it('clamps the MSS of a SYN crossing the switch to pod MTU - 40', () => {
    const n = node({ rx: Framing.ETHERNET, tx: Framing.ETHERNET }, { mssClamp: true, podMtu: 1400 }, 0);
    const syn = tcpFrame({ srcMac: macBuf(POD.mac), dstMac: macBuf(VTEP_MAC), src: ipBuf(POD.ip), dst: ipBuf(REMOTE), flags: 0x02, tcpOptions: Buffer.from('020405b4', 'hex') });
    n.pod.inject(syn);
    n.sw.pump();
    const t = layer(dissectFrame(n.ov.take()[0]!.frame).layers, 'tcp');
    expect([t.mss, t.checksumStatus]).toEqual([1360, 'good']);
  });
});

describe('tunnel offload (UDP-tunnel GSO through the tunnel TAP) and offload state from the overlay', () => {
  const TAP_MAC = mac('02:00:00:00:7e:01');

  it('hands a TSO super-frame to a peer whole to the tunnel TAP: outer headers to the TAP MAC, TTL + 1, the 24-byte tunnel virtio-net header', () => {
    const n = node({ rx: Framing.UDP, tx: Framing.IP, gso: true });
    const tnl = testPort('tnl', 24);
    n.sw.attachTunnelOffload(tnl, TAP_MAC);
    const { frame, hdr, payload } = superFrame(30_000);
    n.pod.inject(frame, 0, 0, { vnet: hdr });
    n.sw.pump();
    expect(n.ov.take()).toEqual([]);
    const [out, ...more] = tnl.take();
    expect(more).toEqual([]);
    const f = dissectFrame(out!.frame);
    const eth = layer(f.layers, 'eth'), o4 = layer(f.layers, 'ipv4', 0), udp = layer(f.layers, 'udp'), i4 = layer(f.layers, 'ipv4', 1);
    expect([eth.dst, o4.src, o4.dst, o4.ttl, o4.checksumStatus, udp.dstPort, udp.checksum]).toEqual(['02:00:00:00:7e:01', '198.51.100.1', '198.51.100.2', 65, 'good', 4789, 0]);
    // Lengths describe the whole frame (the kernel rewrites them per segment).
    expect([o4.totalLen, udp.length]).toEqual([20 + 8 + 8 + frame.length, 8 + 8 + frame.length]);
    // The inner frame: routed (TTL - 1, MACs), its payload and partial checksum untouched.
    expect([i4.ttl, i4.totalLen, layer(f.layers, 'eth', 1).dst]).toEqual([63, frame.length - 14, '0e:00:0a:f4:02:00']);
    expect(out!.frame.subarray(out!.frame.length - payload.length)).toEqual(payload);
    const h = out!.vnet!;
    expect(h).toHaveLength(24);
    // flags NEEDS_CSUM; gso_type UDP_TUNNEL_IPV4 | TCPV4; hdr_len 50 + 54; gso_size capped to
    // fit the underlay (1450 - 40, as the software path cuts it); csum 50 + 34 / 16; outer UDP
    // at 34; inner IPv4 at 64.
    expect([h[0], h[1], h.readUInt16LE(2), h.readUInt16LE(4), h.readUInt16LE(6), h.readUInt16LE(8), h.readUInt16LE(20), h.readUInt16LE(22)])
      .toEqual([1, 0x21, 104, 1410, 84, 16, 34, 64]);
    expect(h.subarray(10, 20)).toEqual(Buffer.alloc(10));
    const segs = Math.ceil(30_000 / 1410);
    expect([n.sw.stats.tunnelGsoFrames, n.sw.stats.tunnelGsoSegments, n.sw.stats.encapsulated, n.sw.stats.gsoSegments]).toEqual([1, segs, segs, 0]);
    expect(n.sw.stats.totalDrops()).toBe(0);
  });

  it('keeps the software path for what the tunnel TAP cannot take: an outer UDP checksum, ECN in the GSO type, no room in front', () => {
    const withCsum = node({ rx: Framing.UDP, tx: Framing.IP, gso: true }, { encap: { localUnderlayMac: 2, nextHopMac: 4, ttl: 64, df: 'unset', udpChecksum: true, srcPortRange: [49152, 65535] } });
    const ecn = node({ rx: Framing.UDP, tx: Framing.IP, gso: true });
    for (const [n, gso] of [[withCsum, VirtioGso.TCPV4], [ecn, VirtioGso.TCPV4 | VirtioGso.ECN]] as const) {
      const tnl = testPort('tnl', 24);
      n.sw.attachTunnelOffload(tnl, TAP_MAC);
      const { frame, hdr } = superFrame(5000);
      hdr[1] = gso;
      n.pod.inject(frame, 0, 0, { vnet: hdr });
      n.sw.pump();
      expect(tnl.take()).toEqual([]);
      expect(datagrams(n.ov.take())).toHaveLength(Math.ceil(5000 / 1410));
    }
    // A port without the tunnel header length is refused as a tunnel TAP.
    expect(() => ecn.sw.attachTunnelOffload(testPort('t10', 10), TAP_MAC)).toThrow(/24-byte/);
  });

  it('a tunnel TAP that does not take a super-frame counts it on its port, and the daemon\'s error watch (over Switch.allPorts) logs it', () => {
    const n = node({ rx: Framing.UDP, tx: Framing.IP, gso: true });
    const tnl = testPort('tnl', 24, { queueLimit: 1 });
    n.sw.attachTunnelOffload(tnl, TAP_MAC);
    const { frame, hdr } = superFrame(8000);
    for (let i = 0; i < 3; i++) n.pod.inject(frame, 0, 0, { vnet: hdr });
    n.sw.pump();
    expect(tnl.take()).toHaveLength(1);
    expect(tnl.stats.txDropped).toBe(2);
    const lines: { port?: string; counter?: string; rose?: number }[] = [];
    const log = pino({ base: null, timestamp: false }, { write: (s: string) => { lines.push(JSON.parse(s) as { port?: string }); } });
    new ErrorWatch(new RateLimitedLog(log)).check(n.sw.allPorts);
    expect(lines).toEqual([expect.objectContaining({ port: 'tnl', counter: 'tx_dropped', rose: 2 })]);
  });

  it('allocates nothing per super-frame on the tunnel TAP path (within 1 byte per frame of the software path)', () => {
    // The in-memory test ports allocate about 100 bytes per frame read and per frame written
    // themselves (the same on both paths); what the switch adds is the difference.
    const perFrame = (tunnel: boolean): number => {
      const n = node({ rx: Framing.UDP, tx: Framing.IP, gso: true });
      const tnl = testPort('tnl', 24, { queueLimit: 1024 });
      if (tunnel) n.sw.attachTunnelOffload(tnl, TAP_MAC);
      const { frame, hdr } = superFrame(8000);
      const rounds: number[] = [];
      const meter = new AllocationMeter();
      for (let round = 0; round < 40; round++) {
        for (let i = 0; i < 200; i++) n.pod.inject(frame, 0, 0, { vnet: hdr }); // allocates, outside the meter
        if (round >= 10) meter.start();
        n.sw.pump();
        if (round >= 10) rounds.push(meter.stop().bytes / 200);
        expect((tunnel ? tnl : n.ov).take().length).toBeGreaterThanOrEqual(200);
      }
      if (tunnel) expect(n.sw.stats.tunnelGsoFrames).toBe(40 * 200);
      return rounds.sort((a, b) => a - b)[rounds.length >> 1]!;
    };
    const software = perFrame(false), tunnel = perFrame(true);
    console.log(`heap bytes per super-frame: software segmentation ${software.toFixed(3)}, tunnel TAP ${tunnel.toFixed(3)}`);
    expect(tunnel).toBeLessThanOrEqual(software + 1);
  });

  const fromPeer = (inner: Buffer): Buffer => {
    const tpl = new EncapTemplate({ srcMac: 0, dstMac: 0, srcIp: UL2, dstIp: UL1, vni: 1 });
    const b = Buffer.alloc(VXLAN_HEADROOM + inner.length);
    inner.copy(b, VXLAN_HEADROOM);
    return b.subarray(tpl.encap(b, VXLAN_HEADROOM, b.length) + 42); // the UDP payload
  };
  const innerTo = (dst: { ip: number }, payload: Buffer, csum: 'partial' | 'full'): Buffer =>
    tcpFrame({ srcMac: macBuf(N2_MAC), dstMac: macBuf(VTEP_MAC), src: ipBuf(REMOTE), dst: ipBuf(dst.ip), seq: 7000, payload, csum, ttl: 63, flagsFrag: 0x4000 });

  it('a TCP super-frame carried whole from a peer (its kernel\'s UDP-tunnel GSO over a veth) goes to a virtio pod as a TSO frame, and is segmented for a plain one', () => {
    const n = node({ rx: Framing.UDP, tx: Framing.IP, gso: true, gro: true });
    const payload = payloadOf(20_000);
    n.ov.inject(fromPeer(innerTo(POD, payload, 'partial')), UL2, 4789);
    n.ov.inject(fromPeer(innerTo(POD2, payload, 'partial')), UL2, 4789);
    n.sw.pump();
    const [got, ...more] = n.pod.take();
    expect(more).toEqual([]);
    const h = got!.vnet!;
    expect([h[0], h[1], h.readUInt16LE(2), h.readUInt16LE(4), h.readUInt16LE(6), h.readUInt16LE(8)]).toEqual([VirtioNetFlag.NEEDS_CSUM, VirtioGso.TCPV4, 54, 1410, 34, 16]);
    expect(got!.frame.subarray(54)).toEqual(payload);
    const segs = n.pod2.take().map((s) => dissectFrame(s.frame));
    expect(segs).toHaveLength(Math.ceil(20_000 / 1410));
    for (const s of segs) {
      expect([layer(s.layers, 'tcp').checksumStatus, layer(s.layers, 'ipv4').checksumStatus]).toEqual(['good', 'good']);
      expect(layer(s.layers, 'ipv4').totalLen).toBeLessThanOrEqual(1450);
    }
    expect([n.sw.stats.overlaySuperFrames, n.sw.stats.totalDrops()]).toEqual([2, 0]);
  });

  it('in L2 mode too: a partial inner checksum from a peer reaches a virtio pod as such and a plain pod completed', () => {
    const n = node({ rx: Framing.UDP, tx: Framing.IP, gso: true, gro: true }, { mode: 'l2' });
    const frameTo = (dst: { ip: number; mac: number }): Buffer => tcpFrame({ srcMac: macBuf(mac('02:00:0a:f4:02:05')), dstMac: macBuf(dst.mac), src: ipBuf(REMOTE), dst: ipBuf(dst.ip), seq: 7000, payload: payloadOf(300), csum: 'partial', ttl: 64 });
    n.ov.inject(fromPeer(frameTo(POD)), UL2, 4789);
    n.ov.inject(fromPeer(frameTo(POD2)), UL2, 4789);
    n.sw.pump();
    const [virtio] = n.pod.take();
    expect([virtio!.vnet![0], virtio!.vnet!.readUInt16LE(6), virtio!.vnet!.readUInt16LE(8)]).toEqual([VirtioNetFlag.NEEDS_CSUM, 34, 16]);
    const [plain] = n.pod2.take();
    expect(layer(dissectFrame(plain!.frame).layers, 'tcp').checksumStatus).toBe('good');
    expect([n.sw.stats.overlayPartialChecksums, n.sw.stats.totalDrops()]).toEqual([2, 0]);
  });

  it('a partial inner checksum from a peer (checksum offload on a veth underlay) passes as such to a virtio pod, is completed for a plain one, and does not stick to the next frame', () => {
    const n = node({ rx: Framing.UDP, tx: Framing.IP, gso: true, gro: true });
    const payload = payloadOf(300);
    n.ov.inject(fromPeer(innerTo(POD, payload, 'partial')), UL2, 4789);
    n.ov.inject(fromPeer(innerTo(POD2, payload, 'partial')), UL2, 4789);
    n.ov.inject(fromPeer(innerTo(POD, payload, 'full')), UL2, 4789);
    n.sw.pump();
    const virtio = n.pod.take();
    expect(virtio.map((g) => [g.vnet![0], g.vnet![1], g.vnet!.readUInt16LE(6), g.vnet!.readUInt16LE(8)])).toEqual([[VirtioNetFlag.NEEDS_CSUM, 0, 34, 16], [0, 0, 0, 0]]);
    expect(layer(dissectFrame(virtio[1]!.frame).layers, 'tcp').checksumStatus).toBe('good');
    const [plain] = n.pod2.take();
    expect(layer(dissectFrame(plain!.frame).layers, 'tcp').checksumStatus).toBe('good');
    expect([n.sw.stats.overlayPartialChecksums, n.sw.stats.overlaySuperFrames, n.sw.stats.totalDrops()]).toEqual([2, 0, 0]);
  });
});
