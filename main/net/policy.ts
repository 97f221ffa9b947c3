// The guest's network policy, asked once for every host socket a guest flow opens (TCP and UDP;
// port forwards are the host's own listeners and are not asked). The internet is allowed. The
// host (loopback, which the gateway's address maps to, and every address of this machine's
// interfaces, read when the flow opens) and the other special-purpose ranges are refused unless
// allowHost; unspecified, multicast and reserved addresses are refused even then. node:net's
// BlockList does the address matching, IPv4-mapped IPv6 included.

import { BlockList, isIPv4, isIPv6 } from "node:net";
import { networkInterfaces } from "node:os";
import { performance } from "node:perf_hooks";

export interface NetPolicy {
  /** Lets the guest reach the host (gateway address, loopback, its own addresses) and special-purpose networks. */
  allowHost: boolean;
}

/**
 * public: the internet. host: this machine. special: not the internet (private, link-local,
 * shared, documentation, benchmarking). never: nothing a guest may open a flow to.
 */
export type AddressClass = "public" | "host" | "special" | "never";

type Family = "ipv4" | "ipv6";
type Range = readonly [network: string, prefix: number, family: Family];

function blockList(ranges: readonly Range[]): BlockList {
  const list = new BlockList();
  for (const [network, prefix, family] of ranges) list.addSubnet(network, prefix, family);
  return list;
}

// The IANA IPv4 Special-Purpose Address Registry (RFC 6890 and updates), and the IPv6 one.
const NEVER = blockList([
  ["0.0.0.0", 8, "ipv4"], // "this network" (RFC 791); a connect to 0.0.0.0 lands on the host
  ["224.0.0.0", 4, "ipv4"], // multicast (RFC 5771)
  ["240.0.0.0", 4, "ipv4"], // reserved (RFC 1112), with the limited broadcast 255.255.255.255 (RFC 919)
  ["::", 128, "ipv6"], // unspecified (RFC 4291 §2.5.2)
  ["ff00::", 8, "ipv6"], // multicast (RFC 4291 §2.7)
]);

const LOOPBACK = blockList([
  ["127.0.0.0", 8, "ipv4"], // RFC 1122 §3.2.1.3
  ["::1", 128, "ipv6"], // RFC 4291 §2.5.3
]);

const SPECIAL = blockList([
  ["10.0.0.0", 8, "ipv4"], // private-use (RFC 1918)
  ["100.64.0.0", 10, "ipv4"], // shared address space: the carrier's network (RFC 6598)
  ["169.254.0.0", 16, "ipv4"], // link-local, cloud metadata services among them (RFC 3927)
  ["172.16.0.0", 12, "ipv4"], // private-use (RFC 1918)
  ["192.0.0.0", 24, "ipv4"], // IETF protocol assignments (RFC 6890 §2.2.2)
  ["192.0.2.0", 24, "ipv4"], // documentation, TEST-NET-1 (RFC 5737)
  ["192.88.99.0", 24, "ipv4"], // 6to4 relay anycast, deprecated (RFC 7526)
  ["192.168.0.0", 16, "ipv4"], // private-use (RFC 1918)
  ["198.18.0.0", 15, "ipv4"], // benchmarking (RFC 2544)
  ["198.51.100.0", 24, "ipv4"], // documentation, TEST-NET-2 (RFC 5737)
  ["203.0.113.0", 24, "ipv4"], // documentation, TEST-NET-3 (RFC 5737)
  ["64:ff9b:1::", 48, "ipv6"], // local-use IPv4/IPv6 translation (RFC 8215)
  ["100::", 64, "ipv6"], // discard-only (RFC 6666)
  ["2001:db8::", 32, "ipv6"], // documentation (RFC 3849)
  ["fc00::", 7, "ipv6"], // unique-local (RFC 4193)
  ["fec0::", 10, "ipv6"], // site-local, deprecated (RFC 3879)
  ["fe80::", 10, "ipv6"], // link-local (RFC 4291 §2.5.6)
]);

function familyOf(address: string): Family | undefined {
  if (isIPv4(address)) return "ipv4";
  if (isIPv6(address)) return "ipv6";
  return undefined;
}

/** This machine's own addresses, as of now. */
export interface HostAddresses {
  has(address: string): boolean;
}

export interface HostAddressOptions {
  /** How long one reading of the interfaces is trusted; reading costs a few tens of microseconds. */
  ttlMs?: number;
  now?: () => number;
  read?: () => ReturnType<typeof networkInterfaces>;
}

/**
 * The addresses of every interface of this machine, read again when the last reading is older
 * than `ttlMs` (1 s): interfaces come and go while a guest runs (a VPN, a new Wi-Fi lease).
 */
export function interfaceAddresses(options: HostAddressOptions = {}): HostAddresses {
  const ttl = options.ttlMs ?? 1000;
  const now = options.now ?? (() => performance.now());
  const read = options.read ?? networkInterfaces;
  let list: BlockList | undefined;
  let readAt = 0;
  return {
    has(address) {
      const family = familyOf(address);
      if (!family) return false;
      const t = now();
      if (!list || t - readAt >= ttl) {
        list = new BlockList();
        for (const infos of Object.values(read())) {
          for (const info of infos ?? []) {
            const own = familyOf(info.address);
            if (own) list.addAddress(info.address, own);
          }
        }
        readAt = t;
      }
      return list.check(address, family);
    },
  };
}

/** The machine the guest runs on, shared by every guest's backend. */
export const thisMachine: HostAddresses = interfaceAddresses();

export function classifyAddress(address: string, host: HostAddresses = thisMachine): AddressClass {
  // A zone (fe80::1%eth0) names an interface, not an address.
  const bare = address.split("%")[0]!;
  const family = familyOf(address);
  if (!family) return "never";
  if (NEVER.check(bare, family)) return "never";
  if (LOOPBACK.check(bare, family) || host.has(bare)) return "host";
  if (SPECIAL.check(bare, family)) return "special";
  return "public";
}

/**
 * True when the guest may open a flow to `address`, an IP literal: the address the host socket
 * will connect to, so a name that resolved to the host or a private network is judged by where
 * it leads. Anything else (a name, garbage) is refused.
 */
export function allows(policy: NetPolicy, address: string, host: HostAddresses = thisMachine): boolean {
  const kind = classifyAddress(address, host);
  if (kind === "public") return true;
  if (kind === "never") return false;
  return policy.allowHost;
}
