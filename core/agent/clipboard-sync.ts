// Keeps a host clipboard and a guest's clipboard the same, for text. The host side is
// whatever the shell has (Electron's async clipboard, navigator.clipboard in a page), read by
// polling since neither tells of changes; the guest side is the agent (or a relay to it).
// No echo loops: text that came from one side is remembered and never sent back to it.
// What the host held before the sync started (the first read) is never sent: a guest gets only
// text copied on the host after it started.

import { DisposableStore, toDisposable, type Disposable } from "../disposable.js";

export interface HostClipboard {
  readText(): Promise<string>;
  writeText(text: string): Promise<void>;
}

export interface GuestClipboard {
  set(text: string): void;
  onChange(listener: (text: string) => void): Disposable;
}

export interface ClipboardSyncOptions {
  /** How often the host clipboard is read, in ms. */
  pollMs?: number;
  /** Text longer than this (in UTF-16 units) is not carried: 1 MiB as the agent caps it. */
  maxLength?: number;
  /** Whether the host clipboard may be read now (a page can read it only while focused). */
  canRead?: () => boolean;
  setInterval?: (fn: () => void, ms: number) => unknown;
  clearInterval?: (handle: unknown) => void;
}

export const CLIPBOARD_MAX = 1024 * 1024;

export class ClipboardSync implements Disposable {
  readonly #store = new DisposableStore();
  readonly #host: HostClipboard;
  readonly #guest: GuestClipboard;
  readonly #max: number;
  /** The text both sides are known to hold. */
  #known: string | undefined;
  /** Whether the host clipboard was read once, so its earlier text is known and kept back. */
  #primed = false;
  #busy = false;

  constructor(host: HostClipboard, guest: GuestClipboard, options: ClipboardSyncOptions = {}) {
    this.#host = host;
    this.#guest = guest;
    this.#max = options.maxLength ?? CLIPBOARD_MAX;
    const timers = globalThis as unknown as { setInterval(fn: () => void, ms: number): unknown; clearInterval(h: unknown): void };
    const every = options.setInterval ?? ((fn, ms) => timers.setInterval(fn, ms));
    const stop = options.clearInterval ?? ((h) => timers.clearInterval(h));
    const canRead = options.canRead ?? (() => true);
    this.#store.add(
      guest.onChange((text) => {
        if (text.length > this.#max || text === this.#known) return;
        this.#known = text;
        void this.#host.writeText(text).catch(() => {});
      }),
    );
    const handle = every(() => {
      if (canRead()) void this.poll();
    }, options.pollMs ?? 500);
    this.#store.add(toDisposable(() => stop(handle)));
  }

  /** Reads the host clipboard once and sends a change to the guest. */
  async poll(): Promise<void> {
    if (this.#busy || this.#store.disposed) return;
    this.#busy = true;
    try {
      const text = await this.#host.readText();
      if (!this.#primed) {
        // The host's text from before the guest started stays on the host, even when the
        // guest copied something meanwhile that could not be written to the host.
        this.#primed = true;
        this.#known = text;
        return;
      }
      if (text === this.#known || text.length > this.#max) return;
      this.#known = text;
      this.#guest.set(text);
    } catch {
      // The clipboard may be unreadable for a moment (another program holds it, no focus).
    } finally {
      this.#busy = false;
    }
  }

  dispose(): void {
    this.#store.dispose();
  }
}
