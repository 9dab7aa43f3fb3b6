// CapPort (libpcap through the optional `cap` package) on one end of a veth, inside namespaces
// this file creates (IPv6 off):
//
//   ns <prefix>-host: [ CapPort ]==libpcap==( vc0 ) ---- veth ---- ( eth0 ) :ns <prefix>-pod
//                                                                  Python raw sender / sniffer
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Batch } from '../../src/buf/batch.js';
import { CapPort, capUnavailableReason } from '../../src/io/cap-port.js';
import { withNetns } from '../../src/io/netns.js';
import { python, readFrames, sleep, sniff } from '../support/capture.js';
import { listOf, TEST_ETHERTYPE, testFrame } from '../support/port-frames.js';
import { listNetns, Netns, netnsSkipReason } from '../support/netns.js';

const skip = netnsSkipReason() ?? capUnavailableReason();

describe.skipIf(skip !== null)(`CapPort on a veth${skip === null ? '' : ` (skipped: ${skip})`}`, () => {
  const netns = new Netns('cp');
  let host = '', pod = '';
  beforeAll(() => {
    host = netns.add('host');
    pod = netns.add('pod');
    netns.noIpv6(host, pod);
    netns.veth(host, 'vc0', pod, 'eth0');
    netns.ip(host, 'link', 'set', 'vc0', 'up');
    netns.ip(pod, 'link', 'set', 'eth0', 'up');
  });
  afterAll(() => {
    netns.destroy();
    expect(listNetns(netns.prefix)).toEqual([]);
  });

  it('reads what the pod sends and writes frames the pod receives, byte for byte', async () => {
    const port = withNetns(host, () => CapPort.open('vc0', { filter: `ether proto ${TEST_ETHERTYPE}` }));
    try {
      expect(port.linkType).toBe('ETHERNET');
      await sleep(100); // let libpcap's ring settle before the first frame (see DEPENDENCIES.md)
      const frames = Array.from({ length: 32 }, (_, i) => testFrame(i, 60 + i * 40));
      const got = readFrames(port, new Batch(8, 2048), 50, 32);
      python(netns, pod, `
import socket
s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
s.bind(('eth0', 0))
for h in ${JSON.stringify(frames.map((f) => f.toString('hex')))}:
    s.send(bytes.fromhex(h))
`);
      expect(await got).toEqual(frames);
      expect(port.stats.rxPackets).toBe(32);

      const out = Array.from({ length: 16 }, (_, i) => testFrame(100 + i, 64 + i));
      const cap = await sniff(netns, pod, 'eth0', 16, TEST_ETHERTYPE, 'in');
      expect(port.write(listOf(out, { headroom: 50 }))).toBe(16);
      expect(await cap.frames).toEqual(out);
      // A handle does not capture its own injections.
      await sleep(50);
      expect(port.pending).toBe(0);
    } finally {
      port.close();
    }
  });
});
