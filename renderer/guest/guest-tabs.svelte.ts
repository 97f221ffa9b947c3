// The guests this page shows at once, one tab each: its GuestRun, screen element and drives.
// Where a start goes (the running tab of the same library guest, an unused tab, a new one) is
// decided by core/guest/guest-tabs.ts. Only the tab in front may take the keyboard: every
// other guest's v86 keyboard is turned off when a tab comes forward.

import { tick } from "svelte";
import type { HostBridge } from "../../core/ipc/contract.js";
import type { SwapDrive } from "../../core/media/drives.js";
import { activeAfterClose, placeStart, type TabView } from "../../core/guest/guest-tabs.js";
import { GuestRun, type BootSource } from "./guest-run.svelte.js";

export class GuestTab {
  readonly id: string;
  readonly run: GuestRun;
  /** The library guest this tab runs; undefined for a dropped image or a tab never used. */
  guest: string | undefined = $state();
  /** The file name of the image in each drive, as inserted from the page. */
  inDrive: Record<SwapDrive, string> = $state({ fda: "", cdrom: "" });
  /** The element v86 draws into, bound by the tab's screen once it is shown. */
  screen: HTMLElement | undefined = $state();

  constructor(id: string, run: GuestRun) {
    this.id = id;
    this.run = run;
  }

  get view(): TabView {
    return { id: this.id, guest: this.guest, running: this.run.running, started: this.run.started };
  }
}

export class GuestTabs {
  tabs: GuestTab[] = $state([]);
  activeId = $state("");
  readonly #host: HostBridge;
  #next = 1;

  constructor(host: HostBridge) {
    this.#host = host;
    this.activeId = this.#add().id;
  }

  #add(): GuestTab {
    const tab = new GuestTab(`guest-tab-${this.#next++}`, new GuestRun(this.#host));
    this.tabs.push(tab);
    return tab;
  }

  /** The tab in front (there is always one, if only an unused one). */
  get active(): GuestTab {
    const found = this.tabs.find((t) => t.id === this.activeId) ?? this.tabs[0];
    if (!found) throw new Error("the page has no guest tab");
    return found;
  }

  /** The tab running this library guest, if one does. */
  running(guest: string): GuestTab | undefined {
    return this.tabs.find((t) => t.guest === guest && t.run.running);
  }

  /** The library guests running in this page. */
  get runningGuests(): string[] {
    return this.tabs.flatMap((t) => (t.guest !== undefined && t.run.running ? [t.guest] : []));
  }

  /** Brings a tab forward; every other guest stops taking the keyboard. */
  activate(id: string): void {
    if (!this.tabs.some((t) => t.id === id)) return;
    this.activeId = id;
    for (const tab of this.tabs) if (tab.id !== id) tab.run.releaseKeyboard();
  }

  /**
   * Starts a guest in the tab placeStart picks and brings that tab forward. A library guest
   * that already runs is only brought forward. Resolves to the tab once its start has settled.
   */
  async start(source: BootSource): Promise<GuestTab> {
    const guest = source.kind === "guest" ? source.name : undefined;
    const place = placeStart(
      this.tabs.map((t) => t.view),
      this.activeId,
      guest,
    );
    const existing = place.kind === "new" ? undefined : this.tabs.find((t) => t.id === place.id);
    const tab = existing ?? this.#add();
    this.activate(tab.id);
    if (place.kind === "front") return tab;
    tab.guest = guest;
    // A new tab's screen is in the page once Svelte has drawn it.
    await tick();
    if (!tab.screen) throw new Error("the guest's screen is not in the page");
    await tab.run.start(source, tab.screen);
    return tab;
  }

  /**
   * Suspends a tab's guest (a dropped image is powered off) and closes the tab; the last tab
   * closed leaves an unused one. A guest whose state cannot be saved keeps running in its tab.
   */
  async close(id: string): Promise<void> {
    const tab = this.tabs.find((t) => t.id === id);
    if (!tab) return;
    await tab.run.suspend();
    const next = activeAfterClose(
      this.tabs.map((t) => t.id),
      this.activeId,
      id,
    );
    this.tabs = this.tabs.filter((t) => t !== tab);
    this.activate(next ?? this.#add().id);
  }
}
