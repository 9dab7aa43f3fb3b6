// flatnet <-> flatnet and flatnet <-> the kernel's vxlan driver programmed flannel-style, in L3
// mode, through the lab (src/lab): one lab per VXLAN port, each with two flatnet nodes and two
// kernel nodes, one with `udpcsum` and one with `noudpcsum` (so both checksum settings meet
// flatnet on both ports):
//
//   port 4789 (IANA; `dstport 4789` on the kernel devices)
//   port 8472 (Linux's default: the kernel devices are created without `dstport`)
//
// In each lab: every pod pings every other pod; iperf3 TCP runs in both directions for every
// kind of node pair; the underlay capture taken meanwhile passes the tshark check (every frame
// VXLAN with the lab's VNI, port and addresses, nothing malformed, no expert error, outer UDP
// checksums zero or good and as configured per sender); and the check itself is shown to catch a
// wrong VNI and a bad checksum injected on the underlay.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ipNs } from '../../src/lab/exec.js';
import { labDown, labNamespaces, labUp } from '../../src/lab/lab.js';
import { labTest, renderReport, type LabReport } from '../../src/lab/runner.js';
import { dissect, evaluateCapture, expectationOf, startCapture } from '../../src/lab/tshark-check.js';
import { allPods, type LabState } from '../../src/lab/topology.js';
import { ensureDist, labSkipReason, scapy, uniqueLabName } from '../support/lab.js';

const skip = labSkipReason(true);

for (const port of [4789, 8472]) {
  describe.skipIf(skip !== null)(`L3 interop with kernel vxlan, port ${port}${skip === null ? '' : ` (skipped: ${skip})`}`, () => {
    const name = uniqueLabName('i3');
    let lab: LabState;
    let rep: LabReport;

    beforeAll(async () => {
      ensureDist();
      lab = await labUp({ name, nodes: 4, kernelNodes: 2, kernelUdpCsum: [true, false], pods: 2, port });
      rep = await labTest(lab, { pingCount: 2, iperfSeconds: 1, iperfBitrate: '50M' });
    });
    afterAll(async () => {
      await labDown(name);
      expect(labNamespaces(name)).toEqual([]);
    });

    it('programs the kernel nodes as flannel does (device, route + neighbour + FDB per remote node)', () => {
      for (const [node, csum] of [[lab.nodes[2]!, true], [lab.nodes[3]!, false]] as const) {
        const [link] = JSON.parse(ipNs(node.ns, '-d', '-j', 'link', 'show', 'flannel.1')) as [{ address: string; mtu: number; linkinfo: { info_data: Record<string, unknown> } }];
        expect(link.address).toBe(node.vtepMac);
        expect(link.mtu).toBe(1450);
        expect(link.linkinfo.info_data).toMatchObject({ id: 1, local: node.underlayIp, link: 'eth0', port, learning: false, udp_csum: csum });
        const routes = JSON.parse(ipNs(node.ns, '-j', 'route', 'show', 'dev', 'flannel.1')) as { dst: string; gateway: string; flags: string[] }[];
        expect(routes.map((r) => [r.dst, r.gateway, r.flags])).toEqual(
          expect.arrayContaining(lab.nodes.filter((n) => n !== node).map((n) => [n.podCidr, n.vtepIp, ['onlink']])),
        );
        expect(routes).toHaveLength(3);
      }
    });

    it('every pod reaches every other pod (ping, all ordered pairs)', () => {
      const pings = rep.rows.filter((r) => r.check === 'ping');
      const n = allPods(lab).length;
      expect(pings).toHaveLength(n * (n - 1));
      expect(pings.filter((r) => !r.ok), renderReport(rep)).toEqual([]);
    });

    it('TCP (iperf3) in both directions for every kind of node pair', () => {
      const runs = rep.rows.filter((r) => r.check === 'iperf3');
      expect(runs.filter((r) => !r.ok), renderReport(rep)).toEqual([]);
      const labels = runs.map((r) => r.detail.split(':')[0]);
      expect(labels).toEqual([
        'flatnet -> flatnet', 'flatnet -> flatnet',
        'flatnet -> kernel(udpcsum)', 'kernel(udpcsum) -> flatnet',
        'flatnet -> kernel(noudpcsum)', 'kernel(noudpcsum) -> flatnet',
        'kernel(udpcsum) -> kernel(noudpcsum)', 'kernel(noudpcsum) -> kernel(udpcsum)',
        'flatnet (same node)',
      ]);
    });

    it('the underlay capture is all VXLAN of this lab, well-formed, with checksums as configured per sender', () => {
      const c = rep.capture!;
      expect(c.problems, renderReport(rep)).toEqual([]);
      expect(c.ok).toBe(true);
      expect(c.ports).toEqual([port]);
      expect(c.vnis).toEqual([1]);
      expect(c.innerTcp).toBeGreaterThan(1000);
      expect(c.innerIcmp).toBeGreaterThan(0);
      // The kernel nodes send as their device says. n1 and n2 send single frames with a zero checksum; their GSO trains (offloads are on)
      // leave through the UDP socket with the kernel's computed one.
      expect(c.checksums['n1']).toMatchObject({ bad: 0 });
      expect(c.checksums['n1']!.zero).toBeGreaterThan(0);
      expect(c.checksums['n2']!.zero).toBeGreaterThan(0);
      expect(c.checksums['n3']).toMatchObject({ zero: 0, bad: 0 });
      expect(c.checksums['n3']!.good).toBeGreaterThan(0);
      expect(c.checksums['n4']).toMatchObject({ good: 0, bad: 0 });
      expect(c.checksums['n4']!.zero).toBeGreaterThan(0);
      expect(rep.rows.find((r) => r.check === 'tshark')?.ok).toBe(true);
      expect(rep.ok).toBe(true);
    });

    it('the capture check catches a wrong VNI and a bad outer checksum (negative control)', async () => {
      const file = `${lab.dir}/negative.pcapng`;
      const cap = await startCapture(lab, file);
      const [n1, n2] = [lab.nodes[0]!, lab.nodes[1]!];
      scapy(n1.ns, `
inner = Ether(src='${n1.vtepMac}', dst='${n2.vtepMac}')/IP(src='${n1.pods[0]!.ip}', dst='${n2.pods[0]!.ip}')/ICMP()
vx = lambda vni: struct.pack('!II', 0x08000000, vni << 8)
outer = Ether(src='${n1.underlayMac}', dst='${n2.underlayMac}')/IP(src='${n1.underlayIp}', dst='${n2.underlayIp}')
sendp([outer/UDP(sport=40000, dport=${port}, chksum=0)/Raw(vx(99) + bytes(inner)),
       outer/UDP(sport=40001, dport=${port}, chksum=0xbeef)/Raw(vx(1) + bytes(inner))], iface='eth0', verbose=False)
`);
      await cap.stop();
      const r = evaluateCapture(await dissect(file, port), expectationOf(lab));
      expect(r.ok).toBe(false);
      // The bad checksum is reported twice: by our comparison and as tshark's expert error.
      expect(r.problems).toHaveLength(3);
      expect(r.problems.join('\n')).toMatch(/VNI 99, the lab uses 1/);
      expect(r.problems.join('\n')).toMatch(/outer UDP checksum 0xbeef does not verify/);
      expect(r.problems.join('\n')).toMatch(/expert error: Bad checksum/);
    });
  });
}
