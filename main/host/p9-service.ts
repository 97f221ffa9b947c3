// The host side of a guest's files over 9P: its shared folders behind one device (each at
// /mnt/<tag> in the tiny guest), or a host folder as its whole root file system. One P9Server
// per guest session; its pipe carries one whole T-message per frame in, one R-message out.

import { realpathSync } from "node:fs";
import type { Disposable } from "../../core/disposable.js";
import type { FramePipe } from "../../core/pipe/frame-pipe.js";
import { P9Server } from "../../core/p9/server.js";
import { SharesBackend } from "../../core/p9/shares-backend.js";
import type { P9Backend } from "../../core/p9/backend.js";
import type { ShareSetting } from "../../core/guest/settings.js";
import { HostFolderBackend } from "../p9/host-folder-backend.js";
import { makePrivateDir } from "../private-files.js";

const MiB = 1024 * 1024;

/**
 * Per guest session. Linux's v9fs client holds one fid per dentry in use (with the tiny guest's
 * cache=none, unused dentries are dropped and their fids clunked) plus one per open file, so a
 * busy guest holds a few hundred. An open file holds a host descriptor: 4096 is Linux's default
 * hard RLIMIT_NOFILE, four times the 1024 a guest process may open by default, and keeps a few
 * guests well inside a host's own limit. Past them the guest's open(2) fails with EMFILE
 * (a walk with ENFILE) and the host, its NAT and other guests go on.
 */
export const P9_SESSION_LIMITS = { maxFids: 16384, maxOpenFiles: 4096 } as const;

/** The guest's shares as one backend: a top folder with one entry per share. */
export function sharesBackend(shares: ShareSetting[]): SharesBackend {
  return new SharesBackend(
    shares.map((s) => {
      const share: ConstructorParameters<typeof SharesBackend>[0][number] = { tag: s.tag, backend: new HostFolderBackend(s.hostPath, { identify: !s.readOnly }), readOnly: s.readOnly };
      if (s.quotaMiB !== undefined) share.quotaBytes = Math.floor(s.quotaMiB * MiB);
      return share;
    }),
  );
}

/** A host folder as the guest's root file system (made 0700 if missing; filled by the guest). */
export function rootFolderBackend(folder: string): HostFolderBackend {
  makePrivateDir(folder);
  return new HostFolderBackend(realpathSync(folder));
}

/**
 * Whether a saved session names a folder by its bare path and inode, as sessions saved before
 * folders had ids did (HostFolderBackend.formerScope): such a kept state works only in the very
 * folder it was made in, not once its cache is moved or copied.
 */
export function namesFoldersByPlace(saved: unknown): boolean {
  const fids = (saved as { fids?: unknown } | null)?.fids;
  if (!Array.isArray(fids)) return false;
  return fids.some((f: unknown) => {
    const scope = (f as { scope?: unknown } | null)?.scope;
    return typeof scope === "string" && /^(share ".*" )?\//.test(scope);
  });
}

/** A served 9P session: its state can be saved with a suspended guest. */
export interface P9Service extends Disposable {
  /** The session as the guest holds it (JSON); call it with no request in flight. */
  saveState(): unknown;
}

/**
 * Serves a backend on a 9P pipe until the pipe or the returned Disposable ends. With `resumed`
 * (a session saved with the guest's state), its fids are rebuilt against this backend first;
 * a session that cannot be used is told to `onError` and the guest starts with none.
 */
export function serveP9(backend: P9Backend, pipe: FramePipe, onError?: (error: unknown) => void, resumed?: unknown): P9Service {
  const server = new P9Server(backend, { maxMsize: 512 * 1024, ...P9_SESSION_LIMITS, ...(onError ? { onError } : {}) });
  if (resumed !== undefined) {
    try {
      void server.restore(resumed).catch((error: unknown) => onError?.(error));
    } catch (error) {
      onError?.(error);
    }
  }
  const sub = pipe.onFrame((request) => {
    void server.handle(request).then((reply) => pipe.send(reply));
  });
  return {
    saveState: () => server.saveState(),
    dispose() {
      sub.dispose();
      server.dispose();
      void server.closed.then(() => backend.close?.()).catch((error: unknown) => onError?.(error));
    },
  };
}
