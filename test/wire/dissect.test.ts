import { describe, expect, it } from 'vitest';
import { dissectFrame, emitFrame, summarize, type FrameRepr } from '../../src/wire/dissect.js';
import { buildInner, encapsulate } from '../support/frames.js';
import { KERNEL_FIXTURES, kernelFixture, readFrames } from '../support/pcap.js';

const K = readFrames(kernelFixture(KERNEL_FIXTURES[0].file)).map((f) => f.data); // udpcsum, port 4789
const K8472 = readFrames(kernelFixture(KERNEL_FIXTURES[2].file)).map((f) => f.data);
const layers = (f: FrameRepr): string[] => f.layers.map((l) => l.layer);

describe('dissectFrame', () => {
  it.each([
    ['ARP request', 0, ['eth', 'ipv4', 'udp', 'vxlan', 'eth', 'arp']],
    ['ICMP echo request', 2, ['eth', 'ipv4', 'udp', 'vxlan', 'eth', 'ipv4', 'icmp', 'data']],
    ['UDP datagram', 8, ['eth', 'ipv4', 'udp', 'vxlan', 'eth', 'ipv4', 'udp', 'data']],
    ['ICMP port unreachable', 9, ['eth', 'ipv4', 'udp', 'vxlan', 'eth', 'ipv4', 'icmp', 'data']],
    ['TCP SYN', 10, ['eth', 'ipv4', 'udp', 'vxlan', 'eth', 'ipv4', 'tcp']],
    ['TCP data', 13, ['eth', 'ipv4', 'udp', 'vxlan', 'eth', 'ipv4', 'tcp', 'data']],
  ])('decodes the kernel\'s %s down to its last layer', (_name, i, want) => {
    const f = dissectFrame(K[i]!);
    expect(layers(f)).toEqual(want);
    expect(f.malformed).toBeUndefined();
    expect(f.length).toBe(K[i]!.length);
  });

  it('decodes VXLAN on 4789 and 8472 by default, and only on the ports it is given', () => {
    expect(layers(dissectFrame(K8472[0]!))).toContain('vxlan');
    expect(layers(dissectFrame(K8472[0]!, 0, K8472[0]!.length, { vxlanPorts: [4789] }))).toEqual(['eth', 'ipv4', 'udp', 'data']);
    expect(layers(dissectFrame(K[0]!, 0, K[0]!.length, { vxlanPorts: [] }))).toEqual(['eth', 'ipv4', 'udp', 'data']);
  });

  it('decodes VXLAN in VXLAN', () => {
    const f = encapsulate(encapsulate(buildInner({ kind: 'udp' }), { vni: 7 }));
    const d = dissectFrame(f);
    expect(d.layers.filter((l) => l.layer === 'vxlan').map((l) => (l.layer === 'vxlan' ? l.vni : -1))).toEqual([42, 7]);
    expect(emitFrame(d)).toEqual(f);
  });

  it('records Ethernet padding as the IPv4 layer\'s trailer', () => {
    const f = Buffer.concat([buildInner({ kind: 'udp', payloadLen: 4 }), Buffer.alloc(60 - 46)]);
    const d = dissectFrame(f);
    expect(d.layers[1]).toMatchObject({ layer: 'ipv4', trailer: '00'.repeat(14) });
    expect(emitFrame(d)).toEqual(f);
  });

  it('records bytes after a shorter UDP length as the UDP layer\'s trailer', () => {
    const f = buildInner({ kind: 'udp', payloadLen: 10 });
    f.writeUInt16BE(8 + 6, 14 + 20 + 4);
    const d = dissectFrame(f);
    expect(d.layers[2]).toMatchObject({ layer: 'udp', length: 14, trailer: f.toString('hex', f.length - 4), checksumStatus: 'bad' });
    expect(emitFrame(d)).toEqual(f);
  });

  it('does not decode past an IPv4 fragment', () => {
    const f = buildInner({ kind: 'udp' });
    f.writeUInt16BE(0x2000, 14 + 6); // MF
    expect(layers(dissectFrame(f))).toEqual(['eth', 'ipv4', 'data']);
    f.writeUInt16BE(0x0004, 14 + 6); // offset 32
    expect(layers(dissectFrame(f))).toEqual(['eth', 'ipv4', 'data']);
  });

  it.each<[string, (f: Buffer) => Buffer, string, string]>([
    ['a truncated outer Ethernet header', (f) => f.subarray(0, 10), 'eth', 'ERR_WIRE_TRUNCATED'],
    ['an outer IPv4 version 6', (f) => { f[14] = 0x65; return f; }, 'ipv4', 'ERR_WIRE_MALFORMED'],
    ['a UDP length of 7', (f) => { f.writeUInt16BE(7, 38); return f; }, 'udp', 'ERR_WIRE_MALFORMED'],
    ['a VXLAN header cut to 7 bytes', (f) => { f.writeUInt16BE(15, 38); return f; }, 'vxlan', 'ERR_WIRE_TRUNCATED'],
    ['an inner frame of 13 bytes', (f) => { f.writeUInt16BE(29, 38); return f; }, 'eth', 'ERR_WIRE_TRUNCATED'],
    ['an inner ARP with hlen 8', (f) => { f[50 + 14 + 4] = 8; return f; }, 'arp', 'ERR_WIRE_MALFORMED'],
  ])('marks %s as malformed and keeps the bytes as data', (_name, mutate, layer, code) => {
    const f = mutate(Buffer.from(K[0]!));
    const d = dissectFrame(f);
    expect(d.malformed).toMatchObject({ layer, code });
    expect(d.layers.at(-1)!.layer).toBe('data');
    expect(emitFrame(d)).toEqual(f);
  });

  it('reports bad checksums without failing', () => {
    const f = Buffer.from(K[10]!);
    f[24]! ^= 1; // outer IPv4 checksum
    f[f.length - 1]! ^= 1; // inner TCP option byte (TCP and outer UDP checksums)
    const d = dissectFrame(f);
    expect(d.layers.filter((l) => 'checksumStatus' in l).map((l) => (l as { checksumStatus: string }).checksumStatus)).toEqual(['bad', 'bad', 'good', 'bad']);
    expect(d.malformed).toBeUndefined();
  });

  it('decodes a window of a larger buffer', () => {
    const b = Buffer.concat([Buffer.alloc(7, 0xee), K[0]!, Buffer.alloc(5, 0xee)]);
    expect(dissectFrame(b, 7, 7 + K[0]!.length)).toEqual(dissectFrame(K[0]!));
  });

  it('emitFrame refuses a repr whose length disagrees with its layers (ERR_WIRE_MALFORMED)', () => {
    const d = dissectFrame(K[0]!);
    expect(() => emitFrame({ ...d, length: d.length + 1 })).toThrow(expect.objectContaining({ code: 'ERR_WIRE_MALFORMED' }));
  });

  it('round-trips an empty frame', () => {
    const d = dissectFrame(Buffer.alloc(0));
    expect(d.malformed).toMatchObject({ layer: 'eth', code: 'ERR_WIRE_TRUNCATED' });
    expect(emitFrame(d)).toEqual(Buffer.alloc(0));
  });
});

