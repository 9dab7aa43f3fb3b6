// Minimal types for the `cap` package (libpcap binding, mscdex/cap 0.2.1), as used by
// src/io/cap-port.ts. There is no @types/cap.
declare module 'cap' {
  import { EventEmitter } from 'node:events';

  export interface CapDeviceAddress {
    addr: string;
    netmask?: string;
    broadaddr?: string;
  }

  export interface CapDevice {
    name: string;
    description?: string;
    addresses: CapDeviceAddress[];
    flags?: string;
  }

  export class Cap extends EventEmitter {
    /** Starts capturing on `device`; every packet is copied into `buffer`. Returns the link type ('ETHERNET'). */
    open(device: string, filter: string, bufSize: number, buffer: Buffer): string;
    /** Stops capturing; true if a capture was open. */
    close(): boolean;
    /** Sends buffer[0, nbytes) on the device (pcap_sendpacket); throws on failure. */
    send(buffer: Buffer, nbytes?: number): void;
    on(event: 'packet', listener: (nbytes: number, truncated: boolean) => void): this;
    static deviceList(): CapDevice[];
    static findDevice(ip?: string): string | undefined;
  }

  export const decoders: unknown;
}
