import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ConnTable, CtFlag, CtProto, CtRefuse, DEFAULT_CT_TIMEOUTS, Dir, TcpState, formatEntry, packPorts } from '../../src/conntrack/table.js';
import { TcpFlag, tcpNext, type TcpStep } from '../../src/conntrack/tcp.js';
import { AllocationMeter } from '../../src/replay/alloc-meter.js';
import { parseIpv4 } from '../../src/wire/addr.js';

const A = parseIpv4('10.244.1.10'), B = parseIpv4('10.244.2.10'), VIP = parseIpv4('10.96.0.10');
const { SYN, ACK, FIN, RST } = TcpFlag;
const T = DEFAULT_CT_TIMEOUTS;

/** A TCP connection A:40000 -> B:80 with the plain reversed reply tuple. */
function tcpConn(ct: ConnTable, now = 0, flags: number = SYN): number {
  return ct.create(CtProto.TCP, A, B, packPorts(40000, 80), B, A, packPorts(80, 40000), flags, 60, now);
}

describe('ConnTable: TCP states and their timeouts (nf_conntrack names and defaults)', () => {
  // Each row: packets after the opening SYN (direction, flags), then the state and its timeout.
  const O = Dir.ORIGINAL, R = Dir.REPLY;
  const cases: ReadonlyArray<[string, ReadonlyArray<[Dir, number]>, TcpState, number]> = [
    ['a SYN alone', [], TcpState.SYN_SENT, T.tcpSynSent],
    ['SYN, SYN/ACK', [[R, SYN | ACK]], TcpState.SYN_RECV, T.tcpSynRecv],
    ['the three-way handshake', [[R, SYN | ACK], [O, ACK]], TcpState.ESTABLISHED, T.tcpEstablished],
    ['data both ways', [[R, SYN | ACK], [O, ACK], [O, ACK], [R, ACK]], TcpState.ESTABLISHED, T.tcpEstablished],
    ['the client closes first', [[R, SYN | ACK], [O, ACK], [O, FIN | ACK]], TcpState.FIN_WAIT, T.tcpFinWait],
    ['the server acknowledges the FIN', [[R, SYN | ACK], [O, ACK], [O, FIN | ACK], [R, ACK]], TcpState.CLOSE_WAIT, T.tcpCloseWait],
    ['the server closes too', [[R, SYN | ACK], [O, ACK], [O, FIN | ACK], [R, ACK], [R, FIN | ACK]], TcpState.LAST_ACK, T.tcpLastAck],
    ['the last ACK', [[R, SYN | ACK], [O, ACK], [O, FIN | ACK], [R, ACK], [R, FIN | ACK], [O, ACK]], TcpState.TIME_WAIT, T.tcpTimeWait],
    ['the server retransmits its FIN: still waiting for the last ACK', [[R, SYN | ACK], [O, ACK], [O, FIN | ACK], [R, ACK], [R, FIN | ACK], [R, FIN | ACK]], TcpState.LAST_ACK, T.tcpLastAck],
    ['both FINs at once, then the ACK', [[R, SYN | ACK], [O, ACK], [O, FIN | ACK], [R, FIN | ACK], [O, ACK]], TcpState.TIME_WAIT, T.tcpTimeWait],
    ['a reset from the server', [[R, SYN | ACK], [O, ACK], [R, RST]], TcpState.CLOSE, T.tcpClose],
    ['a reset answering the SYN (port closed)', [[R, RST | ACK]], TcpState.CLOSE, T.tcpClose],
    ['a retransmitted SYN', [[O, SYN]], TcpState.SYN_SENT, T.tcpSynSent],
  ];
  it.each(cases)('%s', (_name, packets, state, timeout) => {
    const ct = new ConnTable({ capacity: 8, seed: 1 });
    const o = tcpConn(ct, 0);
    expect(o).toBeGreaterThanOrEqual(0);
    let now = 0;
    for (const [dir, flags] of packets) {
      now += 10;
      expect(ct.seen(o + dir, flags, 60, now)).toBe(true);
    }
    expect(ct.tcpState(o)).toBe(state);
    // Alive one millisecond before its timeout, gone at it.
    expect(ct.lookup(CtProto.TCP, A, B, packPorts(40000, 80), now + timeout - 1)).toBe(o);
    expect(ct.lookup(CtProto.TCP, A, B, packPorts(40000, 80), now + timeout)).toBe(-1);
  });

  it('a connection picked up mid-stream (no SYN seen) is ESTABLISHED, as with nf_conntrack_tcp_loose', () => {
    const ct = new ConnTable({ capacity: 8, seed: 1 });
    const o = tcpConn(ct, 0, ACK);
    expect(ct.tcpState(o)).toBe(TcpState.ESTABLISHED);
    expect(ct.entryFlags(o) & CtFlag.ASSURED).toBe(CtFlag.ASSURED);
  });

  it('a SYN/ACK or a RST cannot open a connection: INVALID, counted, nothing stored', () => {
    const ct = new ConnTable({ capacity: 8, seed: 1 });
    expect(tcpConn(ct, 0, SYN | ACK)).toBe(CtRefuse.INVALID);
    expect(tcpConn(ct, 0, RST)).toBe(CtRefuse.INVALID);
    expect([ct.size, ct.stats.invalid, ct.stats.inserted]).toEqual([0, 2, 0]);
  });

  it('an out-of-state packet (a SYN/ACK from the client) is refused and leaves the state alone', () => {
    const ct = new ConnTable({ capacity: 8, seed: 1 });
    const o = tcpConn(ct, 0);
    expect(ct.seen(o + Dir.ORIGINAL, SYN | ACK, 60, 1)).toBe(false);
    expect(ct.tcpState(o)).toBe(TcpState.SYN_SENT);
  });

  it('a new SYN on a TIME_WAIT tuple reopens it (port reuse)', () => {
    const ct = new ConnTable({ capacity: 8, seed: 1 });
    const o = tcpConn(ct, 0);
    for (const [d, f] of [[1, SYN | ACK], [0, ACK], [0, FIN | ACK], [1, FIN | ACK], [0, ACK]] as const) ct.seen(o + d, f, 60, 1);
    expect(ct.tcpState(o)).toBe(TcpState.TIME_WAIT);
    expect(ct.seen(o, SYN, 60, 2)).toBe(true);
    expect(ct.tcpState(o)).toBe(TcpState.SYN_SENT);
  });

  it('reopens: only a SYN without ACK, in the original direction, on a TIME_WAIT or CLOSE connection (the stages then open a new one)', () => {
    const ct = new ConnTable({ capacity: 8, seed: 1 });
    const o = tcpConn(ct, 0);
    expect(ct.reopens(o, SYN)).toBe(false); // SYN_SENT: a retransmitted SYN
    for (const [d, f] of [[1, SYN | ACK], [0, ACK]] as const) ct.seen(o + d, f, 60, 1);
    expect(ct.reopens(o, SYN)).toBe(false); // ESTABLISHED
    for (const [d, f] of [[0, FIN | ACK], [1, FIN | ACK], [0, ACK]] as const) ct.seen(o + d, f, 60, 1);
    expect(ct.tcpState(o)).toBe(TcpState.TIME_WAIT);
    expect([ct.reopens(o, SYN), ct.reopens(o + 1, SYN), ct.reopens(o, SYN | ACK), ct.reopens(o, ACK)]).toEqual([true, false, false, false]);
    const ct2 = new ConnTable({ capacity: 8, seed: 1 });
    const r = tcpConn(ct2, 1);
    ct2.seen(r + 1, RST, 40, 1);
    expect([ct2.tcpState(r), ct2.reopens(r, SYN)]).toEqual([TcpState.CLOSE, true]);
  });
});