describe('summarize', () => {
  it.each([
    [0, ['198.51.100.1:', '→ 198.51.100.2:4789 UDP', 'csum good', 'VXLAN vni=42', 'ARP who-has 10.244.1.2 tell 10.244.1.1']],
    [1, ['ARP 10.244.1.2 is-at 0e:00:0a:f4:01:02']],
    [2, ['10.244.1.1 → 10.244.1.2 ICMP echo request id=3799 seq=1']],
    [9, ['ICMP dest unreachable code=3']],
    [10, ['10.244.1.1:', '→ 10.244.1.2:7000 TCP [SYN]', 'mss=1410']],
  ])('summarizes kernel frame %i with its addresses, VNI and innermost protocol', (i, parts) => {
    const s = summarize(dissectFrame(K[i]!));
    for (const p of parts) expect(s).toContain(p);
  });

  it('names the malformed layer', () => {
    const f = Buffer.from(K[0]!);
    f.writeUInt16BE(15, 38);
    expect(summarize(dissectFrame(f))).toContain('[malformed vxlan:');
  });

  it('shows VLAN ids, fragments and frag-needed MTUs', () => {
    const tagged = buildInner({ kind: 'arp', vlan: 0x2064 });
    tagged.writeUInt16BE(0x88b5, 16); // a payload it does not decode: the Ethernet line is the summary
    expect(summarize(dissectFrame(tagged))).toBe('0e:00:0a:f4:01:01 → 0e:00:0a:f4:01:02 vlan 100 0x88b5');
    const frag = buildInner({ kind: 'udp' });
    frag.writeUInt16BE(0x2001, 14 + 6);
    expect(summarize(dissectFrame(frag))).toContain('frag off=8 MF');
    const icmp = buildInner({ kind: 'icmp' });
    icmp.writeUInt32BE(0x0304_0000, 34);
    icmp.writeUInt16BE(1450, 34 + 6);
    expect(summarize(dissectFrame(icmp))).toContain('frag needed mtu=1450');
  });
});
