// Fuzzing the 9P server: random frames and mutated valid frames (seeded, so a failure replays)
// against a mounted share. The host must stay up: handle() never rejects, every answer is one
// well-formed R-message with the request's tag, and valid requests still work afterwards.

import { describe, expect, it } from "vitest";
import { MemoryBackend } from "../../core/p9/memory-backend.js";
import {
  decodeMessage,
  encodeMessage,
  FileMode,
  MessageType,
  NOFID,
  NOTAG,
  OpenFlags,
  peekHeader,
  type TMessage,
} from "../../core/p9/messages.js";
import { P9Server } from "../../core/p9/server.js";

/** mulberry32: a small seeded PRNG, good enough to spread mutations. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const T_TYPES = Object.entries(MessageType).filter(([name]) => name.startsWith("T")).map(([, id]) => id);

/** Valid requests over fids 0..6 of the share set up by `prepare`. */
function corpus(): TMessage[] {
  const none = { mode: 0, uid: 0, gid: 0, size: 0n, atimeSec: 0n, atimeNsec: 0n, mtimeSec: 0n, mtimeNsec: 0n };
  return [
    { type: "Tversion", tag: NOTAG, msize: 65536, version: "9P2000.L" },
    { type: "Tattach", tag: 1, fid: 9, afid: NOFID, uname: "", aname: "", nUname: 0 },
    { type: "Twalk", tag: 2, fid: 0, newfid: 7, wnames: ["dir", "file"] },
    { type: "Twalk", tag: 2, fid: 0, newfid: 8, wnames: [] },
    { type: "Tgetattr", tag: 3, fid: 2, requestMask: 0x3fffn },
    { type: "Tsetattr", tag: 4, fid: 2, valid: 0x3f, ...none, size: 10n },
    { type: "Tlopen", tag: 5, fid: 3, flags: OpenFlags.RDWR },
    { type: "Tlcreate", tag: 6, fid: 4, name: "new", flags: OpenFlags.RDWR | OpenFlags.CREAT, mode: 0o100644, gid: 0 },
    { type: "Tread", tag: 7, fid: 5, offset: 0n, count: 4096 },
    { type: "Twrite", tag: 8, fid: 5, offset: 3n, data: new Uint8Array([1, 2, 3, 4, 5, 6, 7, 8]) },
    { type: "Treaddir", tag: 9, fid: 6, offset: 0n, count: 512 },
    { type: "Tmkdir", tag: 10, dfid: 1, name: "sub", mode: FileMode.DIR | 0o755, gid: 0 },
    { type: "Tsymlink", tag: 11, fid: 1, name: "sl", symtgt: "file", gid: 0 },
    { type: "Tmknod", tag: 12, dfid: 1, name: "nod", mode: FileMode.CHR | 0o600, major: 1, minor: 5, gid: 0 },
    { type: "Treadlink", tag: 13, fid: 2 },
    { type: "Tlink", tag: 14, dfid: 1, fid: 2, name: "hard" },
    { type: "Trename", tag: 15, fid: 2, dfid: 1, name: "moved" },
    { type: "Trenameat", tag: 16, olddirfid: 1, oldname: "file", newdirfid: 0, newname: "up" },
    { type: "Tunlinkat", tag: 17, dirfid: 1, name: "file", flags: 0 },
    { type: "Tstatfs", tag: 18, fid: 0 },
    { type: "Tfsync", tag: 19, fid: 5, datasync: 0 },
    { type: "Tlock", tag: 20, fid: 5, lockType: 1, flags: 0, start: 0n, length: 10n, procId: 1, clientId: "g" },
    { type: "Tgetlock", tag: 21, fid: 5, lockType: 0, start: 0n, length: 0n, procId: 2, clientId: "g" },
    { type: "Tclunk", tag: 22, fid: 3 },
    { type: "Tremove", tag: 23, fid: 2 },
    { type: "Tflush", tag: 24, oldtag: 3 },
    { type: "Txattrwalk", tag: 25, fid: 2, newfid: 7, name: "" },
    { type: "Txattrcreate", tag: 26, fid: 2, name: "user.x", attrSize: 3n, flags: 0 },
    { type: "Tauth", tag: 27, afid: 7, uname: "", aname: "", nUname: 0 },
  ];
}