describe('ConnTable: the ESTABLISHED fast path (plain ACKs skip the state machine)', () => {
  const timeoutOf = (st: TcpState): number => [T.tcpClose, T.tcpSynSent, T.tcpSynRecv, T.tcpEstablished, T.tcpFinWait, T.tcpCloseWait, T.tcpLastAck, T.tcpTimeWait, T.tcpClose][st]!;

  it('random packet sequences give the states, flags, verdicts and expiry times of tcpNext applied packet by packet', () => {
    const flagsArb = fc.oneof(
      { weight: 6, arbitrary: fc.constantFrom(ACK, ACK | TcpFlag.PSH, 0) },
      { weight: 4, arbitrary: fc.subarray([SYN, ACK, FIN, RST, TcpFlag.PSH]).map((xs) => xs.reduce((a, b) => a | b, 0)) },
    );
    fc.assert(fc.property(flagsArb, fc.array(fc.tuple(fc.constantFrom(Dir.ORIGINAL, Dir.REPLY), flagsArb), { maxLength: 14 }), (first, packets) => {
      const ct = new ConnTable({ capacity: 4, seed: 7 });
      const model: TcpStep = { state: TcpState.NONE, close: 0 };
      const opened = tcpNext(TcpState.NONE, 0, Dir.ORIGINAL, first, model);
      const o = tcpConn(ct, 0, first);
      expect(o >= 0).toBe(opened);
      if (!opened) return;
      let assured = model.state === TcpState.ESTABLISHED, replied = false, now = 0, expires = timeoutOf(model.state);
      for (const [dir, flags] of packets) {
        now += 1;
        const step: TcpStep = { state: TcpState.NONE, close: 0 };
        const ok = tcpNext(model.state, model.close, dir, flags, step);
        expect(ct.seen(o + dir, flags, 60, now)).toBe(ok);
        if (ok) {
          model.state = step.state; model.close = step.close;
          if (dir === Dir.REPLY) replied = true;
          if (step.state === TcpState.ESTABLISHED) assured = true;
          expires = now + timeoutOf(step.state);
        }
        expect(ct.tcpState(o)).toBe(model.state);
        if (ok) expect(ct.entryFlags(o)).toBe((replied ? CtFlag.SEEN_REPLY : 0) | (assured ? CtFlag.ASSURED : 0));
      }
      expect(ct.lookup(CtProto.TCP, A, B, packPorts(40000, 80), expires - 1)).toBe(o);
      expect(ct.lookup(CtProto.TCP, A, B, packPorts(40000, 80), expires)).toBe(-1);
    }), { numRuns: 2000, seed: 12 });
  });

  it('an ACK while ESTABLISHED keeps the state and the 5-day timeout; a FIN after it still moves to FIN_WAIT', () => {
    const ct = new ConnTable({ capacity: 8, seed: 1 });
    const o = tcpConn(ct, 0);
    ct.seen(o + 1, SYN | ACK, 60, 1);
    ct.seen(o, ACK, 60, 2);
    for (let t = 3; t < 100; t++) expect(ct.seen(o + (t & 1), ACK | TcpFlag.PSH, 1000, t)).toBe(true);
    expect([ct.tcpState(o), ct.lookup(CtProto.TCP, A, B, packPorts(40000, 80), 99 + T.tcpEstablished - 1)]).toEqual([TcpState.ESTABLISHED, o]);
    expect(ct.seen(o, FIN | ACK, 60, 100)).toBe(true);
    expect(ct.tcpState(o)).toBe(TcpState.FIN_WAIT);
    expect(ct.lookup(CtProto.TCP, A, B, packPorts(40000, 80), 100 + T.tcpFinWait)).toBe(-1);
    // A late SYN/ACK retransmit is still judged by the state machine (allowed from the server only).
    const ct2 = new ConnTable({ capacity: 8, seed: 1 });
    const o2 = tcpConn(ct2, 0, ACK);
    expect([ct2.seen(o2, SYN | ACK, 60, 1), ct2.seen(o2 + 1, SYN | ACK, 60, 1), ct2.tcpState(o2)]).toEqual([false, true, TcpState.ESTABLISHED]);
  });
});

