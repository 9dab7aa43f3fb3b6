import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { LinkType, PcapReader, PcapRecord, PcapWriter, splitTimestamp } from '../../src/pcap/pcap.js';
import {
  KERNEL_FIXTURES, PcapngBuilder, buildClassicPcap, hasTool, kernelFixture, readFrames, type Frame,
} from '../support/pcap.js';

const tmp = mkdtempSync(join(tmpdir(), 'flatnet-pcap-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));
let nTmp = 0;
const tmpFile = (ext = 'pcap'): string => join(tmp, `f${nTmp++}.${ext}`);

const HAVE_WIRESHARK_TOOLS = hasTool('tshark') && hasTool('capinfos') && hasTool('editcap');
if (!HAVE_WIRESHARK_TOOLS) console.warn('pcap.test.ts: tshark/capinfos/editcap not installed, skipping the checks against Wireshark\'s tools');
const run = (cmd: string, args: string[]): string => execFileSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });

/** readAll: every record of an in-memory capture, copied, or the PcapError code. */
function readAll(file: Buffer): { frames: (Frame & { linkType: number })[]; truncated: boolean; code?: string } {
  const frames: (Frame & { linkType: number })[] = [];
  let r: PcapReader | undefined;
  try {
    r = new PcapReader(file);
    const rec = new PcapRecord();
    while (r.next(rec)) {
      expect(rec.index).toBe(frames.length);
      expect(rec.capLen).toBeGreaterThanOrEqual(0);
      frames.push({ data: Buffer.from(rec.data.subarray(rec.off, rec.off + rec.capLen)), tsSec: rec.tsSec, tsNsec: rec.tsNsec, origLen: rec.origLen, linkType: rec.linkType });
    }
    return { frames, truncated: r.truncated };
  } catch (e) {
    return { frames, truncated: r?.truncated ?? false, code: (e as { code?: string }).code };
  }
}

const strip = (fs: readonly Frame[]): Frame[] => fs.map(({ data, tsSec, tsNsec, origLen }) => ({ data, tsSec, tsNsec, origLen }));

// Frames of a kernel fixture, with distinct sub-microsecond parts so nanosecond files show them.
const KFRAMES = readFrames(kernelFixture(KERNEL_FIXTURES[0].file));
const NS_FRAMES: Frame[] = KFRAMES.map((f, i) => ({ ...f, tsNsec: f.tsNsec + (i * 37) % 1000 }));

describe('PcapReader: the kernel fixtures', () => {
  it.each(KERNEL_FIXTURES.map((f) => [f.file]))('%s is classic microsecond pcap of 21 Ethernet frames', (file) => {
    const r = PcapReader.open(kernelFixture(file));
    expect([r.format, r.linkType]).toEqual(['pcap', LinkType.ETHERNET]);
    const frames = [...r];
    expect(frames).toHaveLength(21);
    expect(r.truncated).toBe(false);
    for (const f of frames) expect(f.capLen).toBe(f.origLen);
  });

  it.skipIf(!HAVE_WIRESHARK_TOOLS)('agrees with tshark on lengths and timestamps (needs tshark)', () => {
    for (const { file } of KERNEL_FIXTURES) {
      const lines = run('tshark', ['-r', kernelFixture(file), '-T', 'fields', '-e', 'frame.len', '-e', 'frame.cap_len', '-e', 'frame.time_epoch']).trim().split('\n');
      const ours = readFrames(kernelFixture(file)).map((f) => `${f.origLen}\t${f.data.length}\t${f.tsSec}.${String(f.tsNsec).padStart(9, '0')}`);
      expect(ours).toEqual(lines);
    }
  });
});

