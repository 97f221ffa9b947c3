// The command contract as the host enforces it: whatever arrives from the page is checked
// against ARG_KINDS before any handler runs, and handlers' failures come back as rejections.

import { describe, expect, it } from "vitest";
import {
  ARG_KINDS,
  ContractError,
  SESSION_STATES,
  checkCommand,
  dispatch,
  isCommandName,
  type BootPlan,
  type CommandHandlers,
  type GuestSummary,
  type SessionInfo,
} from "../../../core/ipc/contract.js";
import { DEFAULT_SETTINGS } from "../../../core/guest/settings.js";

describe("checkCommand", () => {
  it("accepts each command with valid arguments and returns them unchanged", () => {
    expect(checkCommand("host:info", [])).toEqual({ name: "host:info", args: [] });
    expect(checkCommand("guests:list", [])).toEqual({ name: "guests:list", args: [] });
    expect(checkCommand("guests:plan", ["tiny", 128])).toEqual({ name: "guests:plan", args: ["tiny", 128] });
    expect(checkCommand("firmware:get", [])).toEqual({ name: "firmware:get", args: [] });
    expect(checkCommand("sessions:open", ["tiny"])).toEqual({ name: "sessions:open", args: ["tiny"] });
    for (const state of SESSION_STATES) {
      expect(checkCommand("sessions:report", ["s1", state, ""]).args).toEqual(["s1", state, ""]);
    }
    expect(checkCommand("sessions:close", ["s1"]).args).toEqual(["s1"]);
    expect(checkCommand("sessions:list", []).args).toEqual([]);
  });

  it("refuses unknown names, including non-strings and inherited object keys", () => {
    for (const name of ["nope", "HOST:INFO", "", "__proto__", "toString", "constructor", "hasOwnProperty", 1, null, undefined, {}]) {
      expect(() => checkCommand(name, []), String(name)).toThrow(ContractError);
    }
    expect(() => checkCommand("nope", [])).toThrow(/unknown command "nope"/);
  });

  it("refuses arguments that are not an array", () => {
    for (const args of [undefined, null, "tiny", { 0: "tiny", length: 1 }, 5]) {
      expect(() => checkCommand("sessions:open", args)).toThrow(ContractError);
    }
    expect(() => checkCommand("sessions:open", "tiny")).toThrow(/sessions:open: arguments must be an array/);
  });

  it("refuses too few or too many arguments", () => {
    expect(() => checkCommand("guests:plan", ["tiny"])).toThrow(/expected 2 argument\(s\), got 1/);
    expect(() => checkCommand("guests:plan", ["tiny", 128, 1])).toThrow(ContractError);
    expect(() => checkCommand("host:info", ["extra"])).toThrow(ContractError);
    expect(() => checkCommand("sessions:report", ["s1", "running"])).toThrow(ContractError);
  });

  it("refuses a value of the wrong kind, saying which argument", () => {
    expect(() => checkCommand("sessions:open", [42])).toThrow(/argument 1 must be a string/);
    expect(() => checkCommand("sessions:open", [null])).toThrow(ContractError);
    expect(() => checkCommand("sessions:open", [["tiny"]])).toThrow(ContractError);
    expect(() => checkCommand("guests:plan", ["tiny", "128"])).toThrow(/argument 2 must be a number/);
    expect(() => checkCommand("guests:plan", [128, 128])).toThrow(/argument 1 must be a string/);
  });

  it("takes a saved state only as bytes (what Electron's invoke clones; the web shell's JSON cannot carry them)", () => {
    const state = new Uint8Array([0x28, 0xb5, 0x2f, 0xfd]);
    expect(checkCommand("sessions:saveState", ["s1", "", state]).args).toEqual(["s1", "", state]);
    for (const bad of [[0x28, 0xb5], "KLUv/Q==", { 0: 40 }, null]) {
      expect(() => checkCommand("sessions:saveState", ["s1", "", bad])).toThrow(/argument 3 must be a bytes/);
    }
  });

  it("takes a clipboard image as base64 of at most 8 MiB once decoded (the web shell's JSON carries it)", () => {
    const png = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]).toString("base64");
    expect(checkCommand("clipboard:setImage", ["s1", png]).args).toEqual(["s1", png]);
    const largest = "A".repeat(4 * Math.ceil((8 * 1024 * 1024) / 3));
    expect(checkCommand("clipboard:setImage", ["s1", largest]).args[1]).toBe(largest);
    for (const bad of [largest + "AAAA", "not base64!", new Uint8Array([0x89]), null]) {
      expect(() => checkCommand("clipboard:setImage", ["s1", bad])).toThrow(/argument 2 must be a png-base64/);
    }
  });

  it("refuses NaN and infinities as numbers", () => {
    for (const n of [Number.NaN, Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY]) {
      expect(() => checkCommand("guests:plan", ["tiny", n])).toThrow(ContractError);
    }
  });

  it("refuses a session state that is not one of the known states", () => {
    for (const state of ["paused", "RUNNING", "", 1, null, undefined]) {
      expect(() => checkCommand("sessions:report", ["s1", state, "why"])).toThrow(/argument 2 must be a session-state/);
    }
  });

  it("refuses strings over 4096 characters and accepts exactly 4096", () => {
    expect(checkCommand("sessions:open", ["x".repeat(4096)]).args[0]).toHaveLength(4096);
    expect(() => checkCommand("sessions:open", ["x".repeat(4097)])).toThrow(ContractError);
    expect(() => checkCommand("sessions:report", ["s1", "failed", "y".repeat(100_000)])).toThrow(/argument 3/);
  });
});