describe('ConnTable: tuples, directions and NAT', () => {
  it('a packet finds its connection and its direction, also when the reply tuple was rewritten (DNAT to a backend)', () => {
    const ct = new ConnTable({ capacity: 8, seed: 7 });
    // A -> VIP:80 DNATed to B:8080: replies come from B:8080.
    const o = ct.create(CtProto.TCP, A, VIP, packPorts(40000, 80), B, A, packPorts(8080, 40000), SYN, 60, 0);
    expect(o & 1).toBe(Dir.ORIGINAL);
    const r = ct.lookup(CtProto.TCP, B, A, packPorts(8080, 40000), 1);
    expect(r).toBe(o + 1);
    // The reply direction reads the original tuple to translate back: source VIP:80.
    expect([ct.nodeDst(r ^ 1), ct.nodePorts(r ^ 1) & 0xffff]).toEqual([VIP, 80]);
    // The un-NATed reverse is not a tuple of this connection.
    expect(ct.lookup(CtProto.TCP, VIP, A, packPorts(80, 40000), 1)).toBe(-1);
    expect(ct.lookup(CtProto.UDP, A, VIP, packPorts(40000, 80), 1)).toBe(-1);
  });

  it('refuses a connection whose original or reply tuple another connection holds (CLASH, counted)', () => {
    const ct = new ConnTable({ capacity: 8, seed: 7 });
    expect(tcpConn(ct)).toBeGreaterThanOrEqual(0);
    expect(tcpConn(ct)).toBe(CtRefuse.CLASH);
    // Another client whose translated reply would collide with the first connection's reply.
    expect(ct.create(CtProto.TCP, VIP, A, packPorts(1, 2), B, A, packPorts(80, 40000), SYN, 60, 0)).toBe(CtRefuse.CLASH);
    expect([ct.size, ct.stats.clashes]).toEqual([1, 2]);
  });

  it('UDP: 30 s until a reply, then 120 s once the client speaks again (ASSURED)', () => {
    const ct = new ConnTable({ capacity: 8, seed: 3 });
    const p = packPorts(5353, 53), rp = packPorts(53, 5353);
    const o = ct.create(CtProto.UDP, A, B, p, B, A, rp, 0, 40, 0);
    expect(ct.lookup(CtProto.UDP, A, B, p, T.udp)).toBe(-1);
    ct.seen(o + 1, 0, 40, 100);
    expect(ct.entryFlags(o)).toBe(CtFlag.SEEN_REPLY);
    expect(ct.lookup(CtProto.UDP, A, B, p, 100 + T.udp)).toBe(-1);
    ct.seen(o, 0, 40, 200);
    expect(ct.entryFlags(o)).toBe(CtFlag.SEEN_REPLY | CtFlag.ASSURED);
    expect(ct.lookup(CtProto.UDP, B, A, rp, 200 + T.udpStream - 1)).toBe(o + 1);
  });

  it('ICMP echo: the reply (same id, addresses swapped) finds the request; 30 s', () => {
    const ct = new ConnTable({ capacity: 8, seed: 3 });
    const id = packPorts(0x1234, 0);
    const o = ct.create(CtProto.ICMP, A, B, id, B, A, id, 0, 84, 0);
    expect(ct.lookup(CtProto.ICMP, B, A, id, 10)).toBe(o + 1);
    expect(ct.lookup(CtProto.ICMP, B, A, packPorts(0x1235, 0), 10)).toBe(-1);
    expect(ct.lookup(CtProto.ICMP, A, B, id, T.icmp)).toBe(-1);
  });

  it('lookup is pure: it neither refreshes nor reclaims (a trace and a policy decision call it)', () => {
    const ct = new ConnTable({ capacity: 8, seed: 3 });
    const o = tcpConn(ct, 0);
    for (let i = 0; i < 5; i++) ct.lookup(CtProto.TCP, A, B, packPorts(40000, 80), 100);
    expect(ct.list(100)[0]!.original.packets).toBe(1);
    expect(ct.lookup(CtProto.TCP, A, B, packPorts(40000, 80), T.tcpSynSent)).toBe(-1);
    expect([ct.size, ct.stats.expired]).toEqual([1, 0]);
    expect(ct.sweep(T.tcpSynSent)).toBe(1);
    expect([ct.size, ct.stats.expired, o]).toEqual([0, 1, o]);
  });
});

