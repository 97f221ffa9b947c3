// Which host folders are too much to hand a guest without the user saying so: the whole file
// system, the home folder and the folders that hold it, hidden folders in the home folder
// (keys, passwords, settings) and system folders. The one rule for every way a share arrives:
// the page in both shells (settings:set) and the CLI's --share. Folders are compared after
// symbolic links are resolved, so a link to / is a share of /.

import { realpathSync } from "node:fs";
import { homedir } from "node:os";
import { isAbsolute, relative, resolve, sep } from "node:path";
import { SettingsError, type ShareSetting } from "../../core/guest/settings.js";

/** Folders of the system itself, each with everything in it (unless it is in the home folder). */
export const SYSTEM_FOLDERS = [
  "/bin",
  "/boot",
  "/dev",
  "/etc",
  "/home",
  "/lib",
  "/lib32",
  "/lib64",
  "/libx32",
  "/opt",
  "/proc",
  "/root",
  "/run",
  "/sbin",
  "/snap",
  "/srv",
  "/sys",
  "/usr",
  "/var",
] as const;

export interface SensitiveFolder {
  /** The folder the share really is, symbolic links resolved. */
  real: string;
  /** What it is, to complete "PATH is ...". */
  reason: string;
}

export class SensitiveShareError extends SettingsError {
  override name = "SensitiveShareError";
}

/** The path with every symbolic link resolved, as far as it exists. */
export function realPath(path: string): string {
  const absolute = resolve(path);
  try {
    return realpathSync(absolute);
  } catch {
    return absolute;
  }
}

/** The path of `inner` below `outer` ("" for the same folder), or undefined when it is not inside. */
function below(outer: string, inner: string): string | undefined {
  const rel = relative(outer, inner);
  if (rel === "") return "";
  if (rel === ".." || rel.startsWith(`..${sep}`) || isAbsolute(rel)) return undefined;
  return rel;
}

/** Why a host folder needs the user's confirmation before a guest gets it, or undefined. */
export function sensitiveFolder(hostPath: string, home: string = homedir()): SensitiveFolder | undefined {
  const real = realPath(hostPath);
  const realHome = realPath(home);
  const found = (reason: string): SensitiveFolder => ({ real, reason });
  if (real === resolve("/")) return found("the root of the whole file system");
  if (real === realHome) return found("your home folder");
  if (below(real, realHome) !== undefined) return found("a folder that holds your home folder");
  // A home folder of / (containers, service accounts) exempts nothing.
  const inHome = realHome === resolve("/") ? undefined : below(realHome, real);
  if (inHome !== undefined) {
    const hidden = inHome.split(sep).find((part) => part.startsWith("."));
    return hidden === undefined ? undefined : found(`a hidden folder of your home folder (${hidden}), where programs keep keys, passwords and settings`);
  }
  const system = SYSTEM_FOLDERS.find((folder) => below(folder, real) !== undefined);
  if (system === undefined) return undefined;
  return found(real === system ? "a system folder" : `inside the system folder ${system}`);
}

/**
 * Refuses every share of a sensitive folder that the user has not confirmed (its
 * `confirmedSensitive`). `where` names the share as its source does, `confirm` says how to confirm.
 */
export function checkShares(shares: readonly ShareSetting[], where: (share: ShareSetting) => string, confirm: string, home?: string): void {
  for (const share of shares) {
    if (share.confirmedSensitive === true) continue;
    const sensitive = sensitiveFolder(share.hostPath, home);
    if (!sensitive) continue;
    const leads = sensitive.real === resolve(share.hostPath) ? "" : ` (it leads to ${sensitive.real})`;
    const could = share.readOnly ? "read" : "read and change";
    throw new SensitiveShareError(
      `${where(share)}: ${share.hostPath}${leads} is ${sensitive.reason}: the guest could ${could} every file in it that you can. ${confirm}`,
    );
  }
}

/** The shares that pass the rule; each refused one is told to `refused` (a share saved by hand
 * or by an older version is checked again when it is served). */
export function servableShares(shares: readonly ShareSetting[], refused: (message: string) => void, home?: string): ShareSetting[] {
  return shares.filter((share) => {
    try {
      checkShares([share], (s) => `share "${s.tag}"`, "It was not confirmed in the app, so the guest does not get it.", home);
      return true;
    } catch (error) {
      refused((error as Error).message);
      return false;
    }
  });
}
