// The host's window actions (core/agent/messages.ts windowAction, umagent.c's
// handle_window_action): each action survives encode and decode in the layout umagent.c reads,
// a malformed one (missing, out of range, fields of another action) is refused with its reason,
// and AgentSession sends one only for a window of the latest list, resolving on the agent's pong.

import { describe, expect, it } from "vitest";
import { decodeMessage, encodeMessage, MESSAGE_TYPES, type WindowAction } from "../../../core/agent/messages.js";
import { AgentError } from "../../../core/agent/session.js";
import { helloAgent, type FakeAgent } from "../../support/fake-agent.js";
import { xtermWindow } from "../../support/windows.js";

const XTERM = xtermWindow();

function field(tag: number, value: number[]): number[] {
  const n = value.length;
  return [tag, n & 0xff, (n >> 8) & 0xff, (n >> 16) & 0xff, n >>> 24, ...value];
}
const u32 = (v: number): number[] => [v & 0xff, (v >> 8) & 0xff, (v >> 16) & 0xff, (v >>> 24) & 0xff];

function payload(id: number, fields: [number, number[]][]): Uint8Array {
  return new Uint8Array([1, MESSAGE_TYPES.windowAction, ...u32(id), ...fields.flatMap(([tag, value]) => field(tag, value))]);
}

function refused(bytes: Uint8Array): string {
  const decoded = decodeMessage(bytes);
  if (decoded.ok) throw new Error(`accepted: ${JSON.stringify(decoded.message)}`);
  return decoded.error;
}

describe("windowAction messages", () => {
  const cases: WindowAction[] = [
    { type: "windowAction", id: 3, window: 0x200004, action: { kind: "move", x: -20, y: 32767 } },
    { type: "windowAction", id: 3, window: 7, action: { kind: "resize", width: 1, height: 65535 } },
    { type: "windowAction", id: 3, window: 7, action: { kind: "raise" } },
    { type: "windowAction", id: 3, window: 0xffffffff, action: { kind: "close" } },
  ];
  for (const message of cases) {
    it(`${message.action.kind} round trips`, () => {
      expect(decodeMessage(encodeMessage(message))).toEqual({ ok: true, version: 1, message });
    });
  }

  it("is type 15, its fields as umagent.c reads them: window, action, x and y as signed", () => {
    expect(MESSAGE_TYPES.windowAction).toBe(15);
    expect([...encodeMessage({ type: "windowAction", id: 2, window: 9, action: { kind: "move", x: -1, y: 5 } })]).toEqual([
      1, 15, 2, 0, 0, 0, ...field(1, u32(9)), ...field(2, u32(0)), ...field(3, u32(-1 >>> 0)), ...field(4, u32(5)),
    ]);
    expect([...encodeMessage({ type: "windowAction", id: 2, window: 9, action: { kind: "close" } })]).toEqual([1, 15, 2, 0, 0, 0, ...field(1, u32(9)), ...field(2, u32(3))]);
  });

  it("refuses malformed window actions with the reason", () => {
    expect(refused(payload(0, [[1, u32(9)], [2, u32(2)]]))).toBe("windowAction: request id 0 is reserved");
    expect(refused(payload(4, [[2, u32(2)]]))).toBe("windowAction: field window is missing");
    expect(refused(payload(4, [[1, u32(0)], [2, u32(2)]]))).toBe("windowAction: field window is 0, expected 1..4294967295");
    expect(refused(payload(4, [[1, u32(9)]]))).toBe("windowAction: field action is missing");
    expect(refused(payload(4, [[1, u32(9)], [2, u32(4)]]))).toBe("windowAction: field action is 4, expected 0..3");
    expect(refused(payload(4, [[1, u32(9)], [2, u32(0)], [3, u32(10)]]))).toBe("windowAction: field y is missing");
    expect(refused(payload(4, [[1, u32(9)], [2, u32(0)], [3, u32(40000)], [4, u32(0)]]))).toBe("windowAction: field x is 40000, expected -32768..32767");
    expect(refused(payload(4, [[1, u32(9)], [2, u32(0)], [3, [1, 2]], [4, u32(0)]]))).toBe("windowAction: field x must be 4 bytes, got 2");
    expect(refused(payload(4, [[1, u32(9)], [2, u32(1)], [5, u32(0)], [6, u32(10)]]))).toBe("windowAction: field width is 0, expected 1..65535");
    expect(refused(payload(4, [[1, u32(9)], [2, u32(1)], [5, u32(10)], [6, u32(65536)]]))).toBe("windowAction: field height is 65536, expected 1..65535");
    expect(refused(payload(4, [[1, u32(9)], [2, u32(1)], [3, u32(1)], [5, u32(10)], [6, u32(10)]]))).toBe("windowAction: resize takes no x or y");
    expect(refused(payload(4, [[1, u32(9)], [2, u32(0)], [3, u32(1)], [4, u32(1)], [6, u32(10)]]))).toBe("windowAction: move takes no width or height");
    expect(refused(payload(4, [[1, u32(9)], [2, u32(3)], [3, u32(1)]]))).toBe("windowAction: close takes no position or size");
    expect(refused(payload(4, [[1, u32(9)], [1, u32(9)], [2, u32(3)]]))).toBe("windowAction: field window appears 2 times");
  });

  it("encodeMessage refuses what the agent would refuse", () => {
    expect(() => encodeMessage({ type: "windowAction", id: 1, window: 0, action: { kind: "raise" } })).toThrow(RangeError);
    expect(() => encodeMessage({ type: "windowAction", id: 1, window: 1, action: { kind: "move", x: 32768, y: 0 } })).toThrow(RangeError);
    expect(() => encodeMessage({ type: "windowAction", id: 1, window: 1, action: { kind: "resize", width: 0, height: 1 } })).toThrow(RangeError);
  });
});

