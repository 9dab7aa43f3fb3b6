import { describe, expect, it } from 'vitest';
import { iperfPairs, renderReport, type LabReport } from '../../src/lab/runner.js';
import { planLab, resolveLabOptions, type LabOptions, type LabState } from '../../src/lab/topology.js';

const state = (o: Partial<LabOptions> = {}): LabState => ({ version: 1, ...planLab(resolveLabOptions({ name: 'r', ...o })), phase: 'up', daemons: {} });

describe('iperfPairs', () => {
  it('default lab: flatnet-flatnet and flatnet-kernel both ways, and two pods of one flatnet node', () => {
    expect(iperfPairs(state()).map(([a, b, l]) => `${a.name}>${b.name} ${l}`)).toEqual([
      'n1p0>n2p0 flatnet -> flatnet',
      'n2p0>n1p0 flatnet -> flatnet',
      'n1p0>n3p0 flatnet -> kernel(udpcsum)',
      'n3p0>n1p0 kernel(udpcsum) -> flatnet',
      'n1p0>n1p1 flatnet (same node)',
    ]);
  });

  it('kernel nodes with and without checksums are different kinds; one pod per node: no same-node run', () => {
    const pairs = iperfPairs(state({ nodes: 4, kernelNodes: 2, kernelUdpCsum: [true, false], pods: 1 })).map(([, , l]) => l);
    expect(pairs).toEqual([
      'flatnet -> flatnet', 'flatnet -> flatnet',
      'flatnet -> kernel(udpcsum)', 'kernel(udpcsum) -> flatnet',
      'flatnet -> kernel(noudpcsum)', 'kernel(noudpcsum) -> flatnet',
      'kernel(udpcsum) -> kernel(noudpcsum)', 'kernel(noudpcsum) -> kernel(udpcsum)',
    ]);
  });

  it('a single flatnet node and a kernel node: only the mixed pair', () => {
    expect(iperfPairs(state({ nodes: 2, kernelNodes: 1, pods: 1 })).map(([, , l]) => l)).toEqual(['flatnet -> kernel(udpcsum)', 'kernel(udpcsum) -> flatnet']);
  });
});

describe('renderReport', () => {
  const rows: LabReport['rows'] = [
    { check: 'ping', from: 'n1p0 10.244.1.10', to: 'n2p0 10.244.2.10', ok: true, detail: '3/3 replies' },
    { check: 'iperf3', from: 'n1p0 10.244.1.10', to: 'n3p0 10.244.3.10', ok: false, detail: 'exit 1' },
  ];

  it('one row per check with PASS/FAIL, a verdict, and the counters after a failure', () => {
    const text = renderReport({ ok: false, rows, capture: null, counters: { n1: 'rx_frames 5\n' }, pcap: '/run/flatnet/lab-r/underlay.pcapng' });
    const lines = text.split('\n');
    expect(lines[0]).toMatch(/^CHECK\s+FROM\s+TO\s+RESULT\s+DETAIL$/);
    expect(lines[1]).toMatch(/^ping\s+n1p0 10\.244\.1\.10\s+n2p0 10\.244\.2\.10\s+PASS\s+3\/3 replies$/);
    expect(lines[2]).toMatch(/^iperf3\s+.*\s+FAIL\s+exit 1$/);
    expect(text).toContain('FAIL: 1 of 2 checks failed');
    expect(text).toContain('flatnet show counters (n1):\nrx_frames 5');
    expect(text).toContain('underlay capture: /run/flatnet/lab-r/underlay.pcapng');
  });

  it('says PASS when every row passed', () => {
    expect(renderReport({ ok: true, rows: rows.slice(0, 1), capture: null, counters: {}, pcap: null })).toContain('PASS: all 1 checks passed');
  });
});
