// The gateway's backend on the host: TCP through node:net, UDP through node:dgram (one socket
// per flow, answering only the flow's own peer), and DNS through node:dns. A records come
// from dns.lookup, the host's own resolver with /etc/hosts; other types from the configured
// name servers. Every host socket a guest flow opens, TCP or UDP, passes the guest's policy
// first, on the IP literal it connects to; refusal is synchronous.

import dgram from "node:dgram";
import { promises as dns } from "node:dns";
import net from "node:net";
import type { DnsAnswer, HostDatagram, HostStream, HostStreamSink, NetBackend } from "../../core/net/backend.js";
import { parseIpv4Text } from "../../core/net/addr.js";
import { DNS_RCODE, DNS_TYPE, type DnsRecord } from "../../core/net/dns.js";
import { socketStream } from "./host-stream.js";
import { allows, thisMachine, type HostAddresses, type NetPolicy } from "./policy.js";

export interface NodeBackendOptions extends NetPolicy {
  /** This machine's own addresses; the live interfaces unless a test says otherwise. */
  hostAddresses?: HostAddresses;
  connectTimeoutMs?: number;
  /** Seconds for answers whose TTL the host's resolver does not tell. */
  dnsTtl?: number;
}

function rcodeOf(error: unknown): number {
  const code = (error as NodeJS.ErrnoException | undefined)?.code;
  if (code === "ENOTFOUND" || code === dns.NOTFOUND) return DNS_RCODE.nxDomain;
  if (code === "ENODATA" || code === dns.NODATA) return DNS_RCODE.noError;
  return DNS_RCODE.servFail;
}

/** 4.3.2.1.in-addr.arpa -> 1.2.3.4; anything else -> undefined. */
function reverseName(name: string): string | undefined {
  const m = /^(\d+)\.(\d+)\.(\d+)\.(\d+)\.in-addr\.arpa$/i.exec(name);
  if (!m) return undefined;
  const address = `${m[4]}.${m[3]}.${m[2]}.${m[1]}`;
  return parseIpv4Text(address) === undefined ? undefined : address;
}

export function createNodeBackend(options: NodeBackendOptions): NetBackend {
  const ttl = options.dnsTtl ?? 60;
  const resolver = new dns.Resolver({ timeout: 2000, tries: 2 });
  const hostAddresses = options.hostAddresses ?? thisMachine;
  // The one policy check. `host` is the literal the socket connects to (the policy refuses
  // names), so no lookup happens after the check and DNS answers are judged where they lead.
  const permitted = (host: string): boolean => allows(options, host, hostAddresses);

  async function resolve(name: string, type: number): Promise<DnsAnswer> {
    try {
      switch (type) {
        case DNS_TYPE.A: {
          const found = await dns.lookup(name, { family: 4, all: true });
          const unique = [...new Set(found.map((a) => a.address))];
          return { rcode: DNS_RCODE.noError, records: unique.map((a) => ({ type: DNS_TYPE.A, address: parseIpv4Text(a)!, ttl })) };
        }
        case DNS_TYPE.AAAA:
          // The guest's network is IPv4 only: say the name exists but offer no IPv6 address,
          // so the guest does not wait on a route it lacks.
          await dns.lookup(name, { all: true });
          return { rcode: DNS_RCODE.noError, records: [] };
        case DNS_TYPE.PTR: {
          const address = reverseName(name);
          if (!address) return { rcode: DNS_RCODE.nxDomain, records: [] };
          const names = await resolver.reverse(address);
          return { rcode: DNS_RCODE.noError, records: names.map((n): DnsRecord => ({ type: DNS_TYPE.PTR, name: n, ttl })) };
        }
        case DNS_TYPE.CNAME: {
          const names = await resolver.resolveCname(name);
          return { rcode: DNS_RCODE.noError, records: names.map((n): DnsRecord => ({ type: DNS_TYPE.CNAME, name: n, ttl })) };
        }
        case DNS_TYPE.NS: {
          const names = await resolver.resolveNs(name);
          return { rcode: DNS_RCODE.noError, records: names.map((n): DnsRecord => ({ type: DNS_TYPE.NS, name: n, ttl })) };
        }
        case DNS_TYPE.MX: {
          const mx = await resolver.resolveMx(name);
          return { rcode: DNS_RCODE.noError, records: mx.map((m): DnsRecord => ({ type: DNS_TYPE.MX, preference: m.priority, exchange: m.exchange, ttl })) };
        }
        case DNS_TYPE.TXT: {
          const txt = await resolver.resolveTxt(name);
          return { rcode: DNS_RCODE.noError, records: txt.map((t): DnsRecord => ({ type: DNS_TYPE.TXT, text: t, ttl })) };
        }
        case DNS_TYPE.SRV: {
          const srv = await resolver.resolveSrv(name);
          return {
            rcode: DNS_RCODE.noError,
            records: srv.map((s): DnsRecord => ({ type: DNS_TYPE.SRV, priority: s.priority, weight: s.weight, port: s.port, target: s.name, ttl })),
          };
        }
        default:
          return { rcode: DNS_RCODE.notImp, records: [] };
      }
    } catch (error) {
      return { rcode: rcodeOf(error), records: [] };
    }
  }

  return {
    connectTcp(host: string, port: number, sink: HostStreamSink): HostStream | undefined {
      if (!permitted(host)) return undefined;
      const socket = net.connect({ host, port, allowHalfOpen: true });
      return socketStream(socket, sink, { connected: false, connectTimeoutMs: options.connectTimeoutMs });
    },

    openUdp(host, port, sink): HostDatagram | undefined {
      if (!permitted(host)) return undefined;
      const socket = dgram.createSocket(net.isIPv6(host) ? "udp6" : "udp4");
      let closed = false;
      socket.on("error", () => {
        // ICMP errors and send failures: UDP is lossy, the guest retries or times out.
      });
      socket.on("message", (message, from) => {
        if (from.address === host && from.port === port) sink.message(message);
      });
      return {
        send(bytes) {
          if (!closed) socket.send(bytes, port, host, () => {});
        },
        close() {
          if (closed) return;
          closed = true;
          socket.close();
        },
      };
    },

    resolve,
  };
}