describe("ARG_KINDS and isCommandName", () => {
  it("names a command for every key of ARG_KINDS", () => {
    const keys = Object.keys(ARG_KINDS);
    expect(keys.length).toBeGreaterThan(0);
    for (const key of keys) expect(isCommandName(key), key).toBe(true);
  });

  it("is false for inherited object keys and non-strings", () => {
    for (const value of ["__proto__", "toString", "constructor", "valueOf", 0, null, undefined, Symbol("host:info")]) {
      expect(isCommandName(value), String(value)).toBe(false);
    }
  });
});

describe("settings arguments", () => {
  it("are checked and normalised by the host, whatever the page sent", async () => {
    const { handlers, calls } = recordingHandlers();
    const sent = { shares: [{ hostPath: "/srv/data", tag: "data", readOnly: 1, extra: "x" }], forwards: [{ hostPort: 8080, guestPort: 80 }], allowHost: "yes" };
    await dispatch(handlers, "settings:set", ["tiny", sent]);
    expect(calls.at(-1)).toEqual(["settings:set", ["tiny", { shares: [{ hostPath: "/srv/data", tag: "data", readOnly: false }], forwards: [{ hostPort: 8080, guestPort: 80 }], allowHost: false, clipboard: false }]]);
  });

  it("refuses a share outside an absolute path, a bad tag, duplicate tags, a bad port", () => {
    const bad: unknown[] = [
      { shares: [{ hostPath: "relative/dir", tag: "a" }] },
      { shares: [{ hostPath: "/srv", tag: "../up" }] },
      { shares: [{ hostPath: "/a", tag: "x" }, { hostPath: "/b", tag: "x" }] },
      { forwards: [{ hostPort: 70000, guestPort: 80 }] },
      { forwards: [{ hostPort: 8080, guestPort: 80 }, { hostPort: 8080, guestPort: 81 }] },
      "shares",
      null,
    ];
    for (const settings of bad) expect(() => checkCommand("settings:set", ["tiny", settings]), JSON.stringify(settings)).toThrow(ContractError);
  });
});

