// DNS messages (RFC 1035 §4): query decode (one question, compressed names with bounded
// pointer chasing, an EDNS OPT record from RFC 6891 noted) and response encode. Answers point
// back at the question's name (offset 12); a response larger than the client's UDP limit
// (512 bytes, or its EDNS size up to 1232) loses answers from the end and gets TC set.

import type { Ipv4 } from "./addr.js";
import { ByteReader, ByteWriter, Malformed } from "./wire.js";

export const DNS_PORT = 53;

export const DNS_TYPE = { A: 1, NS: 2, CNAME: 5, PTR: 12, MX: 15, TXT: 16, AAAA: 28, SRV: 33, OPT: 41, ANY: 255 } as const;
export const DNS_CLASS_IN = 1;
export const DNS_RCODE = { noError: 0, formErr: 1, servFail: 2, nxDomain: 3, notImp: 4, refused: 5 } as const;

export interface DnsQuestion {
  /** Dotted, without the trailing dot, as the client spelled it ("" is the root). */
  name: string;
  type: number;
  klass: number;
}

export interface DnsQuery {
  id: number;
  opcode: number;
  recursionDesired: boolean;
  question: DnsQuestion | undefined;
  /** The client's EDNS UDP payload size, when it sent an OPT record. */
  ednsSize: number | undefined;
}

export type DnsRecord = { ttl: number } & (
  | { type: typeof DNS_TYPE.A; address: Ipv4 }
  | { type: typeof DNS_TYPE.AAAA; address: Uint8Array }
  | { type: typeof DNS_TYPE.CNAME | typeof DNS_TYPE.NS | typeof DNS_TYPE.PTR; name: string }
  | { type: typeof DNS_TYPE.MX; preference: number; exchange: string }
  | { type: typeof DNS_TYPE.TXT; text: string[] }
  | { type: typeof DNS_TYPE.SRV; priority: number; weight: number; port: number; target: string }
);

const MAX_NAME = 255;
const MAX_LABEL = 63;
const MAX_POINTERS = 16;
const UDP_LIMIT = 512;
const EDNS_LIMIT = 1232;

function readName(r: ByteReader, message: Uint8Array): string {
  const labels: string[] = [];
  let length = 1;
  let pointers = 0;
  let reader = r;
  for (;;) {
    const n = reader.u8();
    if (n === 0) break;
    if ((n & 0xc0) === 0xc0) {
      const target = ((n & 0x3f) << 8) | reader.u8();
      // Only backwards, a bounded number of times: a pointer loop is malformed.
      if (++pointers > MAX_POINTERS || target >= reader.offset - 2) throw new Malformed("bad name pointer");
      reader = new ByteReader(message, target);
      continue;
    }
    if (n > MAX_LABEL) throw new Malformed("bad label length");
    length += n + 1;
    if (length > MAX_NAME) throw new Malformed("name too long");
    labels.push(String.fromCharCode(...reader.bytes(n)));
  }
  return labels.join(".");
}

export function parseDnsQuery(payload: Uint8Array): DnsQuery | undefined {
  try {
    const r = new ByteReader(payload);
    const id = r.u16();
    const flags = r.u16();
    if (flags & 0x8000) return undefined; // a response, not a query
    const qd = r.u16();
    const an = r.u16();
    const ns = r.u16();
    const ar = r.u16();
    const query: DnsQuery = {
      id,
      opcode: (flags >> 11) & 0x0f,
      recursionDesired: (flags & 0x0100) !== 0,
      question: undefined,
      ednsSize: undefined,
    };
    if (qd !== 1) return query;
    query.question = { name: readName(r, payload), type: r.u16(), klass: r.u16() };
    for (let i = 0; i < an + ns + ar && i < 64; i++) {
      readName(r, payload);
      const type = r.u16();
      const klass = r.u16();
      r.skip(4);
      r.skip(r.u16());
      if (type === DNS_TYPE.OPT && i >= an + ns) query.ednsSize = Math.max(UDP_LIMIT, klass);
    }
    return query;
  } catch (error) {
    if (error instanceof Malformed) return undefined;
    throw error;
  }
}

/** A name the host's resolver may be asked about: letters, digits, '-', '_', dots between. */
export function isPlainName(name: string): boolean {
  return name.length > 0 && name.length <= 253 && /^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*$/.test(name) && name.split(".").every((l) => l.length <= MAX_LABEL);
}

function writeName(w: ByteWriter, name: string): void {
  if (name !== "") {
    for (const label of name.split(".")) {
      const bytes = Uint8Array.from(label.slice(0, MAX_LABEL), (c) => c.charCodeAt(0) & 0xff);
      w.u8(bytes.length).bytes(bytes);
    }
  }
  w.u8(0);
}

function writeRecord(w: ByteWriter, record: DnsRecord): void {
  w.u16(0xc00c).u16(record.type).u16(DNS_CLASS_IN).u32(Math.max(0, Math.floor(record.ttl)));
  const lengthAt = w.length;
  w.u16(0);
  switch (record.type) {
    case DNS_TYPE.A:
      w.u32(record.address);
      break;
    case DNS_TYPE.AAAA:
      w.bytes(record.address.subarray(0, 16));
      break;
    case DNS_TYPE.CNAME:
    case DNS_TYPE.NS:
    case DNS_TYPE.PTR:
      writeName(w, record.name);
      break;
    case DNS_TYPE.MX:
      w.u16(record.preference);
      writeName(w, record.exchange);
      break;
    case DNS_TYPE.TXT:
      for (const text of record.text) {
        const bytes = new TextEncoder().encode(text);
        let at = 0;
        do {
          const part = bytes.subarray(at, at + 255);
          w.u8(part.length).bytes(part);
          at += 255;
        } while (at < bytes.length);
      }
      break;
    case DNS_TYPE.SRV:
      w.u16(record.priority).u16(record.weight).u16(record.port);
      writeName(w, record.target);
      break;
  }
  w.patchU16(lengthAt, w.length - lengthAt - 2);
}

export function buildDnsResponse(query: DnsQuery, rcode: number, records: DnsRecord[] = []): Uint8Array {
  const limit = query.ednsSize === undefined ? UDP_LIMIT : Math.min(query.ednsSize, EDNS_LIMIT);
  const encode = (answers: DnsRecord[], truncated: boolean): Uint8Array => {
    const w = new ByteWriter();
    const flags = 0x8000 | (query.opcode << 11) | (truncated ? 0x0200 : 0) | (query.recursionDesired ? 0x0100 : 0) | 0x0080 | rcode;
    w.u16(query.id).u16(flags).u16(query.question ? 1 : 0).u16(answers.length).u16(0).u16(query.ednsSize !== undefined ? 1 : 0);
    if (query.question) {
      writeName(w, query.question.name);
      w.u16(query.question.type).u16(query.question.klass);
    }
    if (query.question) for (const record of answers) writeRecord(w, record);
    // OPT: root name, our UDP size, no extended rcode or flags (RFC 6891 §6.1.2).
    if (query.ednsSize !== undefined) w.u8(0).u16(DNS_TYPE.OPT).u16(EDNS_LIMIT).u32(0).u16(0);
    return w.finish();
  };
  let answers = records;
  let message = encode(answers, false);
  while (message.length > limit && answers.length > 0) {
    answers = answers.slice(0, -1);
    message = encode(answers, true);
  }
  return message;
}
