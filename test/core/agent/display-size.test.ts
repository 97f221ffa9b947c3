// The host asking the guest for a screen size (agent message setDisplay, type 16): the request
// is clamped to what v86's VGA shows, survives encode and decode, has the layout umagent.c's
// handle_set_display reads, is refused when malformed, and AgentSession sends it only to an
// agent that said it can ("display.size"), never queued before the handshake.

import { describe, expect, it } from "vitest";
import { clampDisplaySize, DISPLAY_BOUNDS } from "../../../core/agent/display-size.js";
import { decodeMessage, encodeMessage, MESSAGE_TYPES, type AgentMessage } from "../../../core/agent/messages.js";
import { AgentSession } from "../../../core/agent/session.js";
import { helloAgent } from "../../support/fake-agent.js";

const u32 = (v: number): number[] => [v & 0xff, (v >> 8) & 0xff, (v >> 16) & 0xff, (v >>> 24) & 0xff];
const field = (tag: number, value: number[]): number[] => [tag, ...u32(value.length), ...value];

function refused(bytes: number[]): string {
  const decoded = decodeMessage(new Uint8Array(bytes));
  if (decoded.ok) throw new Error(`accepted: ${JSON.stringify(decoded.message)}`);
  return decoded.error;
}

describe("clampDisplaySize", () => {
  it("keeps a size the VGA shows, the width a multiple of 8", () => {
    expect(clampDisplaySize(800, 600)).toEqual({ width: 800, height: 600 });
    expect(clampDisplaySize(1023.7, 700.2)).toEqual({ width: 1016, height: 700 });
  });

  it("brings a size within 640x480 .. 1920x1200 and 8 MiB of VGA memory", () => {
    expect(clampDisplaySize(100, 50)).toEqual({ width: 640, height: 480 });
    expect(clampDisplaySize(5000, 300)).toEqual({ width: 1920, height: 480 });
    const big = clampDisplaySize(1920, 1200);
    expect(big.width).toBe(1920);
    expect(big.width * big.height * 4).toBeLessThanOrEqual(8 * 1024 * 1024);
    expect(big.height).toBe(Math.floor(DISPLAY_BOUNDS.maxPixels / 1920));
    expect(clampDisplaySize(Number.NaN, Number.POSITIVE_INFINITY)).toEqual({ width: 640, height: 480 });
  });
});

describe("setDisplay message", () => {
  it("is type 16 and survives encode and decode", () => {
    expect(MESSAGE_TYPES.setDisplay).toBe(16);
    const message: AgentMessage = { type: "setDisplay", width: 1024, height: 768 };
    expect(decodeMessage(encodeMessage(message))).toEqual({ ok: true, version: 1, message });
  });

  it("lays out width (1) and height (2) as u32 fields", () => {
    expect([...encodeMessage({ type: "setDisplay", width: 800, height: 600 })]).toEqual([1, 16, 0, 0, 0, 0, ...field(1, u32(800)), ...field(2, u32(600))]);
  });

  it("refuses a missing, zero, oversized or short field", () => {
    expect(refused([1, 16, 0, 0, 0, 0, ...field(1, u32(800))])).toMatch(/height/);
    expect(refused([1, 16, 0, 0, 0, 0, ...field(1, u32(0)), ...field(2, u32(600))])).toMatch(/width/);
    expect(refused([1, 16, 0, 0, 0, 0, ...field(1, u32(70000)), ...field(2, u32(600))])).toMatch(/width/);
    expect(refused([1, 16, 0, 0, 0, 0, ...field(1, [0x20, 3]), ...field(2, u32(600))])).toMatch(/width/);
    expect(() => encodeMessage({ type: "setDisplay", width: 0, height: 600 })).toThrow(RangeError);
  });
});

/** A session whose agent said hello with `capabilities`; `sent` collects what the host sends after. */
function session(capabilities: string[], hello = true): { session: AgentSession; sent: AgentMessage[]; helloNow: () => void } {
  const agent = helloAgent(capabilities, { hello });
  return { session: agent.session, sent: agent.requests, helloNow: agent.hello };
}

describe("AgentSession.setDisplaySize", () => {
  it("sends the clamped size to an agent that can set it", () => {
    const { session: agent, sent } = session(["display", "display.size"]);
    expect(agent.setDisplaySize(801, 300)).toBe(true);
    expect(sent).toEqual([{ type: "setDisplay", width: 800, height: 480 }]);
  });

  it("sends nothing to an older agent, nor before the handshake (nothing is queued)", () => {
    const older = session(["display"]);
    expect(older.session.setDisplaySize(800, 600)).toBe(false);
    expect(older.sent).toEqual([]);
    const early = session(["display.size"], false);
    expect(early.session.setDisplaySize(800, 600)).toBe(false);
    early.helloNow();
    expect(early.sent).toEqual([]);
  });
});
