// Clipboard sync as a user sees it: copy on the host, paste in the guest and the other way,
// with no text bouncing back, nothing over the cap, and nothing copied before the guest started.
import { describe, expect, it } from "vitest";
import { ClipboardSync, type GuestClipboard } from "../../../core/agent/clipboard-sync.js";
import { Emitter } from "../../../core/disposable.js";

function setup(initialHost = "") {
  let host = initialHost;
  let writesFail = false;
  const hostWrites: string[] = [];
  const guestSets: string[] = [];
  const guestChanges = new Emitter<string>();
  const guest: GuestClipboard = { set: (t) => guestSets.push(t), onChange: guestChanges.event };
  let tick: (() => void) | undefined;
  const sync = new ClipboardSync(
    { readText: async () => host, writeText: async (t) => {
      if (writesFail) throw new Error("no focus");
      host = t;
      hostWrites.push(t);
    } },
    guest,
    { setInterval: (fn) => (tick = fn), clearInterval: () => (tick = undefined), maxLength: 100 },
  );
  const poll = async (): Promise<void> => {
    tick?.();
    await new Promise((r) => setTimeout(r, 0));
  };
  return { sync, poll, setHost: (t: string) => (host = t), guestCopies: (t: string) => guestChanges.fire(t), hostWrites, guestSets, ticking: () => tick !== undefined, failWrites: () => (writesFail = true) };
}

describe("ClipboardSync", () => {
  it("never sends what the host held before the guest started, then sends each later copy once", async () => {
    const s = setup("a password copied before the guest started");
    await s.poll();
    await s.poll();
    expect(s.guestSets).toEqual([]);
    s.setHost("copied on the host");
    await s.poll();
    await s.poll();
    expect(s.guestSets).toEqual(["copied on the host"]);
  });

  it("keeps the host's earlier text from the guest even when the guest copied first", async () => {
    const s = setup("copied before the start");
    // The guest copies before the host clipboard was first read, and the write to the host fails.
    s.failWrites();
    s.guestCopies("copied in the guest");
    await s.poll();
    await s.poll();
    expect(s.guestSets).toEqual([]);
    s.setHost("copied on the host later");
    await s.poll();
    expect(s.guestSets).toEqual(["copied on the host later"]);
  });

  it("puts the guest's copies on the host and does not send them back", async () => {
    const s = setup();
    await s.poll();
    s.guestCopies("copied in the guest");
    await s.poll();
    await s.poll();
    expect(s.hostWrites).toEqual(["copied in the guest"]);
    expect(s.guestSets).toEqual([]);
  });

  it("skips text over the cap, and stops polling when disposed", async () => {
    const s = setup();
    await s.poll();
    s.setHost("x".repeat(101));
    await s.poll();
    s.guestCopies("y".repeat(101));
    expect(s.guestSets).toEqual([]);
    expect(s.hostWrites).toEqual([]);
    s.sync.dispose();
    expect(s.ticking()).toBe(false);
  });
});

describe("ClipboardSync with images", () => {
  function imageSetup() {
    let text = "";
    let image: Uint8Array | undefined;
    const hostImageWrites: Uint8Array[] = [];
    const guestImages: Uint8Array[] = [];
    const guestTexts: string[] = [];
    const guestImageChanges = new Emitter<Uint8Array>();
    const guestChanges = new Emitter<string>();
    let tick: (() => void) | undefined;
    new ClipboardSync(
      {
        readText: async () => text,
        writeText: async (t) => {
          text = t;
          image = undefined;
        },
        readImage: async () => image,
        // A host that re-encodes what it is given, as Electron's clipboard may.
        writeImage: async (png) => {
          hostImageWrites.push(png);
          image = Uint8Array.from([...png, 0]);
          text = "";
        },
      },
      { set: (t) => guestTexts.push(t), onChange: guestChanges.event, setImage: (png) => guestImages.push(png) > 0, onImage: guestImageChanges.event },
      { setInterval: (fn) => (tick = fn), clearInterval: () => (tick = undefined), maxImageBytes: 1000 },
    );
    const poll = async (): Promise<void> => {
      tick?.();
      await new Promise((r) => setTimeout(r, 0));
    };
    return {
      poll,
      copyOnHost: (png: Uint8Array | undefined, t = "") => ((image = png), (text = t)),
      guestCopies: (png: Uint8Array) => guestImageChanges.fire(png),
      guestCopiesText: (t: string) => guestChanges.fire(t),
      hostImageWrites,
      guestImages,
      guestTexts,
    };
  }
  const png = (n: number): Uint8Array => Uint8Array.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, n]);

  it("sends an image copied on the host once, and text copied after it", async () => {
    const s = imageSetup();
    s.copyOnHost(png(1));
    await s.poll();
    expect(s.guestImages).toEqual([]);
    s.copyOnHost(png(2));
    await s.poll();
    await s.poll();
    expect(s.guestImages).toEqual([png(2)]);
    s.copyOnHost(undefined, "then text");
    await s.poll();
    expect(s.guestTexts).toEqual(["then text"]);
    expect(s.guestImages).toEqual([png(2)]);
  });

  it("puts the guest's image on the host and never sends it back, even re-encoded", async () => {
    const s = imageSetup();
    await s.poll();
    s.guestCopies(png(3));
    await new Promise((r) => setTimeout(r, 0));
    await s.poll();
    await s.poll();
    expect(s.hostImageWrites).toEqual([png(3)]);
    expect(s.guestImages).toEqual([]);
    expect(s.guestTexts).toEqual([]);
  });

  it("skips images over the cap both ways", async () => {
    const s = imageSetup();
    await s.poll();
    const big = Uint8Array.from({ length: 1001 }, (_, i) => png(0)[i] ?? 7);
    s.copyOnHost(big);
    await s.poll();
    s.guestCopies(big);
    await s.poll();
    expect(s.guestImages).toEqual([]);
    expect(s.hostImageWrites).toEqual([]);
  });
});

describe("ClipboardSync with a host whose images cannot be read", () => {
  it("still carries text", async () => {
    let text = "";
    const guestTexts: string[] = [];
    let tick: (() => void) | undefined;
    new ClipboardSync(
      { readText: async () => text, writeText: async () => {}, readImage: () => Promise.reject(new Error("not allowed")), writeImage: async () => {} },
      { set: (t) => guestTexts.push(t), onChange: new Emitter<string>().event, setImage: () => true, onImage: new Emitter<Uint8Array>().event },
      { setInterval: (fn) => (tick = fn), clearInterval: () => (tick = undefined) },
    );
    const poll = async (): Promise<void> => {
      tick?.();
      await new Promise((r) => setTimeout(r, 0));
    };
    await poll();
    text = "copied on the host";
    await poll();
    expect(guestTexts).toEqual(["copied on the host"]);
  });
});
