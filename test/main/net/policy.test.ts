// The guest's network policy: the internet is allowed; this machine (loopback and its own
// interface addresses) and every IANA special-purpose range only with allowHost; unspecified,
// multicast, reserved and broadcast never. Pure address checks: nothing is contacted.

import os from "node:os";
import { describe, expect, it } from "vitest";
import { allows, classifyAddress, interfaceAddresses, thisMachine, type AddressClass, type HostAddresses } from "../../../main/net/policy.js";

/** A machine whose only addresses are these, for checks that must not depend on this one. */
function machine(...addresses: string[]): HostAddresses {
  return { has: (address) => addresses.includes(address) };
}

const none = machine();

// Each range: its first and last address, one inside, and the neighbours just outside.
const ranges: [range: string, first: string, inside: string, last: string, kind: AddressClass, before: string, after: string][] = [
  ["0.0.0.0/8", "0.0.0.0", "0.1.2.3", "0.255.255.255", "never", "", "1.0.0.0"],
  ["10.0.0.0/8", "10.0.0.0", "10.0.2.2", "10.255.255.255", "special", "9.255.255.255", "11.0.0.0"],
  ["100.64.0.0/10", "100.64.0.0", "100.100.100.100", "100.127.255.255", "special", "100.63.255.255", "100.128.0.0"],
  ["127.0.0.0/8", "127.0.0.0", "127.0.0.1", "127.255.255.255", "host", "126.255.255.255", "128.0.0.0"],
  ["169.254.0.0/16", "169.254.0.0", "169.254.169.254", "169.254.255.255", "special", "169.253.255.255", "169.255.0.0"],
  ["172.16.0.0/12", "172.16.0.0", "172.20.1.1", "172.31.255.255", "special", "172.15.255.255", "172.32.0.0"],
  ["192.0.0.0/24", "192.0.0.0", "192.0.0.170", "192.0.0.255", "special", "191.255.255.255", "192.0.1.0"],
  ["192.0.2.0/24", "192.0.2.0", "192.0.2.2", "192.0.2.255", "special", "192.0.1.255", "192.0.3.0"],
  ["192.88.99.0/24", "192.88.99.0", "192.88.99.1", "192.88.99.255", "special", "192.88.98.255", "192.88.100.0"],
  ["192.168.0.0/16", "192.168.0.0", "192.168.1.1", "192.168.255.255", "special", "192.167.255.255", "192.169.0.0"],
  ["198.18.0.0/15", "198.18.0.0", "198.18.0.1", "198.19.255.255", "special", "198.17.255.255", "198.20.0.0"],
  ["198.51.100.0/24", "198.51.100.0", "198.51.100.7", "198.51.100.255", "special", "198.51.99.255", "198.51.101.0"],
  ["203.0.113.0/24", "203.0.113.0", "203.0.113.9", "203.0.113.255", "special", "203.0.112.255", "203.0.114.0"],
  ["224.0.0.0/4", "224.0.0.0", "239.255.255.250", "239.255.255.255", "never", "223.255.255.255", ""],
  ["240.0.0.0/4", "240.0.0.0", "250.1.2.3", "255.255.255.254", "never", "", ""],
  ["255.255.255.255/32", "255.255.255.255", "255.255.255.255", "255.255.255.255", "never", "", ""],
  ["::1/128", "::1", "::1", "::1", "host", "::2", ""],
  ["::/128", "::", "::", "::", "never", "", ""],
  ["fc00::/7", "fc00::", "fd12:3456::1", "fdff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", "special", "fbff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", "fe00::"],
  ["fe80::/10", "fe80::", "fe80::1%eth0", "febf:ffff:ffff:ffff:ffff:ffff:ffff:ffff", "special", "fe7f:ffff:ffff:ffff:ffff:ffff:ffff:ffff", ""],
  ["2001:db8::/32", "2001:db8::", "2001:db8::1", "2001:db8:ffff:ffff:ffff:ffff:ffff:ffff", "special", "2001:db7:ffff:ffff:ffff:ffff:ffff:ffff", "2001:db9::"],
  ["ff00::/8", "ff00::", "ff02::1", "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", "never", "feff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", ""],
];

