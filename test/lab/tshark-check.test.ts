// The underlay check's verdicts on dissected frames (the fields tshark prints), one defect at a
// time; the netns tests run it on real captures.
import { describe, expect, it } from 'vitest';
import { CAPTURE_FIELDS, evaluateCapture, expectationOf, parseTsharkFields, tsharkArgs, type CapturedFrame } from '../../src/lab/tshark-check.js';
import { planLab, resolveLabOptions, type LabOptions } from '../../src/lab/topology.js';

const plan = (o: Partial<LabOptions> = {}) => planLab(resolveLabOptions({ name: 'c', ...o }));
// Offloads off: flatnet nodes send every frame through the raw socket, with a zero checksum.
const X3 = expectationOf(plan({ flatnetOffloads: false }));

type Fields = Record<(typeof CAPTURE_FIELDS)[number], string[]>;
function empty(): Fields {
  return Object.fromEntries(CAPTURE_FIELDS.map((f) => [f, [] as string[]])) as unknown as Fields;
}

/** An ICMP echo from pod n1p0 to n3p0, VXLAN from n1 to n3, as it enters the bridge on u1. */
function vxlanFrame(over: Partial<Fields> = {}): CapturedFrame {
  return {
    ...empty(),
    'frame.number': ['1'], 'frame.interface_name': ['u1'],
    'frame.protocols': ['eth:ethertype:ip:udp:vxlan:eth:ethertype:ip:icmp:data'],
    'eth.src': ['02:00:c6:33:64:01', '0e:00:0a:f4:01:00'], 'eth.dst': ['02:00:c6:33:64:03', '0e:00:0a:f4:03:00'],
    'eth.type': ['0x0800', '0x0800'], 'ip.src': ['198.51.100.1', '10.244.1.10'], 'ip.dst': ['198.51.100.3', '10.244.3.10'],
    'udp.dstport': ['4789'], 'udp.checksum': ['0x0000'], 'udp.checksum.status': ['2'],
    'vxlan.flags': ['0x0800'], 'vxlan.vni': ['1'],
    ...over,
  };
}

function arpFrame(over: Partial<Fields> = {}): CapturedFrame {
  return {
    ...empty(),
    'frame.number': ['2'], 'frame.interface_name': ['u1'], 'frame.protocols': ['eth:ethertype:arp'],
    'eth.src': ['02:00:c6:33:64:01'], 'eth.dst': ['ff:ff:ff:ff:ff:ff'], 'eth.type': ['0x0806'],
    'arp.src.proto_ipv4': ['198.51.100.1'], 'arp.dst.proto_ipv4': ['198.51.100.3'],
    ...over,
  };
}