describe('ConnTable: bounded', () => {
  const udp = (ct: ConnTable, i: number, now: number): number =>
    ct.create(CtProto.UDP, A, B, packPorts(10000 + i, 53), B, A, packPorts(53, 10000 + i), 0, 40, now);

  it('when full, a new connection early-drops the oldest unreplied one (counted), never a replied one', () => {
    const ct = new ConnTable({ capacity: 4, seed: 9 });
    const nodes = [0, 1, 2, 3].map((i) => udp(ct, i, i));
    ct.seen(nodes[0]! + 1, 0, 40, 10); // flow 0 got a reply: spared
    ct.seen(nodes[0]!, 0, 40, 11);
    expect(udp(ct, 4, 20)).toBeGreaterThanOrEqual(0);
    const ports = ct.list(20).map((e) => e.original.sport).sort();
    expect(ports).toEqual([10000, 10002, 10003, 10004]);
    expect([ct.size, ct.stats.earlyDropped, ct.stats.refused]).toEqual([4, 1, 0]);
  });

  it('when full of ASSURED connections it refuses the new one (FULL, counted) and keeps the old ones', () => {
    const ct = new ConnTable({ capacity: 3, seed: 9 });
    for (let i = 0; i < 3; i++) {
      const o = ct.create(CtProto.TCP, A, B, packPorts(20000 + i, 80), B, A, packPorts(80, 20000 + i), ACK, 60, 0);
      expect(ct.entryFlags(o) & CtFlag.ASSURED).toBeTruthy();
    }
    expect(tcpConn(ct, 1)).toBe(CtRefuse.FULL);
    expect([ct.size, ct.stats.refused, ct.stats.earlyDropped]).toEqual([3, 1, 0]);
  });

  it("when full, a closing TCP connection (TIME_WAIT) gives way before any established one, as the kernel's tcp_can_early_drop", () => {
    const ct = new ConnTable({ capacity: 3, seed: 9 });
    const nodes = [0, 1, 2].map((i) => ct.create(CtProto.TCP, A, B, packPorts(20000 + i, 80), B, A, packPorts(80, 20000 + i), ACK, 60, 0));
    const o = nodes[1]!;
    ct.seen(o, FIN | ACK, 60, 1);
    ct.seen(o + 1, FIN | ACK, 60, 2);
    ct.seen(o, ACK, 60, 3);
    expect(ct.tcpState(o)).toBe(TcpState.TIME_WAIT);
    expect(tcpConn(ct, 4)).toBeGreaterThanOrEqual(0);
    expect(ct.list(4).map((e) => e.original.sport).sort()).toEqual([20000, 20002, 40000]);
    expect([ct.stats.earlyDropped, ct.stats.refused]).toEqual([1, 0]);
  });

  it('when full, an expired connection is reclaimed before any live one is dropped', () => {
    const ct = new ConnTable({ capacity: 2, seed: 9, timeouts: { udp: 100 } });
    udp(ct, 0, 0);
    udp(ct, 1, 90);
    expect(udp(ct, 2, 150)).toBeGreaterThanOrEqual(0);
    expect(ct.list(150).map((e) => e.original.sport).sort()).toEqual([10001, 10002]);
    expect([ct.stats.expired, ct.stats.earlyDropped]).toEqual([1, 0]);
  });

  it('a sweep reclaims expired entries a slice at a time and covers the whole table in turn', () => {
    const ct = new ConnTable({ capacity: 64, seed: 9, timeouts: { udp: 100 } });
    for (let i = 0; i < 64; i++) udp(ct, i, i < 32 ? 0 : 500);
    let k = 0;
    for (let i = 0; i < 8; i++) k += ct.sweep(200, 8);
    expect([k, ct.size, ct.stats.expired]).toEqual([32, 32, 32]);
  });

  it('removeWhere drops the matching connections only (an endpoint that went away)', () => {
    const ct = new ConnTable({ capacity: 16, seed: 9 });
    for (let i = 0; i < 10; i++) udp(ct, i, 0);
    expect(ct.removeWhere((o) => (ct.nodePorts(o) >>> 16) % 2 === 0)).toBe(5);
    expect(ct.list(1).map((e) => e.original.sport % 2)).toEqual([1, 1, 1, 1, 1]);
    expect(ct.stats.removed).toBe(5);
  });

  it('rejects a capacity it cannot hold, with a code', () => {
    expect(() => new ConnTable({ capacity: 0 })).toThrow(expect.objectContaining({ code: 'ERR_CONNTRACK_CAPACITY' }));
    expect(() => new ConnTable({ capacity: 1.5 })).toThrow(expect.objectContaining({ code: 'ERR_CONNTRACK_CAPACITY' }));
  });
});

