#!/usr/bin/env node
/**
 * AF_XDP send path (issue 15): the overlay's transmit of 64-byte-payload VXLAN frames (outer
 * IPv4 + UDP + VXLAN + a 64-byte inner frame, 114 bytes on the wire with Ethernet), batches of
 * 64, through
 *
 *   packet   OverlayPort: the raw IPv4 socket (sendmmsg; the kernel routes, resolves the
 *            neighbour and builds an skb per frame) — today's backend, the baseline
 *   af_xdp   XdpOverlayPort: the outer Ethernet header from the next-hop cache, then the TX
 *            ring (one copy into the UMEM, one sendto kick per batch when the kernel asks)
 *
 * and the receive side: the peer namespace transmits VXLAN frames at us through an XdpPort of
 * its own (TX ring, so the generator costs little), and XdpOverlayPort.read takes them off the
 * RX ring and checks the outer headers (zero and computed outer UDP checksums).
 *
 * Then a pod's port: ua's program in mode ALL (XdpPort.open, as on a pod's veth) reads inner
 * TCP frames the peer sends, 64-byte and 1450-byte, with finished checksums and with the
 * partial ones a pod with TX checksum offload leaves (the field holds the pseudo-header sum):
 * what finishing them on read costs (native/src/xdp.cc FinishPartialChecksum).
 *
 * Then forwarding between two ports (ua in, uc out, both in mode ALL): the peer's frames read on
 * ua and written, as read, to uc, with the two sockets in one UMEM (the chunk the frame arrived
 * in goes on uc's TX ring: no copy) or each in a UMEM of its own (copied into one of uc's
 * chunks, as before the UMEM was shared). The two alternate, three runs each.
 *
 * ns/frame, Mpps and heap bytes allocated per frame (bench/harness.ts; the new paths must
 * allocate nothing). Root only; everything in two namespaces this script creates and removes:
 *
 *   <p>-a: ua 198.51.100.1/24 ---- veth ---- ub 198.51.100.2/24 :<p>-b
 *          uc                ---- veth ---- ud (no program: the kernel drops what arrives)
 *   neighbour 198.51.100.2 -> 02:00:00:00:00:99 on ua (permanent): not ub's MAC, so ub drops
 *   every frame on arrival (in the sender's context, for both backends alike).
 *
 * Usage: node --expose-gc dist/bench/io/xdp.bench.js (under flock /work/.bench.lock).
 */

import { execFileSync } from 'node:child_process';
import { Batch, FrameList } from '../../src/buf/batch.js';
import { getMac } from '../../src/io/link.js';
import { Umem, XdpPort } from '../../src/io/xdp-port.js';
import { withNetns } from '../../src/io/netns.js';
import { OverlayPort } from '../../src/io/overlay-port.js';
import { RawIpPort } from '../../src/io/raw-ip-port.js';
import { UdpPort } from '../../src/io/udp-port.js';
import { XdpOverlayPort } from '../../src/io/xdp-overlay-port.js';
import { buildTracePacket } from '../../src/trace/packet.js';
import { parseIpv4 } from '../../src/wire/addr.js';
import { EncapTemplate, OUTER_IP_OFF, VXLAN_HEADROOM } from '../../src/wire/encap.js';
import { consume, machine, measure, table } from '../harness.js';

const A = '198.51.100.1', B = '198.51.100.2';
const BATCH = 64, INNER = 64, SLOT = 256;

function sh(...args: string[]): void {
  execFileSync('ip', args, { stdio: ['ignore', 'ignore', 'inherit'] });
}

