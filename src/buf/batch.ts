/**
 * Batches: the memory that crosses the native boundary. One arena Buffer holds fixed-size slots;
 * one Int32Array holds per-frame metadata, META_STRIDE ints per frame. The addon fills or drains
 * up to `capacity` frames per call and returns a count or -errno; no JS object is created per
 * frame (wireguard-go's `Read(bufs, sizes, offset)`, with offsets instead of slices).
 *
 * All offsets in the metadata are absolute offsets into the arena. A frame is [START, END).
 *
 *   slot i: arena[i * slotSize, (i + 1) * slotSize)
 *           [ headroom (>= 50: outer headers, virtio-net header) | frame ............ | tail ]
 *
 * Ports that carry a virtio-net header (vnetHdrLen > 0) keep it just before START, in the
 * headroom: [START - vnetHdrLen, START). Readers put it there; writers expect it there.
 *
 * An AF_XDP port does not copy: its read lends the batch the UMEM as its arena (frames where
 * the kernel wrote them, src/io/xdp-port.ts). Readers that copy into slots take the batch's
 * own memory back first (Batch.own()).
 */

/** Int32 slots per frame in `meta`. */
export const META_STRIDE = 8;

/** Field offsets within one frame's metadata. */
export const Meta = {
  /** Absolute arena offset of the first byte of the frame (or UDP payload, on the overlay socket). */
  START: 0,
  /** Absolute arena offset one past the last byte. */
  END: 1,
  /** UDP: peer IPv4 address (source on receive, destination on send) as int32; read with `>>> 0`. */
  ADDR: 2,
  /** UDP: peer port (source on receive, destination on send). */
  PORT: 3,
  /** UDP: GSO/GRO segment size (0 = one datagram). */
  GSO_SIZE: 4,
  /** Per-frame flags from the port (MetaFlag). */
  FLAGS: 5,
  /** Free for the switch: e.g. the output port chosen for this frame. */
  AUX: 6,
  /** UDP receive: the outer IPv4 TOS byte (IP_RECVTOS; its ECN bits matter to decapsulation). */
  TOS: 7,
} as const;

export const MetaFlag = {
  /** The frame was longer than the slot and was cut (MSG_TRUNC); it must be dropped. */
  TRUNCATED: 1,
  /** Set by a port's write on every frame it did not send (an error or a full queue). */
  TX_FAILED: 2,
  /**
   * A UDP-GSO train in pieces (FrameList.pushTrain): [START, END) holds the datagrams' headers
   * back to back, each (FLAGS >> SCATTER_HDR_SHIFT) & 0xff bytes; their payloads lie contiguous
   * from AUX, TOS bytes in all, GSO_SIZE minus the header length each (the last may be shorter).
   */
  SCATTER: 4,
} as const;

/** Where a SCATTER entry keeps its header length in FLAGS. */
export const SCATTER_HDR_SHIFT = 8;

/** entryBytes: the bytes a write-list entry puts on the wire (a SCATTER train's payload included). */
export function entryBytes(m: Int32Array, o: number): number {
  const len = m[o + Meta.END]! - m[o + Meta.START]!;
  return (m[o + Meta.FLAGS]! & MetaFlag.SCATTER) !== 0 ? len + m[o + Meta.TOS]! : len;
}

/** A list of frames in one arena: what write() takes. The arena may be borrowed. */
export class FrameList {
  arena: Buffer;
  readonly meta: Int32Array;
  readonly capacity: number;
  count = 0;

  constructor(capacity: number, arena: Buffer = EMPTY_ARENA) {
    this.capacity = capacity;
    this.meta = new Int32Array(capacity * META_STRIDE);
    this.arena = arena;
  }

  start(i: number): number { return this.meta[i * META_STRIDE + Meta.START]!; }
  end(i: number): number { return this.meta[i * META_STRIDE + Meta.END]!; }
  len(i: number): number { return this.end(i) - this.start(i); }

  /**
   * push appends the frame [start, end) of `arena`. Returns false when the list is full or the
   * arena differs from the frames already listed (flush first).
   */
  push(arena: Buffer, start: number, end: number, addr = 0, port = 0, gsoSize = 0): boolean {
    if (this.count === this.capacity) return false;
    if (this.count === 0) this.arena = arena;
    else if (this.arena !== arena) return false;
    const m = this.meta, o = this.count * META_STRIDE;
    m[o + Meta.START] = start;
    m[o + Meta.END] = end;
    m[o + Meta.ADDR] = addr | 0;
    m[o + Meta.PORT] = port;
    m[o + Meta.GSO_SIZE] = gsoSize;
    m[o + Meta.FLAGS] = 0;
    this.count++;
    return true;
  }