describe("window action arguments", () => {
  it("pass in exactly one of the four shapes, within the agent's ranges", () => {
    expect(checkCommand("agent:windowAction", ["s1", 7, { kind: "move", x: -5, y: 20 }]).args).toEqual(["s1", 7, { kind: "move", x: -5, y: 20 }]);
    expect(checkCommand("agent:windowAction", ["s1", 7, { kind: "resize", width: 300, height: 200 }]).args[2]).toEqual({ kind: "resize", width: 300, height: 200 });
    expect(checkCommand("agent:windowAction", ["s1", 7, { kind: "raise" }]).args[2]).toEqual({ kind: "raise" });
    expect(checkCommand("agent:windowAction", ["s1", 7, { kind: "close" }]).args[2]).toEqual({ kind: "close" });
  });

  it("refuse anything else, naming what is wrong", () => {
    const action = (value: unknown): string => {
      try {
        checkCommand("agent:windowAction", ["s1", 7, value]);
      } catch (error) {
        expect(error).toBeInstanceOf(ContractError);
        return (error as Error).message;
      }
      throw new Error(`accepted ${JSON.stringify(value)}`);
    };
    expect(action({ kind: "minimize" })).toBe("agent:windowAction: argument 3: a window action is move, resize, raise or close");
    expect(action(null)).toMatch(/a window action is move/);
    expect(action({ kind: "move", x: 1 })).toBe("agent:windowAction: argument 3: y must be an integer in -32768..32767");
    expect(action({ kind: "move", x: 1.5, y: 1 })).toMatch(/x must be an integer/);
    expect(action({ kind: "move", x: 40000, y: 1 })).toMatch(/x must be an integer/);
    expect(action({ kind: "resize", width: 0, height: 1 })).toBe("agent:windowAction: argument 3: width must be an integer in 1..65535");
    expect(action({ kind: "close", x: 1 })).toBe("agent:windowAction: argument 3: close takes no x");
    expect(() => checkCommand("agent:windowAction", ["s1", "7", { kind: "raise" }])).toThrow("argument 2 must be a number");
  });
});

