// The wire codecs: checksums against published examples, each header decoded from bytes
// written out by hand, every length and checksum check refusing what is short or lies, and
// encode/decode agreeing.

import { describe, expect, it } from "vitest";
import { formatIpv4, formatMac, inSubnet, ipv4, parseIpv4Text, parseMac, prefixMask } from "../../../core/net/addr.js";
import { ARP_OP, buildArp, parseArp } from "../../../core/net/arp.js";
import { checksum, finish, pseudoSum, sum16 } from "../../../core/net/checksum.js";
import { ETHERNET_HEADER, ETHERTYPE, MIN_FRAME, parseEthernet } from "../../../core/net/ethernet.js";
import { buildEchoReply, buildUnreachable, ICMP_TYPE, parseIcmp, UNREACHABLE } from "../../../core/net/icmp.js";
import { allocIpv4Frame, IP_PROTOCOL, L4_OFFSET, parseIpv4 } from "../../../core/net/ipv4.js";
import { buildTcp, parseTcp, seqGt, seqLt, TCP_FLAG } from "../../../core/net/tcp.js";
import { buildUdp, parseUdp } from "../../../core/net/udp.js";
import { ByteReader, ByteWriter, Malformed } from "../../../core/net/wire.js";

function hex(text: string): Uint8Array {
  const clean = text.replace(/\s+/g, "");
  return Uint8Array.from({ length: clean.length / 2 }, (_, i) => parseInt(clean.slice(i * 2, i * 2 + 2), 16));
}

const MAC_A = parseMac("52:54:00:12:34:56");
const MAC_B = parseMac("52:55:0a:00:02:02");
const header = { srcMac: MAC_A, dstMac: MAC_B, src: ipv4("10.0.2.15"), dst: ipv4("10.0.2.2"), id: 0x1c46 };

/** The IP packet inside a frame built here. */
function ipOf(frame: Uint8Array) {
  const ip = parseIpv4(parseEthernet(frame)!.payload);
  if (!ip) throw new Error("frame does not parse");
  return ip;
}

describe("checksum", () => {
  it("matches RFC 1071's worked example", () => {
    // RFC 1071 §3: 00 01 f2 03 f4 f5 f6 f7 sums to ddf2 (folded); the checksum is its complement.
    const b = hex("0001 f203 f4f5 f6f7");
    expect(finish(sum16(b, 0, b.length))).toBe(~0xddf2 & 0xffff);
  });

  it("gives a well-known IPv4 header its checksum b861", () => {
    const h = hex("4500 0073 0000 4000 4011 0000 c0a8 0001 c0a8 00c7");
    expect(checksum(h).toString(16)).toBe("b861");
    h[10] = 0xb8;
    h[11] = 0x61;
    expect(checksum(h)).toBe(0);
  });

  it("pads an odd length with a zero byte", () => {
    expect(finish(sum16(hex("01"), 0, 1))).toBe(~0x0100 & 0xffff);
    expect(finish(sum16(hex("0102 03"), 0, 3))).toBe(~(0x0102 + 0x0300) & 0xffff);
  });

  it("adds the pseudo-header by halves of each address", () => {
    expect(pseudoSum(0x0a00020f, 0x0a000202, 6, 20)).toBe(0x0a00 + 0x020f + 0x0a00 + 0x0202 + 6 + 20);
  });
});

describe("addresses", () => {
  it("parses and prints dotted quads, refusing near misses", () => {
    expect(formatIpv4(ipv4("10.0.2.15"))).toBe("10.0.2.15");
    expect(formatIpv4(ipv4("255.255.255.255"))).toBe("255.255.255.255");
    for (const bad of ["1.2.3", "1.2.3.4.5", "256.1.1.1", "01.2.3.4", "1.2.3.-4", "a.b.c.d", ""]) expect(parseIpv4Text(bad), bad).toBeUndefined();
  });

  it("tests subnets and masks", () => {
    expect(inSubnet(ipv4("10.0.2.99"), ipv4("10.0.2.0"), 24)).toBe(true);
    expect(inSubnet(ipv4("10.0.3.1"), ipv4("10.0.2.0"), 24)).toBe(false);
    expect(inSubnet(ipv4("8.8.8.8"), 0, 0)).toBe(true);
    expect(formatIpv4(prefixMask(24))).toBe("255.255.255.0");
    expect(formatMac(parseMac("52:54:0:1:2:3"))).toBe("52:54:00:01:02:03");
    expect(() => parseMac("52:54:00:01:02")).toThrow();
  });
});

describe("wire", () => {
  it("refuses reads past the end with Malformed", () => {
    const r = new ByteReader(hex("0102 03"));
    expect(r.u16()).toBe(0x0102);
    expect(() => r.u16()).toThrow(Malformed);
    expect(() => r.seek(4)).toThrow(Malformed);
    expect(() => r.bytes(-1)).toThrow(Malformed);
  });

  it("grows as it writes", () => {
    const w = new ByteWriter(2);
    w.u32(0xdeadbeef).u8(1).u16(0x0203);
    w.patchU16(0, 0xcafe);
    expect([...w.finish()]).toEqual([0xca, 0xfe, 0xbe, 0xef, 1, 2, 3]);
  });
});

