// Where a started guest goes among the page's tabs, and which tab comes forward when one closes.
import { describe, expect, it } from "vitest";
import { activeAfterClose, placeStart, type TabView } from "../../../core/guest/guest-tabs.js";

const tab = (id: string, guest: string | undefined, running: boolean, started = running): TabView => ({ id, guest, running, started });

describe("placeStart", () => {
  it("brings a running library guest's tab forward instead of starting a second copy", () => {
    const tabs = [tab("a", "tiny", true), tab("b", "dos", true)];
    expect(placeStart(tabs, "b", "tiny")).toEqual({ kind: "front", id: "a" });
  });

  it("starts a guest that ran before in its own tab again", () => {
    const tabs = [tab("a", "tiny", false, true), tab("b", "dos", true)];
    expect(placeStart(tabs, "b", "tiny")).toEqual({ kind: "start-in", id: "a" });
  });

  it("uses the active tab when nothing was ever started in it", () => {
    expect(placeStart([tab("a", undefined, false)], "a", "tiny")).toEqual({ kind: "start-in", id: "a" });
  });

  it("opens a new tab beside a running guest, and beside a stopped one it keeps for its screen", () => {
    expect(placeStart([tab("a", "tiny", true)], "a", "dos")).toEqual({ kind: "new" });
    expect(placeStart([tab("a", "tiny", false, true)], "a", "dos")).toEqual({ kind: "new" });
  });

  it("gives a dropped image a tab of its own unless the active tab is unused", () => {
    expect(placeStart([tab("a", undefined, true)], "a", undefined)).toEqual({ kind: "new" });
    expect(placeStart([tab("a", undefined, false, true)], "a", undefined)).toEqual({ kind: "new" });
    expect(placeStart([tab("a", "tiny", true), tab("b", undefined, false)], "b", undefined)).toEqual({ kind: "start-in", id: "b" });
  });
});

describe("activeAfterClose", () => {
  it("keeps the tab in front when another closes", () => {
    expect(activeAfterClose(["a", "b", "c"], "a", "c")).toBe("a");
  });

  it("brings the right neighbour forward, or the left one at the end", () => {
    expect(activeAfterClose(["a", "b", "c"], "b", "b")).toBe("c");
    expect(activeAfterClose(["a", "b", "c"], "c", "c")).toBe("b");
  });

  it("leaves nothing in front when the last tab closes", () => {
    expect(activeAfterClose(["a"], "a", "a")).toBeUndefined();
  });
});
