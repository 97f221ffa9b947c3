// Types of bootable-disk.mjs (plain JavaScript so a child process and the benchmark run it too).
import type { LaunchPlan } from "../../core/guest/launch-plan.js";
import type { HeadlessGuest } from "../../main/headless/runner.js";

export const MBR_BIN: string;
export const PARTITION_OFFSET: number;
export function buildBootableDisk(dir: string, sizeMiB?: number, rawMiB?: number): string;
export function diskPlan(disk: { base: string; overlay?: string; size: number; inMemory?: boolean }): LaunchPlan;
export function bootDisk(plan: LaunchPlan, onError?: (message: string) => void): Promise<{ guest: HeadlessGuest; stop(): Promise<void> }>;
