import { describe, expect, it } from 'vitest';
import { parseIpv4, parseMac } from '../../src/wire/addr.js';
import { arpFrame, icmpv4Frame, tcpFrame, udpFrame, vxlanFrame } from '../../src/wire/build.js';
import { dissectFrame } from '../../src/wire/dissect.js';
import { EncapTemplate, VXLAN_HEADROOM } from '../../src/wire/encap.js';
import { TcpFlag } from '../../src/wire/tcp.js';
import { hex } from '../support/hex.js';

const POD = { srcMac: parseMac('02:00:0a:f4:01:0a'), dstMac: parseMac('0e:00:0a:f4:01:00'), src: parseIpv4('10.244.1.10'), dst: parseIpv4('10.244.2.10') };

describe('frame builders (goldens from scapy 2.5)', () => {
  it.each([
    [
      // Ether()/IP(ttl=64, id=1, flags='DF')/TCP(sport=40000, dport=80, seq=1000, flags='S', window=64240, options=[('MSS', 1460)])
      'tcp SYN with MSS',
      () => tcpFrame({ ...POD, sport: 40000, dport: 80, seq: 1000, ack: 0, flags: TcpFlag.SYN, window: 64240, options: hex('02 04 05 b4') }),
      '0e000af40100 02000af4010a 0800 | 4500002c00014000400621d00af4010a0af4020a | 9c400050000003e8000000006002faf0e3c10000 020405b4',
    ],
    [
      // Ether()/Dot1Q(vlan=100)/IP(ttl=5, id=0x1234, tos=2, flags=0)/UDP(sport=5000, dport=53)/b'abc'
      'tagged udp, ECT(0), no DF',
      () => udpFrame({ ...POD, vlan: 100, ttl: 5, ident: 0x1234, tos: 0x02, df: false, sport: 5000, dport: 53, payload: Buffer.from('abc') }),
      '0e000af40100 02000af4010a 8100 0064 0800 | 4502001f1234000005118a9d0af4010a0af4020a | 13880035000b0ebd 616263',
    ],
    [
      // Ether()/IP(ttl=64, id=1, flags='DF')/ICMP(type=8, id=7, seq=1)/bytes(range(8))
      'icmp echo request',
      () => icmpv4Frame({ ...POD, type: 8, code: 0, rest: (7 << 16) | 1, payload: Buffer.from([0, 1, 2, 3, 4, 5, 6, 7]) }),
      '0e000af40100 02000af4010a 0800 | 4500002400014000400121dd0af4010a0af4020a | 0800ebe700070001 0001020304050607',
    ],
    [
      // Ether(dst='ff:ff:ff:ff:ff:ff')/ARP(op=1, hwsrc=pod, psrc=10.244.1.10, pdst=10.244.1.1)
      'arp request',
      () => arpFrame({ srcMac: POD.srcMac, spa: POD.src, tpa: parseIpv4('10.244.1.1') }),
      'ffffffffffff 02000af4010a 0806 | 0001 0800 06 04 0001 02000af4010a 0af4010a 000000000000 0af40101',
    ],
  ])('%s', (_name, build, golden) => {
    expect(build().toString('hex')).toBe(hex(golden).toString('hex'));
  });
});

describe('tcpFrame', () => {
  it.each([3, 44])('refuses %i option bytes (not a multiple of 4 up to 40)', (n) => {
    expect(() => tcpFrame({ ...POD, sport: 1, dport: 2, seq: 0, ack: 0, flags: 0, window: 0, options: Buffer.alloc(n) })).toThrow(RangeError);
  });

  it('keeps the AE flag (bit 8, in the data offset byte) next to the options length', () => {
    const b = tcpFrame({ ...POD, sport: 1, dport: 2, seq: 0, ack: 0, flags: TcpFlag.AE | TcpFlag.ACK, window: 0, options: Buffer.alloc(4, 1) });
    const tcp = dissectFrame(b).layers[2];
    expect(tcp).toMatchObject({ layer: 'tcp', dataOffset: 6, flags: TcpFlag.AE | TcpFlag.ACK, checksumStatus: 'good' });
  });
});

describe('vxlanFrame', () => {
  it('is what the template writes in front of the inner frame, and leaves the inner frame alone', () => {
    const o = { srcMac: 1, dstMac: 2, srcIp: parseIpv4('198.51.100.2'), dstIp: parseIpv4('198.51.100.1'), vni: 7 };
    const inner = udpFrame({ ...POD, sport: 1, dport: 2, payload: Buffer.alloc(5) });
    const copy = Buffer.from(inner);
    const f = vxlanFrame(new EncapTemplate(o), inner);
    const slot = Buffer.alloc(VXLAN_HEADROOM + inner.length);
    inner.copy(slot, VXLAN_HEADROOM);
    new EncapTemplate(o).encap(slot, VXLAN_HEADROOM, slot.length);
    expect(f.equals(slot)).toBe(true);
    expect(f.subarray(VXLAN_HEADROOM).equals(copy)).toBe(true);
    expect(inner.equals(copy)).toBe(true);
  });
});
