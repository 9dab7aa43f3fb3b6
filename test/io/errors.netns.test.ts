// Failure paths of the kernel-backed ports, inside a namespace this file creates: control calls
// throw a NativeError whose code is the errno name; data-path failures are counted return
// codes; nothing crashes, hangs or leaks descriptors, poll handles or interfaces.
//
//   ns <prefix>-e: lo; ferr0 <-veth-> ferr1; TAP devices made and removed by the tests
import { statSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Batch } from '../../src/buf/batch.js';
import { NativeError } from '../../src/errors.js';
import { CapPort, capUnavailableReason } from '../../src/io/cap-port.js';
import { Errno } from '../../src/io/errno.js';
import { getMtu, setLinkUp, setMtu } from '../../src/io/link.js';
import { loadNative } from '../../src/io/native.js';
import { withNetns } from '../../src/io/netns.js';
import { PacketPort } from '../../src/io/packet-port.js';
import { TapPort } from '../../src/io/tap-port.js';
import { UdpPort } from '../../src/io/udp-port.js';
import { countFds, sleep } from '../support/capture.js';
import { listOf, testFrame } from '../support/port-frames.js';
import { listNetns, Netns, netnsSkipReason } from '../support/netns.js';

const skip = netnsSkipReason();

/** asNobody runs `fn` with effective uid/gid 65534 (no capabilities), then restores root. */
function asNobody<T>(fn: () => T): T {
  const { seteuid, setegid } = process;
  if (seteuid === undefined || setegid === undefined) throw new Error('seteuid is POSIX-only');
  setegid(65534);
  seteuid(65534);
  try {
    return fn();
  } finally {
    seteuid(0);
    setegid(0);
  }
}

function thrown(fn: () => unknown): NativeError {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(NativeError);
    return e as NativeError;
  }
  throw new Error('expected a NativeError');
}

