/**
 * Golden frames from the Linux kernel's vxlan driver (fixtures/kernel/, made by capture.sh):
 * flatnet's strict receive path accepts every one, decodes what fixtures/kernel/README.md says
 * was set up, re-emits each byte for byte, and its encapsulator writes the kernel's headers.
 */

import { describe, expect, it } from 'vitest';
import { DecapResult, Decapsulator, VniSet } from '../../src/wire/decap.js';
import { dissectFrame, emitFrame, type LayerRepr } from '../../src/wire/dissect.js';
import { WIRE_DROP_MAX, WireDrop, wireDropName } from '../../src/wire/drop.js';
import { EncapTemplate, SRC_PORT_RANGE_LINUX, VXLAN_HEADROOM } from '../../src/wire/encap.js';
import { KERNEL_FIXTURES, kernelFixture, readFrames } from '../support/pcap.js';
import { checksumRef, ipRef, macRef, pseudoHeaderRef, verifiesRef } from '../support/refs.js';

// The setup of fixtures/kernel/README.md.
const A = { underIp: '198.51.100.1', underMac: '02:00:c6:33:64:01', podIp: '10.244.1.1', podMac: '0e:00:0a:f4:01:01' };
const B = { underIp: '198.51.100.2', underMac: '02:00:c6:33:64:02', podIp: '10.244.1.2', podMac: '0e:00:0a:f4:01:02' };
const VNI = 42;

const fixtures = KERNEL_FIXTURES.map((f) => ({ ...f, frames: readFrames(kernelFixture(f.file)).map((x) => x.data) }));
const layer = <K extends LayerRepr['layer']>(ls: readonly LayerRepr[], k: K, nth = 0): Extract<LayerRepr, { layer: K }> =>
  ls.filter((l) => l.layer === k)[nth] as Extract<LayerRepr, { layer: K }>;

