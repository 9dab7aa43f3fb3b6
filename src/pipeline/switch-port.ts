/**
 * A port as the switch holds it: the Port (whatever backs it), its role, what it binds (a pod's
 * IP and MAC), its receive batch and its egress queue. Created by Switch.attach*(); the stages
 * read it, the transmit stage writes its queue.
 */

import { Batch, FrameList } from '../buf/batch.js';
import { VXLAN_HEADROOM } from '../wire/encap.js';
import { EthAddrWords } from '../wire/ethernet.js';
import type { Port } from './port.js';

export const PortRole = { POD: 'pod', HOST: 'host', OVERLAY: 'overlay' } as const;
export type PortRole = (typeof PortRole)[keyof typeof PortRole];

/**
 * What an overlay port carries: whole frames (memory, pcap), IPv4 packets (raw socket), UDP
 * payloads (UDP socket). Receive and transmit may differ (the daemon receives UDP payloads on a
 * UDP socket and sends IPv4 packets through a raw socket).
 */
export const Framing = { ETHERNET: 'ethernet', IP: 'ip', UDP: 'udp' } as const;
export type Framing = (typeof Framing)[keyof typeof Framing];

/** How an overlay port is attached: what it reads and writes, and which offloads it has. */
export interface OverlayAttach {
  readonly rx: Framing;
  readonly tx: Framing;
  /** The port sends UDP-GSO trains (GSO_SIZE in the metadata, START at the first VXLAN header). */
  readonly gso?: boolean;
  /** The port's reads may hold several datagrams of GSO_SIZE bytes each (UDP_GRO): 64 KiB slots. */
  readonly gro?: boolean;
  /** A tunnel TAP and its MAC for TCP super-frames (Switch.attachTunnelOffload). */
  readonly tunnel?: { readonly port: Port; readonly mac: number };
}

/** Receive batch geometry of one port. */
export interface PortLayout { readonly capacity: number; readonly slotSize: number; readonly spare: number }

/**
 * Read headroom of ports with virtio-net headers (pods, the host TAP): the VXLAN headers (50
 * bytes) and the tunnel TAP's 24-byte virtio-net header fit in front of a super-frame, which then
 * goes to the kernel whole without a copy. Other ports read at VXLAN_HEADROOM.
 */
export const OFFLOAD_HEADROOM = 80;

/** Decapsulated frames queued per port for coalescing before a merge is forced. */
export const GRO_LIST_LEN = 1024;

/** A port attached to the switch, with its receive batch and egress queue. */
export class SwitchPort {
  readonly id: number;
  readonly role: PortRole;
  readonly port: Port;
  readonly name: string;
  /** Overlay: what read() yields. */
  readonly rxFraming: Framing;
  /** Overlay: what write() takes for ordinary (non-GSO) frames. */
  readonly txFraming: Framing;
  /** POD: the bound IP. */
  readonly ip: number;
  /** POD: the bound MAC. HOST: the host stack's MAC (taken from its frames when not given). */
  mac: number;
  readonly batch: Batch;
  readonly tx: FrameList;
  /** Overlay: UDP-GSO trains may be written. */
  readonly gso: boolean;
  /** Pod and host ports with virtio-net headers: decapsulated frames waiting to be coalesced. */
  readonly gro: FrameList | null;
  /** The port's virtio-net header length (0: frames only). */
  readonly vnetHdrLen: number;
  /** Where frames start in each receive slot (OFFLOAD_HEADROOM with virtio-net headers, else VXLAN_HEADROOM). */
  readonly headroom: number;
  /**
   * The role as booleans: what the data path tests (a field load, where comparing `role` with a
   * PortRole constant loads the module binding, checks it and compares strings).
   */
  readonly isPod: boolean;
  readonly isHost: boolean;
  readonly isOverlay: boolean;
  attached = true;
  /** HOST: the addresses of frames routed to the host stack (its MAC, ours), rebuilt when its MAC changes. */
  private hostL2: EthAddrWords | null = null;

  constructor(id: number, role: PortRole, port: Port, name: string, rxFraming: Framing, txFraming: Framing, ip: number, mac: number, layout: PortLayout, gso: boolean) {
    this.id = id;
    this.role = role;
    this.port = port;
    this.name = name;
    this.rxFraming = rxFraming;
    this.txFraming = txFraming;
    this.ip = ip;
    this.mac = mac;
    this.batch = new Batch(layout.capacity, layout.slotSize, layout.spare);
    this.tx = new FrameList(Math.max(layout.capacity, 64));
    this.gso = gso;
    this.vnetHdrLen = port.vnetHdrLen;
    this.headroom = port.vnetHdrLen > 0 && role !== PortRole.OVERLAY ? OFFLOAD_HEADROOM : VXLAN_HEADROOM;
    this.isPod = role === PortRole.POD;
    this.isHost = role === PortRole.HOST;
    this.isOverlay = role === PortRole.OVERLAY;
    // The tunnel TAP (an overlay-role port with a header) only takes super-frames: no GRO list.
    this.gro = port.vnetHdrLen > 0 && role !== PortRole.OVERLAY ? new FrameList(GRO_LIST_LEN) : null;
  }

  /** hostAddrs: the Ethernet addresses of a frame routed to this (host) port, from `vtepMac`. */
  hostAddrs(vtepMac: number): EthAddrWords {
    const a = this.hostL2;
    if (a !== null && a.dst === this.mac && a.src === vtepMac) return a;
    return (this.hostL2 = new EthAddrWords(this.mac, vtepMac));
  }
}
