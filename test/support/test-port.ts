/**
 * testPort: the port tests attach to a switch, the switch's end of a MemoryPort pair (the
 * project's one in-memory port double). A test drives it as the other end of a veth would:
 * `port.inject(frame)` delivers a frame to the switch, `port.take()` returns what the switch
 * wrote. Queues are deep and frames may be large (super-frames), unless `opts` says otherwise
 * (a short queue makes writes fail as a full NIC ring does: tx_busy).
 */

import { MemoryPort, type MemoryPortOptions, type WireFrame } from '../../src/io/memory-port.js';

export type { WireFrame };

export function testPort(name: string, vnetHdrLen = 0, opts: MemoryPortOptions = {}): MemoryPort {
  return MemoryPort.pair(name, `${name}-peer`, { queueLimit: 4096, maxFrameLen: 70_000, vnetHdrLen, ...opts })[0];
}