describe.each(fixtures)('$file', ({ port, udpcsum, frames }) => {
  const rows = frames.map((f, i) => [i + 1, f] as const);

  it('holds the 21 frames the README lists', () => {
    expect(frames).toHaveLength(21);
    const kinds = frames.map((f) => {
      const ls = dissectFrame(f).layers;
      return ls.length > 5 ? ls[5]!.layer : '?';
    });
    expect(kinds.filter((k) => k === 'arp')).toHaveLength(2);
    expect(kinds.filter((k) => k === 'ipv4')).toHaveLength(19);
  });

  it.each(rows)(`frame %i: the strict decapsulator on port ${port} accepts it with VNI 42`, (_n, f) => {
    const r = new DecapResult();
    const d = new Decapsulator({ port, strict: true, vnis: new VniSet([VNI]) }).decapFrame(f, 0, f.length, r);
    expect(wireDropName(d)).toBe('none');
    expect(r.vni).toBe(VNI);
    expect([r.innerStart, r.innerEnd]).toEqual([50, f.length]);
    expect(r.vxlanFlags).toBe(0x08);
    expect(new Decapsulator({ port: port === 4789 ? 8472 : 4789 }).decapFrame(f, 0, f.length, r)).toBe(WireDrop.UDP_PORT_MISMATCH);
  });

  it.each(rows)('frame %i: outer and inner fields match the README\'s setup', (_n, f) => {
    const ls = dissectFrame(f).layers;
    const [eth, ip, udp, vx, ieth] = [layer(ls, 'eth', 0), layer(ls, 'ipv4', 0), layer(ls, 'udp', 0), layer(ls, 'vxlan'), layer(ls, 'eth', 1)];
    expect(ls.slice(0, 5).map((l) => l.layer)).toEqual(['eth', 'ipv4', 'udp', 'vxlan', 'eth']);
    // Which way the frame goes decides every address: A -> B or B -> A, never mixed.
    const [src, dst] = eth.src === A.underMac ? [A, B] : [B, A];
    expect([eth.src, eth.dst, eth.etherType]).toEqual([src.underMac, dst.underMac, 0x0800]);
    expect([ip.src, ip.dst, ip.protocol, ip.ttl, ip.df, ip.mf, ip.fragOffset, ip.checksumStatus]).toEqual([src.underIp, dst.underIp, 17, 64, false, false, 0, 'good']);
    expect(udp.dstPort).toBe(port);
    // The kernel picks source ports in the namespace's ip_local_port_range, 32768-60999.
    expect(udp.srcPort).toBeGreaterThanOrEqual(32768);
    expect(udp.srcPort).toBeLessThanOrEqual(60999);
    expect(udp.length).toBe(f.length - 34);
    expect([vx.flags, vx.vni, vx.reserved24, vx.reserved8]).toEqual([0x08, VNI, 0, 0]);
    expect([ieth.src, ieth.vlan]).toEqual([src.podMac, undefined]);
    expect([dst.podMac, 'ff:ff:ff:ff:ff:ff']).toContain(ieth.dst);
    const inner = ls[5]!;
    if (inner.layer === 'arp') {
      expect([inner.spa, inner.tpa, inner.sha]).toEqual([src.podIp, dst.podIp, src.podMac]);
    } else {
      const iip = layer(ls, 'ipv4', 1);
      expect([iip.src, iip.dst, iip.checksumStatus]).toEqual([src.podIp, dst.podIp, 'good']);
      const l4 = ls[6]!;
      expect(l4.layer === 'icmp' || l4.layer === 'udp' || l4.layer === 'tcp').toBe(true);
      if (l4.layer === 'icmp' || l4.layer === 'tcp') expect(l4.checksumStatus).toBe('good');
    }
    expect(dissectFrame(f).malformed).toBeUndefined();
  });

  it.each(rows)(`frame %i: the outer UDP checksum is ${udpcsum ? 'present and verifies' : 'exactly zero'}`, (_n, f) => {
    const csum = f.readUInt16BE(40);
    if (!udpcsum) {
      expect(csum).toBe(0);
      return;
    }
    expect(csum).not.toBe(0);
    expect(verifiesRef(pseudoHeaderRef(f.readUInt32BE(26), f.readUInt32BE(30), 17, f.length - 34), f.subarray(34))).toBe(true);
  });

  it.each(rows)('frame %i: emitFrame(dissectFrame(x)) == x, byte for byte', (_n, f) => {
    expect(emitFrame(dissectFrame(f))).toEqual(f);
  });

  it.each(rows)('frame %i: our encapsulator writes the kernel\'s header but for the ID, source port and checksums', (_n, f) => {
    const [src, dst] = f.toString('hex', 6, 12) === A.underMac.replace(/:/g, '') ? [A, B] : [B, A];
    const t = new EncapTemplate({
      srcMac: macRef(src.underMac), dstMac: macRef(dst.underMac), srcIp: ipRef(src.underIp), dstIp: ipRef(dst.underIp),
      vni: VNI, dstPort: port, udpChecksum: udpcsum, srcPortRange: SRC_PORT_RANGE_LINUX,
    });
    const slot = Buffer.alloc(f.length, 0xa5);
    f.copy(slot, VXLAN_HEADROOM, VXLAN_HEADROOM);
    const o = t.encap(slot, VXLAN_HEADROOM, slot.length);
    expect(o).toBe(0);
    const sport = slot.readUInt16BE(34);
    expect(sport).toBeGreaterThanOrEqual(32768);
    expect(sport).toBeLessThanOrEqual(60999);
    // Give ours the kernel's IP ID and source port, recompute both checksums with the reference:
    // then the two frames must be identical.
    slot.writeUInt16BE(f.readUInt16BE(18), 18);
    slot.writeUInt16BE(f.readUInt16BE(34), 34);
    slot.writeUInt16BE(0, 24);
    slot.writeUInt16BE(checksumRef(slot.subarray(14, 34)), 24);
    if (udpcsum) {
      slot.writeUInt16BE(0, 40);
      const c = checksumRef(pseudoHeaderRef(slot.readUInt32BE(26), slot.readUInt32BE(30), 17, slot.length - 34), slot.subarray(34));
      slot.writeUInt16BE(c === 0 ? 0xffff : c, 40);
    }
    expect(slot).toEqual(f);
  });
});
