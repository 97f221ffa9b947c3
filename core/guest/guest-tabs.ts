// Where a guest the user starts goes among the guests a page shows at once (its tabs), and
// which tab comes forward when one closes. A library guest runs at most once (its disk overlay
// and settings are its own): starting it again brings its tab forward. Pure decisions over a
// view of the tabs; the page's GuestTabs (renderer/guest/guest-tabs.svelte.ts) applies them.

/** What the decisions need to know of a tab. */
export interface TabView {
  id: string;
  /** The library guest the tab runs, or undefined for a dropped image or a tab never used. */
  guest: string | undefined;
  /** Booting or running. */
  running: boolean;
  /** A guest has been started in it (so it has a screen and console to keep). */
  started: boolean;
}

/** Where a start goes: the tab its guest already runs in, an idle tab to start it in, or a new tab. */
export type Placement = { kind: "front"; id: string } | { kind: "start-in"; id: string } | { kind: "new" };

/**
 * A library guest (`guest`) that runs comes forward; one that ran here before starts again in
 * its own tab (its console keeps the earlier run, marked); otherwise the active tab is used if
 * nothing was ever started in it, else a new tab opens. A dropped image (`guest` undefined)
 * follows the last two rules.
 */
export function placeStart(tabs: readonly TabView[], active: string | undefined, guest: string | undefined): Placement {
  if (guest !== undefined) {
    const running = tabs.find((t) => t.guest === guest && t.running);
    if (running) return { kind: "front", id: running.id };
    const idle = tabs.find((t) => t.guest === guest);
    if (idle) return { kind: "start-in", id: idle.id };
  }
  const current = tabs.find((t) => t.id === active);
  if (current && !current.started && !current.running) return { kind: "start-in", id: current.id };
  return { kind: "new" };
}

/** The tab in front once `closed` is gone: the same one if another was in front, else its right neighbour, else its left. */
export function activeAfterClose(ids: readonly string[], active: string | undefined, closed: string): string | undefined {
  if (active !== undefined && active !== closed && ids.includes(active)) return active;
  const index = ids.indexOf(closed);
  const rest = ids.filter((id) => id !== closed);
  return index < 0 ? rest[0] : (ids[index + 1] ?? ids[index - 1]);
}