  /**
   * pushTrain appends a UDP-GSO train in pieces (MetaFlag.SCATTER): `n` headers of `hdrLen`
   * bytes from `hdrStart`, the payloads (`payLen` bytes in all, `stride - hdrLen` each) from
   * `payStart`, both in `arena`; datagrams of `stride` bytes to addr:port. Returns false as push.
   */
  pushTrain(arena: Buffer, hdrStart: number, hdrLen: number, n: number, addr: number, port: number, stride: number, payStart: number, payLen: number): boolean {
    if (!this.push(arena, hdrStart, hdrStart + n * hdrLen, addr, port, stride)) return false;
    const m = this.meta, o = (this.count - 1) * META_STRIDE;
    m[o + Meta.FLAGS] = MetaFlag.SCATTER | (hdrLen << SCATTER_HDR_SHIFT);
    m[o + Meta.AUX] = payStart;
    m[o + Meta.TOS] = payLen;
    return true;
  }

  clear(): void { this.count = 0; }
}

const EMPTY_ARENA = Buffer.alloc(0);

/**
 * A FrameList that owns its arena: `capacity` slots of `slotSize` bytes, then `spare` bytes the
 * owner may use for frames derived from the batch (segments of a super-frame, coalesced
 * super-frames): in the same arena, so they can be queued with the batch's own frames and copied
 * without allocating (copyWithin). Zero-filled once.
 */
export class Batch extends FrameList {
  /** The batch's own memory: its slots, then the spare region. */
  readonly slots: Buffer;
  readonly slotSize: number;
  /** Offset of the spare region (after the last slot) and its length. */
  readonly spareOff: number;
  readonly spareLen: number;

  constructor(capacity: number, slotSize: number, spare = 0) {
    if (!Number.isInteger(capacity) || capacity < 1) throw new RangeError(`batch capacity ${capacity}`);
    if (!Number.isInteger(slotSize) || slotSize < 64 || slotSize % 8 !== 0) throw new RangeError(`slot size ${slotSize} (a multiple of 8, >= 64)`);
    if (!Number.isInteger(spare) || spare < 0) throw new RangeError(`spare ${spare}`);
    // Zero-filled, not allocUnsafe: a slot never exposes another process's old memory.
    const slots = Buffer.alloc(capacity * slotSize + spare);
    super(capacity, slots);
    this.slots = slots;
    this.slotSize = slotSize;
    this.spareOff = capacity * slotSize;
    this.spareLen = spare;
  }

  /** Absolute arena offset of slot i. */
  slotOff(i: number): number { return i * this.slotSize; }

  /** own makes the batch's own memory its arena again (after a port lent it another) and returns it. */
  own(): Buffer { return (this.arena = this.slots); }

  /** Whether the spare region is in the arena (not while a port has lent the batch its memory). */
  get spareInArena(): boolean { return this.spareLen > 0 && this.arena === this.slots; }
}

/** markTxFailed flags frames [from, to) of `list` as not sent (what the native writes do). */
export function markTxFailed(list: FrameList, from: number, to: number): void {
  const m = list.meta;
  for (let i = from; i < to; i++) m[i * META_STRIDE + Meta.FLAGS]! |= MetaFlag.TX_FAILED;
}

/**
 * copyTxFailed copies the TX_FAILED flags of `run`'s frames back to the frames of `list` they
 * were copied from: run frame k is list frame idx[k] (or from + k without `idx`).
 */
export function copyTxFailed(run: FrameList, list: FrameList, from: number, idx: Int32Array | null = null): void {
  const rm = run.meta, lm = list.meta;
  for (let k = 0; k < run.count; k++) {
    if ((rm[k * META_STRIDE + Meta.FLAGS]! & MetaFlag.TX_FAILED) === 0) continue;
    lm[(idx === null ? from + k : idx[k]!) * META_STRIDE + Meta.FLAGS]! |= MetaFlag.TX_FAILED;
  }
}
