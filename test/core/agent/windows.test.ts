// The agent's window, app and launch messages (core/agent/messages.ts, umagent.c's X11 watcher):
// each survives encode and decode, the nested window and app fields are the layout umagent.c
// writes, and every malformed frame (short, lying, duplicated, over a cap, negative where it
// cannot be) is refused with a MessageError's reason, never a throw. Then AgentSession keeps
// the latest list, fires on change only, and answers apps() and launch() by request id.

import { describe, expect, it } from "vitest";
import { encodeFrame } from "../../../core/agent/frame.js";
import { decodeMessage, encodeMessage, LIMITS, MESSAGE_TYPES, type AgentMessage, type GuestWindow } from "../../../core/agent/messages.js";
import { AgentError } from "../../../core/agent/session.js";
import { helloAgent, type FakeAgent } from "../../support/fake-agent.js";
import { xtermWindow } from "../../support/windows.js";

const XTERM = xtermWindow({ title: "xterm — 世界", pid: 118, className: "XTerm" });

/** A field: tag, u32 LE length, value. */
function field(tag: number, value: number[]): number[] {
  const n = value.length;
  return [tag, n & 0xff, (n >> 8) & 0xff, (n >> 16) & 0xff, n >>> 24, ...value];
}
const u32 = (v: number): number[] => [v & 0xff, (v >> 8) & 0xff, (v >> 16) & 0xff, (v >>> 24) & 0xff];
const text = (s: string): number[] => [...new TextEncoder().encode(s)];

/** A window's nested fields as umagent.c's msg_window writes them, with `change` applied. */
function windowFields(change: Record<number, number[] | null> = {}): number[] {
  const base: Record<number, number[]> = {
    1: u32(7),
    2: text("xcalc"),
    3: u32(10),
    4: u32(-5 >>> 0),
    5: u32(226),
    6: u32(320),
    7: u32(1),
    10: u32(5),
    11: u32(-28 >>> 0),
    12: u32(236),
    13: u32(353),
  };
  const out: number[] = [];
  for (const [tag, value] of Object.entries({ ...base, ...change })) if (value !== null) out.push(...field(Number(tag), value));
  return out;
}

function payload(type: number, id: number, fields: number[]): Uint8Array {
  return new Uint8Array([1, type, ...u32(id), ...fields]);
}

function refused(bytes: Uint8Array): string {
  const decoded = decodeMessage(bytes);
  if (decoded.ok) throw new Error(`accepted: ${JSON.stringify(decoded.message)}`);
  return decoded.error;
}

