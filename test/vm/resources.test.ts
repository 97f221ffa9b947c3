// A running guest's resources changed live, as a user sees them from inside the guest: its
// MemTotal follows the balloon down and back up within 5 s, and a busy loop does
// proportionally less work under a speed cap than without one.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { HeadlessGuest } from "../../main/headless/runner.js";
import { tinyPlan } from "../support/guests.js";

/** MemTotal in kB, as the guest's /proc/meminfo says it. */
async function memTotal(guest: HeadlessGuest): Promise<number> {
  return Number((await guest.exec("awk '/MemTotal/ {print $2}' /proc/meminfo", 30_000)).output);
}

/** Polls MemTotal until `test` holds, or `ms` pass; returns how long it took, and the last value. */
async function memTotalWhen(guest: HeadlessGuest, test: (kb: number) => boolean, ms: number): Promise<{ seconds: number; kb: number }> {
  const start = performance.now();
  let kb = await memTotal(guest);
  while (!test(kb) && performance.now() - start < ms) {
    await new Promise((r) => setTimeout(r, 200));
    kb = await memTotal(guest);
  }
  return { seconds: (performance.now() - start) / 1000, kb };
}

/**
 * How many times a second (of the host's clock: a capped guest's own clock runs slow) an awk
 * loop in the guest runs, each time reading /proc/uptime (system calls and arithmetic), over
 * `iterations` of them.
 */
async function busyRate(guest: HeadlessGuest, iterations: number): Promise<number> {
  const read = `(getline u < "/proc/uptime") > 0; close("/proc/uptime"); split(u, a, " ")`;
  const start = performance.now();
  const { output } = await guest.exec(`awk 'BEGIN { for (i = 0; i < ${iterations}; i++) { ${read} }; print i }'`, 240_000);
  const seconds = (performance.now() - start) / 1000;
  expect(Number(output)).toBe(iterations);
  return iterations / seconds;
}

function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

/** How far apart two uncapped runs may be for the host to count as steady between them: 20 % of the faster. */
const STEADY = 0.2;
const steady = (values: readonly number[]): boolean => Math.max(...values) - Math.min(...values) <= STEADY * Math.max(...values);

const show = (values: readonly number[]): string => values.map((v) => (v < 10 ? v.toFixed(3) : v.toFixed(0))).join(", ");