describe('PcapReader: classic pcap in every variant', () => {
  it.each([
    ['microsecond, little-endian', false, false, 'pcap'],
    ['microsecond, big-endian', true, false, 'pcap'],
    ['nanosecond, little-endian', false, true, 'pcap-ns'],
    ['nanosecond, big-endian', true, true, 'pcap-ns'],
  ] as const)('reads %s', (_name, bigEndian, nanosecond, format) => {
    const file = buildClassicPcap(NS_FRAMES, { bigEndian, nanosecond });
    const r = new PcapReader(file);
    expect([r.format, r.linkType]).toEqual([format, 1]);
    const got = readAll(file);
    const want = nanosecond ? NS_FRAMES : NS_FRAMES.map((f) => ({ ...f, tsNsec: Math.floor(f.tsNsec / 1000) * 1000 }));
    expect(strip(got.frames)).toEqual(want);
    expect(got.truncated).toBe(false);
  });

  it('hands out frames as windows into the file (no copy)', () => {
    const file = buildClassicPcap(KFRAMES);
    const r = new PcapReader(file);
    const rec = new PcapRecord();
    expect(r.next(rec)).toBe(true);
    expect(rec.data).toBe(file);
    expect(rec.off).toBe(24 + 16);
  });

  it('masks the FCS bits out of the link type', () => {
    const file = buildClassicPcap(KFRAMES, { linkType: 0x1000_0000 | LinkType.ETHERNET });
    expect(new PcapReader(file).linkType).toBe(LinkType.ETHERNET);
  });

  it('reports another link type as is', () => {
    const file = buildClassicPcap(KFRAMES, { linkType: LinkType.LINUX_SLL2 });
    expect(readAll(file).frames[0]!.linkType).toBe(276);
  });

  it('reads an empty capture (header only)', () => {
    expect(readAll(buildClassicPcap([]))).toEqual({ frames: [], truncated: false });
  });

  it('the iterator gives a fresh record per frame', () => {
    const recs = [...new PcapReader(buildClassicPcap(KFRAMES))];
    expect(new Set(recs).size).toBe(21);
    expect(recs.map((r) => r.index)).toEqual([...Array(21).keys()]);
  });

  it.skipIf(!HAVE_WIRESHARK_TOOLS)('reads what editcap writes as nanosecond pcap (needs editcap)', () => {
    const out = tmpFile();
    run('editcap', ['-F', 'nsecpcap', kernelFixture(KERNEL_FIXTURES[0].file), out]);
    const r = PcapReader.open(out);
    expect(r.format).toBe('pcap-ns');
    expect(strip(readAll(readFileSync(out)).frames)).toEqual(KFRAMES);
  });
});

describe('PcapReader: truncated captures', () => {
  const full = buildClassicPcap(KFRAMES);
  it.each([
    ['in the last frame\'s data', full.length - 1],
    ['in the last record header', full.length - KFRAMES[20]!.data.length - 3],
    ['right after the last record header', full.length - KFRAMES[20]!.data.length],
  ])('flags a capture cut %s and returns the whole frames before it', (_name, len) => {
    const got = readAll(full.subarray(0, len));
    expect(got.truncated).toBe(true);
    expect(strip(got.frames)).toEqual(KFRAMES.slice(0, 20));
  });

  it('does not flag a complete capture', () => {
    expect(readAll(full).truncated).toBe(false);
  });

  it('flags a pcapng capture cut in its last block', () => {
    const b = new PcapngBuilder().shb().idb();
    for (const f of KFRAMES.slice(0, 3)) b.epb(0, 1n, f.data);
    const file = b.build();
    const got = readAll(file.subarray(0, file.length - 5));
    expect(got.truncated).toBe(true);
    expect(got.frames.map((f) => f.data)).toEqual(KFRAMES.slice(0, 2).map((f) => f.data));
  });
});

