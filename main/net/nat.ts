// The host's network service for one guest: a NetGateway (core/net) over Node sockets, with
// the guest's policy and its inbound port forwards (a listener on 127.0.0.1:HOSTPORT per
// forward, each accepted connection opened into the guest's GUESTPORT from the gateway's
// address). Frames cross on the guest's "net" FramePipe, one Ethernet frame per pipe frame.

import net from "node:net";
import { performance } from "node:perf_hooks";
import type { HostStreamSink, NetBackend } from "../../core/net/backend.js";
import { NetGateway, type GatewayConfig, type GatewayStats } from "../../core/net/gateway.js";
import type { Timers } from "../../core/net/timers.js";
import { DisposableStore, toDisposable, type Disposable } from "../../core/disposable.js";
import type { FramePipe } from "../../core/pipe/frame-pipe.js";
import { socketStream } from "./host-stream.js";
import { createNodeBackend } from "./node-backend.js";

export interface NatForward {
  /** 0 asks for any free port (tests); the bound port is in `ready`'s answer. */
  hostPort: number;
  guestPort: number;
}

export interface NatOptions {
  /** Which guest this is, for messages. */
  name?: string;
  allowHost?: boolean;
  forwards?: NatForward[];
  gateway?: Partial<GatewayConfig>;
  /** Replaces the Node backend (tests). */
  backend?: NetBackend;
  connectTimeoutMs?: number;
  /** Told about what goes wrong on the host side: a port in use, a frame that threw. */
  onError?(message: string): void;
}

export interface Nat extends Disposable {
  receive(frame: Uint8Array): void;
  onFrame(listener: (frame: Uint8Array) => void): Disposable;
  /** Joins the NAT to the guest's net pipe, both ways. */
  attach(pipe: FramePipe): Disposable;
  /** Resolves when every forward listens, with the bound ports; rejects with what to do if one cannot. */
  readonly ready: Promise<NatForward[]>;
  readonly gateway: NetGateway;
  stats(): GatewayStats;
}

export const nodeTimers: Timers = {
  now: () => performance.now(),
  set(callback, ms) {
    const timer = setTimeout(callback, ms);
    timer.unref();
    return { cancel: () => clearTimeout(timer) };
  },
};

export function createNat(options: NatOptions = {}): Nat {
  const store = new DisposableStore();
  const who = options.name ? `guest "${options.name}"` : "the guest";
  const report = options.onError ?? (() => {});
  const backend = options.backend ?? createNodeBackend({ allowHost: options.allowHost ?? false, connectTimeoutMs: options.connectTimeoutMs });
  const gateway = store.add(new NetGateway({ backend, timers: nodeTimers, config: options.gateway }));

  const listen = (forward: NatForward): Promise<NatForward> =>
    new Promise((resolve, reject) => {
      const server = net.createServer({ allowHalfOpen: true, pauseOnConnect: true }, (socket) => {
        // The socket's events reach the gateway once it has opened the guest's side.
        const link: { sink?: HostStreamSink } = {};
        const stream = socketStream(
          socket,
          {
            connected: () => {},
            data: (bytes) => link.sink?.data(bytes),
            end: () => link.sink?.end(),
            drain: () => link.sink?.drain(),
            closed: (reason) => link.sink?.closed(reason),
          },
          { connected: true },
        );
        link.sink = gateway.forward(forward.guestPort, stream);
        if (!link.sink) socket.destroy();
        else socket.resume();
      });
      server.once("error", (error: NodeJS.ErrnoException) => {
        const why = error.code === "EADDRINUSE" ? "is in use by another program" : `cannot be opened (${error.code ?? error.message})`;
        reject(new Error(`${who}: host port ${forward.hostPort} (forwarded to guest port ${forward.guestPort}) ${why}; choose another host port in the guest's settings`));
      });
      server.listen(forward.hostPort, "127.0.0.1", () => {
        server.on("error", (error) => report(`${who}: forward ${forward.hostPort}: ${error.message}`));
        const address = server.address();
        resolve({ hostPort: typeof address === "object" && address ? address.port : forward.hostPort, guestPort: forward.guestPort });
      });
      store.add(toDisposable(() => server.close()));
    });

  const ready = Promise.all((options.forwards ?? []).map(listen));
  // A caller that never awaits `ready` still hears of a failed forward.
  ready.catch((error: Error) => report(error.message));

  const receive = (frame: Uint8Array): void => {
    try {
      gateway.receive(frame);
    } catch (error) {
      report(`${who}: a network frame could not be handled: ${(error as Error).message}`);
    }
  };

  return {
    receive,
    onFrame: (listener) => gateway.onFrame(listener),
    attach(pipe) {
      const inbound = pipe.onFrame(receive);
      const outbound = gateway.onFrame((frame) => pipe.send(frame));
      return toDisposable(() => {
        inbound.dispose();
        outbound.dispose();
      });
    },
    ready,
    gateway,
    stats: () => gateway.stats(),
    dispose: () => store.dispose(),
  };
}
