// The Node backend asks the policy before every host socket a guest flow opens, TCP and UDP
// alike, with this machine's addresses as they are when the flow opens. Only refusals are
// exercised here: a refused flow opens no socket, so nothing is contacted.

import { describe, expect, it } from "vitest";
import type { HostStreamSink } from "../../../core/net/backend.js";
import { createNodeBackend } from "../../../main/net/node-backend.js";
import type { HostAddresses } from "../../../main/net/policy.js";

function sink(): HostStreamSink & { calls: string[] } {
  const calls: string[] = [];
  return {
    calls,
    connected: () => calls.push("connected"),
    data: () => calls.push("data"),
    end: () => calls.push("end"),
    drain: () => calls.push("drain"),
    closed: (reason) => calls.push(`closed ${reason}`),
  };
}

describe("node backend: the policy at flow open", () => {
  it("refuses TCP and UDP to an address the host has, read when the flow opens", () => {
    // A public-looking address that one of the host's interfaces takes while the guest runs.
    const own = new Set<string>();
    const hostAddresses: HostAddresses = { has: (address) => own.has(address) };
    const backend = createNodeBackend({ allowHost: false, hostAddresses });
    own.add("93.184.216.34");
    const tcp = sink();
    expect(backend.connectTcp("93.184.216.34", 80, tcp)).toBeUndefined();
    expect(backend.openUdp("93.184.216.34", 53, { message: () => {} })).toBeUndefined();
    expect(tcp.calls).toEqual([]);
  });

  it("refuses TCP and UDP to loopback, special-purpose and multicast addresses without allowHost", () => {
    const backend = createNodeBackend({ allowHost: false, hostAddresses: { has: () => false } });
    for (const address of ["127.0.0.1", "10.0.2.15", "192.0.2.2", "198.18.0.1", "203.0.113.5", "224.0.0.251", "255.255.255.255", "localhost"]) {
      expect(backend.connectTcp(address, 80, sink()), address).toBeUndefined();
      expect(backend.openUdp(address, 53, { message: () => {} }), address).toBeUndefined();
    }
  });

  it("still refuses multicast and reserved addresses with allowHost", () => {
    const backend = createNodeBackend({ allowHost: true, hostAddresses: { has: () => false } });
    for (const address of ["0.0.0.0", "239.255.255.250", "240.0.0.1", "255.255.255.255"]) {
      expect(backend.connectTcp(address, 80, sink()), address).toBeUndefined();
      expect(backend.openUdp(address, 1900, { message: () => {} }), address).toBeUndefined();
    }
  });
});
