// XdpPort on the host end of a veth, inside namespaces this file creates (IPv6 off):
//
//   ns <prefix>-host: [ XdpPort ]==AF_XDP + XDP program==( vh0 )
//                                                           |  veth
//   ns <prefix>-pod:                                      ( eth0 10.244.1.2/24 )  Python: raw frames
//
// Also: the program goes away with the port (close) and with the process (SIGKILL: a BPF link
// belongs to its process), and the interface then works as before (ping through the kernel).
import { spawnSync } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Batch } from '../../src/buf/batch.js';
import { getMac, ifIndex } from '../../src/io/link.js';
import { loadNative } from '../../src/io/native.js';
import { withNetns } from '../../src/io/netns.js';
import { XdpPort } from '../../src/io/xdp-port.js';
import { formatMac } from '../../src/wire/addr.js';
import { podSendFrames, readFrames, sniff } from '../support/capture.js';
import { isTest, listOf, TEST_ETHERTYPE, testFrame } from '../support/port-frames.js';
import { listNetns, Netns, netnsSkipReason } from '../support/netns.js';
import { pseudoHeaderRef, verifiesRef } from '../support/refs.js';

const skip = netnsSkipReason();

describe.skipIf(skip !== null)(`XdpPort on a veth${skip === null ? '' : ` (skipped: ${skip})`}`, () => {
  const netns = new Netns('xp');
  let host = '', pod = '';

  beforeAll(() => {
    host = netns.add('host');
    pod = netns.add('pod');
    netns.noIpv6(host, pod);
    netns.veth(host, 'vh0', pod, 'eth0');
    netns.addr(host, 'vh0', '10.244.1.1/24');
    netns.addr(pod, 'eth0', '10.244.1.2/24');
    const hostMac = withNetns(host, () => getMac('vh0'));
    netns.ip(pod, 'neigh', 'replace', '10.244.1.1', 'lladdr', formatMac(hostMac), 'dev', 'eth0', 'nud', 'permanent');
  });
  afterAll(() => {
    netns.destroy();
    expect(listNetns(netns.prefix)).toEqual([]);
  });

  const open = (): XdpPort => withNetns(host, () => XdpPort.open('vh0'));
  const attached = (): number => withNetns(host, () => loadNative().xdpAttached(ifIndex('vh0')));
  /** The kernel frees a BPF link (and so detaches its program) from a work item: poll briefly. */
  const detached = async (): Promise<number> => {
    for (let i = 0; i < 100 && attached() !== 0; i++) await new Promise((r) => setTimeout(r, 20));
    return attached();
  };
  const pingOk = (): boolean => spawnSync('ip', ['netns', 'exec', pod, 'ping', '-c', '1', '-W', '2', '10.244.1.1']).status === 0;

  it('reads every frame the pod sends, in order, and writes frames that reach the pod byte for byte', async () => {
    const port = open();
    try {
      expect(port.kind).toBe('af_xdp');
      expect(['native', 'generic']).toContain(port.features.attach);
      expect(attached()).toBeGreaterThan(0);
      const frames = Array.from({ length: 64 }, (_, i) => testFrame(i, 60 + ((i * 53) % 1400), 0x020000000001, 0x020000000002, 7));
      const got = readFrames(port, new Batch(32, 2048), 50, 64, isTest);
      podSendFrames(netns, pod, frames);
      expect(await got).toEqual(frames);

      const out = Array.from({ length: 64 }, (_, i) => testFrame(i, 60 + ((i * 89) % 1440)));
      const cap = await sniff(netns, pod, 'eth0', 64, TEST_ETHERTYPE, 'in');
      expect(port.write(listOf(out, { headroom: 50 }))).toBe(64);
      expect(await cap.frames).toEqual(out);
      expect(port.stats).toMatchObject({ txPackets: 64, txErrors: 0, txDropped: 0 });
      expect(port.xdpStats()).toMatchObject({ rxInvalid: 0, txInvalid: 0 });
    } finally {
      port.close();
    }
  });

  it('finishes the TCP and UDP checksums the pod leaves partial (TX checksum offload on), and only those', async () => {
    const port = open();
    try {
      /** Sends from the pod's own stack: UDP datagrams of several sizes, then a TCP SYN (no one answers). */
      const send = (udpSizes: number[]): void => {
        netns.exec(pod, '/usr/bin/python3', ['-c', [
          'import socket, sys',
          'u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)',
          ...udpSizes.map((n) => `u.sendto((bytes(range(256)) * 6)[:${n}], ("10.244.1.1", 9999))`),
          't = socket.socket(); t.setblocking(False)',
          'try: t.connect(("10.244.1.1", 9998))',
          'except BlockingIOError: pass',
        ].join('\n')]);
      };
      const isL4 = (f: Buffer): boolean => f.readUInt16BE(12) === 0x0800 && (f[23] === 17 || f[23] === 6);
      /** The transport checksum verifies over pseudo-header, header and payload (an independent reference). */
      const l4Ok = (f: Buffer): boolean => {
        const hl = (f[14]! & 15) * 4, len = f.readUInt16BE(16) - hl;
        return verifiesRef(pseudoHeaderRef(f.readUInt32BE(26), f.readUInt32BE(30), f[23]!, len), f.subarray(14 + hl, 14 + hl + len));
      };
      const sizes = [1, 100, 1001, 1400];
      const partial = (): number => port.xdpStats()!.partialChecksums;
      let got = readFrames(port, new Batch(32, 2048), 50, 5, isL4);
      send(sizes);
      let frames = await got;
      expect(frames.map((f) => f[23])).toEqual([17, 17, 17, 17, 6]);
      expect(frames.every(l4Ok)).toBe(true);
      expect(partial()).toBe(5);

      // Offload off: the pod's stack finishes them itself; the port leaves them alone.
      netns.exec(pod, 'ethtool', ['-K', 'eth0', 'tx', 'off']);
      try {
        got = readFrames(port, new Batch(32, 2048), 50, 5, isL4);
        send(sizes);
        frames = await got;
        expect(frames.length).toBe(5);
        expect(frames.every(l4Ok)).toBe(true);
        expect(partial()).toBe(5);
      } finally {
        netns.exec(pod, 'ethtool', ['-K', 'eth0', 'tx', 'on']);
      }
    } finally {
      port.close();
    }
  });

  it('sizes its UMEM as asked: a power of two from 64 to 4096 chunks', () => {
    for (const frames of [63, 100, 8192]) expect(() => withNetns(host, () => XdpPort.open('vh0', false, frames)), String(frames)).toThrow(/EINVAL/);
    const port = withNetns(host, () => XdpPort.open('vh0', false, 64));
    try {
      expect(port.xdpStats()).toMatchObject({ umemFrames: 64 });
    } finally {
      port.close();
    }
  });

  it('refuses a frame larger than a UMEM chunk (counted), and sends the rest', () => {
    const port = open();
    try {
      const r = port.write(listOf([testFrame(1, 100), testFrame(2, 3000), testFrame(3, 100)], { headroom: 50 }));
      expect(r).toBe(2);
      expect(port.stats).toMatchObject({ txPackets: 2, txErrors: 1 });
    } finally {
      port.close();
    }
  });

  it('while open the kernel sees nothing (ping fails); closed, the program is gone and ping works', async () => {
    const port = open();
    port.onReadable(() => { /* frames are taken and dropped by not reading */ });
    port.unref();
    expect(pingOk()).toBe(false);
    port.close();
    expect(await detached()).toBe(0);
    expect(pingOk()).toBe(true);
  });

  it('a SIGKILLed process leaves no program behind and the interface working', async () => {
    const script = `
import { withNetns } from './dist/src/io/netns.js';
import { XdpPort } from './dist/src/io/xdp-port.js';
const p = withNetns(${JSON.stringify(host)}, () => XdpPort.open('vh0'));
p.onReadable(() => {});
console.log('open ' + p.features.link);
setInterval(() => {}, 1000);
`;
    const child = spawnSync('bash', ['-c', `node --input-type=module -e "$S" & pid=$!; sleep 1.5; ip netns exec ${host} ip -d link show vh0 | grep -c prog/xdp; kill -9 $pid; wait $pid 2>/dev/null; true`], {
      env: { ...process.env, S: script }, encoding: 'utf8', cwd: process.cwd(), timeout: 30_000,
    });
    expect(child.stdout).toMatch(/open true\n1\n/);
    expect(await detached()).toBe(0);
    expect(pingOk()).toBe(true);
  });
});
