/** The codec: Buffer in, numbers out. No I/O, no timers, nothing from the rest of the project. */
export * from './addr.js';
export * from './arp.js';
export * from './bytes.js';
export * from './checksum.js';
export * from './consts.js';
export * from './decap.js';
export * from './dissect.js';
export * from './drop.js';
export * from './encap.js';
export * from './ethernet.js';
export * from './icmpv4.js';
export * from './ipv4.js';
export * from './ipv6.js';
export * from './tcp.js';
export * from './udp.js';
export * from './virtio-net-hdr.js';
export * from './vxlan.js';