describe('PcapReader: bad files', () => {
  it.each([
    ['text', Buffer.from('hello, this is not a capture file'), 'ERR_PCAP_BAD_MAGIC'],
    ['a pcap magic with the wrong last byte', Buffer.from('d4c3b2a0020004000000000000000000ffff000001000000', 'hex'), 'ERR_PCAP_BAD_MAGIC'],
    ['an empty file', Buffer.alloc(0), 'ERR_PCAP_TRUNCATED'],
    ['11 bytes', Buffer.from('d4c3b2a1020004000000', 'hex'), 'ERR_PCAP_TRUNCATED'],
    ['a classic header cut at 20 bytes', buildClassicPcap([]).subarray(0, 20), 'ERR_PCAP_TRUNCATED'],
  ])('rejects %s with %s', (_name, file, code) => {
    expect(readAll(file).code).toBe(code);
  });

  it('rejects a pcapng section without a byte-order magic (ERR_PCAP_BAD_MAGIC)', () => {
    const file = new PcapngBuilder().shb().build();
    file.writeUInt32LE(0x12345678, 8);
    expect(readAll(file).code).toBe('ERR_PCAP_BAD_MAGIC');
  });

  it('rejects a pcapng block whose length is not a multiple of 4 (ERR_PCAP_MALFORMED)', () => {
    const file = new PcapngBuilder().shb().idb().block(6, Buffer.alloc(24), 38).build();
    expect(readAll(file).code).toBe('ERR_PCAP_MALFORMED');
  });

  it('rejects a packet on an interface that was never described (ERR_PCAP_MALFORMED)', () => {
    const file = new PcapngBuilder().shb().idb().epb(1, 0n, KFRAMES[0]!.data).build();
    expect(readAll(file).code).toBe('ERR_PCAP_MALFORMED');
  });

  // Regression: a packet block too short for its own fixed fields made the reader run off the
  // end of the file with a RangeError (EPB, PB) or return a negative captured length (SPB).
  it.each([
    ['an EPB with no body', 6, Buffer.alloc(0)],
    ['an EPB with 8 of its 20 fixed bytes', 6, Buffer.alloc(8)],
    ['a PB with 4 of its 20 fixed bytes', 2, Buffer.alloc(4)],
    ['an SPB with no original-length field', 3, Buffer.alloc(0)],
    ['an IDB with no link type', 1, Buffer.alloc(0)],
  ])('rejects %s with ERR_PCAP_MALFORMED', (_name, type, body) => {
    const file = new PcapngBuilder().shb().idb().block(type, body).build();
    expect(readAll(file).code).toBe('ERR_PCAP_MALFORMED');
  });

  it('rejects an EPB whose captured length runs into the block trailer', () => {
    // Body: 20 fixed bytes + 4 data bytes, but caplen claims 8: the last 4 would be the trailer.
    const body = Buffer.alloc(24);
    body.writeUInt32LE(8, 12);
    body.writeUInt32LE(8, 16);
    const file = new PcapngBuilder().shb().idb().block(6, body).build();
    expect(readAll(file)).toEqual({ frames: [], truncated: false, code: 'ERR_PCAP_MALFORMED' });
  });
});