describe("tiny's resources, changed while it runs", () => {
  let guest: HeadlessGuest;

  beforeAll(async () => {
    guest = new HeadlessGuest(tinyPlan());
    await guest.waitForShell(120_000);
  });
  afterAll(async () => {
    await guest.stop();
    guest.dispose();
  });

  it("has its balloon driver bound to the balloon device", async () => {
    const { output } = await guest.exec("ls /sys/bus/virtio/drivers/virtio_balloon", 30_000);
    expect(output).toMatch(/virtio\d+/);
  });

  it("sees MemTotal follow the balloon down and back up within 5 s", async () => {
    const full = await memTotal(guest);
    expect(full).toBeGreaterThan(88 * 1024);
    expect(await guest.balloon(80)).toBe(80);
    const down = await memTotalWhen(guest, (kb) => kb <= full - 48 * 1024, 5000);
    // Boot RAM 128 MiB, 48 taken back: MemTotal drops by those 48 MiB, page for page.
    expect(down.kb).toBe(full - 48 * 1024);
    expect(down.seconds).toBeLessThan(5);
    expect(await guest.balloon(128)).toBe(128);
    const up = await memTotalWhen(guest, (kb) => kb >= full, 5000);
    expect(up.kb).toBe(full);
    expect(up.seconds).toBeLessThan(5);
    console.log(`balloon: MemTotal ${full} kB -> ${down.kb} kB in ${down.seconds.toFixed(2)} s, back in ${up.seconds.toFixed(2)} s`);
  });

  it("keeps working with the balloon at its floor", async () => {
    const full = await memTotal(guest);
    expect(await guest.balloon(64)).toBe(64);
    await memTotalWhen(guest, (kb) => kb <= full - 64 * 1024, 5000);
    const { output, status } = await guest.exec("awk '/MemTotal|MemAvailable/ {print $2}' /proc/meminfo | tr '\\n' ' '; ls /bin | wc -l", 30_000);
    console.log(`balloon at its floor: MemTotal, MemAvailable (kB), applets in /bin: ${output.trim()}`);
    expect(status).toBe(0);
    expect(Number(output.trim().split(/\s+/)[2])).toBeGreaterThan(10);
    expect(await busyRate(guest, 100)).toBeGreaterThan(0);
    await guest.balloon(128);
    await memTotalWhen(guest, (kb) => kb >= full, 5000);
  });

  it("refuses a size outside the balloon's range, saying the range", async () => {
    await expect(guest.balloon(16)).rejects.toThrow(/from 64 to 128/);
    await expect(guest.balloon(256)).rejects.toThrow(/from 64 to 128/);
  });

  it("does a quarter of its uncapped work in a busy loop at 25 %, and half at 50 %", async () => {
    await busyRate(guest, 20_000); // the loop's code compiled, the guest settled after the tests before
    const iterations = Math.round((await busyRate(guest, 20_000)) * 2.5); // about 2.5 s uncapped
    // Each capped run between two uncapped ones, and judged against them: a host other
    // emulators share gives an uncapped guest from half to all of a core from one run to the
    // next, and a capped one does not feel it. A capped run counts only when the host held
    // steady around it (its two uncapped neighbours within STEADY of each other); otherwise it
    // is run again. Three counted runs at each cap; the median is the figure, so one run a
    // burst of load spoiled does not decide it.
    const counted: Record<25 | 50, number[]> = { 25: [], 50: [] };
    const runs: string[] = [];
    let before = await busyRate(guest, iterations);
    runs.push(before.toFixed(0));
    for (let tries = 0; tries < 12 && (counted[25].length < 3 || counted[50].length < 3); tries++) {
      const percent = counted[25].length <= counted[50].length && counted[25].length < 3 ? 25 : 50;
      expect(await guest.cpu(percent)).toBe(percent);
      const capped = await busyRate(guest, iterations);
      expect(await guest.cpu(100)).toBe(100);
      const after = await busyRate(guest, iterations);
      const held = steady([before, after]);
      runs.push(`${capped.toFixed(0)} at ${percent} %${held ? "" : " (host unsteady: not counted)"}`, after.toFixed(0));
      if (held) counted[percent].push((2 * capped) / (before + after));
      before = after;
    }
    console.log(`cpu cap: ${iterations} iterations; a second: ${runs.join(", ")}; ratios at 50 %: ${show(counted[50])}, at 25 %: ${show(counted[25])}`);
    // A host that never held steady for a capped run gives nothing to judge: said, not passed.
    expect(counted[25].length, "capped runs at 25 % with a steady host around them").toBeGreaterThan(0);
    expect(counted[50].length, "capped runs at 50 % with a steady host around them").toBeGreaterThan(0);
    const [r25, r50] = [median(counted[25]), median(counted[50])];
    // Measured 0.262 and 0.266 at 25 %, 0.534 and 0.539 at 50 % on a quiet host; pacing by
    // busy time instead gave 0.16 to 0.20 and 0.42 to 0.59. The bounds are the cap's ±0.06 and ±0.08.
    expect(r25).toBeGreaterThan(0.19);
    expect(r25).toBeLessThan(0.31);
    expect(r50).toBeGreaterThan(0.42);
    expect(r50).toBeLessThan(0.58);
  }, 300_000);

  it("does a quarter of the work of an uncapped guest beside it when it starts capped at 25 % (unmachine set NAME cpu=25, then run)", async () => {
    /**
     * One guest started capped, against the uncapped guest of the tests before as the host's
     * measure: each run of the loop goes in both at once, so a host whose speed changes (this
     * one's swung by a third within a minute) changes both. Measured one after the other, a
     * minute apart, the ratio came out anywhere from 0.15 to 0.49 on a noisy host. A run
     * counts only when the host gave the uncapped guest its core: within STEADY of its best run
     * here. Other programs on a shared host take their time from the guest that runs all the
     * time (from half to all of a core, measured here: 2588 to 5984 loops a second within a
     * minute) and hardly from one that pauses three quarters of it, so the runs it lost measure
     * the host, not the cap. The median of three counted runs is the figure.
     */
    const attempt = async (): Promise<{ ratio: number; line: string }> => {
      const capped = new HeadlessGuest(tinyPlan({ cpuPercent: 25 }));
      try {
        await capped.waitForShell(300_000);
        // v86 compiles the guest's code once it has run it enough: as many runs of the loop as
        // the test before had run before it measured (a guest just resumed runs it 5 to 10 times
        // slower at first, capped or not).
        const warm = [await busyRate(capped, 20_000), await busyRate(capped, 20_000)];
        const iterations = Math.round(warm.at(-1)! * 4); // about 4 s capped
        const pairs: [number, number][] = [];
        const counted = (): [number, number][] => {
          const best = Math.max(...pairs.map(([, full]) => full));
          return pairs.filter(([, full]) => full >= (1 - STEADY) * best);
        };
        for (let run = 0; run < 8 && (run < 3 || counted().length < 3); run++) pairs.push(await Promise.all([busyRate(capped, iterations), busyRate(guest, iterations * 4)]));
        const kept = counted();
        const ratio = median(kept.map(([c, full]) => c / full));
        const shown = pairs.map((pair) => `${pair[0].toFixed(0)}/${pair[1].toFixed(0)}${kept.includes(pair) ? "" : " (not counted)"}`);
        return { ratio, line: `a second, ${show(warm)} warming up, then capped/uncapped side by side ${shown.join(", ")}: ratio ${ratio.toFixed(3)} of ${kept.length}` };
      } finally {
        await capped.stop();
        capped.dispose();
      }
    };
    // Kept busy a quarter of the time, before its first burst measured the host, it did 0.14 to
    // 0.16; not capped, it would do 1.
    const within = (ratio: number): boolean => ratio > 0.19 && ratio < 0.31;
    // A second guest, from the start, when the first is outside: a cap that is wrong is wrong both times.
    const tries = [await attempt()];
    if (!within(tries[0]!.ratio)) tries.push(await attempt());
    console.log(`started at 25 %: ${tries.map((t) => t.line).join("; then, a second guest: ")}`);
    expect(tries.some((t) => within(t.ratio)), `ratios ${tries.map((t) => t.ratio.toFixed(3)).join(", ")}, each outside 0.19 to 0.31`).toBe(true);
  }, 840_000);
});