describe.skipIf(skip !== null)(`port failure paths${skip === null ? '' : ` (skipped: ${skip})`}`, () => {
  const netns = new Netns('er');
  let ns = '';
  const inNs = <T>(fn: () => T): T => withNetns(ns, fn);

  beforeAll(() => {
    ns = netns.add('e');
    netns.noIpv6(ns);
    netns.veth(ns, 'ferr0', ns, 'ferr1');
    netns.ip(ns, 'link', 'set', 'ferr0', 'up');
    netns.ip(ns, 'link', 'set', 'ferr1', 'up');
    netns.ip(ns, 'addr', 'add', '198.51.100.1/24', 'dev', 'ferr0');
  });
  afterAll(() => {
    netns.destroy();
    expect(listNetns(netns.prefix)).toEqual([]);
  });

  it('a missing interface: ENODEV with the system call named', () => {
    const e = thrown(() => inNs(() => PacketPort.open('nosuch0')));
    expect([e.code, e.errno, e.syscall]).toEqual(['ENODEV', -19, 'ioctl(SIOCGIFINDEX)']);
    expect(e.message).toContain('nosuch0');
    expect(thrown(() => inNs(() => PacketPort.open(99_999))).code).toBe('ENODEV');
    expect(thrown(() => inNs(() => setMtu('nosuch0', 1400))).syscall).toBe('ioctl(SIOCSIFMTU)');
    expect(thrown(() => inNs(() => getMtu('nosuch0'))).code).toBe('ENODEV');
    expect(() => inNs(() => PacketPort.open('bad/name'))).toThrow(expect.objectContaining({ code: 'ERR_IO_BAD_IFNAME' }));
    expect(() => inNs(() => TapPort.open('a-name-longer-than-15'))).toThrow(expect.objectContaining({ code: 'ERR_IO_BAD_IFNAME' }));
    expect(() => withNetns('no-such-namespace-here', () => 1)).toThrow(expect.objectContaining({ code: 'ENOENT', syscall: 'open(netns)' }));
  });

  it.skipIf(capUnavailableReason() !== null)('cap on a missing interface or with a bad filter: ERR_CAP_OPEN, no crash', () => {
    expect(() => inNs(() => CapPort.open('nosuch0'))).toThrow(expect.objectContaining({ code: 'ERR_CAP_OPEN' }));
    // The device exists, so this one gets as far as libpcap (the error wraps cap's as `cause`).
    expect(() => inNs(() => CapPort.open('ferr0', { filter: 'this is (not a filter' }))).toThrow(expect.objectContaining({ code: 'ERR_CAP_OPEN', cause: expect.any(Error) }));
    const ok = inNs(() => CapPort.open('ferr0', { filter: 'udp' }));
    ok.close();
    ok.close();
  });

  it('no permission: EPERM / EACCES from the system call that refused', () => {
    inNs(() => {
      const errs = asNobody(() => [
        thrown(() => TapPort.open('ftapx')),
        thrown(() => PacketPort.open('ferr0')),
        thrown(() => UdpPort.open({ address: '198.51.100.1', port: 80 })),
        thrown(() => setMtu('ferr0', 1400)),
        thrown(() => setLinkUp('ferr0', false)),
      ]);
      // Where /dev/net/tun is world-writable (the usual 0666), TUNSETIFF refuses; here it may be 0600.
      const tunOpenToAll = (statSync('/dev/net/tun').mode & 0o006) === 0o006;
      expect(errs.map((e) => [e.code, e.syscall])).toEqual([
        tunOpenToAll ? ['EPERM', 'ioctl(TUNSETIFF)'] : ['EACCES', 'open(/dev/net/tun)'],
        ['EPERM', 'socket(AF_PACKET)'],
        ['EACCES', 'bind'],
        ['EPERM', 'ioctl(SIOCSIFMTU)'],
        ['EPERM', 'ioctl(SIOCSIFFLAGS)'],
      ]);
    });
    expect(process.geteuid?.()).toBe(0);
    // Nothing half-made was left behind.
    expect(netns.ip(ns, '-o', 'link')).not.toContain('ftapx');
  });

  it('busy and taken resources: EBUSY, EADDRINUSE, EADDRNOTAVAIL', () => {
    const tap = inNs(() => TapPort.open('ftapb'));
    const udp = inNs(() => UdpPort.open({ address: '198.51.100.1', port: 7000 }));
    try {
      expect(thrown(() => inNs(() => TapPort.open('ftapb'))).code).toBe('EBUSY');
      expect(thrown(() => inNs(() => UdpPort.open({ address: '198.51.100.1', port: 7000 }))).code).toBe('EADDRINUSE');
      expect(thrown(() => inNs(() => UdpPort.open({ address: '198.51.100.77', port: 7000 }))).code).toBe('EADDRNOTAVAIL');
      expect(() => inNs(() => UdpPort.open({ address: '198.51.100.1', port: 70000 }))).toThrow(expect.objectContaining({ code: 'ERR_IO_BAD_PORT' }));
    } finally {
      tap.close();
      udp.close();
    }
  });

  it('a closed port: reads and writes return -EBADF and are counted; close is idempotent', () => {
    const ports = inNs(() => [TapPort.open('ftapc'), PacketPort.open('ferr0'), UdpPort.open({ address: '198.51.100.1' })]);
    const batch = new Batch(4, 2048);
    for (const p of ports) {
      const fd = p.descriptor;
      p.onReadable(() => {});
      p.close();
      p.close();
      expect(p.closed).toBe(true);
      expect(p.read(batch, 64)).toBe(Errno.EBADF);
      expect(batch.count).toBe(0);
      expect(p.write(listOf([testFrame(1, 64), testFrame(2, 64)]))).toBe(Errno.EBADF);
      expect(p.stats.rxErrors).toBe(1);
      expect(p.stats.txErrors).toBe(2);
      expect(() => p.onReadable(() => {})).toThrow(expect.objectContaining({ code: 'ERR_IO_PORT_CLOSED' }));
      p.onReadable(null);
      // The addon refuses to close a descriptor it no longer owns (it may be someone else's now).
      expect(loadNative().close(fd)).toBe(Errno.EBADF);
    }
  });

  it('an interface that disappears under an open port: counted errors, no crash, close still works', async () => {
    netns.veth(ns, 'fgone0', ns, 'fgone1');
    netns.ip(ns, 'link', 'set', 'fgone0', 'up');
    netns.ip(ns, 'link', 'set', 'fgone1', 'up');
    const pkt = inNs(() => PacketPort.open('fgone0'));
    const tap = inNs(() => TapPort.open('ftapg'));
    let wakeups = 0;
    pkt.onReadable(() => { wakeups++; pkt.read(new Batch(4, 2048), 64); });
    netns.ip(ns, 'link', 'del', 'fgone0');
    netns.ip(ns, 'link', 'del', 'ftapg');
    await sleep(100);
    const batch = new Batch(4, 2048);
    const r1 = pkt.read(batch, 64), r2 = tap.read(batch, 64);
    const w1 = pkt.write(listOf([testFrame(1, 64)])), w2 = tap.write(listOf([testFrame(2, 64)]));
    // AF_PACKET: ENETDOWN once (seen by the wakeup or the read), then nothing; sends fail.
    expect(wakeups + (r1 < 0 ? 1 : 0)).toBeGreaterThanOrEqual(1);
    expect(pkt.stats.rxErrors).toBeGreaterThanOrEqual(1);
    expect(w1).toBeLessThan(0);
    expect(pkt.stats.txErrors + pkt.stats.txDropped).toBe(1);
    // TAP detached from its device: reads and writes fail with a counted error.
    expect(r2).toBeLessThan(0);
    expect(w2).toBeLessThan(0);
    expect(tap.stats.rxErrors).toBe(1);
    expect(tap.stats.txErrors).toBe(1);
    pkt.close();
    tap.close();
  });

  it('opening and closing 1,000 ports (with readiness watches) leaks no descriptors, watches or interfaces', async () => {
    const n = loadNative();
    // Warm up once so lazily created process-wide descriptors (epoll, the addon) are counted.
    inNs(() => UdpPort.open({ address: '198.51.100.1' })).close();
    const fds0 = await countFds(), owned0 = n.ownedFds(), polls0 = n.openPolls();
    for (let i = 0; i < 1000; i++) {
      const kind = i % 4;
      const port = inNs(() =>
        kind === 0 ? TapPort.open(`fl${i}`, { vnetHdr: i % 8 === 0 })
          : kind === 1 ? PacketPort.open('ferr1', { vnetHdr: i % 8 === 1 })
            : UdpPort.open({ address: '198.51.100.1', gro: i % 8 === 2 }),
      );
      port.unref().onReadable(() => {});
      if (i % 2 === 0) port.onReadable(null);
      port.close();
    }
    await sleep(50); // uv_close callbacks run on the next loop turns
    expect(n.ownedFds()).toBe(owned0);
    expect(n.openPolls()).toBe(polls0);
    expect(await countFds()).toBe(fds0);
    expect(netns.ip(ns, '-o', 'link').split('\n').filter((l) => / fl\d+[:@]/.test(l))).toEqual([]);
  });
});
