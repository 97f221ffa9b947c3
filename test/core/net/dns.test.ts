// The DNS codec: queries decoded from bytes written by hand (with compression, EDNS, loops
// and overruns), responses whose answers point at the question, every record type the
// gateway answers, and truncation to the client's UDP size with TC set.

import { describe, expect, it } from "vitest";
import { ipv4 } from "../../../core/net/addr.js";
import { buildDnsResponse, DNS_RCODE, DNS_TYPE, isPlainName, parseDnsQuery, type DnsRecord } from "../../../core/net/dns.js";
import { parseDnsReply } from "../../main/net/guest-peer.js";

function hex(text: string): Uint8Array {
  const clean = text.replace(/\s+/g, "");
  return Uint8Array.from({ length: clean.length / 2 }, (_, i) => parseInt(clean.slice(i * 2, i * 2 + 2), 16));
}

/** A query for example.com A, id 0x1234, RD, as dig sends it (with EDNS when asked). */
function query(edns = false): Uint8Array {
  return hex(
    "1234 0100 0001 0000 0000 " + (edns ? "0001" : "0000") + " 07 6578616d706c65 03 636f6d 00 0001 0001" + (edns ? " 00 0029 1000 00000000 0000" : ""),
  );
}

describe("DNS queries", () => {
  it("decodes the question, RD and EDNS size", () => {
    const q = parseDnsQuery(query(true))!;
    expect(q).toMatchObject({ id: 0x1234, opcode: 0, recursionDesired: true, ednsSize: 4096 });
    expect(q.question).toEqual({ name: "example.com", type: DNS_TYPE.A, klass: 1 });
    expect(parseDnsQuery(query())!.ednsSize).toBeUndefined();
  });

  it("follows a backwards pointer and refuses a loop, a forward pointer, or an overrun", () => {
    // Question name: "www" then a pointer to offset 12 is impossible (itself); build a
    // message whose additional record's name points back at the question's name.
    const withPointer = hex("0001 0000 0001 0000 0000 0001 03 777777 00 0001 0001 c00c 0029 0200 00000000 0000");
    expect(parseDnsQuery(withPointer)!.ednsSize).toBe(512);
    const loop = hex("0001 0000 0001 0000 0000 0000 c00c 0001 0001");
    expect(parseDnsQuery(loop)).toBeUndefined();
    const forward = hex("0001 0000 0001 0000 0000 0000 c010 0001 0001 00");
    expect(parseDnsQuery(forward)).toBeUndefined();
    expect(parseDnsQuery(query().subarray(0, 20))).toBeUndefined();
    const longLabel = hex("0001 0000 0001 0000 0000 0000 40" + "61".repeat(64) + "00 0001 0001");
    expect(parseDnsQuery(longLabel)).toBeUndefined();
  });

  it("ignores responses and passes a question count other than one through for FORMERR", () => {
    const response = query();
    response[2] = response[2]! | 0x80;
    expect(parseDnsQuery(response)).toBeUndefined();
    expect(parseDnsQuery(hex("0001 0100 0000 0000 0000 0000"))!.question).toBeUndefined();
  });

  it("knows a plain host name from anything else", () => {
    expect(isPlainName("localhost")).toBe(true);
    expect(isPlainName("_http._tcp.example.com")).toBe(true);
    for (const bad of ["", "a..b", "a b", "x\u0000y", ".leading", "a".repeat(64)]) expect(isPlainName(bad), JSON.stringify(bad)).toBe(false);
  });
});

describe("DNS responses", () => {
  it("answers with records that point at the question, every type", () => {
    const q = parseDnsQuery(query())!;
    const records: DnsRecord[] = [
      { type: DNS_TYPE.A, address: ipv4("127.0.0.1"), ttl: 60 },
      { type: DNS_TYPE.CNAME, name: "alias.example.com", ttl: 60 },
      { type: DNS_TYPE.MX, preference: 10, exchange: "mx.example.com", ttl: 60 },
      { type: DNS_TYPE.TXT, text: ["v=spf1 -all", "x".repeat(300)], ttl: 60 },
      { type: DNS_TYPE.SRV, priority: 1, weight: 2, port: 443, target: "srv.example.com", ttl: 60 },
      { type: DNS_TYPE.AAAA, address: new Uint8Array(16).fill(1), ttl: 60 },
    ];
    const bytes = buildDnsResponse({ ...q, ednsSize: 4096 }, DNS_RCODE.noError, records);
    const reply = parseDnsReply(bytes);
    expect(reply.id).toBe(0x1234);
    expect(reply.rcode).toBe(0);
    expect(reply.truncated).toBe(false);
    expect(reply.answers.map((a) => a.type)).toEqual(records.map((r) => r.type));
    expect([...reply.answers[0]!.data]).toEqual([127, 0, 0, 1]);
    expect(reply.answers[3]!.data[0]).toBe(11); // "v=spf1 -all"
    expect(reply.answers[3]!.data.length).toBe(12 + 256 + 46);
    // Header flags: QR, RD echoed, RA.
    expect(bytes[2]).toBe(0x81);
    expect(bytes[3]! & 0x80).toBe(0x80);
    // The first answer's name is a pointer to offset 12.
    expect(bytes[12 + 17]).toBe(0xc0);
    expect(bytes[12 + 18]).toBe(0x0c);
  });

  it("keeps within 512 bytes without EDNS: drops answers from the end and sets TC", () => {
    const q = parseDnsQuery(query())!;
    const many: DnsRecord[] = Array.from({ length: 60 }, (_, i) => ({ type: DNS_TYPE.A, address: ipv4(`10.0.0.${i}`), ttl: 1 }));
    const small = buildDnsResponse(q, DNS_RCODE.noError, many);
    expect(small.length).toBeLessThanOrEqual(512);
    const reply = parseDnsReply(small);
    expect(reply.truncated).toBe(true);
    expect(reply.answers.length).toBeGreaterThan(20);
    const big = buildDnsResponse(parseDnsQuery(query(true))!, DNS_RCODE.noError, many);
    expect(parseDnsReply(big).answers.length).toBe(60);
  });

  it("sends NXDOMAIN and NOTIMP with the question echoed", () => {
    const q = parseDnsQuery(query())!;
    expect(parseDnsReply(buildDnsResponse(q, DNS_RCODE.nxDomain)).rcode).toBe(3);
    expect(parseDnsReply(buildDnsResponse({ ...q, question: undefined }, DNS_RCODE.formErr)).rcode).toBe(1);
  });
});