describe('evaluateCapture', () => {
  it('passes VXLAN with the lab VNI, port and addresses, and underlay ARP; counts entering frames per sender', () => {
    const fromKernel = vxlanFrame({
      'frame.interface_name': ['u3'], 'eth.src': ['02:00:c6:33:64:03', '0e:00:0a:f4:03:00'], 'eth.dst': ['02:00:c6:33:64:01', '0e:00:0a:f4:01:00'],
      'ip.src': ['198.51.100.3', '10.244.3.10'], 'ip.dst': ['198.51.100.1', '10.244.1.10'],
      'udp.checksum': ['0x1234'], 'udp.checksum.status': ['1'],
    });
    const broadcastLeaving = arpFrame({ 'frame.interface_name': ['u2'] });
    const r = evaluateCapture([vxlanFrame(), fromKernel, arpFrame(), broadcastLeaving], X3);
    expect(r.problems).toEqual([]);
    expect(r).toMatchObject({ ok: true, frames: 3, copies: 4, vxlan: 2, arp: 1, vnis: [1], ports: [4789], innerIcmp: 2, innerTcp: 0, problemCount: 0 });
    expect(r.checksums).toEqual({ n1: { zero: 1, good: 0, bad: 0 }, n2: { zero: 0, good: 0, bad: 0 }, n3: { zero: 0, good: 1, bad: 0 } });
  });

  it('from a flatnet node with offloads on, accepts zero (single frames) and good (GSO trains through the UDP socket), never bad', () => {
    const x = expectationOf(plan());
    expect(x.senders['198.51.100.1']).toEqual({ node: 'n1', udpCsum: 'mixed' });
    expect(x.senders['198.51.100.3']).toEqual({ node: 'n3', udpCsum: true });
    const good = vxlanFrame({ 'udp.checksum': ['0xbeef'], 'udp.checksum.status': ['1'] });
    const r = evaluateCapture([vxlanFrame(), good], x);
    expect(r.problems).toEqual([]);
    expect(r.checksums['n1']).toEqual({ zero: 1, good: 1, bad: 0 });
    const bad = evaluateCapture([vxlanFrame({ 'udp.checksum': ['0xbeef'], 'udp.checksum.status': ['0'] })], x);
    expect(bad.problems.join('\n')).toMatch(/does not verify/);
  });

  it.each<[string, CapturedFrame, RegExp]>([
    ['malformed', vxlanFrame({ '_ws.malformed': ['Malformed Packet'] }), /malformed/],
    ['an expert error', vxlanFrame({ '_ws.expert.severity': ['4194304', '8388608'], '_ws.expert.message': ['a note', 'Bad checksum [should be 0x1]'] }), /expert error: Bad checksum/],
    ['another VNI', vxlanFrame({ 'vxlan.vni': ['2'] }), /VNI 2, the lab uses 1/],
    ['another port', vxlanFrame({ 'udp.dstport': ['8472'] }), /UDP port 8472, the lab uses 4789/],
    ['reserved flags', vxlanFrame({ 'vxlan.flags': ['0x0880'] }), /flags 0x0880/],
    ['UDP that is not VXLAN', vxlanFrame({ 'frame.protocols': ['eth:ethertype:ip:udp:data'] }), /not dissected as VXLAN/],
    ['a bad outer checksum', vxlanFrame({ 'udp.checksum': ['0xbeef'], 'udp.checksum.status': ['0'] }), /does not verify/],
    ['a checksum from a node set to send zero', vxlanFrame({ 'udp.checksum': ['0xbeef'], 'udp.checksum.status': ['1'] }), /checksum good from n1, which is set to send zero/],
    ['a zero checksum from a udpcsum node', vxlanFrame({ 'frame.interface_name': ['u3'], 'ip.src': ['198.51.100.3', '10.244.3.10'], 'ip.dst': ['198.51.100.1', '10.244.1.10'] }), /checksum zero from n3, which is set to send a computed one/],
    ['an outer address outside the lab', vxlanFrame({ 'ip.src': ['198.51.100.9', '10.244.1.10'] }), /not lab underlay addresses/],
    ['an inner address outside the lab', vxlanFrame({ 'ip.dst': ['198.51.100.3', '10.244.3.99'] }), /10\.244\.3\.99 is not a pod or VTEP address/],
    ['an inner MAC that is not a VTEP MAC (L3)', vxlanFrame({ 'eth.src': ['02:00:c6:33:64:01', '02:00:0a:f4:01:0a'] }), /inner source MAC 02:00:0a:f4:01:0a/],
    ['ARP inside VXLAN in L3 mode', vxlanFrame({ 'eth.type': ['0x0800', '0x0806'], 'arp.src.proto_ipv4': ['10.244.1.10'], 'arp.dst.proto_ipv4': ['10.244.3.10'] }), /ARP inside VXLAN in L3/],
    ['IPv6 on the underlay', { ...empty(), 'frame.number': ['5'], 'frame.interface_name': ['u1'], 'frame.protocols': ['eth:ethertype:ipv6:icmpv6'], 'eth.type': ['0x86dd'] }, /not ARP nor IPv4\/UDP/],
    ['ARP for a foreign address', arpFrame({ 'arp.dst.proto_ipv4': ['192.168.1.1'] }), /not lab underlay addresses/],
  ])('fails on %s', (_what, frame, re) => {
    const r = evaluateCapture([vxlanFrame(), frame], X3);
    expect(r.ok).toBe(false);
    expect(r.problemCount).toBeGreaterThan(0);
    expect(r.problems.join('\n')).toMatch(re);
  });

  it('fails on an empty capture', () => {
    expect(evaluateCapture([], X3)).toMatchObject({ ok: false, problems: ['the capture is empty'] });
  });

  it('L2: pod MACs and broadcasts inside, ARP inside allowed', () => {
    const x = expectationOf(plan({ mode: 'l2' }));
    const arpInside = vxlanFrame({
      'frame.protocols': ['eth:ethertype:ip:udp:vxlan:eth:ethertype:arp'],
      'eth.src': ['02:00:c6:33:64:01', '02:00:0a:f4:01:0a'], 'eth.dst': ['02:00:c6:33:64:03', 'ff:ff:ff:ff:ff:ff'],
      'eth.type': ['0x0800', '0x0806'], 'ip.src': ['198.51.100.1'], 'ip.dst': ['198.51.100.3'],
      'arp.src.proto_ipv4': ['10.244.1.10'], 'arp.dst.proto_ipv4': ['10.244.3.10'],
    });
    expect(evaluateCapture([arpInside], x).problems).toEqual([]);
    const vtepMacInside = vxlanFrame();
    expect(evaluateCapture([vtepMacInside], x).problems.join()).toMatch(/not a pod MAC/);
  });

  it('keeps at most 20 problems but counts them all', () => {
    const r = evaluateCapture(Array.from({ length: 30 }, () => vxlanFrame({ 'vxlan.vni': ['9'] })), X3);
    expect([r.problems.length, r.problemCount]).toEqual([20, 30]);
  });
});

describe('tshark invocation', () => {
  it('decodes 8472 as VXLAN always, another lab port too, and verifies checksums', () => {
    const a = tsharkArgs('x.pcapng', 4789).join(' ');
    expect(a).toContain('-d udp.port==8472,vxlan');
    expect(a).toContain('-o udp.check_checksum:TRUE');
    expect(a).not.toContain('udp.port==4789');
    expect(tsharkArgs('x.pcapng', 5000).join(' ')).toContain('-d udp.port==5000,vxlan');
  });

  it('parses one line per frame, occurrences split on the aggregator', () => {
    const line = CAPTURE_FIELDS.map((f) => (f === 'frame.number' ? '7' : f === 'ip.src' ? '198.51.100.1\u001f10.244.1.10' : f === '_ws.expert.message' ? 'a, b' : '')).join('\t');
    const [f] = parseTsharkFields(`${line}\n`);
    expect(f!['frame.number']).toEqual(['7']);
    expect(f!['ip.src']).toEqual(['198.51.100.1', '10.244.1.10']);
    expect(f!['_ws.expert.message']).toEqual(['a, b']);
    expect(f!['vxlan.vni']).toEqual([]);
  });
});
