// What the Electron shell answers the page, kept free of Electron's runtime so it is tested
// without it: a command's reply ({ok, value|error}, since Electron wraps a thrown error as
// "Error invoking remote method ..."), the answer to a pipe request, and the sessions each page
// opened, closed when that page goes away and forgotten with their listeners (and the page a
// session's host events go to).

import type { InvokeReply } from "../../core/ipc/contract.js";

/** Runs a command and turns its outcome into a reply; nothing is thrown across the process. */
export async function replyOf(run: () => Promise<unknown>): Promise<InvokeReply> {
  try {
    return { ok: true, value: await run() };
  } catch (error) {
    return { ok: false, error: error instanceof Error ? error.message : String(error) };
  }
}

/** The answer to a pipe request: a port, or an explicit refusal the page turns into an error. */
export interface PipeAnswer {
  id: number;
  error?: string;
}

/** The part of a WebContents the tracker listens to (a WebContents is one). */
export interface TrackedContents {
  once(event: "destroyed" | "render-process-gone", listener: () => void): unknown;
  on(event: "did-start-navigation", listener: (details: { isMainFrame: boolean; isSameDocument: boolean }) => void): unknown;
  removeListener(event: "destroyed" | "render-process-gone", listener: () => void): unknown;
  removeListener(event: "did-start-navigation", listener: (details: { isMainFrame: boolean; isSameDocument: boolean }) => void): unknown;
}

/**
 * Sessions a page opened end when that page goes away (closed, reloaded, crashed). Each page
 * gets its three listeners once, and they are removed when it goes away, so reloads add none.
 */
export class PageSessions<C extends TrackedContents> {
  readonly #opened = new Map<C, Set<string>>();
  readonly #close: (id: string) => void;

  constructor(close: (id: string) => void) {
    this.#close = close;
  }

  /** The page that opened a session, while it is open: where that session's events go. */
  pageOf(id: string): C | undefined {
    for (const [contents, ids] of this.#opened) if (ids.has(id)) return contents;
    return undefined;
  }

  track(contents: C, id: string): void {
    const known = this.#opened.get(contents);
    if (known) {
      known.add(id);
      return;
    }
    const ids = new Set([id]);
    this.#opened.set(contents, ids);
    const end = (): void => {
      contents.removeListener("destroyed", end);
      contents.removeListener("render-process-gone", end);
      contents.removeListener("did-start-navigation", navigated);
      this.#opened.delete(contents);
      for (const sessionId of ids) this.#close(sessionId);
    };
    const navigated = (details: { isMainFrame: boolean; isSameDocument: boolean }): void => {
      if (details.isMainFrame && !details.isSameDocument) end();
    };
    contents.once("destroyed", end);
    contents.once("render-process-gone", end);
    contents.on("did-start-navigation", navigated);
  }
}
