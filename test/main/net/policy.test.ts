// The guest's network policy: the internet is allowed; loopback, private, link-local and
// unique-local addresses (IPv4, IPv6 and IPv4-mapped IPv6) only with allowHost; unspecified
// and multicast addresses never. Pure address checks: nothing is contacted.

import { describe, expect, it } from "vitest";
import { allows, classifyAddress } from "../../../main/net/policy.js";

describe("network policy", () => {
  it("classifies the ranges the guest must not reach by default", () => {
    const cases: [string, ReturnType<typeof classifyAddress>][] = [
      ["8.8.8.8", "public"],
      ["1.1.1.1", "public"],
      ["172.15.255.255", "public"],
      ["172.32.0.1", "public"],
      ["127.0.0.1", "loopback"],
      ["127.255.0.9", "loopback"],
      ["10.0.2.2", "private"],
      ["172.16.0.1", "private"],
      ["172.31.255.254", "private"],
      ["192.168.1.1", "private"],
      ["169.254.169.254", "private"],
      ["100.64.0.1", "private"],
      ["0.0.0.0", "never"],
      ["224.0.0.251", "never"],
      ["255.255.255.255", "never"],
      ["::1", "loopback"],
      ["::", "never"],
      ["fc00::1", "private"],
      ["fd12:3456::1", "private"],
      ["fe80::1%eth0", "private"],
      ["ff02::1", "never"],
      ["2001:4860:4860::8888", "public"],
      ["::ffff:127.0.0.1", "loopback"],
      ["::ffff:192.168.0.1", "private"],
      ["::ffff:8.8.8.8", "public"],
      ["localhost", "never"],
      ["not an address", "never"],
    ];
    for (const [address, kind] of cases) expect(classifyAddress(address), address).toBe(kind);
  });

  it("refuses the host and private networks unless allowHost", () => {
    for (const address of ["127.0.0.1", "10.1.2.3", "192.168.0.10", "::1", "fd00::5"]) {
      expect(allows({ allowHost: false }, address), address).toBe(false);
      expect(allows({ allowHost: true }, address), address).toBe(true);
    }
    expect(allows({ allowHost: false }, "93.184.216.34")).toBe(true);
    expect(allows({ allowHost: true }, "0.0.0.0")).toBe(false);
    expect(allows({ allowHost: true }, "224.0.0.1")).toBe(false);
  });
});
