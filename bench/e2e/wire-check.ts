/**
 * The underlay check of the bench's traffic (issue 15: "a tshark check of the underlay during
 * the bench's TCP and UDP runs finds no malformed frame"). After a lab-built system's measured
 * tests in round 1, the bench's own two kinds of traffic run once more, briefly, while dumpcap
 * captures every frame on the underlay bridge:
 *
 *   - the UDP generator (bench/e2e/gen.c, 64-byte payloads) at 20 kpps for 1 s;
 *   - one iperf3 TCP stream for 1 s at up to 300 Mbit/s (the same super-frames, tunnel TAP or
 *     software segments and GRO as at full speed, in a capture of tens of MB, not GB).
 *
 * tshark then dissects the capture and the lab's own check judges every frame
 * (src/lab/tshark-check.ts: nothing malformed, no expert error, VXLAN flags and VNI, inner
 * addresses, outer UDP checksums as each sender is configured). Not inside the measured
 * windows: capturing whole frames costs the CPU the measurement would lose. A failed check
 * keeps its capture (the path is in the report); a passed one is deleted.
 */

import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { inNsAsync } from '../../src/lab/exec.js';
import { dissect, evaluateCapture, expectationOf, startCapture, tsharkMissing } from '../../src/lab/tshark-check.js';
import type { LabState } from '../../src/lab/topology.js';
import { IPERF_PORT, udpBurst, withIperfServer } from './measure.js';
import type { Sut } from './systems.js';

/** What the check found (RoundResult.wire). */
export interface WireCheck {
  readonly ok: boolean;
  /** Why there was no check (tshark or dumpcap missing), else null. */
  readonly skipped: string | null;
  /** Frames entering the bridge, VXLAN among them, inner TCP, GSO super-frames carried whole. */
  readonly frames: number;
  readonly vxlan: number;
  readonly innerTcp: number;
  readonly superFrames: number;
  /** Whether TCP/UDP checksums were judged (not with checksum offload on the underlay veths). */
  readonly checksumsJudged: boolean;
  readonly problems: readonly string[];
  readonly problemCount: number;
  /** The capture, kept when the check failed. */
  readonly pcap: string | null;
}

const UDP_RATE = 20_000;
const SECONDS = 1;
const TCP_BITRATE = '300M';

/** wireCheck captures the underlay of `lab` while `sut` carries the bench's UDP and TCP traffic, and judges it. */
export async function wireCheck(sut: Sut, lab: LabState, gen: string, progress: (l: string) => void): Promise<WireCheck> {
  const missing = await tsharkMissing();
  if (missing !== null) return { ok: false, skipped: missing, frames: 0, vxlan: 0, innerTcp: 0, superFrames: 0, checksumsJudged: false, problems: [], problemCount: 0, pcap: null };
  const pcap = join(lab.dir, 'bench-underlay.pcapng');
  const capture = await startCapture(lab, pcap);
  let tcpError: string | null = null;
  try {
    await udpBurst(sut, gen, UDP_RATE, SECONDS);
    const r = await withIperfServer(sut, () => inNsAsync(sut.src.ns, 'iperf3', ['-c', sut.dst.ip, '-p', String(IPERF_PORT), '-t', String(SECONDS), '-b', TCP_BITRATE], { timeoutMs: 30_000 }));
    if (r.code !== 0) tcpError = `iperf3 exited ${String(r.code ?? r.signal)}: ${r.stderr.trim().slice(0, 200)}`;
  } finally {
    await capture.stop();
  }
  const x = expectationOf(lab);
  const rep = evaluateCapture(await dissect(pcap, lab.options.port), x);
  const problems = tcpError === null ? rep.problems : [tcpError, ...rep.problems];
  const ok = rep.ok && tcpError === null && rep.vxlan > 0 && rep.innerTcp > 0;
  if (ok) rmSync(pcap, { force: true });
  const res: WireCheck = {
    ok, skipped: null, frames: rep.frames, vxlan: rep.vxlan, innerTcp: rep.innerTcp, superFrames: rep.superFrames,
    checksumsJudged: !(x.checksumOffload ?? false), problems, problemCount: rep.problemCount + (tcpError === null ? 0 : 1), pcap: ok ? null : pcap,
  };
  progress(`    tshark, underlay: ${res.frames} frames (${res.vxlan} VXLAN, ${res.innerTcp} inner TCP, ${res.superFrames} super-frames), ${ok ? 'no malformed frame, no expert error' : `${res.problemCount} problem(s): ${problems.slice(0, 2).join('; ')}`}`);
  return res;
}