async function prepare(server: P9Server): Promise<void> {
  const send = async (m: TMessage): Promise<void> => {
    const reply = decodeMessage(await server.handle(encodeMessage(m)));
    if (reply.type === "Rlerror" && m.type !== "Tmkdir" && m.type !== "Tlcreate") throw new Error(`setup ${m.type} failed: ${reply.ecode}`);
  };
  await send({ type: "Tversion", tag: NOTAG, msize: 65536, version: "9P2000.L" });
  await send({ type: "Tattach", tag: 1, fid: 0, afid: NOFID, uname: "", aname: "", nUname: 0 });
  await send({ type: "Tmkdir", tag: 1, dfid: 0, name: "dir", mode: FileMode.DIR | 0o755, gid: 0 });
  await send({ type: "Twalk", tag: 1, fid: 0, newfid: 1, wnames: ["dir"] });
  await send({ type: "Twalk", tag: 1, fid: 0, newfid: 5, wnames: ["dir"] });
  await send({ type: "Tlcreate", tag: 1, fid: 5, name: `f${Math.random().toString(36).slice(2, 8)}`, flags: OpenFlags.RDWR | OpenFlags.CREAT, mode: 0o100644, gid: 0 });
  await send({ type: "Twalk", tag: 1, fid: 0, newfid: 2, wnames: ["dir"] });
  await send({ type: "Twalk", tag: 1, fid: 0, newfid: 3, wnames: [] });
  await send({ type: "Twalk", tag: 1, fid: 0, newfid: 4, wnames: ["dir"] });
  await send({ type: "Twalk", tag: 1, fid: 0, newfid: 6, wnames: ["dir"] });
  await send({ type: "Tlopen", tag: 1, fid: 6, flags: OpenFlags.RDONLY | OpenFlags.DIRECTORY });
}

function mutate(frame: Uint8Array, random: () => number): Uint8Array {
  const int = (n: number): number => Math.floor(random() * n);
  let out = frame.slice();
  const edits = 1 + int(4);
  for (let e = 0; e < edits; e++) {
    switch (int(7)) {
      case 0: // flip bytes
        for (let k = 0, n = 1 + int(4); k < n && out.length > 0; k++) {
          const at = int(out.length);
          out[at] = out[at]! ^ (1 << int(8));
        }
        break;
      case 1: // set a byte to an edge value
        if (out.length > 0) out[int(out.length)] = [0, 1, 0x7f, 0x80, 0xff][int(5)]!;
        break;
      case 2: // truncate
        out = out.slice(0, int(out.length + 1));
        break;
      case 3: { // append junk
        const extra = new Uint8Array(int(16)).map(() => int(256));
        const grown = new Uint8Array(out.length + extra.length);
        grown.set(out);
        grown.set(extra, out.length);
        out = grown;
        break;
      }
      case 4: // another message type
        if (out.length > 4) out[4] = T_TYPES[int(T_TYPES.length)]!;
        break;
      case 5: // a random u32 somewhere (a fid, a count, a length)
        if (out.length >= 4) new DataView(out.buffer).setUint32(int(out.length - 3), [0, 0xffffffff, 0x7fffffff, int(2 ** 32), int(16)][int(5)]! >>> 0, true);
        break;
      default: // a lying or a corrected size field
        if (out.length >= 4) new DataView(out.buffer).setUint32(0, random() < 0.5 ? out.length : int(2 ** 32), true);
    }
  }
  return out;
}

const NAMES = ["", ".", "..", "a/b", "dir", "file", "new", "sub", "x".repeat(300), "nul\0", "ü", "sl", "hard", "moved"];
const U32_EDGES = [0, 1, 2, 3, 5, 7, 0x200, 0o100, 0o1000, 0xffff, 0x7fffffff, 0xffffffff];
const U64_EDGES = [0n, 1n, 4096n, (1n << 53n) + 1n, (1n << 63n), (1n << 64n) - 1n];

