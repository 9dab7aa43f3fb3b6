import { describe, expect, it } from 'vitest';
import { STAGE_NAMES, type TraceResult } from '../../src/pipeline/trace.js';
import { type PacketDefaults, buildPacket, buildTracePacket } from '../../src/trace/packet.js';
import { render, summarizeFrame, tcpFlagsText, wrap } from '../../src/trace/render.js';
import { TcpFlag } from '../../src/wire/tcp.js';
import { formatVirtioNetHdr } from '../../src/wire/virtio-net-hdr.js';
import { N1, PING, POD_DEFAULTS as POD, dropResult, tunnelResult } from '../support/trace-results.js';

const OVERLAY: PacketDefaults = {
  role: 'overlay', srcMac: 2, dstMac: N1.vtepMac, srcIp: null,
  overlay: { localUnderlay: N1.underlay, port: 4789, vni: 1, peerFor: () => N1.peers[0] },
};

describe('render', () => {
  it('prints a drop exactly so: the packet, the stage, the outcome with the reason and its help', () => {
    expect(render(dropResult())).toBe([
      'packet: 98 bytes in pod n1p0: 02:00:0a:f4:01:0a > 0e:00:0a:f4:01:00 ipv4 10.244.1.99 > 10.244.2.10',
      '        icmp echo-request id 1 seq 1 ttl 64 DF',
      '',
      ' 1 ingress         pod n1p0 src 02:00:0a:f4:01:0a 10.244.1.99',
      '                   binding  n1p0 10.244.1.10 lladdr 02:00:0a:f4:01:0a',
      '                   -> drop spoof_src_ip',
      '',
      "outcome: drop spoof_src_ip: pod packet whose source IP is not the pod's",
      '',
    ].join('\n'));
  });

  describe('a tunnelled ping (unwrapped: one logical line per line)', () => {
    const lines = render(tunnelResult(), { width: 1e9 }).split('\n');
    const at = (prefix: string): number => lines.findIndex((l) => l.startsWith(prefix));

    it('opens with the packet: length, port, one-line summary', () => {
      expect(lines[0]).toBe('packet: 98 bytes in pod n1p0: 02:00:0a:f4:01:0a > 0e:00:0a:f4:01:00 ipv4 10.244.1.10 > 10.244.2.10 icmp echo-request id 7 seq 1 ttl 64 DF');
    });

    it('numbers the stages in order, names and looked-at text in their columns', () => {
      const heads = lines.map((l) => /^ ?(\d+) (\S+)/.exec(l)).filter((m) => m !== null).map((m) => [Number(m[1]), m[2]]);
      expect(heads).toEqual(STAGE_NAMES.map((s, i) => [i + 1, s]));
      expect(lines[at(' 4 route')]).toBe(' 4 route           ipv4 10.244.1.10 > 10.244.2.10 ttl 64 proto icmp');
      expect(lines[at(' 3 policy-egress')]).toBe(' 3 policy-egress   -> next');
    });

    it('lists each match under its stage, the kinds in one column, then the verdict', () => {
      const i = at(' 4 route');
      expect(lines.slice(i + 1, i + 4)).toEqual([
        '                   route      10.244.2.0/24 via 10.244.2.0 dev n2 onlink underlay 198.51.100.2 lladdr 0e:00:0a:f4:02:00',
        '                   neighbour  10.244.2.0 lladdr 0e:00:0a:f4:02:00 PERMANENT',
        '                   -> tunnel n2',
      ]);
    });

    it('gives the outcome, then the frame that leaves with each layer dissected, inner layers indented', () => {
      expect(lines).toContain('outcome: tunnel');
      const f = at('frame 1:');
      expect(lines[f]).toBe('frame 1: forwarded out overlay vxlan:4789 to 198.51.100.2:4789 (148 bytes)');
      const layers = lines.slice(f + 1, f + 9);
      expect(layers.map((l) => /^( +)(\S+)/.exec(l)!.slice(1, 3).join(''))).toEqual([
        '    eth', '    ipv4', '    udp', '    vxlan', '      eth', '      ipv4', '      icmp', '      data',
      ]);
      expect(layers[0]).toBe('    eth   02:00:c6:33:64:01 > 02:00:c6:33:64:fe, ipv4');
      expect(layers[1]).toBe('    ipv4  198.51.100.1 > 198.51.100.2: tos 0x0, ttl 64, id 0, flags [none], proto udp (17), length 134, csum good');
      expect(layers[2]).toMatch(/^ {4}udp {3}\d+ > 4789: length 114, csum none$/);
      expect(layers[3]).toBe('    vxlan flags 0x08 [I], vni 1');
      expect(layers[4]).toBe('      eth   0e:00:0a:f4:01:00 > 0e:00:0a:f4:02:00, ipv4');
      expect(layers[5]).toBe('      ipv4  10.244.1.10 > 10.244.2.10: tos 0x0, ttl 63, id 1, flags [DF], proto icmp (1), length 84, csum good');
      expect(layers[6]).toBe('      icmp  echo-request id 7 seq 1, csum good');
      expect(layers[7]).toBe('      data  56 bytes');
    });

    it('ends with the notes', () => {
      expect(lines.slice(-3)).toEqual(['notes:', '  - nothing was sent: transmit-time outcomes (tx_busy, tx_error) are not known to a trace', '']);
    });
  });

  it('fits 100 columns, and wrapping only moves words (nothing lost or reordered)', () => {
    const r = tunnelResult();
    const narrow = render(r).split('\n');
    expect(narrow.filter((l) => l.length > 100)).toEqual([]);
    expect(narrow.length).toBeGreaterThan(render(r, { width: 1e9 }).split('\n').length);
    const words = (t: string): string[] => t.split(/\s+/).filter((w) => w !== '');
    expect(words(render(r))).toEqual(words(render(r, { width: 1e9 })));
  });

  describe('decodes VXLAN on a port other than 4789 and 8472', () => {
    const packet = buildPacket('icmp 10.244.2.10 -> 10.244.1.10 dport 4790', OVERLAY);
    const base: TraceResult = { ...tunnelResult(), packet: { hex: packet.toString('hex'), length: packet.length, vnet: null }, frames: [] };
    const frame = { port: 'vxlan:4790', role: 'overlay', kind: 'forwarded', to: '198.51.100.3:4790', hex: packet.toString('hex'), length: packet.length };
    const first = (r: TraceResult): string => render(r, { width: 1e9 }).split('\n')[0]!;

    it('the port an overlay packet came to', () => {
      expect(first({ ...base, in: { port: 'vxlan:4790', role: 'overlay' } })).toContain('vxlan vni 1 | 0e:00:0a:f4:02:00 > 0e:00:0a:f4:01:00');
    });

    it('the port a frame goes to', () => {
      const text = render({ ...base, in: { port: 'n1p0', role: 'pod' }, frames: [frame] }, { width: 1e9 });
      expect(text).toContain('\n    vxlan flags 0x08 [I], vni 1\n');
    });

    it('not otherwise: a pod packet to 4790 is plain UDP', () => {
      expect(first({ ...base, in: { port: 'n1p0', role: 'pod' } })).not.toContain('vxlan');
    });
  });

  it("a flood's lost copies on the outcome line; a packet's virtio-net header under it, its partial checksum not called bad", () => {
    const flood = render({ ...tunnelResult(), outcome: 'flood', droppedCopies: [{ to: 'VTEP n2', reason: 'mtu_exceeded' }, { to: 'VTEP n3', reason: 'mtu_exceeded' }] }, { width: 1e9 });
    expect(flood).toContain('\noutcome: flood (copies dropped: VTEP n2 mtu_exceeded, VTEP n3 mtu_exceeded)\n');
    const { frame, vnet } = buildTracePacket('tcp -> 10.244.2.10:80 flags PA payload 3000 tso 1400', POD);
    const tso = render({ ...tunnelResult(), packet: { hex: frame.toString('hex'), length: frame.length, vnet: formatVirtioNetHdr(vnet!) } }, { width: 1e9 }).split('\n');
    expect(tso[0]).toContain('tcp 40000 > 80 [P.] len 3000 [partial csum] ttl 64 DF');
    expect(tso[1]).toBe('        virtio needs-csum,gso=tcpv4,gso-size=1400,hdr-len=54,csum-start=34,csum-offset=16');
    const plain = render({ ...tunnelResult(), packet: { hex: frame.toString('hex'), length: frame.length, vnet: null } }, { width: 1e9 }).split('\n');
    expect(plain[0]).toContain('[bad tcp csum]');
  });

  it('shows a bad checksum and a malformed frame', () => {
    const bad = buildPacket('udp -> 10.244.2.10:53 bad-csum', POD);
    const cut = PING.subarray(0, 20);
    const r: TraceResult = {
      ...dropResult(),
      frames: [
        { port: 'n1p0', role: 'pod', kind: 'reply', to: null, hex: bad.toString('hex'), length: bad.length },
        { port: 'n1p0', role: 'pod', kind: 'reply', to: null, hex: cut.toString('hex'), length: cut.length },
      ],
    };
    const text = render(r, { width: 1e9 });
    expect(text).toMatch(/\n {4}ipv4 {2}10\.244\.1\.10 > 10\.244\.2\.10: .*, csum 0x[0-9a-f]{4} \(bad\)\n/);
    expect(text).toContain('\n    !! malformed ipv4: ipv4: ipv4_truncated\n');
  });
});

