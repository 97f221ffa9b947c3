// The desktop guest's X clipboard (the CLIPBOARD selection) and the host's, for real in v86 (a
// Node worker), both ways and both kinds: text and a PNG the host sets are what the guest's own
// xclip reads, and text and a PNG copied with xclip in the guest reach the host byte for byte.
// Text goes by PRIMARY as well: what the host copied is what a middle click pastes, and what is
// selected in the guest (X's old apps copy by selecting) reaches the host.
// The PNGs are larger than one X request (the host's 300 KiB than the agent's 256 KiB, the
// guest's 1.2 MB than xclip's 1 MiB), so X's INCR transfer is used both ways. Skipped, with
// the reason in its title, when the desktop guest is not built (unmachine build desktop).
import { createHash } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { GuestLibrary } from "../../main/guests/library.js";
import { startDesktop, type RunningDesktop } from "../support/desktop.js";
import { noisePng } from "../support/png.js";
import type { AgentSession } from "../../core/agent/session.js";

const library = new GuestLibrary();
const problem = library.problem("desktop");
const title = problem === undefined ? "the desktop guest's X clipboard" : `the desktop guest's X clipboard (skipped: ${problem})`;

/** 300 KiB of noise: more than X's largest request without BIG-REQUESTS. */
const PNG = noisePng(256, 400, 7);
const sha256 = (bytes: Uint8Array): string => createHash("sha256").update(bytes).digest("hex");

/** The next value `event` fires that satisfies `test`, within `timeoutMs`. */
function next<T>(event: (listener: (value: T) => void) => { dispose(): void }, test: (value: T) => boolean, timeoutMs: number, what: string): Promise<T> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      sub.dispose();
      reject(new Error(`no ${what} within ${timeoutMs} ms`));
    }, timeoutMs);
    const sub = event((value) => {
      if (!test(value)) return;
      clearTimeout(timer);
      sub.dispose();
      resolve(value);
    });
  });
}

describe.skipIf(problem !== undefined)(title, () => {
  let desktop: RunningDesktop;
  let agent: AgentSession;

  beforeAll(async () => {
    desktop = await startDesktop(library, "clipboard", { windowShown: true });
    agent = desktop.agent;
  }, 400_000);
  afterAll(async () => {
    await desktop?.stop();
  });

  it("gives the guest's X clients the text the host copied", { timeout: 120_000 }, async () => {
    expect(PNG.length).toBeGreaterThan(256 * 1024);
    agent.setClipboard("copied on the host: héllo ✓");
    const read = await agent.exec("DISPLAY=:0 xclip -o -selection clipboard");
    expect(read.output).toBe("copied on the host: héllo ✓");
    const targets = await agent.exec("DISPLAY=:0 xclip -o -selection clipboard -t TARGETS");
    expect(targets.output.split("\n")).toEqual(expect.arrayContaining(["TARGETS", "UTF8_STRING", "STRING"]));
    // STRING is Latin-1: é is one byte, ✓ has none.
    const latin1 = await agent.exec("DISPLAY=:0 xclip -o -selection clipboard -t STRING | od -An -tx1 | tr -d ' \\n'");
    expect(latin1.output).toBe(Buffer.from("copied on the host: héllo ?", "latin1").toString("hex"));
    const primary = await agent.exec("DISPLAY=:0 xclip -o -selection primary");
    expect(primary.output).toBe("copied on the host: héllo ✓");
  });

  it("gives the guest's X clients the PNG the host copied, byte for byte", { timeout: 120_000 }, async () => {
    expect(agent.setClipboardImage(PNG)).toBe(true);
    const targets = await agent.exec("DISPLAY=:0 xclip -o -selection clipboard -t TARGETS");
    expect(targets.output.split("\n")).toContain("image/png");
    const read = await agent.exec("DISPLAY=:0 xclip -o -selection clipboard -t image/png | sha256sum", { timeoutMs: 60_000 });
    expect(read.output.split(" ")[0]).toBe(sha256(PNG));
    // An image is no selection: a middle click no longer pastes the text copied before it.
    const primary = await agent.exec("DISPLAY=:0 xclip -o -selection primary; echo status=$?");
    expect(primary.output).not.toContain("héllo");
    expect(primary.output).toMatch(/status=[1-9]/);
  });

  it("brings text copied in the guest to the host", { timeout: 120_000 }, async () => {
    const text = "copied in the guest: ünïcode ✓";
    const arrived = next(agent.onClipboard, (t) => t === text, 30_000, "clipboard text from the guest");
    const copy = await agent.exec(`printf '%s' '${text}' | DISPLAY=:0 xclip -i -selection clipboard >/dev/null 2>&1`);
    expect(copy.status).toBe(0);
    expect(await arrived).toBe(text);
  });

  it("brings text selected in the guest (PRIMARY) to the host, the newest of the two selections winning", { timeout: 120_000 }, async () => {
    const selected = "selected in the guest: ✓ ünïcode";
    const arrived = next(agent.onClipboard, (t) => t === selected, 30_000, "selected text from the guest");
    const select = await agent.exec(`printf '%s' '${selected}' | DISPLAY=:0 xclip -i -selection primary >/dev/null 2>&1`);
    expect(select.status).toBe(0);
    expect(await arrived).toBe(selected);
    const copied = "copied after it";
    const again = next(agent.onClipboard, (t) => t === copied, 30_000, "clipboard text from the guest");
    await agent.exec(`printf '%s' '${copied}' | DISPLAY=:0 xclip -i -selection clipboard >/dev/null 2>&1`);
    expect(await again).toBe(copied);
  });

  it("brings a PNG copied in the guest to the host, byte for byte", { timeout: 180_000 }, async () => {
    // 1.2 MB: more than xclip puts in one request even with BIG-REQUESTS, so it sends INCR.
    const png = noisePng(640, 640, 11);
    expect(png.length).toBeGreaterThan(1024 * 1024);
    const base64 = Buffer.from(png).toString("base64");
    await agent.exec("rm -f /tmp/copied.b64");
    for (let at = 0; at < base64.length; at += 48_000) {
      const part = await agent.exec(`printf '%s' '${base64.slice(at, at + 48_000)}' >> /tmp/copied.b64`);
      expect(part.status).toBe(0);
    }
    const decoded = await agent.exec("base64 -d /tmp/copied.b64 > /tmp/copied.png && sha256sum /tmp/copied.png");
    expect(decoded.output.split(" ")[0]).toBe(sha256(png));
    const arrived = next(agent.onClipboardImage, (image) => image.length === png.length, 60_000, "clipboard image from the guest");
    const copy = await agent.exec("DISPLAY=:0 xclip -i -selection clipboard -t image/png /tmp/copied.png >/dev/null 2>&1");
    expect(copy.status).toBe(0);
    expect(sha256(await arrived)).toBe(sha256(png));
  });
});