describe('ConnTable against a model', () => {
  it('random creates, packets, removals and time agree with a Map of tuples (no eviction: capacity large)', () => {
    type Op = { k: 'create'; a: number; b: number; sp: number; dp: number; nat: boolean }
      | { k: 'reply' | 'remove'; i: number } | { k: 'wait'; ms: number };
    const op: fc.Arbitrary<Op> = fc.oneof(
      fc.record({ k: fc.constant('create' as const), a: fc.nat(3), b: fc.nat(3), sp: fc.nat(3), dp: fc.nat(2), nat: fc.boolean() }),
      fc.record({ k: fc.constantFrom('reply' as const, 'remove' as const), i: fc.nat(40) }),
      fc.record({ k: fc.constant('wait' as const), ms: fc.integer({ min: 1, max: 40_000 }) }),
    );
    fc.assert(fc.property(fc.array(op, { maxLength: 120 }), fc.integer(), (ops, seed) => {
      const ct = new ConnTable({ capacity: 256, seed });
      interface M { o: number; tuples: [string, string]; expires: number; replied: boolean; alive: boolean }
      const model: M[] = [];
      let now = 0;
      const key = (s: number, d: number, p: number): string => `${s}|${d}|${p}`;
      const live = (): M[] => model.filter((m) => m.alive && m.expires > now);
      for (const x of ops) {
        if (x.k === 'wait') { now += x.ms; continue; }
        if (x.k === 'create') {
          const s = 100 + x.a, d = 200 + x.b, p = packPorts(1000 + x.sp, 50 + x.dp);
          const rs = x.nat ? 300 + x.b : d, rp = x.nat ? packPorts(8000 + x.dp, 1000 + x.sp) : packPorts(50 + x.dp, 1000 + x.sp);
          const taken = new Set(live().flatMap((m) => m.tuples));
          const t: [string, string] = [key(s, d, p), key(rs, s, rp)];
          const r = ct.create(CtProto.UDP, s, d, p, rs, s, rp, 0, 40, now);
          if (taken.has(t[0]) || taken.has(t[1])) { expect(r).toBe(CtRefuse.CLASH); continue; }
          expect(r).toBeGreaterThanOrEqual(0);
          for (const m of model) if (m.o === r) m.alive = false; // a reclaimed slot was reused
          model.push({ o: r, tuples: t, expires: now + T.udp, replied: false, alive: true });
          continue;
        }
        const m = live()[x.i];
        if (m === undefined) continue;
        if (x.k === 'remove') { ct.remove(m.o); m.alive = false; continue; }
        ct.seen(m.o + 1, 0, 40, now);
        m.replied = true;
        m.expires = now + T.udp;
      }
      const l = live();
      for (const m of l) {
        const [s, d, p] = m.tuples[1].split('|').map(Number) as [number, number, number];
        expect(ct.lookup(CtProto.UDP, s, d, p, now)).toBe(m.o + 1);
      }
      expect(ct.list(now).length).toBe(l.length);
    }), { numRuns: 300 });
  });
});

