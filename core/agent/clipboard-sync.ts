// Keeps a host clipboard and a guest's clipboard the same, for text and PNG images (where
// both sides can carry images: the host's readImage/writeImage, the guest's setImage). The host side is
// whatever the shell has (Electron's async clipboard, navigator.clipboard in a page), read by
// polling since neither tells of changes; the guest side is the agent (or a relay to it).
// No echo loops: text that came from one side is remembered and never sent back to it.
// What the host held before the sync started (the first read) is never sent: a guest gets only
// text copied on the host after it started. An image goes to the guest when the host holds one
// and no text; an image the guest copied is read back from the host after it is written, since
// a host may re-encode it, so it never returns to the guest either.

import { DisposableStore, toDisposable, type Disposable } from "../disposable.js";

export interface HostClipboard {
  readText(): Promise<string>;
  writeText(text: string): Promise<void>;
  /** The host clipboard's image as PNG, undefined when it holds none. */
  readImage?(): Promise<Uint8Array | undefined>;
  writeImage?(png: Uint8Array): Promise<void>;
}

export interface GuestClipboard {
  set(text: string): void;
  onChange(listener: (text: string) => void): Disposable;
  /** Puts a PNG on the guest's clipboard; false when its agent takes no images. */
  setImage?(png: Uint8Array): boolean;
  onImage?(listener: (png: Uint8Array) => void): Disposable;
}

export interface ClipboardSyncOptions {
  /** How often the host clipboard is read, in ms. */
  pollMs?: number;
  /** Text longer than this (in UTF-16 units) is not carried: 1 MiB as the agent caps it. */
  maxLength?: number;
  /** Images larger than this (in bytes) are not carried: 8 MiB as the agent caps them. */
  maxImageBytes?: number;
  /** Whether the host clipboard may be read now (a page can read it only while focused). */
  canRead?: () => boolean;
  setInterval?: (fn: () => void, ms: number) => unknown;
  clearInterval?: (handle: unknown) => void;
}

export const CLIPBOARD_MAX = 1024 * 1024;
export const CLIPBOARD_IMAGE_MAX = 8 * 1024 * 1024;

function sameBytes(a: Uint8Array | undefined, b: Uint8Array | undefined): boolean {
  if (a === undefined || b === undefined) return a === b;
  return a.length === b.length && a.every((byte, i) => byte === b[i]);
}

export class ClipboardSync implements Disposable {
  readonly #store = new DisposableStore();
  readonly #host: HostClipboard;
  readonly #guest: GuestClipboard;
  readonly #max: number;
  readonly #maxImage: number;
  /** The text both sides are known to hold. */
  #known: string | undefined;
  /** The host's image as last read or written (undefined: none). */
  #knownImage: Uint8Array | undefined;
  /** Whether the host clipboard was read once, so its earlier text is known and kept back. */
  #primed = false;
  #busy = false;
  /** Counts the guest's copies, so a poll that overlapped one drops what it read. */
  #generation = 0;

  constructor(host: HostClipboard, guest: GuestClipboard, options: ClipboardSyncOptions = {}) {
    this.#host = host;
    this.#guest = guest;
    this.#max = options.maxLength ?? CLIPBOARD_MAX;
    this.#maxImage = options.maxImageBytes ?? CLIPBOARD_IMAGE_MAX;
    const timers = globalThis as unknown as { setInterval(fn: () => void, ms: number): unknown; clearInterval(h: unknown): void };
    const every = options.setInterval ?? ((fn, ms) => timers.setInterval(fn, ms));
    const stop = options.clearInterval ?? ((h) => timers.clearInterval(h));
    const canRead = options.canRead ?? (() => true);
    this.#store.add(
      guest.onChange((text) => {
        if (text.length > this.#max || text === this.#known) return;
        this.#known = text;
        this.#knownImage = undefined;
        this.#generation++;
        void this.#host.writeText(text).catch(() => {});
      }),
    );
    const onImage = guest.onImage;
    if (onImage && host.writeImage && host.readImage) {
      this.#store.add(onImage((png) => void this.#fromGuest(png)));
    }
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
      const generation = this.#generation;
      const text = await this.#host.readText();
      const image = this.#guest.setImage ? await this.#readImage() : undefined;
      if (generation !== this.#generation) return;
      if (!this.#primed) {
        // The host's text from before the guest started stays on the host, even when the
        // guest copied something meanwhile that could not be written to the host.
        this.#primed = true;
        this.#known = text;
        this.#knownImage = image;
        return;
      }
      if (text !== this.#known && (text !== "" || image === undefined)) {
        this.#known = text;
        if (text.length <= this.#max) this.#guest.set(text);
        return;
      }
      if (image !== undefined && !sameBytes(image, this.#knownImage)) {
        this.#knownImage = image;
        this.#known = text;
        if (image.length <= this.#maxImage) this.#guest.setImage?.(image);
      }
    } catch {
      // The clipboard may be unreadable for a moment (another program holds it, no focus).
    } finally {
      this.#busy = false;
    }
  }

  /** The host's image; none when it cannot be read (text still syncs when images cannot). */
  async #readImage(): Promise<Uint8Array | undefined> {
    const image = await this.#host.readImage?.().catch(() => undefined);
    return image !== undefined && image.length > 0 ? image : undefined;
  }

  /** The guest copied an image: onto the host, then read back as the host now has it. */
  async #fromGuest(png: Uint8Array): Promise<void> {
    if (png.length > this.#maxImage || sameBytes(png, this.#knownImage)) return;
    this.#knownImage = png;
    this.#known = "";
    const generation = ++this.#generation;
    try {
      await this.#host.writeImage?.(png);
      const image = (await this.#readImage()) ?? png;
      const text = await this.#host.readText();
      if (generation !== this.#generation) return;
      this.#knownImage = image;
      this.#known = text;
    } catch {
      // As for text: the host clipboard may refuse a write for a moment.
    }
  }

  dispose(): void {
    this.#store.dispose();
  }
}