describe('summarizeFrame', () => {
  const S = (spec: string, d: PacketDefaults = POD): Buffer => buildPacket(spec, d);
  const POD_ETH = '02:00:0a:f4:01:0a > 0e:00:0a:f4:01:00';
  const UNDERLAY = '02:00:c6:33:64:fe > 02:00:c6:33:64:01 ipv4 198.51.100.2 > 198.51.100.1';
  const INNER = '0e:00:0a:f4:02:00 > 0e:00:0a:f4:01:00 ipv4 10.244.2.10 > 10.244.1.10 icmp echo-request id 1 seq 1 ttl 64 DF';
  it.each([
    ['icmp', PING, `${POD_ETH} ipv4 10.244.1.10 > 10.244.2.10 icmp echo-request id 7 seq 1 ttl 64 DF`],
    ['tcp, tagged, with payload', S('tcp -> 10.244.2.10:80 flags SA len 100 vlan 7'), `${POD_ETH} vlan 7 ipv4 10.244.1.10 > 10.244.2.10 tcp 40000 > 80 [S.] len 56 ttl 64 DF`],
    ['tcp without flags', S('tcp -> 10.244.2.10:80 flags none'), `${POD_ETH} ipv4 10.244.1.10 > 10.244.2.10 tcp 40000 > 80 [none] ttl 64 DF`],
    ['udp without DF', S('udp -> 10.244.2.10:53 no-df'), `${POD_ETH} ipv4 10.244.1.10 > 10.244.2.10 udp 40000 > 53 len 0 ttl 64`],
    ['a bad IPv4 checksum', S('udp -> 10.244.2.10:53 bad-csum'), `${POD_ETH} ipv4 10.244.1.10 > 10.244.2.10 udp 40000 > 53 len 0 ttl 64 DF [bad ip csum]`],
    ['arp request', S('arp who-has 10.244.1.1'), '02:00:0a:f4:01:0a > ff:ff:ff:ff:ff:ff arp who-has 10.244.1.1 tell 10.244.1.10'],
    ['gratuitous arp', S('arp 10.244.1.10 is-at 02:00:0a:f4:01:0a'), '02:00:0a:f4:01:0a > ff:ff:ff:ff:ff:ff arp reply 10.244.1.10 is-at 02:00:0a:f4:01:0a (gratuitous)'],
    ['arp reply', S('arp 10.244.1.10 is-at 02:00:0a:f4:01:0a to 10.244.1.1'), `${POD_ETH} arp reply 10.244.1.10 is-at 02:00:0a:f4:01:0a to 10.244.1.1`],
    ['frag needed', S('icmp -> 10.244.2.10 type 3 code 4'), `${POD_ETH} ipv4 10.244.1.10 > 10.244.2.10 icmp unreachable frag-needed mtu 0 ttl 64 DF`],
    ['time exceeded', S('icmp -> 10.244.2.10 type 11'), `${POD_ETH} ipv4 10.244.1.10 > 10.244.2.10 icmp time-exceeded in-transit ttl 64 DF`],
    ['vxlan', S('icmp 10.244.2.10 -> 10.244.1.10 sport 50000', OVERLAY), `${UNDERLAY} udp 50000 > 4789 ttl 64 vxlan vni 1 | ${INNER}`],
    ['vxlan with odd flags', S('icmp 10.244.2.10 -> 10.244.1.10 sport 50000 vxlan-flags 0x0c', OVERLAY), `${UNDERLAY} udp 50000 > 4789 ttl 64 vxlan vni 1 flags 0x0c | ${INNER}`],
    ['vxlan on a port not decoded', S('icmp 10.244.2.10 -> 10.244.1.10 sport 50000 dport 4790', OVERLAY), `${UNDERLAY} udp 50000 > 4790 len 106 ttl 64`],
    ['a cut IPv4 header', PING.subarray(0, 20), `${POD_ETH} [malformed ipv4: ipv4: ipv4_truncated]`],
    ['a cut Ethernet header', PING.subarray(0, 10), '[malformed eth: ethernet: 10 bytes]'],
  ])('%s', (_name, frame, want) => {
    expect(summarizeFrame(frame)).toBe(want);
  });

  it('decodes VXLAN on the ports it is told', () => {
    const f = buildPacket('icmp 10.244.2.10 -> 10.244.1.10 sport 50000 dport 4790', OVERLAY);
    expect(summarizeFrame(f, { vxlanPorts: [4790] })).toBe(`${UNDERLAY} udp 50000 > 4790 ttl 64 vxlan vni 1 | ${INNER}`);
  });

  it('names an EtherType it does not decode', () => {
    const f = Buffer.from(PING);
    f.writeUInt16BE(0x86dd, 12);
    expect(summarizeFrame(f.subarray(0, 60))).toBe(`${POD_ETH} ipv6`);
  });
});