describe("window, app and launch messages", () => {
  const cases: AgentMessage[] = [
    { type: "windows", windows: [] },
    { type: "windows", windows: [XTERM, { id: 9, title: "", x: -32768, y: 32767, width: 0, height: 65535, minimized: true, focused: false, frame: { x: -10, y: -30, width: 1, height: 2 } }] },
    { type: "appsRequest", id: 4 },
    { type: "apps", id: 4, apps: [] },
    { type: "apps", id: 4, apps: [{ id: "xcalc", name: "Xcalc", exec: "xcalc" }, { id: "debian-xterm", name: "XTerm", exec: "xterm", icon: new Uint8Array([0x89, 0x50, 0x4e, 0x47]) }] },
    { type: "launch", id: 5, app: "xcalc" },
    { type: "launched", id: 5, window: 0x800017, pid: 128 },
  ];
  for (const message of cases) {
    it(`${message.type} round trips: ${JSON.stringify(message).slice(0, 70)}`, () => {
      const decoded = decodeMessage(encodeMessage(message));
      expect(decoded).toEqual({ ok: true, version: 1, message });
    });
  }

  it("reads a window as umagent.c writes it: negative coordinates, flags, no pid or class", () => {
    const decoded = decodeMessage(payload(MESSAGE_TYPES.windows, 0, field(1, windowFields())));
    expect(decoded).toEqual({
      ok: true,
      version: 1,
      message: { type: "windows", windows: [{ id: 7, title: "xcalc", x: 10, y: -5, width: 226, height: 320, minimized: true, focused: false, frame: { x: 5, y: -28, width: 236, height: 353 } }] },
    });
  });

  it("takes 256 windows with 1 KiB titles, and refuses a 257th or a longer title", () => {
    const many = Array.from({ length: LIMITS.windows }, (_, i): GuestWindow => ({ ...XTERM, id: i + 1, title: "t".repeat(LIMITS.titleBytes) }));
    expect(decodeMessage(encodeMessage({ type: "windows", windows: many })).ok).toBe(true);
    const tooMany: number[] = [];
    for (let i = 0; i <= LIMITS.windows; i++) tooMany.push(...field(1, windowFields({ 1: u32(i + 1) })));
    expect(refused(payload(MESSAGE_TYPES.windows, 0, tooMany))).toBe("windows: 257 window entries, more than 256");
    expect(refused(payload(MESSAGE_TYPES.windows, 0, field(1, windowFields({ 2: text("é".repeat(513)) }))))).toBe(
      "windows window 0: field title is 1026 bytes, more than the limit of 1024",
    );
    expect(() => encodeMessage({ type: "windows", windows: [...many, { ...XTERM, id: 999 }] })).toThrow(RangeError);
  });

  it("refuses malformed windows with the reason", () => {
    const windows = (fields: number[]): string => refused(payload(MESSAGE_TYPES.windows, 0, fields));
    expect(windows(field(1, windowFields({ 1: null })))).toBe("windows window 0: field id is missing");
    expect(windows(field(1, windowFields({ 1: u32(0) })))).toBe("windows window 0: field id is 0, expected 1..4294967295");
    expect(windows(field(1, windowFields({ 5: [1, 2] })))).toBe("windows window 0: field width must be 4 bytes, got 2");
    expect(windows(field(1, windowFields({ 5: u32(65536) })))).toBe("windows window 0: field width is 65536, expected 0..65535");
    expect(windows(field(1, windowFields({ 3: u32(40000) })))).toBe("windows window 0: field x is 40000, expected -32768..32767");
    expect(windows(field(1, windowFields({ 11: u32(-40000 >>> 0) })))).toBe("windows window 0: field frame y is -40000, expected -32768..32767");
    expect(windows(field(1, windowFields({ 2: [0xc3, 0x28] })))).toBe("windows window 0: field title is not valid UTF-8");
    expect(windows(field(1, windowFields({ 9: text("c".repeat(257)) })))).toBe("windows window 0: field className is 257 bytes, more than the limit of 256");
    expect(windows([...field(1, windowFields()), ...field(1, windowFields())])).toBe("windows: a window id appears twice");
    // A nested field that claims more bytes than its window holds.
    const lying = windowFields();
    lying[1] = 200;
    expect(windows(field(1, lying))).toMatch(/^windows window 0: field 1 claims 200 bytes, only \d+ left$/);
    // Cut short inside a nested field header.
    expect(windows(field(1, [1, 4, 0]))).toBe("windows window 0: field header cut short at byte 0");
    // The outer field itself lies.
    expect(windows([1, 0xff, 0xff, 0, 0])).toBe("windows: field 1 claims 65535 bytes, only 0 left");
  });

  it("refuses malformed apps and launches with the reason", () => {
    const app = (change: Record<number, number[] | null>): number[] => {
      const fields: Record<number, number[] | null> = { 1: text("xcalc"), 2: text("Xcalc"), 3: text("xcalc"), ...change };
      return field(1, Object.entries(fields).flatMap(([tag, value]) => (value === null ? [] : field(Number(tag), value))));
    };
    expect(refused(payload(MESSAGE_TYPES.apps, 0, app({})))).toBe("apps: request id 0 is reserved");
    expect(refused(payload(MESSAGE_TYPES.apps, 3, app({ 3: null })))).toBe("apps app 0: field exec is missing");
    expect(refused(payload(MESSAGE_TYPES.apps, 3, app({ 1: [] })))).toBe("apps: an app has an empty id");
    expect(refused(payload(MESSAGE_TYPES.apps, 3, app({ 4: new Array<number>(LIMITS.iconBytes + 1).fill(0) })))).toBe(
      "apps app 0: field icon is 65537 bytes, more than the limit of 65536",
    );
    const tooMany: number[] = [];
    for (let i = 0; i <= LIMITS.apps; i++) tooMany.push(...app({}));
    expect(refused(payload(MESSAGE_TYPES.apps, 3, tooMany))).toBe("apps: 129 app entries, more than 128");
    expect(refused(payload(MESSAGE_TYPES.launch, 3, field(1, [])))).toBe("launch: the app name is empty or contains a NUL character");
    expect(refused(payload(MESSAGE_TYPES.launched, 3, field(1, u32(7))))).toBe("launched: field pid is missing");
    expect(refused(payload(MESSAGE_TYPES.launched, 3, [...field(1, u32(0)), ...field(2, u32(9))]))).toBe("launched: field window is 0, expected 1..4294967295");
  });
});

