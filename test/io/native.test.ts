// The addon's hot calls never throw and never touch memory outside what they were given: bad
// arguments give -EINVAL, unknown descriptors -EBADF. Runs without root, on loopback only.
import { describe, expect, it } from 'vitest';
import { Batch, FrameList, Meta } from '../../src/buf/batch.js';
import { NativeError } from '../../src/errors.js';
import { Errno } from '../../src/io/errno.js';
import { checkIfName, ifIndex } from '../../src/io/link.js';
import { control, errnoName, loadNative, nativeError, nativeUnavailableReason, Res, RES_LEN } from '../../src/io/native.js';
import { netnsPath } from '../../src/io/netns.js';
import { UdpPort } from '../../src/io/udp-port.js';
import { parseIpv4 } from '../../src/wire/addr.js';
import { sleep } from '../support/capture.js';
import { testPayload } from '../support/port-frames.js';

const reason = nativeUnavailableReason();

describe('errno names and NativeError', () => {
  it('maps errno numbers of either sign to their names', () => {
    expect(errnoName(-19)).toBe('ENODEV');
    expect(errnoName(13)).toBe('EACCES');
    const e = nativeError(1, 'ioctl(TUNSETIFF)', 'tap0');
    expect(e).toBeInstanceOf(NativeError);
    expect([e.code, e.errno, e.syscall]).toEqual(['EPERM', -1, 'ioctl(TUNSETIFF)']);
  });

  it('control() rewraps errno errors and passes others through', () => {
    const addonError = Object.assign(new Error('bind: Address already in use'), { errno: -98, syscall: 'bind' });
    expect(() => control('x', () => { throw addonError; })).toThrow(expect.objectContaining({ code: 'EADDRINUSE', errno: -98, syscall: 'bind' }));
    const other = new TypeError('nope');
    expect(() => control('x', () => { throw other; })).toThrow(other);
  });

  it('validates interface and namespace names before any system call', () => {
    for (const bad of ['', 'x'.repeat(16), 'a/b', 'a b', 'a:b', '.', '..']) {
      expect(() => checkIfName(bad)).toThrow(expect.objectContaining({ code: 'ERR_IO_BAD_IFNAME' }));
    }
    expect(() => checkIfName('veth1234567890a')).not.toThrow();
    expect(netnsPath('ns1')).toBe('/var/run/netns/ns1');
    expect(netnsPath('/proc/1/ns/net')).toBe('/proc/1/ns/net');
    for (const bad of ['..', 'a b', '']) expect(() => netnsPath(bad)).toThrow(expect.objectContaining({ code: 'ERR_IO_BAD_NETNS' }));
  });
});

