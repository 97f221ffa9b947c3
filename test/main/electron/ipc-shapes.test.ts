// The Electron shell's answers to the page, without Electron's runtime: a failing command
// reaches the page as its own plain message (not "Error invoking remote method ..."), and a
// page's session listeners are added once and removed when it goes away, however often it reloads.
import { EventEmitter } from "node:events";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { PageSessions, replyOf } from "../../../main/electron/ipc-shapes.js";
import { ElectronBridge, unwrapReply, type PreloadApi } from "../../../renderer/bridge/electron-bridge.js";
import type { HostEvent } from "../../../core/ipc/contract.js";
import { checkCommand } from "../../../core/ipc/contract.js";

describe("replyOf", () => {
  it("answers a result as {ok: true, value}", async () => {
    await expect(replyOf(() => Promise.resolve({ id: "s1" }))).resolves.toEqual({ ok: true, value: { id: "s1" } });
  });

  it("answers a failure as {ok: false, error} with the plain message, never throwing", async () => {
    const reply = await replyOf(() => Promise.reject(new Error('no guest named "dos" (known guests: tiny)')));
    expect(reply).toEqual({ ok: false, error: 'no guest named "dos" (known guests: tiny)' });
    // What crosses Electron's IPC is a plain object: it survives a structured clone unchanged.
    expect(structuredClone(reply)).toEqual(reply);
  });

  it("gives the page an Error with exactly the host's message", async () => {
    const reply = await replyOf(() => Promise.reject(new Error("share:open: argument 2 must be a string")));
    expect(() => unwrapReply(reply)).toThrow(new Error("share:open: argument 2 must be a string"));
    expect(unwrapReply(await replyOf(() => Promise.resolve(42)))).toBe(42);
    expect(unwrapReply(await replyOf(() => Promise.resolve(null)))).toBeNull();
    expect(() => unwrapReply(undefined)).toThrow(/malformed/);
  });
});

describe("PageSessions", () => {
  function page(): EventEmitter & { navigate(): void } {
    const contents = new EventEmitter() as EventEmitter & { navigate(): void };
    contents.navigate = () => void contents.emit("did-start-navigation", { isMainFrame: true, isSameDocument: false });
    return contents;
  }
  const listeners = (c: EventEmitter): number =>
    c.listenerCount("destroyed") + c.listenerCount("render-process-gone") + c.listenerCount("did-start-navigation");

  it("closes a page's sessions when it reloads, and adds no listeners per reload", () => {
    const closed: string[] = [];
    const pages = new PageSessions<EventEmitter>((id) => closed.push(id));
    const contents = page();
    for (let reload = 0; reload < 20; reload++) {
      pages.track(contents, `a${reload}`);
      pages.track(contents, `b${reload}`);
      expect(listeners(contents)).toBe(3);
      contents.emit("did-start-navigation", { isMainFrame: false, isSameDocument: false });
      contents.emit("did-start-navigation", { isMainFrame: true, isSameDocument: true });
      expect(closed).toHaveLength(reload * 2);
      contents.navigate();
      expect(listeners(contents)).toBe(0);
    }
    expect(closed.slice(-2)).toEqual(["a19", "b19"]);
  });

  it("knows which page opened a session, for its host events, until that page goes away", () => {
    const pages = new PageSessions<EventEmitter>(() => {});
    const first = page();
    const second = page();
    pages.track(first, "one");
    pages.track(second, "two");
    expect(pages.pageOf("one")).toBe(first);
    expect(pages.pageOf("two")).toBe(second);
    expect(pages.pageOf("three")).toBeUndefined();
    first.navigate();
    expect(pages.pageOf("one")).toBeUndefined();
  });

  it("closes them when the page is destroyed or its renderer is gone", () => {
    const closed: string[] = [];
    const pages = new PageSessions<EventEmitter>((id) => closed.push(id));
    const first = page();
    const second = page();
    pages.track(first, "one");
    pages.track(second, "two");
    first.emit("destroyed");
    second.emit("render-process-gone");
    expect(closed).toEqual(["one", "two"]);
    expect(listeners(first) + listeners(second)).toBe(0);
  });
});

describe("host events through Electron's preload", () => {
  it("reach the page as a guest's windows, checked; anything else sent there is dropped", () => {
    let relay: (event: unknown) => void = () => {};
    let stopped = false;
    const api = { onEvent: (listener: (event: unknown) => void) => ((relay = listener), () => void (stopped = true)) } as unknown as PreloadApi;
    const seen: HostEvent[] = [];
    const subscription = new ElectronBridge(api).onEvent((event) => seen.push(event));
    const xterm = { id: 7, title: "xterm", x: 5, y: 20, width: 484, height: 316, minimized: false, focused: true, frame: { x: 0, y: 0, width: 494, height: 340 } };
    relay({ type: "windows", session: "s1", windows: [xterm] });
    relay({ type: "windows", session: "s1", windows: [{ ...xterm, frame: null }] });
    relay({ type: "windows", session: "s1", windows: [{ ...xterm, id: "7" }] });
    relay({ type: "clipboard", session: "s1", text: "x" });
    relay(null);
    expect(seen).toEqual([{ type: "windows", session: "s1", windows: [xterm] }]);
    subscription.dispose();
    expect(stopped).toBe(true);
  });
});

describe("what the host pushes to the page through Electron", () => {
  it("relies on Electron 45: webContents.send serializes its arguments with the Structured Clone Algorithm (a window list arrives as plain data), and a tray item's submenu is an array of items", () => {
    const types = readFileSync(join(import.meta.dirname, "..", "..", "..", "node_modules", "electron", "electron.d.ts"), "utf8");
    expect(types).toMatch(/Send an asynchronous message to the renderer process via `channel`, along with\s*\*\s*arguments\. Arguments will be serialized with the Structured Clone Algorithm/);
    expect(types).toMatch(/submenu\?: \(MenuItemConstructorOptions\[\]\) \| \(Menu\);/);
    const event = { type: "windows", session: "s1", windows: [{ id: 7, title: "xterm", x: 1, y: 2, width: 3, height: 4, minimized: false, focused: true, frame: { x: 0, y: 0, width: 5, height: 6 } }] };
    expect(structuredClone(event)).toEqual(event);
  });
});

describe("a page's saved state through Electron's IPC", () => {
  it("relies on Electron 45: ipcRenderer.invoke serializes its arguments with the Structured Clone Algorithm, which carries bytes whole", () => {
    const types = readFileSync(join(import.meta.dirname, "..", "..", "..", "node_modules", "electron", "electron.d.ts"), "utf8");
    expect(types).toMatch(/expect a result\s*\*\s*asynchronously\. Arguments will be serialized with the Structured Clone\s*\*\s*Algorithm/);
    const state = Uint8Array.from({ length: 4096 }, (_, i) => (i * 2654435761) >>> 24);
    const received = structuredClone(state);
    expect(received).toBeInstanceOf(Uint8Array);
    expect(received).toEqual(state);
    // The main process checks what arrives as a Uint8Array (a Node Buffer is one too).
    expect(checkCommand("sessions:saveState", ["s1", "", received]).args[2]).toBe(received);
    expect(checkCommand("sessions:saveState", ["s1", "", Buffer.from(state)]).args[2]).toEqual(Buffer.from(state));
    expect(() => checkCommand("sessions:saveState", ["s1", "", Array.from(state)])).toThrow("sessions:saveState: argument 3 must be a bytes");
  });
});