describe("network policy: special-purpose ranges", () => {
  for (const [range, first, inside, last, kind, before, after] of ranges) {
    it(`${range} is ${kind}${kind === "never" ? ", even with allowHost" : ", reached only with allowHost"}`, () => {
      for (const address of [first, inside, last]) {
        expect(classifyAddress(address, none), address).toBe(kind);
        expect(allows({ allowHost: false }, address, none), address).toBe(false);
        expect(allows({ allowHost: true }, address, none), address).toBe(kind !== "never");
      }
      for (const neighbour of [before, after].filter(Boolean)) {
        expect(classifyAddress(neighbour, none), neighbour).not.toBe(kind);
      }
    });
  }

  it("allows the internet with or without allowHost", () => {
    for (const address of ["8.8.8.8", "1.1.1.1", "93.184.216.34", "223.255.255.255", "2001:4860:4860::8888", "::ffff:8.8.8.8"]) {
      expect(classifyAddress(address, none), address).toBe("public");
      expect(allows({ allowHost: false }, address, none), address).toBe(true);
      expect(allows({ allowHost: true }, address, none), address).toBe(true);
    }
  });

  it("judges an IPv4-mapped IPv6 address by its IPv4 address", () => {
    expect(classifyAddress("::ffff:127.0.0.1", none)).toBe("host");
    expect(classifyAddress("::ffff:7f00:1", none)).toBe("host");
    expect(classifyAddress("::ffff:192.168.0.1", none)).toBe("special");
    expect(classifyAddress("::ffff:198.18.0.1", none)).toBe("special");
    expect(classifyAddress("::ffff:224.0.0.251", none)).toBe("never");
    expect(allows({ allowHost: false }, "::ffff:10.0.0.1", none)).toBe(false);
  });

  it("refuses names and garbage: only the literal the socket connects to is judged", () => {
    for (const address of ["localhost", "example.com", "not an address", "1.2.3", "", "256.1.1.1"]) {
      expect(classifyAddress(address, none), address).toBe("never");
      expect(allows({ allowHost: true }, address, none), address).toBe(false);
    }
  });
});

describe("network policy: this machine's own addresses", () => {
  it("treats an address of the host's interfaces as the host, however public it looks", () => {
    const host = interfaceAddresses({ read: () => ({ eth0: infos(["93.184.216.34", "2a00:1450:4001::5"]) }) });
    for (const address of ["93.184.216.34", "::ffff:93.184.216.34", "2a00:1450:4001::5", "2a00:1450:4001:0:0:0:0:5"]) {
      expect(classifyAddress(address, host), address).toBe("host");
      expect(allows({ allowHost: false }, address, host), address).toBe(false);
      expect(allows({ allowHost: true }, address, host), address).toBe(true);
    }
    // Its neighbour is someone else's machine on the internet.
    expect(allows({ allowHost: false }, "93.184.216.35", host)).toBe(true);
  });

  it("knows every address this machine has now", () => {
    const all = Object.values(os.networkInterfaces()).flatMap((list) => list ?? []);
    expect(all.length).toBeGreaterThan(0);
    for (const info of all) {
      expect(classifyAddress(info.address, thisMachine), info.address).toBe("host");
      expect(allows({ allowHost: false }, info.address), info.address).toBe(false);
    }
  });

  it("reads the interfaces again once its reading is a second old, so a new address is refused", () => {
    let clock = 0;
    let reads = 0;
    let current = ["198.51.100.1"];
    const host = interfaceAddresses({
      now: () => clock,
      read: () => {
        reads++;
        return { eth0: infos(current) };
      },
    });
    expect(host.has("198.51.100.1")).toBe(true);
    expect(host.has("93.184.216.34")).toBe(false);
    expect(reads).toBe(1);
    // A VPN comes up with a public address; within the second the old reading stands.
    current = ["198.51.100.1", "93.184.216.34"];
    clock = 999;
    expect(host.has("93.184.216.34")).toBe(false);
    expect(reads).toBe(1);
    clock = 1000;
    expect(allows({ allowHost: false }, "93.184.216.34", host)).toBe(false);
    expect(reads).toBe(2);
    // And goes down again: the address is the internet's once more.
    current = ["198.51.100.1"];
    clock = 2500;
    expect(allows({ allowHost: false }, "93.184.216.34", host)).toBe(true);
    expect(reads).toBe(3);
  });
});

function infos(addresses: string[]): os.NetworkInterfaceInfo[] {
  return addresses.map((address): os.NetworkInterfaceInfo => {
    const v6 = address.includes(":");
    return v6
      ? { address, netmask: "ffff:ffff:ffff:ffff::", family: "IPv6", mac: "02:00:00:00:00:01", internal: false, cidr: `${address}/64`, scopeid: 0 }
      : { address, netmask: "255.255.255.0", family: "IPv4", mac: "02:00:00:00:00:01", internal: false, cidr: `${address}/24` };
  });
}
