/**
 * The connection table's batch pre-pass alone (ConnTable.prepass, native/src/conntrack.cc): one
 * batch of 64 UDP frames, each of an established flow, counted over and over; and the same call
 * with no frames (what the call and its arguments cost); and 64 frames of connections a Service
 * translated, which the pre-pass rewrites to their backend (MARK_PREPASS_DNAT). Median of 7
 * rounds of 200,000 calls.
 * Run: node dist/bench/policy/prepass.bench.js
 */

import { META_STRIDE, Meta } from '../../src/buf/batch.js';
import { ConnTable, MARK_PREPASS_DNAT, PrepassFraming, packPorts } from '../../src/conntrack/table.js';
import { nativeUnavailableReason } from '../../src/io/native.js';
import { MARK_NAT, natSums } from '../../src/service/nat.js';

const N = 64, CALLS = 200_000, ROUNDS = 7;
const POD = 0x0af4_010a, PEER = 0x0af4_0200, VIP = 0x0a60_0000;

/**
 * frames: N UDP frames from POD to dst(i), port 40000 + i -> dport, in an arena as a port reads
 * them (2 KiB apart), with a UDP checksum to update.
 */
function frames(dst: (i: number) => number, dport: number): { arena: Buffer; meta: Int32Array } {
  const arena = Buffer.alloc(N * 2048), meta = new Int32Array(N * META_STRIDE);
  for (let i = 0; i < N; i++) {
    const s = i * 2048, ip = s + 14;
    meta[i * META_STRIDE + Meta.START] = s;
    meta[i * META_STRIDE + Meta.END] = s + 64;
    arena.writeUInt16BE(0x0800, s + 12);
    arena[ip] = 0x45;
    arena.writeUInt16BE(50, ip + 2);
    arena[ip + 8] = 64;
    arena[ip + 9] = 17;
    arena.writeUInt32BE(POD, ip + 12);
    arena.writeUInt32BE(dst(i), ip + 16);
    arena.writeUInt16BE(40000 + i, ip + 20);
    arena.writeUInt16BE(dport, ip + 22);
    arena.writeUInt16BE(30, ip + 24);
    arena.writeUInt16BE(0x1234, ip + 26);
  }
  return { arena, meta };
}

function main(): void {
  const why = nativeUnavailableReason();
  if (why !== null) throw new Error(why);
  const ct = new ConnTable({ capacity: 65_536 });
  const { arena, meta } = frames((i) => PEER + i, 5201), out = new Int32Array(N);
  for (let i = 0; i < N; i++) ct.create(17, POD, PEER + i, packPorts(40000 + i, 5201), PEER + i, POD, packPorts(5201, 40000 + i), 0, 50, 0);
  // Translated: flow i to VIP + i:80, answered by PEER + i:5201; so that every call finds a
  // connection to translate, the rewritten packet (to PEER + i:5201) belongs to a second one,
  // translated back to VIP + i:80, and the calls go back and forth between the two.
  const nat = new ConnTable({ capacity: 65_536 }), dn = frames((i) => VIP + i, 80);
  for (let i = 0; i < N; i++) {
    const sp = 40000 + i, vip = packPorts(sp, 80), be = packPorts(sp, 5201);
    for (const [d, p, nd, np] of [[VIP + i, vip, PEER + i, be], [PEER + i, be, VIP + i, vip]] as const) {
      const n = nat.create(17, POD, d, p, nd, POD, packPorts(np & 0xffff, sp), 0, 50, 0);
      nat.setMark(n, MARK_NAT | MARK_PREPASS_DNAT);
      nat.setNodeAux(n, natSums(POD, d, p, POD, nd, np));
    }
  }
  const time = (n: number, t = ct, b = { arena, meta }): number => {
    const ns: number[] = [];
    for (let r = 0; r < ROUNDS; r++) {
      const t0 = process.hrtime.bigint();
      for (let j = 0; j < CALLS; j++) {
        if (t.prepass(b.arena, b.meta, n, 1000, PrepassFraming.POD, 0, POD, 0, out) !== n) throw new Error('a packet was not taken');
      }
      ns.push(Number(process.hrtime.bigint() - t0) / CALLS);
    }
    return ns.sort((a, b) => a - b)[ROUNDS >> 1]!;
  };
  // One call takes the frames to the backends, the next one back.
  for (const want of [PEER, VIP]) {
    nat.prepass(dn.arena, dn.meta, N, 1000, PrepassFraming.POD, 0, POD, 0, out);
    if (dn.arena.readUInt32BE(14 + 16) !== want) throw new Error('the frames were not translated');
  }
  const full = time(N), empty = time(0), dnat = time(N, nat, dn);
  if (nat.stats.prepassed !== (ROUNDS * CALLS + 2) * N) throw new Error('a translated packet was not taken');
  process.stdout.write(`prepass: ${full.toFixed(0)} ns per call of ${N} packets (${(full / N).toFixed(1)} ns per packet); ${empty.toFixed(0)} ns per call of none; ${((full - empty) / N).toFixed(1)} ns per packet without the call\n`);
  process.stdout.write(`prepass, translated to a backend: ${dnat.toFixed(0)} ns per call of ${N} packets (${(dnat / N).toFixed(1)} ns per packet; ${((dnat - full) / N).toFixed(1)} ns more than counting alone)\n`);
}

main();
