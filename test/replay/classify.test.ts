import { describe, expect, it } from 'vitest';
import { ClassRule, Classifier } from '../../src/replay/classify.js';
import { EncapTemplate, VXLAN_HEADROOM } from '../../src/wire/encap.js';
import { arp, ip, mac, udp } from '../support/pod-frames.js';

const POD_A = { ip: ip('10.244.1.10'), mac: mac('02:00:0a:f4:01:0a') };
const POD_B = { ip: ip('10.244.1.11'), mac: mac('02:00:0a:f4:01:0b') };
const HOST_MAC = mac('02:00:0a:f4:01:fe');
const VTEP_MAC = mac('0e:00:0a:f4:01:00');
const UNDERLAY = ip('198.51.100.1');
const ROUTER = mac('02:00:c6:33:64:fe');
// Port order as ReplayNode builds it: pods, host, overlay.
const HOST = 2, OVERLAY = 3;

const cls = (hostMac: number | null = HOST_MAC): Classifier => new Classifier({
  podMacs: [POD_A.mac, POD_B.mac], podIps: [POD_A.ip, POD_B.ip], hostMac, underlayIp: UNDERLAY, vxlanPort: 4789, hostIndex: HOST, overlayIndex: OVERLAY,
});

function place(c: Classifier, f: Buffer): [number, ClassRule] {
  const i = c.classify(new DataView(f.buffer, f.byteOffset, f.length), 0, f.length);
  return [i, c.rule];
}

function vxlan(o: { dstIp?: number; port?: number; srcMac?: number } = {}): Buffer {
  const inner = udp({ srcMac: mac('0e:00:0a:f4:02:00'), dstMac: VTEP_MAC, src: ip('10.244.2.20'), dst: POD_A.ip });
  const t = new EncapTemplate({ srcMac: o.srcMac ?? ROUTER, dstMac: mac('02:00:c6:33:64:01'), srcIp: ip('198.51.100.2'), dstIp: o.dstIp ?? UNDERLAY, vni: 1, dstPort: o.port ?? 4789 });
  const b = Buffer.alloc(VXLAN_HEADROOM + inner.length);
  inner.copy(b, VXLAN_HEADROOM);
  return b.subarray(t.encap(b, VXLAN_HEADROOM, b.length));
}

function tagged(f: Buffer, tci = 7): Buffer {
  return Buffer.concat([f.subarray(0, 12), Buffer.from([0x81, 0x00, tci >> 8, tci & 0xff]), f.subarray(12)]);
}

describe('Classifier: which port a replayed frame enters', () => {
  it('rule 1: a pod MAC as source -> that pod, whatever the frame says after it', () => {
    expect(place(cls(), udp({ srcMac: POD_B.mac, dstMac: VTEP_MAC, src: POD_A.ip, dst: ip('10.244.2.9') }))).toEqual([1, ClassRule.POD_MAC]);
    // A pod sending VXLAN to our underlay address is still the pod (the switch drops it as pod_sent_vxlan).
    expect(place(cls(), vxlan({ srcMac: POD_A.mac }))).toEqual([0, ClassRule.POD_MAC]);
    // 12 bytes are enough to read the source MAC.
    expect(place(cls(), udp({ srcMac: POD_A.mac, dstMac: VTEP_MAC, src: POD_A.ip, dst: POD_B.ip }).subarray(0, 12))).toEqual([0, ClassRule.POD_MAC]);
  });

  it('rule 2: VXLAN to the underlay address and port -> the overlay, also with one 802.1Q tag', () => {
    expect(place(cls(), vxlan())).toEqual([OVERLAY, ClassRule.VXLAN_TO_NODE]);
    expect(place(cls(), tagged(vxlan()))).toEqual([OVERLAY, ClassRule.VXLAN_TO_NODE]);
    // From the host MAC, VXLAN to the node is still underlay traffic.
    expect(place(cls(), vxlan({ srcMac: HOST_MAC }))).toEqual([OVERLAY, ClassRule.VXLAN_TO_NODE]);
  });

  it('rule 3: the host MAC as source -> the host port; without a configured host MAC, never', () => {
    const f = udp({ srcMac: HOST_MAC, dstMac: VTEP_MAC, src: ip('10.244.1.0'), dst: POD_A.ip });
    expect(place(cls(), f)).toEqual([HOST, ClassRule.HOST_MAC]);
    expect(place(cls(null), f)).toEqual([OVERLAY, ClassRule.OTHER]);
  });

  it('rule 4: a pod\'s source IP (IPv4) or sender address (ARP) from a foreign MAC -> that pod', () => {
    const forged = mac('02:00:0a:f4:01:99');
    expect(place(cls(), udp({ srcMac: forged, dstMac: VTEP_MAC, src: POD_B.ip, dst: ip('10.244.2.9') }))).toEqual([1, ClassRule.POD_IP]);
    expect(place(cls(), arp({ srcMac: forged, spa: POD_A.ip, tpa: ip('10.244.1.1') }))).toEqual([0, ClassRule.POD_IP]);
    expect(place(cls(), tagged(udp({ srcMac: forged, dstMac: VTEP_MAC, src: POD_A.ip, dst: POD_B.ip })))).toEqual([0, ClassRule.POD_IP]);
  });

  it('rule 5: anything else -> the overlay (VXLAN to another address or port, runts, other traffic)', () => {
    expect(place(cls(), vxlan({ dstIp: ip('198.51.100.3') }))).toEqual([OVERLAY, ClassRule.OTHER]);
    expect(place(cls(), vxlan({ port: 8472 }))).toEqual([OVERLAY, ClassRule.OTHER]);
    expect(place(cls(), vxlan().subarray(0, 11))).toEqual([OVERLAY, ClassRule.OTHER]);
    expect(place(cls(), vxlan().subarray(0, 36))).toEqual([OVERLAY, ClassRule.OTHER]); // UDP ports cut off
    expect(place(cls(), Buffer.alloc(0))).toEqual([OVERLAY, ClassRule.OTHER]);
    expect(place(cls(), udp({ srcMac: mac('02:00:0a:f4:02:14'), dstMac: VTEP_MAC, src: ip('10.244.2.20'), dst: POD_A.ip }))).toEqual([OVERLAY, ClassRule.OTHER]);
  });

  it('reads only inside [off, off + len) of a larger buffer', () => {
    const f = vxlan();
    const big = Buffer.alloc(f.length + 200, 0xff);
    f.copy(big, 100);
    const c = cls();
    expect(c.classify(new DataView(big.buffer, big.byteOffset, big.length), 100, f.length)).toBe(OVERLAY);
    expect(c.rule).toBe(ClassRule.VXLAN_TO_NODE);
    expect(c.classify(new DataView(big.buffer, big.byteOffset, big.length), 100, 30)).toBe(OVERLAY);
    expect(c.rule).toBe(ClassRule.OTHER);
  });
});