describe('PcapReader: pcapng', () => {
  it.skipIf(!HAVE_WIRESHARK_TOOLS)('reads what `editcap -F pcapng` writes, like the classic original (needs editcap)', () => {
    for (const { file } of KERNEL_FIXTURES) {
      const out = tmpFile('pcapng');
      run('editcap', ['-F', 'pcapng', kernelFixture(file), out]);
      const r = PcapReader.open(out);
      expect([r.format, r.linkType]).toEqual(['pcapng', 1]);
      expect(strip(readAll(readFileSync(out)).frames)).toEqual(readFrames(kernelFixture(file)));
    }
  });

  it.each([
    ['little-endian', false],
    ['big-endian', true],
  ])('reads a hand-built %s section: SHB, IDB (default µs), EPBs', (_name, be) => {
    const b = new PcapngBuilder(be).shb().idb(1);
    KFRAMES.forEach((f) => b.epb(0, BigInt(f.tsSec) * 1_000_000n + BigInt(f.tsNsec / 1000), f.data));
    const got = readAll(b.build());
    expect(strip(got.frames)).toEqual(KFRAMES);
    expect(new PcapReader(b.build()).format).toBe('pcapng');
  });

  it.each([
    ['nanoseconds (if_tsresol 9)', 9, 1_000_000_000n],
    ['milliseconds (if_tsresol 3)', 3, 1000n],
    ['2^-10 s (if_tsresol 0x8a)', 0x8a, 1024n],
    ['2^-20 s (if_tsresol 0x94)', 0x94, 1_048_576n],
  ])('honours if_tsresol: %s', (_name, tsresol, units) => {
    const sec = 1_795_524_604n;
    const frac = units - 1n; // the last unit of the second
    const file = new PcapngBuilder().shb().idb(1, tsresol).epb(0, sec * units + frac, KFRAMES[0]!.data).build();
    const [f] = readAll(file).frames;
    expect(f!.tsSec).toBe(Number(sec));
    expect(f!.tsNsec).toBe(Number((frac * 1_000_000_000n) / units));
  });

  it('keeps interfaces apart: link type and time resolution per IDB', () => {
    const raw = KFRAMES[2]!.data.subarray(14); // an IPv4 packet without Ethernet
    const file = new PcapngBuilder().shb().idb(LinkType.ETHERNET, 6).idb(LinkType.RAW, 9)
      .epb(1, 1_500_000_000n, raw)
      .epb(0, 1_500_000n, KFRAMES[0]!.data)
      .build();
    const r = new PcapReader(file);
    expect(r.linkType).toBe(LinkType.ETHERNET); // the first interface's
    const got = readAll(file).frames;
    expect(got.map((f) => [f.linkType, f.tsSec, f.tsNsec, f.data.length])).toEqual([
      [LinkType.RAW, 1, 500_000_000, raw.length],
      [LinkType.ETHERNET, 1, 500_000_000, KFRAMES[0]!.data.length],
    ]);
  });

  it('reads Simple Packet Blocks (interface 0, length capped by the block)', () => {
    const d = KFRAMES[0]!.data; // 92 bytes
    const odd = d.subarray(0, 61); // padded to 64 in the block
    const file = new PcapngBuilder().shb().idb(1).spb(d).spb(odd, 61).spb(odd, 1500).build();
    const got = readAll(file).frames;
    expect(got.map((f) => [f.data.length, f.origLen, f.tsSec, f.tsNsec])).toEqual([[92, 92, 0, 0], [61, 61, 0, 0], [64, 1500, 0, 0]]);
    expect(got[0]!.data).toEqual(d);
    expect(got[1]!.data).toEqual(odd);
  });

  it('reads the obsolete Packet Block', () => {
    const file = new PcapngBuilder().shb().idb(1).pb(0, 2_000_001n, KFRAMES[3]!.data).build();
    const got = readAll(file).frames;
    expect(got.map((f) => [f.tsSec, f.tsNsec])).toEqual([[2, 1000]]);
    expect(got[0]!.data).toEqual(KFRAMES[3]!.data);
  });

  it('skips blocks it does not know (NRB, ISB, custom)', () => {
    const file = new PcapngBuilder().shb().idb(1)
      .block(4, Buffer.alloc(8)) // Name Resolution Block
      .epb(0, 0n, KFRAMES[0]!.data)
      .block(5, Buffer.alloc(12)) // Interface Statistics Block
      .block(0x0bad, Buffer.from('custom!'))
      .epb(0, 0n, KFRAMES[1]!.data)
      .build();
    expect(readAll(file).frames.map((f) => f.data)).toEqual([KFRAMES[0]!.data, KFRAMES[1]!.data]);
  });

  it('starts over with interfaces at a new section (which may change byte order)', () => {
    const s1 = new PcapngBuilder(false).shb().idb(LinkType.RAW).epb(0, 0n, KFRAMES[0]!.data).build();
    const s2 = new PcapngBuilder(true).shb().idb(LinkType.ETHERNET).epb(0, 0n, KFRAMES[1]!.data).build();
    const got = readAll(Buffer.concat([s1, s2])).frames;
    expect(got.map((f) => f.linkType)).toEqual([LinkType.RAW, LinkType.ETHERNET]);
    const stale = new PcapngBuilder(true).shb().epb(0, 0n, KFRAMES[1]!.data).build(); // no IDB in section 2
    expect(readAll(Buffer.concat([s1, stale])).code).toBe('ERR_PCAP_MALFORMED');
  });
});

describe('splitTimestamp', () => {
  it.each([
    [0n, 1_000_000],
    [1n, 1_000_000],
    [1_795_524_604_471_258n, 1_000_000],
    [(1n << 64n) - 1n, 1_000_000],
    [1_795_524_604_471_258_123n, 1_000_000_000],
    [(1n << 63n) + 12345n, 1_000_000_000],
    [123_456_789n, 1000],
    [(1n << 40n) + 1023n, 1024],
  ])('splits %s units of 1/%i s like BigInt arithmetic', (ts, units) => {
    const out = { tsSec: -1, tsNsec: -1 };
    splitTimestamp(Number(ts >> 32n), Number(ts & 0xffff_ffffn), units, out);
    const u = BigInt(units);
    expect(out).toEqual({ tsSec: Number(ts / u), tsNsec: Number(((ts % u) * 1_000_000_000n) / u) });
  });
});

