/**
 * TCP connection states and their transitions, after netfilter's `nf_conntrack_proto_tcp`
 * (without its window tracking): enough to time a connection out at the right moment and to
 * see it close. The states and default timeouts are the kernel's, so `flatnet show conntrack`
 * reads like `conntrack -L`.
 */

export const TcpState = {
  NONE: 0,
  SYN_SENT: 1,
  SYN_RECV: 2,
  ESTABLISHED: 3,
  FIN_WAIT: 4,
  CLOSE_WAIT: 5,
  LAST_ACK: 6,
  TIME_WAIT: 7,
  CLOSE: 8,
} as const;
export type TcpState = (typeof TcpState)[keyof typeof TcpState];

export const TCP_STATE_NAMES: readonly string[] = ['NONE', 'SYN_SENT', 'SYN_RECV', 'ESTABLISHED', 'FIN_WAIT', 'CLOSE_WAIT', 'LAST_ACK', 'TIME_WAIT', 'CLOSE'];

/** TCP header flag bits (byte 13 of the header). */
export const TcpFlag = { FIN: 0x01, SYN: 0x02, RST: 0x04, PSH: 0x08, ACK: 0x10 } as const;

/** Direction of a packet within its connection: as first seen, or the reply. */
export const Dir = { ORIGINAL: 0, REPLY: 1 } as const;
export type Dir = (typeof Dir)[keyof typeof Dir];

/**
 * Per-connection closing bookkeeping kept beside the state (one byte): which direction sent
 * the first FIN, and whether the other side acknowledged it.
 */
export const CloseBits = { FIN_ORIGINAL: 1, FIN_REPLY: 2 } as const;

/** What one packet does to a connection: its new state and close bits. */
export interface TcpStep {
  state: TcpState;
  close: number;
}

/**
 * tcpNext computes the state after a packet with `flags` travelling in `dir`, from `state`
 * (NONE for a connection's first packet). It writes `out` and returns whether the packet fits
 * the connection (false: an out-of-state packet, such as a SYN/ACK in the original direction;
 * the state is then unchanged, as the kernel marks such packets INVALID and leaves the entry).
 *
 * A first packet without SYN (a flow picked up mid-stream, after a restart or a policy change)
 * is accepted as ESTABLISHED, as the kernel does with `nf_conntrack_tcp_loose` (its default).
 */
export function tcpNext(state: TcpState, close: number, dir: Dir, flags: number, out: TcpStep): boolean {
  out.state = state;
  out.close = close;
  const syn = (flags & TcpFlag.SYN) !== 0, ack = (flags & TcpFlag.ACK) !== 0;
  if ((flags & TcpFlag.RST) !== 0) {
    if (state === TcpState.NONE) return false;
    out.state = TcpState.CLOSE;
    return true;
  }
  switch (state) {
    case TcpState.NONE:
      if (syn && ack) return false;
      out.state = syn ? TcpState.SYN_SENT : TcpState.ESTABLISHED;
      if ((flags & TcpFlag.FIN) !== 0 && !syn) { out.state = TcpState.FIN_WAIT; out.close = CloseBits.FIN_ORIGINAL; }
      return true;
    case TcpState.SYN_SENT:
      if (dir === Dir.ORIGINAL) return syn && !ack; // a retransmitted SYN
      if (syn && ack) { out.state = TcpState.SYN_RECV; return true; }
      if (syn) { out.state = TcpState.SYN_RECV; return true; } // simultaneous open
      return false;
    case TcpState.SYN_RECV:
      if (dir === Dir.ORIGINAL && ack && !syn) { out.state = TcpState.ESTABLISHED; return closeStep(out, dir, flags); }
      if (dir === Dir.REPLY && syn && ack) return true; // a retransmitted SYN/ACK
      if (dir === Dir.ORIGINAL && syn && !ack) return true; // a retransmitted SYN
      return false;
    case TcpState.TIME_WAIT:
    case TcpState.CLOSE:
      // A new SYN in the original direction reopens the tuple (port reuse).
      if (dir === Dir.ORIGINAL && syn && !ack) { out.state = TcpState.SYN_SENT; out.close = 0; return true; }
      if (syn) return false;
      return true;
    default:
      if (syn && state === TcpState.ESTABLISHED) return dir === Dir.REPLY && ack; // a late SYN/ACK retransmit
      if (syn) return false;
      return closeStep(out, dir, flags);
  }
}

/** closeStep moves an established (or closing) connection on FIN and the ACKs after it. */
function closeStep(out: TcpStep, dir: Dir, flags: number): boolean {
  const mine = dir === Dir.ORIGINAL ? CloseBits.FIN_ORIGINAL : CloseBits.FIN_REPLY;
  const both = CloseBits.FIN_ORIGINAL | CloseBits.FIN_REPLY;
  if ((flags & TcpFlag.FIN) !== 0) out.close |= mine;
  const c = out.close;
  if (c === 0) { out.state = TcpState.ESTABLISHED; return true; }
  if (c === both) {
    // Both sides have sent FIN: the last one waits for its ACK, then TIME_WAIT.
    if (out.state === TcpState.LAST_ACK || out.state === TcpState.TIME_WAIT) {
      if ((flags & TcpFlag.FIN) === 0 && (flags & TcpFlag.ACK) !== 0) out.state = TcpState.TIME_WAIT;
    } else {
      out.state = TcpState.LAST_ACK;
    }
    return true;
  }
  // One side has sent FIN: FIN_WAIT until the other side acknowledges it (then CLOSE_WAIT).
  if (out.state === TcpState.ESTABLISHED || out.state === TcpState.SYN_RECV) out.state = TcpState.FIN_WAIT;
  else if (out.state === TcpState.FIN_WAIT && (c & mine) === 0 && (flags & TcpFlag.ACK) !== 0) out.state = TcpState.CLOSE_WAIT;
  return true;
}