describe("Ethernet and ARP", () => {
  it("decodes a who-has for 10.0.2.2 written out by hand", () => {
    const frame = hex(
      "ffffffffffff 525400123456 0806" + "0001 0800 06 04 0001 525400123456 0a00020f 000000000000 0a000202" + "00".repeat(18),
    );
    const eth = parseEthernet(frame)!;
    expect(eth.type).toBe(ETHERTYPE.arp);
    const arp = parseArp(eth.payload)!;
    expect(arp.op).toBe(ARP_OP.request);
    expect(formatMac(arp.senderMac)).toBe("52:54:00:12:34:56");
    expect(formatIpv4(arp.senderIp)).toBe("10.0.2.15");
    expect(formatIpv4(arp.targetIp)).toBe("10.0.2.2");
  });

  it("builds a reply padded to the minimum frame, and refuses foreign or short ARP", () => {
    const frame = buildArp(MAC_A, { op: ARP_OP.reply, senderMac: MAC_B, senderIp: ipv4("10.0.2.2"), targetMac: MAC_A, targetIp: ipv4("10.0.2.15") });
    expect(frame.length).toBe(MIN_FRAME);
    const arp = parseArp(parseEthernet(frame)!.payload)!;
    expect(arp.op).toBe(ARP_OP.reply);
    expect(formatMac(arp.senderMac)).toBe("52:55:0a:00:02:02");
    const bad = frame.slice(ETHERNET_HEADER);
    bad[1] = 6; // token ring
    expect(parseArp(bad)).toBeUndefined();
    expect(parseArp(frame.subarray(ETHERNET_HEADER, ETHERNET_HEADER + 27))).toBeUndefined();
    expect(parseEthernet(new Uint8Array(13))).toBeUndefined();
  });
});

describe("IPv4", () => {
  const packet = hex("4500 001c 1c46 4000 4001 0000 0a00020f 0a000202" + "0800 f7ff 0000 0000");
  packet.set([checksum(packet.subarray(0, 20)) >> 8, checksum(packet.subarray(0, 20)) & 0xff], 10);

  it("decodes a header and cuts Ethernet padding by the total length", () => {
    const padded = new Uint8Array(46);
    padded.set(packet);
    const ip = parseIpv4(padded)!;
    expect(ip.protocol).toBe(IP_PROTOCOL.icmp);
    expect(formatIpv4(ip.src)).toBe("10.0.2.15");
    expect(ip.payload.length).toBe(8);
    expect(ip.packet.length).toBe(28);
    expect(ip.fragment).toBe(false);
  });

  it("refuses a bad version, header length, total length or checksum; flags fragments", () => {
    const mutate = (at: number, value: number): Uint8Array => {
      const p = packet.slice();
      p[at] = value;
      return p;
    };
    expect(parseIpv4(mutate(0, 0x65))).toBeUndefined();
    expect(parseIpv4(mutate(0, 0x44))).toBeUndefined();
    expect(parseIpv4(mutate(3, 0xff))).toBeUndefined();
    expect(parseIpv4(mutate(12, 0x0b))).toBeUndefined();
    expect(parseIpv4(packet.subarray(0, 19))).toBeUndefined();
    const fragment = mutate(6, 0x20); // more fragments
    fragment[10] = 0;
    fragment[11] = 0;
    const sum = checksum(fragment.subarray(0, 20));
    fragment.set([sum >> 8, sum & 0xff], 10);
    expect(parseIpv4(fragment)!.fragment).toBe(true);
  });

  it("builds headers with DF, TTL 64 and a valid checksum", () => {
    const frame = allocIpv4Frame({ ...header, protocol: 99 }, 4);
    const ip = ipOf(frame);
    expect(ip.ttl).toBe(64);
    expect(ip.id).toBe(0x1c46);
    expect(frame[ETHERNET_HEADER + 6]).toBe(0x40);
    expect(frame.length).toBe(MIN_FRAME);
  });
});

describe("ICMP", () => {
  it("answers an echo with the same identifier, sequence and data", () => {
    const request = { type: ICMP_TYPE.echoRequest, code: 0, id: 0x1234, sequence: 7, data: hex("00112233445566778899") };
    const reply = parseIcmp(ipOf(buildEchoReply(header, request)).payload)!;
    expect(reply).toMatchObject({ type: ICMP_TYPE.echoReply, code: 0, id: 0x1234, sequence: 7 });
    expect([...reply.data]).toEqual([...request.data]);
  });

  it("quotes at most 548 bytes of the refused packet", () => {
    const big = parseIpv4(allocIpv4Frame({ ...header, protocol: IP_PROTOCOL.udp }, 1400).subarray(ETHERNET_HEADER))!;
    const error = parseIcmp(ipOf(buildUnreachable(header, UNREACHABLE.port, big)).payload)!;
    expect(error.type).toBe(ICMP_TYPE.unreachable);
    expect(error.code).toBe(UNREACHABLE.port);
    expect(error.data.length).toBe(548);
    expect(error.data[9]).toBe(IP_PROTOCOL.udp);
  });

  it("refuses a bad checksum or a short message", () => {
    const frame = buildEchoReply(header, { type: 8, code: 0, id: 1, sequence: 1, data: new Uint8Array(4) });
    frame[L4_OFFSET + 9] = frame[L4_OFFSET + 9]! ^ 1;
    expect(parseIcmp(ipOf(frame).payload)).toBeUndefined();
    expect(parseIcmp(new Uint8Array(7))).toBeUndefined();
  });
});