describe('PcapWriter', () => {
  function write(frames: readonly Frame[], opts: ConstructorParameters<typeof PcapWriter>[1] = {}): string {
    const path = tmpFile();
    const w = new PcapWriter(path, opts);
    for (const f of frames) w.write(f.data, 0, f.data.length, f.tsSec, f.tsNsec, f.origLen);
    expect(w.count).toBe(frames.length);
    w.close();
    return path;
  }

  it('writes a classic little-endian microsecond header, v2.4, Ethernet', () => {
    const h = readFileSync(write([]));
    expect(h.length).toBe(24);
    expect([h.readUInt32LE(0), h.readUInt16LE(4), h.readUInt16LE(6), h.readInt32LE(8), h.readUInt32LE(12), h.readUInt32LE(16), h.readUInt32LE(20)]).toEqual([
      0xa1b2c3d4, 2, 4, 0, 0, 262144, 1,
    ]);
  });

  it('re-reads identically (microsecond timestamps)', () => {
    const frames = readFrames(write(NS_FRAMES));
    expect(frames).toEqual(NS_FRAMES.map((f) => ({ ...f, tsNsec: Math.floor(f.tsNsec / 1000) * 1000 })));
  });

  it('re-reads identically with nanosecond timestamps', () => {
    const path = write(NS_FRAMES, { nanosecond: true });
    expect(PcapReader.open(path).format).toBe('pcap-ns');
    expect(readFrames(path)).toEqual(NS_FRAMES);
  });

  it('writes from an offset and cuts frames at the snap length, keeping the original length', () => {
    const path = tmpFile();
    const w = new PcapWriter(path, { snapLen: 64, linkType: LinkType.RAW });
    const big = Buffer.concat([Buffer.alloc(10, 0xee), KFRAMES[2]!.data]);
    w.write(big, 10, KFRAMES[2]!.data.length, 7, 8000);
    w.close();
    const r = PcapReader.open(path);
    expect(r.linkType).toBe(LinkType.RAW);
    const [f] = readFrames(path);
    expect(f).toEqual({ data: KFRAMES[2]!.data.subarray(0, 64), tsSec: 7, tsNsec: 8000, origLen: KFRAMES[2]!.data.length });
  });

  it('flushes across its buffer: many frames and one larger than the buffer', () => {
    const many: Frame[] = [];
    for (let i = 0; i < 5000; i++) many.push({ ...KFRAMES[i % 21]!, tsSec: i });
    const jumbo = Buffer.alloc(3 << 20, 0x5a);
    many.push({ data: jumbo, tsSec: 9999, tsNsec: 0, origLen: jumbo.length });
    const path = write(many, { snapLen: 4 << 20 });
    const back = readFrames(path);
    expect(back).toHaveLength(5001);
    expect(back[4999]).toEqual(many[4999]);
    expect(back[5000]!.data.equals(jumbo)).toBe(true);
  });

  it('refuses to write after close (ERR_PCAP_CLOSED); closing twice is fine', () => {
    const w = new PcapWriter(tmpFile());
    w.close();
    w.close();
    expect(() => w.write(KFRAMES[0]!.data, 0, 10)).toThrow(expect.objectContaining({ code: 'ERR_PCAP_CLOSED' }));
  });

  describe.skipIf(!HAVE_WIRESHARK_TOOLS)('output accepted by Wireshark\'s tools (needs capinfos and tshark)', () => {
    it.each([
      ['microsecond', false, 'pcap'],
      ['nanosecond', true, 'nsecpcap'],
    ])('%s pcap: capinfos reads the type, encapsulation and count; tshark reads every frame', (_name, nanosecond, type) => {
      const path = write(NS_FRAMES, { nanosecond });
      const table = run('capinfos', ['-T', '-M', '-t', '-E', '-c', path]).trim().split('\n');
      expect(table[1]!.split('\t').slice(1)).toEqual([type, 'ether', '21']);
      const lines = run('tshark', ['-r', path, '-T', 'fields', '-e', 'frame.len', '-e', 'frame.cap_len', '-e', 'frame.time_epoch']).trim().split('\n');
      expect(lines).toEqual(readFrames(path).map((f) => `${f.origLen}\t${f.data.length}\t${f.tsSec}.${String(f.tsNsec).padStart(9, '0')}`));
    });

    it('tshark decodes the VXLAN frames we wrote', () => {
      const path = write(KFRAMES);
      const vnis = run('tshark', ['-r', path, '-T', 'fields', '-e', 'vxlan.vni']).trim().split('\n');
      expect(vnis).toEqual(Array(21).fill('42'));
    });
  });

  it('writes the same records as the hand-built reference file', () => {
    const path = write(KFRAMES);
    expect(readFileSync(path).subarray(24)).toEqual(buildClassicPcap(KFRAMES).subarray(24));
  });
});