const fakeAgent = (capabilities = ["ping", "windows", "window-action"]): FakeAgent => helloAgent(capabilities);

describe("AgentSession window actions", () => {
  it("sends an action for a listed window and resolves on the agent's pong", async () => {
    const { session, send, requests } = fakeAgent();
    send({ type: "windows", windows: [XTERM] });
    const moved = session.windowAction(XTERM.id, { kind: "move", x: 100, y: 80 });
    const raised = session.windowAction(XTERM.id, { kind: "raise" });
    expect(requests).toEqual([
      { type: "windowAction", id: 1, window: XTERM.id, action: { kind: "move", x: 100, y: 80 } },
      { type: "windowAction", id: 2, window: XTERM.id, action: { kind: "raise" } },
    ]);
    send({ type: "pong", id: 2 });
    send({ type: "pong", id: 1 });
    await expect(moved).resolves.toBeUndefined();
    await expect(raised).resolves.toBeUndefined();
    expect(session.state).toBe("ready");
  });

  it("refuses a window the guest does not list, and an agent without window actions, sending nothing", async () => {
    const { session, send, requests } = fakeAgent();
    await expect(session.windowAction(5, { kind: "close" })).rejects.toThrow(new AgentError("the guest shows no window 5"));
    send({ type: "windows", windows: [XTERM] });
    await expect(session.windowAction(5, { kind: "close" })).rejects.toThrow("the guest shows no window 5");
    await expect(session.windowAction(XTERM.id, { kind: "resize", width: 0, height: 4 })).rejects.toThrow(RangeError);
    const old = fakeAgent(["ping", "windows"]);
    old.send({ type: "windows", windows: [XTERM] });
    await expect(old.session.windowAction(XTERM.id, { kind: "raise" })).rejects.toThrow("cannot window-action");
    expect([...requests, ...old.requests]).toEqual([]);
  });

  it("fails an action the agent refuses, with its reason", async () => {
    const { session, send } = fakeAgent();
    send({ type: "windows", windows: [XTERM] });
    const closed = session.windowAction(XTERM.id, { kind: "close" });
    send({ type: "error", id: 1, message: "no such window in the guest's list" });
    await expect(closed).rejects.toThrow("the guest agent refused windowAction: no such window in the guest's list");
  });
});
