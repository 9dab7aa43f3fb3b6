/**
 * Slow, obvious reference implementations for differential tests (wireguard-go's `checksumRef`,
 * `SlowRouter`). They share no code with src/: byte loops, Node's own Buffer readers, and the
 * RFC text, so that a bug in the codec cannot hide behind the same bug here.
 */

/** onesSumRef: RFC 1071 ones'-complement sum of the bytes, folded to 16 bits, not complemented. */
export function onesSumRef(...parts: Uint8Array[]): number {
  const all = Buffer.concat(parts);
  let s = 0;
  for (let i = 0; i < all.length; i += 2) {
    const hi = all[i] ?? 0;
    const lo = all[i + 1] ?? 0; // RFC 1071: an odd last byte is padded with a zero byte
    s += hi * 256 + lo;
    while (s > 0xffff) s = (s & 0xffff) + Math.floor(s / 0x10000);
  }
  return s;
}

/** refillIpv4ChecksumRef sets the header checksum of the IPv4 header at `ip` in `b` (after a test edited the header); returns `b`. */
export function refillIpv4ChecksumRef(b: Buffer, ip: number): Buffer {
  b.writeUInt16BE(0, ip + 10);
  b.writeUInt16BE(checksumRef(b.subarray(ip, ip + (b[ip]! & 0x0f) * 4)), ip + 10);
  return b;
}

/** checksumRef: the Internet checksum field value for the concatenated parts (~sum & 0xffff). */
export function checksumRef(...parts: Uint8Array[]): number {
  return 0xffff - onesSumRef(...parts);
}

/** True when data carrying its own checksum field verifies: its ones'-complement sum is all ones. */
export function verifiesRef(...parts: Uint8Array[]): boolean {
  return onesSumRef(...parts) === 0xffff;
}

/** The 12-byte IPv4 pseudo-header of RFC 768 / RFC 9293, built from dotted-quad strings or uint32s. */
export function pseudoHeaderRef(src: string | number, dst: string | number, proto: number, len: number): Buffer {
  const b = Buffer.alloc(12);
  b.writeUInt32BE(typeof src === 'number' ? src >>> 0 : ipRef(src), 0);
  b.writeUInt32BE(typeof dst === 'number' ? dst >>> 0 : ipRef(dst), 4);
  b[9] = proto;
  b.writeUInt16BE(len, 10);
  return b;
}

/** ipRef: dotted quad to uint32, the obvious way. */
export function ipRef(text: string): number {
  return text.split('.').reduce((acc, p) => acc * 256 + Number(p), 0);
}

/** macRef: "aa:bb:cc:dd:ee:ff" to a 48-bit number, the obvious way. */
export function macRef(text: string): number {
  return parseInt(text.replace(/:/g, ''), 16);
}

/** A small seeded PRNG (mulberry32) so that differential loops are reproducible. */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** randomBytes fills n bytes from a seeded PRNG. */
export function randomBytesRef(rand: () => number, n: number): Buffer {
  const b = Buffer.alloc(n);
  for (let i = 0; i < n; i++) b[i] = Math.floor(rand() * 256);
  return b;
}

/** SlowRouter: longest-prefix match by scanning every route (wireguard-go's allowedips test idea). */
export function slowLookup<R extends { readonly cidr: { contains(ip: number): boolean; readonly len: number } }>(routes: readonly R[], ip: number): R | null {
  let best: R | null = null;
  for (const r of routes) {
    if (r.cidr.contains(ip) && (best === null || r.cidr.len > best.cidr.len)) best = r;
  }
  return best;
}