async function main(): Promise<void> {
  const p = `xdpb${process.pid % 10000}`;
  const a = `${p}-a`, b = `${p}-b`;
  const ports: { close(): void }[] = [];
  try {
    sh('netns', 'add', a);
    sh('netns', 'add', b);
    sh('link', 'add', 'ua', 'netns', a, 'type', 'veth', 'peer', 'name', 'ub', 'netns', b);
    sh('-n', a, 'addr', 'add', `${A}/24`, 'dev', 'ua');
    sh('-n', b, 'addr', 'add', `${B}/24`, 'dev', 'ub');
    sh('-n', a, 'link', 'set', 'ua', 'up');
    sh('-n', b, 'link', 'set', 'ub', 'up');
    sh('-n', a, 'neigh', 'replace', B, 'lladdr', '02:00:00:00:00:99', 'dev', 'ua', 'nud', 'permanent');

    // One arena of BATCH encapsulated frames (the switch's layout: outer headers in the headroom).
    const arena = Buffer.alloc(BATCH * SLOT);
    const tpl = new EncapTemplate({ srcIp: parseIpv4(A), dstIp: parseIpv4(B), vni: 1, srcMac: 0x020000000001, dstMac: 0x020000000099 });
    const list = new FrameList(BATCH);
    for (let i = 0; i < BATCH; i++) {
      const s = i * SLOT + VXLAN_HEADROOM, e = s + INNER;
      arena.writeUIntBE(0x0e000af40200, s, 6);
      arena.writeUIntBE(0x0e000af40100, s + 6, 6);
      arena.writeUInt16BE(0x88b5, s + 12);
      arena.writeUInt32BE(i, s + 14);
      const o = tpl.encap(arena, s, e);
      list.push(arena, o + OUTER_IP_OFF, e, parseIpv4(B), 4789);
    }

    const { kernel, xdp } = withNetns(a, () => {
      const mk = (): OverlayPort => new OverlayPort(UdpPort.open({ address: A, port: 4789 }), RawIpPort.open('raw'), 'vxlan:4789');
      const k = mk();
      // The AF_XDP port keeps its own kernel sockets (another UDP port: both are bound at once).
      const x = XdpOverlayPort.open('ua', parseIpv4(A), 4789, new OverlayPort(UdpPort.open({ address: A, port: 4790 }), RawIpPort.open('raw2'), 'vxlan:4790'));
      return { kernel: k, xdp: x };
    });
    ports.push(kernel, xdp);
    xdp.setPeers([parseIpv4(B)]);
    // Resolve the next hop (the lookup runs off the frame path), then check the ring is used.
    xdp.write(list);
    for (let i = 0; i < 100 && xdp.nextHops.size === 0; i++) await new Promise((r) => setTimeout(r, 10));
    if (xdp.nextHops.size === 0) throw new Error('the next hop did not resolve');

    const rows = [
      measure('overlay write, packet (raw socket sendmmsg)', BATCH, () => consume(kernel.write(list)), { allocPackets: 200_000 }),
      measure('overlay write, af_xdp (TX ring)', BATCH, () => consume(xdp.write(list)), { allocPackets: 200_000 }),
    ];

    // Receive: B's own AF_XDP port sends whole Ethernet frames B -> A:4789 (our peer) at ua.
    sh('-n', a, 'neigh', 'del', B, 'dev', 'ua');
    const macA = withNetns(a, () => getMac('ua'));
    const gen = withNetns(b, () => XdpPort.open('ub'));
    ports.push(gen);
    const macB = withNetns(b, () => getMac('ub'));
    const batch = new Batch(BATCH, 2048);
    for (const csum of [false, true]) {
      const t = new EncapTemplate({ srcIp: parseIpv4(B), dstIp: parseIpv4(A), vni: 1, srcMac: macB, dstMac: macA, udpChecksum: csum });
      const rx = new FrameList(BATCH);
      for (let i = 0; i < BATCH; i++) {
        const s = i * SLOT + VXLAN_HEADROOM, e = s + INNER;
        rx.push(arena, t.encap(arena, s, e), e);
      }
      rows.push(measure(`peer xsk write + overlay read, af_xdp (outer UDP checksum ${csum ? 'computed' : 'zero'})`, BATCH, () => {
        gen.write(rx);
        let got = 0;
        for (let k = 0; k < 100 && got < BATCH; k++) { const n = xdp.read(batch, 64); if (n > 0) got += n; }
        consume(got);
      }, { allocPackets: 200_000 }));
    }
    const xs = xdp.xsk.stats;
    const overlayLine = `AF_XDP socket: ${xs.txPackets} frames taken, ${xs.txDropped} dropped (ring or UMEM full), ${xdp.nextHops.stats.viaKernel} through the kernel while resolving; received ${xs.rxPackets}, ${xdp.xdpRxInvalid} failed the outer checks`;

    // A pod's port on ua (mode ALL: the overlay's program must go first, one program per interface).
    xdp.close();
    const pod = withNetns(a, () => XdpPort.open('ua'));
    ports.push(pod);
    const podArena = Buffer.alloc(BATCH * 2048);
    /** tcpBatch: BATCH TCP frames of `size` payload bytes from the peer, B -> A, in podArena. */
    const tcpBatch = (size: number, partial: boolean): FrameList => {
      const tx = new FrameList(BATCH);
      for (let i = 0; i < BATCH; i++) {
        // `flatnet trace`'s packet builder: `partial-csum` leaves the pseudo-header sum in the field.
        const spec = `tcp 10.244.1.10:${40000 + i} -> 10.244.2.10:80 flags A seq ${i} len ${size}${partial ? ' partial-csum' : ''}`;
        const f = buildTracePacket(spec, { role: 'pod', srcMac: macB, dstMac: macA, srcIp: null, overlay: null }).frame;
        const s = i * 2048 + 64;
        f.copy(podArena, s);
        tx.push(podArena, s, s + f.length);
      }
      return tx;
    };
    const podRows: typeof rows = [];
    for (const [size, partial] of [[64, false], [64, true], [1450, false], [1450, true]] as const) {
      const tx = tcpBatch(size, partial);
      podRows.push(measure(`peer xsk write + pod read, af_xdp, ${size} B TCP, checksum ${partial ? 'partial (finished on read)' : 'finished'}`, BATCH, () => {
        gen.write(tx);
        let got = 0;
        for (let k = 0; k < 100 && got < BATCH; k++) { const n = pod.read(batch, 64); if (n > 0) got += n; }
        consume(got);
      }, { allocPackets: 200_000 }));
    }
    const ps = pod.xdpStats()!;
    pod.close();

    // Forwarding ua -> uc: one UMEM for both sockets, or one each.
    sh('link', 'add', 'uc', 'netns', a, 'type', 'veth', 'peer', 'name', 'ud', 'netns', b);
    sh('-n', a, 'link', 'set', 'uc', 'up');
    sh('-n', b, 'link', 'set', 'ud', 'up');
    const fwdRows: typeof rows = [];
    const fwdLines: string[] = [];
    const ratios: string[] = [];
    for (const size of [64, 1450]) {
      const tx = tcpBatch(size, false);
      const ns: Record<string, number[]> = { copied: [], shared: [] };
      for (let run = 0; run < 3; run++) {
        for (const shared of [false, true]) {
          const one = shared ? Umem.create(4096) : null;
          const fin = withNetns(a, () => XdpPort.open('ua', false, 2048, one ?? Umem.create(2048)));
          const fout = withNetns(a, () => XdpPort.open('uc', false, 2048, one ?? Umem.create(2048)));
          try {
            const r = measure(`peer xsk write + ua read + uc write, ${size} B TCP, ${shared ? 'one UMEM (not copied)' : 'a UMEM each (copied)'}, run ${run + 1}`, BATCH, () => {
              gen.write(tx);
              let got = 0;
              for (let k = 0; k < 100 && got < BATCH; k++) {
                const n = fin.read(batch, 64);
                if (n > 0) { got += n; fout.write(batch); }
              }
              consume(got);
            }, { allocPackets: 200_000 });
            fwdRows.push(r);
            ns[shared ? 'shared' : 'copied']!.push(r.nsPerPacket);
            const st = fout.xdpStats()!;
            if (run === 0) fwdLines.push(`${size} B, ${shared ? 'one UMEM' : 'a UMEM each'}: uc sent ${st.zeroCopyTx} frames as read, copied ${st.copiedTx}; ua received ${fin.stats.rxPackets}, dropped ${fin.xdpStats()!.rxDropped}`);
          } finally {
            fin.close();
            fout.close();
          }
        }
      }
      const med = (xs: number[]): number => [...xs].sort((x, y) => x - y)[xs.length >> 1]!;
      ratios.push(`${size} B: median ${med(ns.copied!).toFixed(0)} ns/frame copied, ${med(ns.shared!).toFixed(0)} ns/frame not copied: ${(med(ns.copied!) / med(ns.shared!)).toFixed(3)}x`);
    }
    process.stdout.write(`# AF_XDP send and receive paths, ${machine()}\n\n${table(rows, (r) => (r === rows[1] ? rows[0] : undefined))}\n`);
    process.stdout.write(`\n${overlayLine}\n`);
    process.stdout.write(`\n## A pod's port (mode ALL): finishing partial checksums on read\n\n${table(podRows, (r) => (r === podRows[1] ? podRows[0] : r === podRows[3] ? podRows[2] : undefined))}\n`);
    process.stdout.write(`\nPod socket: received ${pod.stats.rxPackets}, ${ps.partialChecksums} checksums finished, ${ps.rxDropped} dropped (fill ring empty ${ps.fillRingEmpty})\n`);
    process.stdout.write(`\n## Forwarding between two ports: one UMEM (no copy) vs a UMEM each (a copy per frame)\n\n${table(fwdRows)}\n\n${fwdLines.join('\n')}\n\n${ratios.join('\n')}\n`);
  } finally {
    for (const port of ports) port.close();
    for (const ns of [a, b]) {
      try { sh('netns', 'del', ns); } catch { /* not created */ }
    }
  }
}

await main();