describe('tcpFlagsText', () => {
  it.each([
    [TcpFlag.SYN, 'S'], [TcpFlag.SYN | TcpFlag.ACK, 'S.'], [TcpFlag.PSH | TcpFlag.ACK, 'P.'], [TcpFlag.FIN | TcpFlag.ACK, 'F.'],
    [TcpFlag.RST, 'R'], [TcpFlag.ACK, '.'], [TcpFlag.ECE | TcpFlag.CWR | TcpFlag.SYN, 'SEW'], [TcpFlag.URG, 'U'], [TcpFlag.AE, 'e'], [0, 'none'],
  ])('%i -> %s', (flags, want) => {
    expect(tcpFlagsText(flags)).toBe(want);
  });
});

describe('wrap', () => {
  it.each([
    ['short text stays', 'a b c', 10, '  ', ['a b c']],
    ['breaks at spaces', 'aaa bbb ccc ddd', 8, '  ', ['aaa bbb', '  ccc', '  ddd']],
    ['keeps leading spaces and runs of spaces on the first line', '   x  yy zzzz', 9, ' ', ['   x  yy', ' zzzz']],
    ['a word longer than the line overflows whole', 'a 0123456789 b', 5, '', ['a', '0123456789', 'b']],
    ['exactly the width fits', 'abcd efgh', 9, '', ['abcd efgh']],
  ])('%s', (_name, text, width, indent, want) => {
    expect(wrap(text, width, indent)).toEqual(want);
  });
});