/** A guest agent that has said hello; the test sends its messages and reads the host's requests. */
const fakeAgent = (capabilities = ["ping", "exec", "windows", "apps", "launch"]): FakeAgent => helloAgent(capabilities);

describe("AgentSession windows, apps and launch", () => {
  it("keeps the latest window list and fires only when it changes", () => {
    const { session, send } = fakeAgent();
    const seen: string[][] = [];
    session.onWindows((windows) => seen.push(windows.map((w) => `${w.title} ${w.width}x${w.height}+${w.x}+${w.y}`)));
    expect(session.windows).toBeUndefined();
    send({ type: "windows", windows: [XTERM] });
    send({ type: "windows", windows: [XTERM] });
    send({ type: "windows", windows: [{ ...XTERM, x: 100 }] });
    send({ type: "windows", windows: [] });
    expect(seen).toEqual([["xterm — 世界 484x316+45+58"], ["xterm — 世界 484x316+100+58"], []]);
    expect(session.windows).toEqual([]);
  });

  it("lists apps and launches one, matching answers by request id", async () => {
    const { session, send, requests } = fakeAgent();
    const apps = session.apps();
    const launched = session.launch("xcalc");
    expect(requests).toEqual([{ type: "appsRequest", id: 1 }, { type: "launch", id: 2, app: "xcalc" }]);
    send({ type: "launched", id: 2, window: 77, pid: 128 });
    send({ type: "apps", id: 1, apps: [{ id: "xcalc", name: "Xcalc", exec: "xcalc" }] });
    await expect(launched).resolves.toEqual({ window: 77, pid: 128 });
    await expect(apps).resolves.toEqual([{ id: "xcalc", name: "Xcalc", exec: "xcalc" }]);
  });

  it("fails a launch the agent refuses, with its reason", async () => {
    const { session, send } = fakeAgent();
    const launched = session.launch("nothing");
    send({ type: "error", id: 1, message: 'no app named "nothing" in /usr/share/applications' });
    await expect(launched).rejects.toThrow(new AgentError('the guest agent refused launch: no app named "nothing" in /usr/share/applications'));
  });

  it("says at once when the agent cannot list or launch apps", async () => {
    const { session, requests } = fakeAgent(["ping", "exec"]);
    await expect(session.apps()).rejects.toThrow("the guest agent (umagent 1.0.0) cannot list apps; install the agent that comes with this host");
    await expect(session.launch("xcalc")).rejects.toThrow("cannot launch");
    expect(requests).toEqual([]);
  });

  it("disconnects on a malformed window list with the reason, without throwing, keeping the last list", () => {
    const { session, send, emit } = fakeAgent();
    send({ type: "windows", windows: [XTERM] });
    expect(() => emit(encodeFrame(payload(MESSAGE_TYPES.windows, 0, field(1, windowFields({ 5: [1] })))))).not.toThrow();
    expect(session.state).toBe("disconnected");
    expect(session.reason).toBe("malformed message from the agent: windows window 0: field width must be 4 bytes, got 1");
    expect(session.windows).toEqual([XTERM]);
  });
});