describe.skipIf(reason !== null)(`native hot calls${reason === null ? '' : ` (skipped: ${reason})`}`, () => {
  const n = reason === null ? loadNative() : (null as never);

  it('return -EINVAL for wrong types and geometries, -EBADF for unknown descriptors', () => {
    const arena = Buffer.alloc(4 * 256), meta = new Int32Array(4 * 8), res = new Int32Array(RES_LEN);
    const bad: Array<[string, () => number]> = [
      ['not a buffer', () => n.tapRead(0, 'x' as unknown as Buffer, 256, 64, meta, 4, 0)],
      ['meta not Int32Array', () => n.udpRecv(0, arena, 256, 64, new Uint32Array(32) as unknown as Int32Array, 4)],
      ['arena too small', () => n.packetRecv(0, arena, 256, 64, meta, 5, 0)],
      ['meta too small', () => n.udpRecv(0, Buffer.alloc(8 * 256), 256, 64, meta, 8)],
      ['headroom >= slot', () => n.tapRead(0, arena, 256, 256, meta, 4, 0)],
      ['headroom < vnet header', () => n.packetRecv(0, arena, 256, 4, meta, 4, 10)],
      ['negative max', () => n.tapRead(0, arena, 256, 64, meta, -1, 0)],
      ['res too short', () => n.tapWrite(0, arena, meta, 1, 0, new Int32Array(2))],
      ['count beyond meta', () => n.packetSend(0, arena, meta, 5, 0, res)],
      ['from > count', () => n.udpSend(0, arena, meta, 3, 2, 0, res)],
      ['missing arguments', () => (n.udpSend as unknown as () => number)()],
    ];
    for (const [what, call] of bad) expect([what, call()]).toEqual([what, Errno.EINVAL]);
    expect(n.close(123456)).toBe(Errno.EBADF);
    expect(n.pollStart(987654)).toBe(Errno.EBADF);
    expect(n.pollClose(987654)).toBe(Errno.EBADF);
  });

  it('a write with frames outside the arena counts them as errors and sends none of their bytes', () => {
    const port = UdpPort.open({ address: '127.0.0.1' });
    const rx = UdpPort.open({ address: '127.0.0.1' });
    try {
      const arena = Buffer.alloc(512);
      const list = new FrameList(3);
      const dst = parseIpv4('127.0.0.1');
      list.push(arena, 100, 90, dst, rx.localPort); // end < start
      list.push(arena, 500, 600, dst, rx.localPort); // past the arena
      list.push(arena, 10, 20, dst, rx.localPort); // fine
      expect(port.write(list)).toBe(1);
      expect(port.stats.txErrors).toBe(2);
      const res = new Int32Array(RES_LEN);
      list.meta[2 * 8 + Meta.START] = -5;
      expect(n.udpSend(port.descriptor, arena, list.meta, 0, 3, 0, res)).toBe(Errno.EINVAL);
      expect(res[Res.ERRORS]).toBe(3);
    } finally {
      port.close();
      rx.close();
    }
  });

  it('UDP on loopback: a batch goes out and comes back through recvmmsg with its source', async () => {
    const a = UdpPort.open({ address: '127.0.0.1' });
    const b = UdpPort.open({ address: '127.0.0.1' });
    try {
      const arena = Buffer.alloc(64 * 128);
      const list = new FrameList(64);
      const payloads = Array.from({ length: 64 }, (_, i) => testPayload(i, 10 + i));
      payloads.forEach((p, i) => {
        p.copy(arena, i * 128 + 50);
        list.push(arena, i * 128 + 50, i * 128 + 50 + p.length, parseIpv4('127.0.0.1'), b.localPort);
      });
      expect(a.write(list)).toBe(64);
      const batch = new Batch(16, 256);
      const got: Buffer[] = [];
      for (let t = 0; t < 100 && got.length < 64; t++) {
        const k = b.read(batch, 50);
        for (let i = 0; i < k; i++) {
          expect(batch.meta[i * 8 + Meta.ADDR]! >>> 0).toBe(parseIpv4('127.0.0.1'));
          expect(batch.meta[i * 8 + Meta.PORT]).toBe(a.localPort);
          got.push(Buffer.from(batch.arena.subarray(batch.start(i), batch.end(i))));
        }
        if (k === 0) await sleep(2);
      }
      expect(got).toEqual(payloads);
      expect(b.stats.rxBatches).toBeGreaterThanOrEqual(4); // at most 16 per read
    } finally {
      a.close();
      b.close();
    }
  });

  it('reads through the readiness callback, once per wakeup, and stops when unwatched', async () => {
    const a = UdpPort.open({ address: '127.0.0.1' });
    const b = UdpPort.open({ address: '127.0.0.1' }).unref();
    try {
      const batch = new Batch(8, 256);
      let wakeups = 0, frames = 0;
      const done = new Promise<void>((resolve) => {
        b.onReadable(() => {
          wakeups++;
          for (let k = b.read(batch, 0); k > 0; k = b.read(batch, 0)) frames += k;
          if (frames === 20) resolve();
        });
      });
      const arena = Buffer.alloc(2048);
      const list = new FrameList(20);
      for (let i = 0; i < 20; i++) list.push(arena, i * 64, i * 64 + 32, parseIpv4('127.0.0.1'), b.localPort);
      expect(a.write(list)).toBe(20);
      await done;
      expect(wakeups).toBeGreaterThanOrEqual(1);
      expect(wakeups).toBeLessThanOrEqual(20);
      b.onReadable(null);
      const before = wakeups;
      a.write(list);
      await sleep(50);
      expect(wakeups).toBe(before);
    } finally {
      a.close();
      b.close();
    }
  });

  it('ifIndex of loopback (a read-only ioctl)', () => {
    expect(ifIndex('lo')).toBe(1);
  });
});
