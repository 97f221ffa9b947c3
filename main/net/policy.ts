// The guest's network policy, applied to every address the host is asked to reach: the
// internet is allowed; the host itself (loopback, which the gateway's address maps to) and
// private, link-local and unique-local ranges are refused unless the guest's settings say
// allowHost. Unspecified, multicast and reserved addresses are never reached.

import { isIPv4, isIPv6 } from "node:net";

export interface NetPolicy {
  /** Lets the guest reach the host (gateway address, loopback) and private networks. */
  allowHost: boolean;
}

export type AddressClass = "public" | "loopback" | "private" | "never";

function v4(address: string): number {
  return address.split(".").reduce((n, part) => n * 256 + Number(part), 0);
}

function inV4(ip: number, net: string, prefix: number): boolean {
  const size = 2 ** (32 - prefix);
  return Math.floor(ip / size) === Math.floor(v4(net) / size);
}

function classifyV4(address: string): AddressClass {
  const ip = v4(address);
  if (inV4(ip, "127.0.0.0", 8)) return "loopback";
  if (inV4(ip, "0.0.0.0", 8) || inV4(ip, "224.0.0.0", 3)) return "never";
  if (inV4(ip, "10.0.0.0", 8) || inV4(ip, "172.16.0.0", 12) || inV4(ip, "192.168.0.0", 16) || inV4(ip, "169.254.0.0", 16)) return "private";
  // RFC 6598 shared address space: the carrier's network, not the internet.
  if (inV4(ip, "100.64.0.0", 10)) return "private";
  return "public";
}

/** Expands an IPv6 address to its eight 16-bit groups (an embedded IPv4 tail included). */
function groupsV6(address: string): number[] {
  let text = address.split("%")[0]!.toLowerCase();
  const tail = /(\d+\.\d+\.\d+\.\d+)$/.exec(text);
  if (tail) {
    const ip = v4(tail[1]!);
    text = text.slice(0, -tail[1]!.length) + `${Math.floor(ip / 65536).toString(16)}:${(ip % 65536).toString(16)}`;
  }
  const [head, rest] = text.split("::") as [string, string | undefined];
  const a = head ? head.split(":") : [];
  const b = rest ? rest.split(":") : [];
  const fill = rest === undefined ? [] : new Array<string>(8 - a.length - b.length).fill("0");
  return [...a, ...fill, ...b].map((g) => parseInt(g, 16));
}

function classifyV6(address: string): AddressClass {
  const g = groupsV6(address);
  const zeroUntil = (n: number): boolean => g.slice(0, n).every((x) => x === 0);
  if (zeroUntil(7) && g[7] === 1) return "loopback";
  if (zeroUntil(8)) return "never";
  // IPv4-mapped (::ffff:a.b.c.d): the IPv4 address decides.
  if (zeroUntil(5) && g[5] === 0xffff) {
    const hi = g[6]!;
    const lo = g[7]!;
    return classifyV4(`${hi >> 8}.${hi & 0xff}.${lo >> 8}.${lo & 0xff}`);
  }
  const first = g[0]!;
  if ((first & 0xff00) === 0xff00) return "never";
  if ((first & 0xfe00) === 0xfc00 || (first & 0xffc0) === 0xfe80) return "private";
  return "public";
}

export function classifyAddress(address: string): AddressClass {
  if (isIPv4(address)) return classifyV4(address);
  if (isIPv6(address)) return classifyV6(address);
  return "never";
}

/** True when the guest may reach `address` (an IP literal) under `policy`. */
export function allows(policy: NetPolicy, address: string): boolean {
  const kind = classifyAddress(address);
  if (kind === "public") return true;
  if (kind === "never") return false;
  return policy.allowHost;
}