/** A valid message with one field set to an edge value: decodable, so it reaches the server's logic. */
function mutateMessage(message: TMessage, random: () => number): Uint8Array | undefined {
  const pick = <T>(items: readonly T[]): T => items[Math.floor(random() * items.length)]!;
  const fields = Object.keys(message).filter((k) => k !== "type" && k !== "tag");
  if (fields.length === 0) return undefined;
  const field = pick(fields);
  const value = (message as unknown as Record<string, unknown>)[field];
  let next: unknown;
  if (typeof value === "number") next = field.endsWith("fid") ? Math.floor(random() * 10) : pick(U32_EDGES);
  else if (typeof value === "bigint") next = pick(U64_EDGES);
  else if (typeof value === "string") next = pick(NAMES);
  else if (value instanceof Uint8Array) next = new Uint8Array(Math.floor(random() * 3000));
  else if (Array.isArray(value)) next = Array.from({ length: Math.floor(random() * 5) }, () => pick(NAMES));
  try {
    return encodeMessage({ ...message, [field]: next } as TMessage);
  } catch {
    return undefined;
  }
}

function randomFrame(random: () => number): Uint8Array {
  const length = Math.floor(random() * 64);
  const frame = new Uint8Array(length).map(() => Math.floor(random() * 256));
  if (length >= 7 && random() < 0.7) {
    new DataView(frame.buffer).setUint32(0, length, true);
    frame[4] = T_TYPES[Math.floor(random() * T_TYPES.length)]!;
  }
  return frame;
}

/** Checks one answer: a whole R-message with the request's tag (or NOTAG if it had none). */
function checkReply(request: Uint8Array, reply: Uint8Array, context: string): void {
  const header = peekHeader(reply);
  expect(header, context).toBeDefined();
  expect(header!.size, context).toBe(reply.length);
  const message = decodeMessage(reply);
  expect(message.type.startsWith("R"), context).toBe(true);
  expect(message.tag, context).toBe(request.length >= 7 ? peekHeader(request)!.tag : NOTAG);
  expect(reply.length, context).toBeLessThanOrEqual(1024 * 1024);
}

describe("9P server fuzz", () => {
  for (const seed of [0x9e3779b9, 12345, 2024]) {
    it(`survives random and mutated frames (seed ${seed})`, async () => {
      const random = prng(seed);
      const backend = new MemoryBackend({ capacityBytes: 4 * 1024 * 1024 });
      const errors: unknown[] = [];
      const server = new P9Server(backend, { onError: (error) => errors.push(error) });
      await prepare(server);
      const messages = corpus();
      const valid = messages.map((m) => encodeMessage(m));
      const rounds = 2000;
      for (let i = 0; i < rounds; i++) {
        // A mutated Tversion or clunks can end the session; start a new one to keep going deep.
        if (i % 250 === 0 || server.msize === 0 || server.fidCount < 4) await prepare(server);
        const batch: Uint8Array[] = [];
        for (let k = 0; k < 4; k++) {
          const choice = random();
          const at = Math.floor(random() * valid.length);
          const frame = choice < 0.2 ? randomFrame(random)
            : choice < 0.55 ? mutate(valid[at]!, random)
            : mutateMessage(messages[at]!, random) ?? valid[at]!;
          batch.push(frame);
        }
        const replies = await Promise.all(batch.map((frame) => server.handle(frame)));
        for (const [k, reply] of replies.entries()) {
          checkReply(batch[k]!, reply, `seed ${seed} round ${i} frame ${k}: ${[...batch[k]!.subarray(0, 32)].join(",")}`);
        }
      }
      expect(errors, "failures other than P9Error reached the server").toEqual([]);
      // Still serving: a fresh session works end to end.
      await prepare(server);
      const reply = decodeMessage(await server.handle(encodeMessage({ type: "Tgetattr", tag: 77, fid: 0, requestMask: 0x7ffn })));
      expect(reply).toMatchObject({ type: "Rgetattr", tag: 77 });
      expect(await backend.usedBytes()).toBeLessThanOrEqual(backend.capacityBytes);
    });
  }
});
