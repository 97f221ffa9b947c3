// The Electron shell's start-up, run against a stand-in for Electron's API (the binary cannot
// run here): a second instance quits without running the ready handler; the window shows before
// the default guest's build ends and the build's progress reaches it; the tray menu is set again
// when the build changes what can start, and lists each guest's state as the page's sessions
// change, choosing a guest asking the page to start it or bring it forward; without a tray,
// closing the last window quits.
import { EventEmitter } from "node:events";
import { mkdirSync, mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";

const fake = vi.hoisted(() => {
  const state = {
    lock: true,
    packaged: false,
    quits: 0,
    whenReady: 0,
    /** Chromium switches the shell appended, and how many times whenReady had been called then. */
    switches: [] as { name: string; value: string | undefined; afterReady: number }[],
    builds: 0,
    trayShown: false,
    windows: [] as { sent: [string, unknown][]; loaded: string[] }[],
    menus: [] as unknown[],
    /** ipcMain.handle's handlers, by channel. */
    handlers: new Map<string, (event: unknown, ...args: unknown[]) => unknown>(),
    app: undefined as unknown as EventEmitter,
    ready: undefined as (() => void) | undefined,
    build: undefined as unknown as { release(error?: Error): void; progress?: NodeJS.WritableStream },
  };
  return state;
});

vi.mock("electron", async () => {
  const { EventEmitter: Emitter } = await import("node:events");
  const app = Object.assign(new Emitter(), {
    enableSandbox: () => {},
    commandLine: { appendSwitch: (name: string, value?: string) => void fake.switches.push({ name, value, afterReady: fake.whenReady }) },
    requestSingleInstanceLock: () => fake.lock,
    quit: () => void fake.quits++,
    whenReady: () => {
      fake.whenReady++;
      return new Promise<void>((resolve) => (fake.ready = resolve));
    },
  });
  Object.defineProperty(app, "isPackaged", { get: () => fake.packaged });
  fake.app = app;
  const all: FakeWindow[] = [];
  class FakeWindow {
    readonly sent: [string, unknown][] = [];
    readonly loaded: string[] = [];
    readonly webContents = Object.assign(new Emitter(), {
      send: (channel: string, value: unknown) => void this.sent.push([channel, value]),
      isLoading: () => false,
    });
    constructor() {
      all.push(this);
      fake.windows.push(this);
    }
    static getAllWindows = (): FakeWindow[] => all;
    loadURL(url: string): Promise<void> {
      this.loaded.push(url);
      return Promise.resolve();
    }
    isDestroyed = (): boolean => false;
    on = (): this => this;
    destroy(): void {}
    isMinimized = (): boolean => false;
    show(): void {}
    focus(): void {}
    restore(): void {}
  }
  class FakeTray extends Emitter {
    setToolTip(): void {}
    setContextMenu(menu: unknown): void {
      fake.menus.push(menu);
    }
    isDestroyed = (): boolean => false;
  }
  return {
    app,
    BrowserWindow: FakeWindow,
    Tray: FakeTray,
    Menu: { buildFromTemplate: (template: unknown) => template },
    nativeImage: { createFromPath: () => ({}) },
    clipboard: { readText: () => "", writeText: () => {} },
    dialog: {},
    session: { defaultSession: { setPermissionRequestHandler: () => {}, setPermissionCheckHandler: () => {} } },
    protocol: { registerSchemesAsPrivileged: () => {}, handle: () => {} },
    net: { fetch: () => Promise.reject(new Error("no fetch here")) },
    ipcMain: {
      handle: (channel: string, handler: (event: unknown, ...args: unknown[]) => unknown) => void fake.handlers.set(channel, handler),
      on: () => {},
      removeHandler: () => {},
      removeListener: () => {},
    },
    MessageChannelMain: class {},
  };
});

vi.mock("node:child_process", async (importOriginal) => {
  const real = await importOriginal<typeof import("node:child_process")>();
  return {
    ...real,
    execFile: (_file: string, _args: string[], _options: unknown, callback: (error: Error | null, stdout: string) => void) =>
      queueMicrotask(() => callback(null, fake.trayShown ? "(true,)\n" : "(false,)\n")),
  };
});

vi.mock("../../../main/guests/builder.js", () => ({
  ensureGuestBuilt: (_library: unknown, _name: string, options: { progress?: NodeJS.WritableStream }) =>
    new Promise<void>((resolve, reject) => {
      fake.builds++;
      fake.build = { progress: options.progress, release: (error) => (error ? reject(error) : resolve()) };
    }),
}));

/** Lets the shell's promise chains run. */
const settle = (): Promise<void> => new Promise((resolve) => setTimeout(resolve, 20));

async function startShell(): Promise<void> {
  vi.resetModules();
  await import("../../../main/electron/main.js");
}

describe("the Electron shell", () => {
  beforeEach(() => {
    vi.stubEnv("UNMACHINE_DATA", mkdtempSync(join(tmpdir(), "unmachine-shell-")));
    Object.assign(fake, { lock: true, packaged: false, quits: 0, whenReady: 0, switches: [], builds: 0, trayShown: false, windows: [], menus: [], handlers: new Map(), ready: undefined });
    (fake.app as EventEmitter | undefined)?.removeAllListeners();
  });
  afterEach(() => vi.unstubAllEnvs());

  it("as a second instance, quits without running the ready handler", async () => {
    fake.lock = false;
    await startShell();
    fake.ready?.();
    await settle();
    expect(fake.quits).toBe(1);
    expect(fake.whenReady).toBe(0);
    expect(fake.windows).toHaveLength(0);
  });

  it("gives its pages' V8 the emulator's flags before the app is ready (Electron reads --js-flags for renderers it starts after)", async () => {
    await startShell();
    expect(fake.switches).toEqual([{ name: "js-flags", value: "--liftoff-only", afterReady: 0 }]);
  });

  it("shows the window before the default guest is built, and sends the build's progress to it", async () => {
    fake.trayShown = true;
    await startShell();
    fake.ready?.();
    await settle();
    expect(fake.windows).toHaveLength(1);
    expect(fake.windows[0]!.loaded).toEqual(["unmachine://app/index.html"]);
    expect(fake.build.progress).toBeDefined();
    fake.build.progress!.write("fetching packages\n");
    await settle();
    const menusBefore = fake.menus.length;
    expect(menusBefore).toBe(1);
    fake.build.release();
    await settle();
    const progress = fake.windows[0]!.sent.filter(([channel]) => channel === "unmachine:build").map(([, p]) => p);
    expect(progress).toEqual([
      { guest: "tiny", state: "building", line: "fetching packages" },
      { guest: "tiny", state: "done", line: 'guest "tiny" is ready' },
    ]);
    // Linux shows a changed tray menu only when it is set again.
    expect(fake.menus.length).toBe(menusBefore + 1);
    // With a tray, closing the window keeps the app in the tray.
    fake.app.emit("window-all-closed");
    expect(fake.quits).toBe(0);
  });

  it("says on the page when the build fails", async () => {
    await startShell();
    fake.ready?.();
    await settle();
    fake.build.release(new Error('building guest "tiny" failed (exit 1); see the lines above'));
    await settle();
    expect(fake.windows[0]!.sent).toContainEqual(["unmachine:build", { guest: "tiny", state: "failed", line: 'building guest "tiny" failed (exit 1); see the lines above' }]);
  });

  it("never builds in a packaged app", async () => {
    fake.packaged = true;
    await startShell();
    fake.ready?.();
    await settle();
    expect(fake.windows).toHaveLength(1);
    expect(fake.builds).toBe(0);
  });

  it("lists each guest's state in the tray as the page starts and stops it; choosing one asks the page to open it", async () => {
    // A built tiny (its files present) in a cache of this test's own.
    const cache = mkdtempSync(join(tmpdir(), "unmachine-cache-"));
    for (const file of ["firmware/bios.bin", "firmware/vgabios-stdvga.bin", "guests/tiny/vmlinuz", "guests/tiny/initrd.img"]) {
      mkdirSync(join(cache, file, ".."), { recursive: true });
      writeFileSync(join(cache, file), "");
    }
    vi.stubEnv("UNMACHINE_CACHE", cache);
    fake.trayShown = true;
    await startShell();
    fake.ready?.();
    await settle();
    type Item = { label?: string; click?: () => void };
    const tinyItem = (): Item | undefined => (fake.menus.at(-1) as Item[]).find((item) => item.label?.startsWith("Tiny Linux"));
    expect(tinyItem()?.label).toBe("Tiny Linux — stopped");

    // The page opens a session for tiny, as its tab starts the guest.
    const invoke = fake.handlers.get("unmachine:invoke")!;
    const page = { senderFrame: { parent: null, url: "unmachine://app/index.html" }, sender: new EventEmitter() };
    const opened = (await invoke(page, "sessions:open", ["tiny"])) as { ok: boolean; value: { id: string } };
    expect(opened.ok).toBe(true);
    expect(tinyItem()?.label).toBe("Tiny Linux — starting");
    await invoke(page, "sessions:report", [opened.value.id, "running", ""]);
    expect(tinyItem()?.label).toBe("Tiny Linux — running");

    // Choosing it asks the page to bring it forward (or start it): the page decides which.
    tinyItem()!.click!();
    expect(fake.windows[0]!.sent).toContainEqual(["unmachine:start-guest", "tiny"]);

    await invoke(page, "sessions:close", [opened.value.id]);
    expect(tinyItem()?.label).toBe("Tiny Linux — stopped");
  });

  it("quits when the last window closes where no tray can be seen", async () => {
    fake.trayShown = false;
    await startShell();
    fake.ready?.();
    await settle();
    expect(fake.menus).toHaveLength(0);
    fake.app.emit("window-all-closed");
    expect(fake.quits).toBe(1);
  });
});
