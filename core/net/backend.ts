// What the gateway needs from the host, without frames, segments or sequence numbers: open a
// TCP stream or a UDP flow to an address, and resolve a name. main/net implements it over
// Node sockets and node:dns, with the guest's policy; a browser could implement it over a
// WebSocket relay. Refusal is synchronous (undefined), so the guest hears it at once.

import type { DnsRecord } from "./dns.js";

/** Why a host stream ended: orderly, reset, or never connected (refused, unreachable, timeout). */
export type HostCloseReason = "closed" | "reset" | "refused" | "unreachable" | "timeout";

/** The gateway's ears on one host stream; the backend calls these, never synchronously from connectTcp. */
export interface HostStreamSink {
  connected(): void;
  data(bytes: Uint8Array): void;
  /** The host side sent FIN. */
  end(): void;
  /** The host side took what was written; the backlog fell. */
  drain(): void;
  closed(reason: HostCloseReason): void;
}

export interface HostStream {
  write(bytes: Uint8Array): void;
  /** Bytes written and not yet taken by the host: the guest's window shrinks by this much. */
  readonly backlog: number;
  /** Half-close: our FIN to the host after what is written. */
  end(): void;
  destroy(): void;
  /** Stop and restart the flow of data() calls (backpressure towards the host). */
  pause(): void;
  resume(): void;
}

export interface HostDatagramSink {
  message(bytes: Uint8Array): void;
}

export interface HostDatagram {
  send(bytes: Uint8Array): void;
  close(): void;
}

export interface DnsAnswer {
  rcode: number;
  records: DnsRecord[];
}

export interface NetBackend {
  /** A TCP stream to `host:port`, or undefined when the guest's policy refuses that address. */
  connectTcp(host: string, port: number, sink: HostStreamSink): HostStream | undefined;
  /** A UDP flow to `host:port`, or undefined when the policy refuses it. */
  openUdp(host: string, port: number, sink: HostDatagramSink): HostDatagram | undefined;
  /** Answers one DNS question through the host's resolver. */
  resolve(name: string, type: number): Promise<DnsAnswer>;
}
