/**
 * The connection table's batch pre-pass alone (ConnTable.prepass, native/src/conntrack.cc): one
 * batch of 64 UDP frames, each of an established flow, counted over and over; and the same call
 * with no frames (what the call and its arguments cost). Median of 7 rounds of 200,000 calls.
 * Run: node dist/bench/policy/prepass.bench.js
 */

import { META_STRIDE, Meta } from '../../src/buf/batch.js';
import { ConnTable, PrepassFraming, packPorts } from '../../src/conntrack/table.js';
import { nativeUnavailableReason } from '../../src/io/native.js';

const N = 64, CALLS = 200_000, ROUNDS = 7;
const POD = 0x0af4_010a, PEER = 0x0af4_0200;

function main(): void {
  const why = nativeUnavailableReason();
  if (why !== null) throw new Error(why);
  const ct = new ConnTable({ capacity: 65_536 });
  const arena = Buffer.alloc(N * 2048), meta = new Int32Array(N * META_STRIDE), out = new Int32Array(N);
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
    arena.writeUInt32BE(PEER + i, ip + 16);
    arena.writeUInt16BE(40000 + i, ip + 20);
    arena.writeUInt16BE(5201, ip + 22);
    ct.create(17, POD, PEER + i, packPorts(40000 + i, 5201), PEER + i, POD, packPorts(5201, 40000 + i), 0, 50, 0);
  }
  const time = (n: number): number => {
    const ns: number[] = [];
    for (let r = 0; r < ROUNDS; r++) {
      const t = process.hrtime.bigint();
      for (let j = 0; j < CALLS; j++) {
        if (ct.prepass(arena, meta, n, 1000, PrepassFraming.POD, 0, POD, 0, out) !== n) throw new Error('a packet was not taken');
      }
      ns.push(Number(process.hrtime.bigint() - t) / CALLS);
    }
    return ns.sort((a, b) => a - b)[ROUNDS >> 1]!;
  };
  const full = time(N), empty = time(0);
  process.stdout.write(`prepass: ${full.toFixed(0)} ns per call of ${N} packets (${(full / N).toFixed(1)} ns per packet); ${empty.toFixed(0)} ns per call of none; ${((full - empty) / N).toFixed(1)} ns per packet without the call\n`);
}

main();