describe("UDP", () => {
  it("round-trips and checks the pseudo-header checksum", () => {
    const frame = buildUdp(header, 33333, 53, hex("abcdef"));
    const ip = ipOf(frame);
    const udp = parseUdp(ip)!;
    expect(udp).toMatchObject({ srcPort: 33333, dstPort: 53 });
    expect([...udp.payload]).toEqual([0xab, 0xcd, 0xef]);
    // The same datagram claiming another source address fails its checksum.
    expect(parseUdp({ ...ip, src: ipv4("10.0.2.16") })).toBeUndefined();
  });

  it("takes a zero checksum as none, and refuses a length that lies", () => {
    const frame = buildUdp(header, 1000, 2000, new Uint8Array(10));
    frame[L4_OFFSET + 6] = 0;
    frame[L4_OFFSET + 7] = 0;
    expect(parseUdp(ipOf(frame))).toBeDefined();
    frame[L4_OFFSET + 5] = 200;
    expect(parseUdp(ipOf(frame))).toBeUndefined();
    frame[L4_OFFSET + 5] = 7;
    expect(parseUdp(ipOf(frame))).toBeUndefined();
  });
});

describe("TCP", () => {
  /** A Linux SYN from 10.0.2.15:40000 to 10.0.2.2:80: MSS 1460, SACK-permitted, timestamps, WS 7. */
  function linuxSyn(): Uint8Array {
    const frame = allocIpv4Frame({ ...header, protocol: IP_PROTOCOL.tcp }, 40);
    frame.set(hex("9c40 0050 01020304 00000000 a002 faf0 0000 0000" + "020405b4 0402080a 0001e240 00000000 01030307"), L4_OFFSET);
    const sum = finish(sum16(frame, L4_OFFSET, L4_OFFSET + 40, pseudoSum(header.src, header.dst, IP_PROTOCOL.tcp, 40)));
    frame.set([sum >> 8, sum & 0xff], L4_OFFSET + 16);
    return frame;
  }

  it("decodes Linux's SYN and its options", () => {
    const seg = parseTcp(ipOf(linuxSyn()))!;
    expect(seg).toMatchObject({ srcPort: 40000, dstPort: 80, seq: 0x01020304, ack: 0, flags: TCP_FLAG.syn, window: 64240 });
    expect(seg.options).toEqual({ mss: 1460, sackPermitted: true, timestamp: true, windowScale: 7 });
  });

  it("refuses a bad checksum and impossible header lengths; stops at a broken option", () => {
    const frame = linuxSyn();
    frame[L4_OFFSET + 20 + 4] = 9; // option kind changed: checksum now wrong
    expect(parseTcp(ipOf(frame))).toBeUndefined();

    const ip = ipOf(linuxSyn());
    const short = { ...ip, payload: ip.payload.slice() };
    short.payload[12] = 0x40; // data offset 4 words
    expect(parseTcp(short)).toBeUndefined();
    short.payload[12] = 0xf0; // 60 bytes in a 40-byte segment
    expect(parseTcp(short)).toBeUndefined();

    // An option whose length runs past the header ends option parsing; the segment stays.
    const bent = linuxSyn();
    bent[L4_OFFSET + 20 + 1] = 40;
    const sum = finish(sum16(bent.fill(0, L4_OFFSET + 16, L4_OFFSET + 18), L4_OFFSET, L4_OFFSET + 40, pseudoSum(header.src, header.dst, IP_PROTOCOL.tcp, 40)));
    bent.set([sum >> 8, sum & 0xff], L4_OFFSET + 16);
    expect(parseTcp(ipOf(bent))!.options).toEqual({});
  });

  it("round-trips a SYN-ACK with options and a data segment", () => {
    const synAck = parseTcp(ipOf(buildTcp(header, 80, 40000, { seq: 5, ack: 0x01020305, flags: TCP_FLAG.syn | TCP_FLAG.ack, window: 65535, mss: 1460, windowScale: 3 })))!;
    expect(synAck.options).toEqual({ mss: 1460, windowScale: 3 });
    const data = parseTcp(ipOf(buildTcp(header, 80, 40000, { seq: 0xfffffff0, ack: 1, flags: TCP_FLAG.ack | TCP_FLAG.psh, window: 100, payload: hex("0102030405") })))!;
    expect(data.seq).toBe(0xfffffff0);
    expect([...data.payload]).toEqual([1, 2, 3, 4, 5]);
  });

  it("compares sequence numbers across the wrap", () => {
    expect(seqLt(0xfffffff0, 0x10)).toBe(true);
    expect(seqGt(0x10, 0xfffffff0)).toBe(true);
    expect(seqLt(5, 5)).toBe(false);
  });
});
