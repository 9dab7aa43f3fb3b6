/**
 * `flatnet decode FILE`: one line per frame of a pcap/pcapng file (a tshark-like summary with
 * layers, addresses, VNI and, for VXLAN frames, the drop reason flatnet's strict receive path
 * would give), or one JSON object per frame with every decoded field (`--json`).
 */

import { PcapReader, PcapRecord, LinkType } from '../pcap/pcap.js';
import { DecapResult, Decapsulator } from '../wire/decap.js';
import { dissectFrame, summarize, type FrameRepr } from '../wire/dissect.js';
import { WireDrop, wireDropName } from '../wire/drop.js';
import { EtherType, IpProto } from '../wire/consts.js';
import { ethernetReprLen } from '../wire/ethernet.js';

export interface DecodeOptions {
  readonly json: boolean;
  readonly vxlanPorts: readonly number[];
  /** RFC 7348 receive: ignore reserved bits instead of dropping. */
  readonly lenient: boolean;
  readonly gbp: boolean;
  readonly limit: number;
}

export interface DecodedFrame {
  readonly no: number;
  readonly tsSec: number;
  readonly tsNsec: number;
  readonly capLen: number;
  readonly origLen: number;
  readonly frame: FrameRepr;
  /** For frames to a VXLAN port: the strict receive path's verdict ('none' = accepted). */
  readonly drop: string | null;
}

/** decodeFile yields every frame of the capture, dissected. */
export function* decodeFile(path: string, opts: DecodeOptions): Generator<DecodedFrame, { truncated: boolean; linkType: number }> {
  const reader = PcapReader.open(path);
  const rec = new PcapRecord();
  const decaps = opts.vxlanPorts.map((port) => new Decapsulator({ port, strict: !opts.lenient, gbp: opts.gbp }));
  const res = new DecapResult();
  let n = 0;
  while (n < opts.limit && reader.next(rec)) {
    n++;
    const frame: FrameRepr = rec.linkType === LinkType.ETHERNET
      ? dissectFrame(rec.data, rec.off, rec.off + rec.capLen, { vxlanPorts: opts.vxlanPorts })
      : { length: rec.capLen, layers: [{ layer: 'data', hex: rec.data.toString('hex', rec.off, rec.off + rec.capLen) }], malformed: { layer: 'link', code: 'ERR_WIRE_UNSUPPORTED', message: `link type ${rec.linkType}` } };
    let drop: string | null = null;
    const port = vxlanDstPort(frame, rec.data, rec.off, rec.off + rec.capLen);
    const idx = port < 0 ? -1 : opts.vxlanPorts.indexOf(port);
    if (idx >= 0) {
      const d = decaps[idx]!.decapFrame(rec.data, rec.off, rec.off + rec.capLen, res);
      drop = d === WireDrop.NONE ? 'none' : wireDropName(d);
    }
    yield { no: n, tsSec: rec.tsSec, tsNsec: rec.tsNsec, capLen: rec.capLen, origLen: rec.origLen, frame, drop };
  }
  return { truncated: reader.truncated, linkType: reader.linkType };
}

/**
 * The outer UDP destination port when the frame is Ethernet/IPv4/UDP, else -1. It is read from
 * the bytes when the dissector did not decode the UDP header (a bad UDP length, or a first
 * fragment): those frames still get the receive path's verdict.
 */
function vxlanDstPort(f: FrameRepr, data: Buffer, start: number, end: number): number {
  const [eth, ip, udp] = f.layers;
  if (eth?.layer !== 'eth' || eth.etherType !== EtherType.IPV4) return -1;
  if (ip?.layer !== 'ipv4' || ip.protocol !== IpProto.UDP) return -1;
  if (udp?.layer === 'udp') return udp.dstPort;
  const p = start + ethernetReprLen(eth) + ip.ihl * 4 + 2;
  return ip.fragOffset === 0 && p + 2 <= end ? data.readUInt16BE(p) : -1;
}

export function runDecode(path: string, opts: DecodeOptions, write: (s: string) => void): number {
  const it = decodeFile(path, opts);
  let t0 = -1;
  let frames = 0, dropped = 0;
  // The first next() opens the file: a missing or unreadable capture fails before any output.
  let r = it.next();
  if (!opts.json) write(`${'No.'.padStart(6)} ${'Time'.padStart(11)} ${'Len'.padStart(5)}  Summary\n`);
  for (;; r = it.next()) {
    if (r.done === true) {
      if (r.value.truncated) process.stderr.write(`flatnet decode: ${path}: the capture ends in the middle of a frame\n`);
      break;
    }
    const f = r.value;
    frames++;
    if (f.drop !== null && f.drop !== 'none') dropped++;
    const t = f.tsSec + f.tsNsec / 1e9;
    if (t0 < 0) t0 = t;
    if (opts.json) {
      write(JSON.stringify({ no: f.no, time: Number((t - t0).toFixed(9)), tsSec: f.tsSec, tsNsec: f.tsNsec, capLen: f.capLen, origLen: f.origLen, summary: summarize(f.frame), drop: f.drop, ...f.frame }) + '\n');
    } else {
      const verdict = f.drop !== null && f.drop !== 'none' ? ` [drop: ${f.drop}]` : '';
      write(`${String(f.no).padStart(6)} ${(t - t0).toFixed(6).padStart(11)} ${String(f.origLen).padStart(5)}  ${summarize(f.frame)}${verdict}\n`);
    }
  }
  if (!opts.json) write(`${frames} frames${dropped > 0 ? `, ${dropped} VXLAN frames the strict receive path drops` : ''}\n`);
  return 0;
}
