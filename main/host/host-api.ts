// The host side of the IPC contract (core/ipc/contract.ts), shared by the Electron shell and
// the web shell. The shell supplies only how the page reaches media (URLs of its own scheme);
// paths never come from the page: the page names a guest and a role, the host resolves them.

import { freemem, totalmem, platform } from "node:os";
import { statSync } from "node:fs";
import type { BootPlan, CommandHandlers, HostInfo, MediaRef } from "../../core/ipc/contract.js";
import { checkMemory, type MediaRole } from "../../core/guest/profile.js";
import type { GuestLibrary } from "../guests/library.js";
import type { HostSessions } from "./sessions.js";
import { appVersion } from "../version.js";

export interface MediaUrls {
  media(guest: string, role: MediaRole): string;
  firmware(which: "bios" | "vgaBios"): string;
}

export interface HostApiDeps {
  library: GuestLibrary;
  sessions: HostSessions;
  urls: MediaUrls;
  shell: HostInfo["shell"];
}

const MiB = 1024 * 1024;

export function createHostApi({ library, sessions, urls, shell }: HostApiDeps): CommandHandlers {
  const ref = (url: string, path: string): MediaRef => ({ url, size: statSync(path).size });
  const firmwareRefs = (): BootPlan["firmware"] => {
    const firmware = library.firmware();
    if (!firmware) throw new Error("the firmware (SeaBIOS) is not built yet: run unmachine build");
    return { bios: ref(urls.firmware("bios"), firmware.bios), vgaBios: ref(urls.firmware("vgaBios"), firmware.vgaBios) };
  };
  return {
    "host:info": () => ({
      version: appVersion,
      shell,
      platform: platform(),
      totalMemoryMiB: Math.round(totalmem() / MiB),
      freeMemoryMiB: Math.round(freemem() / MiB),
    }),
    "guests:list": () => library.summaries(),
    "guests:plan": (guest, memory) => {
      const { profile, media } = library.resolve(guest);
      const plan: BootPlan = {
        guest: profile.name,
        title: profile.title,
        memory: memory === 0 ? profile.memory : checkMemory(memory),
        acpi: profile.acpi,
        net: profile.net,
        firmware: firmwareRefs(),
        media: {},
      };
      if (profile.cmdline !== undefined) plan.cmdline = profile.cmdline;
      if (profile.prompt !== undefined) plan.prompt = profile.prompt;
      for (const [role, path] of Object.entries(media) as [MediaRole, string][]) plan.media[role] = ref(urls.media(guest, role), path);
      return plan;
    },
    "firmware:get": () => firmwareRefs(),
    "sessions:open": (guest) => sessions.open(guest),
    "sessions:report": (id, state, reason) => sessions.report(id, state, reason),
    "sessions:close": (id) => sessions.close(id),
    "sessions:list": () => sessions.list(),
  };
}
