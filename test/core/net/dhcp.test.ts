// The DHCP codec and the one-lease server: DISCOVER gets an OFFER with the options a guest
// needs, REQUEST for the lease gets ACK and for anything else NAK, a REQUEST for another
// server is left alone, replies go where RFC 2131 §4.1 says, and broken messages are refused.

import { describe, expect, it } from "vitest";
import { formatIpv4, ipv4, readIpv4 } from "../../../core/net/addr.js";
import { DHCP_OPTION, DHCP_TYPE, dhcpReply, encodeDhcp, parseDhcp, type DhcpServerConfig } from "../../../core/net/dhcp.js";

const CONFIG: DhcpServerConfig = {
  serverIp: ipv4("10.0.2.2"),
  guestIp: ipv4("10.0.2.15"),
  netmask: ipv4("255.255.255.0"),
  router: ipv4("10.0.2.2"),
  dns: [ipv4("10.0.2.3")],
  leaseSeconds: 86400,
  mtu: 1500,
  domainName: "guest.test",
};
const CHADDR = new Uint8Array([0x52, 0x54, 0x00, 0x12, 0x34, 0x56]);

function ip4(text: string): Uint8Array {
  const v = ipv4(text);
  return new Uint8Array([v >>> 24, (v >>> 16) & 0xff, (v >>> 8) & 0xff, v & 0xff]);
}

function request(type: number, options: [number, Uint8Array][] = [], fields: { ciaddr?: number; flags?: number } = {}) {
  const bytes = encodeDhcp({
    op: 1,
    xid: 0xabcdef01,
    flags: fields.flags ?? 0,
    ciaddr: fields.ciaddr ?? 0,
    yiaddr: 0,
    siaddr: 0,
    giaddr: 0,
    chaddr: CHADDR,
    options: [[DHCP_OPTION.messageType, new Uint8Array([type])], ...options],
  });
  return parseDhcp(bytes)!;
}

function optionIp(m: ReturnType<typeof parseDhcp>, code: number): string {
  return formatIpv4(readIpv4(m!.options.get(code)!, 0));
}

