// What makes a machine's hardware, as one canonical string: a saved state restores only into a
// machine with the same identity. The page's plan (URL sources carry their size) and the CLI's
// (file sources: the caller stats them) give the same string for the same guest. The speed cap
// and the shares are not hardware: a resumed guest gets this run's.

import type { LaunchMachine, MediaSource } from "./launch-plan.js";
import { KERNEL_BOOT_MIN_MEMORY } from "../v86/options.js";

/** The size in bytes a source carries itself; a host file's is the caller's to give. */
function carriedSize(source: MediaSource): number | undefined {
  switch (source.kind) {
    case "url":
    case "served":
      return source.size;
    case "bytes":
      return source.bytes.length;
    case "disk":
      return source.disk.size;
    case "fat":
      return source.drive.size;
    case "file":
      return undefined;
  }
}

/** JSON with keys in order, so equal machines give equal strings. */
function canonical(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonical).join(",")}]`;
  if (value !== null && typeof value === "object") {
    const entries = Object.entries(value as Record<string, unknown>).filter(([, v]) => v !== undefined);
    return `{${entries.sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)).map(([k, v]) => `${JSON.stringify(k)}:${canonical(v)}`).join(",")}}`;
  }
  return JSON.stringify(value);
}

/**
 * The machine's identity: RAM as it boots, ACPI, NIC, agent port, 9P device, balloon, kernel
 * command line, and each medium's role with its size. `sizeOf` gives a host file's size.
 */
export function machineIdentity(machine: LaunchMachine, sizeOf: (source: MediaSource) => number | undefined): string {
  const media: Record<string, number | null> = {};
  for (const [role, source] of Object.entries(machine.media)) media[role] = carriedSize(source) ?? sizeOf(source) ?? null;
  const kernel = machine.media.bzimage !== undefined || machine.media.multiboot !== undefined;
  return canonical({
    memory: kernel ? Math.max(machine.memory, KERNEL_BOOT_MIN_MEMORY) : machine.memory,
    acpi: machine.acpi,
    net: machine.net,
    agentPort: machine.agentPort ?? null,
    p9: machine.p9 ?? null,
    balloon: machine.balloon ?? false,
    cmdline: machine.cmdline ?? null,
    media,
  });
}

/** What differs between two identities, for a message: "memory 128 -> 256". */
export function identityDifference(saved: string, now: string): string {
  // `saved` comes from a file: anything at all, of any depth and length. The line stays short.
  const other = "another hardware description";
  const record = (text: string): Record<string, unknown> | undefined => {
    try {
      const value: unknown = JSON.parse(text);
      return value !== null && typeof value === "object" && !Array.isArray(value) ? (value as Record<string, unknown>) : undefined;
    } catch {
      return undefined;
    }
  };
  const a = record(saved);
  const b = record(now);
  if (!a || !b) return other;
  const shown = (value: unknown): string => {
    let text: string;
    try {
      text = value === undefined ? "none" : canonical(value);
    } catch {
      text = "?"; // nested too deep to write out
    }
    return text.length > 60 ? `${text.slice(0, 57)}...` : text;
  };
  const same = (x: unknown, y: unknown): boolean => {
    try {
      return canonical(x) === canonical(y);
    } catch {
      return false;
    }
  };
  const keys = [...new Set([...Object.keys(a), ...Object.keys(b)])].sort();
  const parts = keys.filter((k) => !same(a[k], b[k])).map((k) => (k === "memory" ? `${shown(a[k])} MiB, now ${shown(b[k])} MiB` : `${k.slice(0, 20)} ${shown(a[k])}, now ${shown(b[k])}`));
  return parts.slice(0, 3).join("; ") || other;
}