describe('ConnTable on the data path', () => {
  it('allocates nothing per packet: 1M lookups and refreshes over 10,000 flows, and 100,000 creates, under 1 byte each', () => {
    const ct = new ConnTable({ capacity: 16_384, seed: 5 });
    const create = (base: number): void => {
      for (let i = 0; i < 10_000; i++) ct.create(CtProto.UDP, A + (i >> 8), B, packPorts(base + (i & 0xff), 53), B, A + (i >> 8), packPorts(53, base + (i & 0xff)), 0, 40, 0);
    };
    let hits = 0;
    const run = (n: number): void => {
      for (let i = 0; i < n; i++) {
        const f = i % 10_000;
        const r = ct.lookup(CtProto.UDP, B, A + (f >> 8), packPorts(53, 1000 + (f & 0xff)), 1);
        if (r >= 0) { hits++; ct.seen(r, 0, 40, 1); }
      }
    };
    // Measured in rounds, and the median round taken, as the switch's allocation tests do: a
    // round in which V8 compiled (its allocations land wherever the compiler finishes, more so
    // on a loaded machine; seen in CI: 1.19 bytes per lookup from one 1M-lookup window) is not
    // the table's. An allocation per packet shows in every round.
    const meter = new AllocationMeter();
    const median = (xs: number[]): number => xs.sort((a, b) => a - b)[xs.length >> 1]!;
    create(1000);
    run(100_000);
    const lookups: number[] = [];
    for (let round = 0; round < 10; round++) {
      meter.start();
      run(100_000);
      lookups.push(meter.stop().bytes / 100_000);
    }
    const perPacket = median(lookups);
    // Connections come and go: warm create and removal up (V8 compiles them), then measure
    // 10 rounds of 10,000.
    const all = (): boolean => true;
    for (let k = 0; k < 10; k++) { ct.removeWhere(all); create(1000 + k); }
    const creates: number[] = [];
    for (let k = 0; k < 10; k++) {
      meter.start();
      ct.removeWhere(all);
      create(2000 + k);
      creates.push(meter.stop().bytes / 10_000);
    }
    const perCreate = median(creates);
    expect(hits).toBe(1_100_000);
    expect(perPacket).toBeLessThan(1);
    expect(perCreate).toBeLessThan(1);
  });

  it('shows entries the way conntrack -L does', () => {
    const ct = new ConnTable({ capacity: 8, seed: 5 });
    const o = ct.create(CtProto.TCP, A, VIP, packPorts(40000, 80), B, A, packPorts(8080, 40000), SYN, 60, 0);
    ct.seen(o + 1, SYN | ACK, 60, 1);
    ct.seen(o, ACK, 52, 2);
    ct.setMark(o, 7);
    expect(formatEntry(ct.list(2)[0]!)).toBe(
      'tcp      6 432000 ESTABLISHED src=10.244.1.10 dst=10.96.0.10 sport=40000 dport=80 packets=2 bytes=112 '
      + 'src=10.244.2.10 dst=10.244.1.10 sport=8080 dport=40000 packets=1 bytes=60 [ASSURED] mark=7');
    const u = ct.create(CtProto.ICMP, A, B, packPorts(9, 0), B, A, packPorts(9, 0), 0, 84, 2);
    expect(formatEntry(ct.list(2).find((e) => e.id === u >> 1)!)).toBe(
      'icmp     1 30 src=10.244.1.10 dst=10.244.2.10 id=9 packets=1 bytes=84 [UNREPLIED] src=10.244.2.10 dst=10.244.1.10 id=9 packets=0 bytes=0 mark=0');
  });
});