describe("DHCP server", () => {
  it("offers the lease with mask, router, DNS, lease times and broadcast address", () => {
    const reply = dhcpReply(request(DHCP_TYPE.discover, [[DHCP_OPTION.parameterList, new Uint8Array([1, 3, 6, 15, 26])]]), CONFIG)!;
    expect(reply.type).toBe(DHCP_TYPE.offer);
    const m = parseDhcp(reply.payload)!;
    expect(m.op).toBe(2);
    expect(m.xid).toBe(0xabcdef01);
    expect(formatIpv4(m.yiaddr)).toBe("10.0.2.15");
    expect([...m.chaddr]).toEqual([...CHADDR]);
    expect(m.type).toBe(DHCP_TYPE.offer);
    expect(optionIp(m, DHCP_OPTION.serverId)).toBe("10.0.2.2");
    expect(optionIp(m, DHCP_OPTION.subnetMask)).toBe("255.255.255.0");
    expect(optionIp(m, DHCP_OPTION.router)).toBe("10.0.2.2");
    expect(optionIp(m, DHCP_OPTION.dns)).toBe("10.0.2.3");
    expect(optionIp(m, DHCP_OPTION.broadcast)).toBe("10.0.2.255");
    expect(readIpv4(m.options.get(DHCP_OPTION.leaseTime)!, 0)).toBe(86400);
    expect(readIpv4(m.options.get(DHCP_OPTION.renewal)!, 0)).toBe(43200);
    expect(readIpv4(m.options.get(DHCP_OPTION.rebinding)!, 0)).toBe(75600);
    expect([...m.options.get(DHCP_OPTION.mtu)!]).toEqual([0x05, 0xdc]);
    expect(new TextDecoder().decode(m.options.get(DHCP_OPTION.domainName))).toBe("guest.test");
    expect(reply.payload.length).toBeGreaterThanOrEqual(300);
    // No broadcast flag and no ciaddr: unicast to the offered address at the client's MAC.
    expect(reply.broadcast).toBe(false);
    expect(formatIpv4(reply.to)).toBe("10.0.2.15");
  });

  it("ACKs a REQUEST for the lease and NAKs one for another address, by broadcast", () => {
    const ack = dhcpReply(request(DHCP_TYPE.request, [[DHCP_OPTION.requestedIp, ip4("10.0.2.15")], [DHCP_OPTION.serverId, ip4("10.0.2.2")]]), CONFIG)!;
    expect(ack.type).toBe(DHCP_TYPE.ack);
    const nak = dhcpReply(request(DHCP_TYPE.request, [[DHCP_OPTION.requestedIp, ip4("10.0.2.99")]]), CONFIG)!;
    expect(nak.type).toBe(DHCP_TYPE.nak);
    expect(nak.broadcast).toBe(true);
    expect(parseDhcp(nak.payload)!.yiaddr).toBe(0);
  });

  it("renews by ciaddr, unicast to it", () => {
    const renew = dhcpReply(request(DHCP_TYPE.request, [], { ciaddr: ipv4("10.0.2.15") }), CONFIG)!;
    expect(renew.type).toBe(DHCP_TYPE.ack);
    expect(formatIpv4(parseDhcp(renew.payload)!.ciaddr)).toBe("10.0.2.15");
    expect(renew.broadcast).toBe(false);
  });

  it("broadcasts when the client sets the broadcast flag", () => {
    expect(dhcpReply(request(DHCP_TYPE.discover, [], { flags: 0x8000 }), CONFIG)!.broadcast).toBe(true);
  });

  it("leaves alone a REQUEST for another server, RELEASE, DECLINE and BOOTP without a type", () => {
    expect(dhcpReply(request(DHCP_TYPE.request, [[DHCP_OPTION.serverId, ip4("10.0.2.7")]]), CONFIG)).toBeUndefined();
    expect(dhcpReply(request(DHCP_TYPE.release), CONFIG)).toBeUndefined();
    expect(dhcpReply(request(DHCP_TYPE.decline), CONFIG)).toBeUndefined();
    const bootp = parseDhcp(encodeDhcp({ op: 1, xid: 1, flags: 0, ciaddr: 0, yiaddr: 0, siaddr: 0, giaddr: 0, chaddr: CHADDR, options: [] }))!;
    expect(dhcpReply(bootp, CONFIG)).toBeUndefined();
  });

  it("answers INFORM without a lease", () => {
    const inform = dhcpReply(request(DHCP_TYPE.inform, [], { ciaddr: ipv4("10.0.2.15") }), CONFIG)!;
    const m = parseDhcp(inform.payload)!;
    expect(m.yiaddr).toBe(0);
    expect(m.options.has(DHCP_OPTION.leaseTime)).toBe(false);
    expect(optionIp(m, DHCP_OPTION.dns)).toBe("10.0.2.3");
  });
});

describe("DHCP codec", () => {
  it("joins a split option (RFC 3396) and splits a long one", () => {
    const long = new Uint8Array(300).map((_, i) => i & 0xff);
    const m = parseDhcp(encodeDhcp({ op: 1, xid: 1, flags: 0, ciaddr: 0, yiaddr: 0, siaddr: 0, giaddr: 0, chaddr: CHADDR, options: [[DHCP_OPTION.messageType, new Uint8Array([1])], [77, long]] }))!;
    expect([...m.options.get(77)!]).toEqual([...long]);
  });

  it("refuses a short message, a wrong magic cookie, an option past the end, or non-Ethernet", () => {
    const good = encodeDhcp({ op: 1, xid: 1, flags: 0, ciaddr: 0, yiaddr: 0, siaddr: 0, giaddr: 0, chaddr: CHADDR, options: [[53, new Uint8Array([1])]] });
    expect(parseDhcp(good.subarray(0, 239))).toBeUndefined();
    const cookie = good.slice();
    cookie[236] = 0;
    expect(parseDhcp(cookie)).toBeUndefined();
    const overrun = good.slice(0, 243);
    overrun[240] = 12;
    overrun[241] = 200;
    expect(parseDhcp(overrun)).toBeUndefined();
    const tokenRing = good.slice();
    tokenRing[1] = 6;
    expect(parseDhcp(tokenRing)).toBeUndefined();
  });
});