function recordingHandlers(): { handlers: CommandHandlers; calls: [string, unknown[]][] } {
  const calls: [string, unknown[]][] = [];
  const session = (id: string): SessionInfo => ({ id, guest: "tiny", state: "running" });
  const guest = (name: string): GuestSummary => ({ name, title: name, description: "", memory: 64, family: "dos", builtIn: false, ready: true });
  const handlers: CommandHandlers = {
    "host:info": () => {
      calls.push(["host:info", []]);
      return { version: "0.1.0", shell: "web", platform: "linux", totalMemoryMiB: 4096, freeMemoryMiB: 2048 };
    },
    "guests:list": () => {
      calls.push(["guests:list", []]);
      return [];
    },
    "guests:plan": async (guest, memory) => {
      calls.push(["guests:plan", [guest, memory]]);
      return { guest, memory } as unknown as BootPlan;
    },
    "firmware:get": () => {
      calls.push(["firmware:get", []]);
      return { bios: { kind: "url", url: "/bios", size: 1 }, vgaBios: { kind: "url", url: "/vga", size: 1 } };
    },
    "sessions:open": (guest) => {
      calls.push(["sessions:open", [guest]]);
      return session(`s-${guest}`);
    },
    "sessions:report": (id, state, reason) => {
      calls.push(["sessions:report", [id, state, reason]]);
      return { id, guest: "tiny", state, reason };
    },
    "sessions:close": (id) => {
      calls.push(["sessions:close", [id]]);
      throw new Error(`no session ${id}`);
    },
    "sessions:list": async () => {
      calls.push(["sessions:list", []]);
      throw new Error("list failed");
    },
    "settings:get": (guest) => {
      calls.push(["settings:get", [guest]]);
      return structuredClone(DEFAULT_SETTINGS);
    },
    "settings:set": (guest, settings) => {
      calls.push(["settings:set", [guest, settings]]);
      return settings;
    },
    "host:pickFolder": () => {
      calls.push(["host:pickFolder", []]);
      return null;
    },
    "host:browse": (path) => {
      calls.push(["host:browse", [path]]);
      return { path, parent: null, folders: [], files: [] };
    },
    "host:checkShare": (path) => {
      calls.push(["host:checkShare", [path]]);
      return { path, sensitive: null };
    },
    "clipboard:setImage": (session, png) => {
      calls.push(["clipboard:setImage", [session, png]]);
      return true;
    },
    "clipboard:set": (session, text) => {
      calls.push(["clipboard:set", [session, text]]);
    },
    "library:add": (path) => {
      calls.push(["library:add", [path]]);
      return guest(path);
    },
    "library:remove": (name, force) => {
      calls.push(["library:remove", [name, force]]);
    },
    "library:reset": (name) => {
      calls.push(["library:reset", [name]]);
      return guest(name);
    },
    "library:set": (name, key, value) => {
      calls.push(["library:set", [name, key, value]]);
      return guest(name);
    },
    "library:export": (name) => {
      calls.push(["library:export", [name]]);
      return null;
    },
    "sessions:saveState": (id, tag) => void calls.push(["sessions:saveState", [id, tag]]),
    "guests:stateAhead": (guest) => {
      calls.push(["guests:stateAhead", [guest]]);
      return null;
    },
    "guests:discardState": (guest) => void calls.push(["guests:discardState", [guest]]),
    "guests:setAsideState": (guest, reason) => void calls.push(["guests:setAsideState", [guest, reason]]),
    "snapshots:list": (guest) => {
      calls.push(["snapshots:list", [guest]]);
      return [];
    },
    "snapshots:restore": (guest, tag) => void calls.push(["snapshots:restore", [guest, tag]]),
    "snapshots:remove": (guest, tag) => void calls.push(["snapshots:remove", [guest, tag]]),
    "agent:windowAction": (session, window, action) => void calls.push(["agent:windowAction", [session, window, action]]),
    "agent:apps": (guest) => {
      calls.push(["agent:apps", [guest]]);
      return { guest, live: false, apps: [] };
    },
    "agent:launch": (id, app) => {
      calls.push(["agent:launch", [id, app]]);
      return { window: 1, pid: 2 };
    },
    "agent:display": (id, width, height) => {
      calls.push(["agent:display", [id, width, height]]);
      return true;
    },
  };
  return { handlers, calls };
}

describe("dispatch", () => {
  it("calls the named handler, and only it, with the checked arguments", async () => {
    const { handlers, calls } = recordingHandlers();
    await expect(dispatch(handlers, "guests:plan", ["tiny", 96])).resolves.toEqual({ guest: "tiny", memory: 96 });
    expect(calls).toEqual([["guests:plan", ["tiny", 96]]]);

    await expect(dispatch(handlers, "sessions:report", ["s1", "failed", "boom"])).resolves.toEqual({
      id: "s1",
      guest: "tiny",
      state: "failed",
      reason: "boom",
    });
    expect(calls[1]).toEqual(["sessions:report", ["s1", "failed", "boom"]]);
    expect(calls).toHaveLength(2);
  });

  it("rejects with a ContractError and runs no handler when the check fails", async () => {
    const { handlers, calls } = recordingHandlers();
    await expect(dispatch(handlers, "guests:plan", ["tiny", Number.NaN])).rejects.toBeInstanceOf(ContractError);
    await expect(dispatch(handlers, "__proto__", [])).rejects.toBeInstanceOf(ContractError);
    await expect(dispatch(handlers, "sessions:open", "tiny")).rejects.toBeInstanceOf(ContractError);
    expect(calls).toEqual([]);
  });

  it("turns a handler's thrown error into a rejection with that error", async () => {
    const { handlers, calls } = recordingHandlers();
    await expect(dispatch(handlers, "sessions:close", ["s9"])).rejects.toThrow("no session s9");
    await expect(dispatch(handlers, "sessions:list", [])).rejects.toThrow("list failed");
    expect(calls.map(([name]) => name)).toEqual(["sessions:close", "sessions:list"]);
  });
});
