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

/** A capped run of the loop, with the uncapped runs before and after it (loops a second). */
interface Turn {
  capped: number;
  before: number;
  after: number;
}

/**
 * The turns in which the host gave the uncapped guest its core: both its runs around the capped
 * one within STEADY of its best run of all. A capped guest's speed holds within a few percent
 * from one run to the next; an uncapped one gets from half to all of a core, for it runs all the
 * time and other programs on a shared host take their time from it, so a turn in which it lost
 * its core measures the host, not the cap.
 */
function held<T extends Turn>(turns: readonly T[]): T[] {
  const best = Math.max(...turns.flatMap((turn) => [turn.before, turn.after]));
  return turns.filter((turn) => steady([turn.before, turn.after, best]));
}

/** A capped run's work against the mean of the uncapped runs around it. */
const ratioOf = (turn: Turn): number => (2 * turn.capped) / (turn.before + turn.after);

/** How long a cap test goes on running turns (a capped run between two uncapped ones) until it has three it can count. */
const TURNS_MS = 300_000;

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

  it("does a quarter of its uncapped work in a busy loop at 25 %, and half at 50 %", async (ctx) => {
    await busyRate(guest, 20_000); // the loop's code compiled, the guest settled after the tests before
    const iterations = Math.round((await busyRate(guest, 20_000)) * 2.5); // about 2.5 s uncapped
    // Each capped run between two uncapped ones, judged against them, and counted only when
    // the host gave the uncapped guest its core around it (held): otherwise it is run again
    // (measured: 2034 loops a second at 50 % between uncapped runs of 3166 and 3199, against
    // 6291 before, would have counted as 0.64). Three counted runs at each cap; the median is
    // the figure, so one run a burst of load spoiled does not decide it. Runs go on for up to
    // TURNS_MS until there are three: a host loaded for a minute (a build beside the tests gave
    // uncapped runs of 2057 to 6061 loops a second, and none counted at 25 % in 12 turns) counts
    // the runs after the load has passed.
    const turns: (Turn & { percent: 25 | 50 })[] = [];
    const countedAt = (percent: 25 | 50): Turn[] => held(turns).filter((turn) => turn.percent === percent);
    const until = performance.now() + TURNS_MS;
    let before = await busyRate(guest, iterations);
    while ((countedAt(25).length < 3 || countedAt(50).length < 3) && performance.now() < until) {
      const percent = countedAt(25).length <= countedAt(50).length && countedAt(25).length < 3 ? 25 : 50;
      expect(await guest.cpu(percent)).toBe(percent);
      const capped = await busyRate(guest, iterations);
      expect(await guest.cpu(100)).toBe(100);
      const after = await busyRate(guest, iterations);
      turns.push({ percent, capped, before, after });
      before = after;
    }
    const kept = held(turns);
    const shown = turns.map((turn) => `${turn.capped.toFixed(0)} at ${turn.percent} %${kept.includes(turn) ? "" : " (not counted)"}, ${turn.after.toFixed(0)}`);
    const [at25, at50] = [countedAt(25).map(ratioOf), countedAt(50).map(ratioOf)];
    console.log(`cpu cap: ${iterations} iterations; a second: ${turns[0]!.before.toFixed(0)}, ${shown.join(", ")}; ratios at 50 %: ${show(at50)}, at 25 %: ${show(at25)}`);
    // A host that never gave the uncapped guest its core around a capped run in TURNS_MS gives
    // nothing to judge: said, and skipped, not passed.
    ctx.skip(at25.length === 0 || at50.length === 0, `the host never gave the uncapped guest its core around a capped run at ${at25.length === 0 ? 25 : 50} % in ${TURNS_MS / 1000} s`);
    const [r25, r50] = [median(at25), median(at50)];
    // Measured 0.262 and 0.266 at 25 %, 0.534 and 0.539 at 50 % on a quiet host; pacing by
    // busy time instead gave 0.16 to 0.20 and 0.42 to 0.59. The bounds are the cap's ±0.06 and ±0.08.
    expect(r25).toBeGreaterThan(0.19);
    expect(r25).toBeLessThan(0.31);
    expect(r50).toBeGreaterThan(0.42);
    expect(r50).toBeLessThan(0.58);
  }, TURNS_MS + 180_000);

  it("does a quarter of the work of an uncapped guest when it starts capped at 25 % (unmachine set NAME cpu=25, then run)", async (ctx) => {
    /**
     * One guest started capped, against the uncapped guest of the tests before, the same loop
     * run in each in turn, judged as the test before judges one guest (held, ratioOf). Run side
     * by side instead, the two guests ran on two host cores whose speeds drifted apart (the
     * capped guest did the same 1350 to 1700 loops a second while the uncapped one beside it
     * did 3300 to 5800), so each guest's ratio measured the cores, anywhere from 0.18 to 0.36.
     */
    /** A guest's median ratio, or none if the host never gave the uncapped guest its core around a capped run. */
    const attempt = async (): Promise<{ ratio: number | undefined; line: string }> => {
      const slow = new HeadlessGuest(tinyPlan({ cpuPercent: 25 }));
      try {
        await slow.waitForShell(300_000);
        // v86 compiles the guest's code once it has run it enough: at least as many runs of the
        // loop as the test before had run before it measured (a guest just resumed runs it 5 to
        // 10 times slower at first, capped or not), and more until two in a row agree within a
        // tenth (measured: 695, then 1023 loops a second, then 689 to 1158 in the runs after).
        const warm = [await busyRate(slow, 20_000), await busyRate(slow, 20_000)];
        while (warm.length < 5 && Math.abs(warm.at(-1)! - warm.at(-2)!) > 0.1 * Math.max(warm.at(-1)!, warm.at(-2)!)) warm.push(await busyRate(slow, 20_000));
        // About 8 s capped: each run starts a process, whose start the cap measures as other work.
        const iterations = Math.round(warm.at(-1)! * 8);
        const uncapped = async (): Promise<number> => busyRate(guest, iterations * 4); // and as long uncapped
        const turns: Turn[] = [];
        let before = await uncapped();
        const until = performance.now() + TURNS_MS / 2;
        while ((turns.length < 3 || held(turns).length < 3) && performance.now() < until) {
          const capped = await busyRate(slow, iterations);
          const after = await uncapped();
          turns.push({ capped, before, after });
          before = after;
        }
        const kept = held(turns);
        const ratios = kept.map(ratioOf);
        const ratio = kept.length > 0 ? median(ratios) : undefined;
        const shown = turns.map((turn) => `${turn.capped.toFixed(0)} capped${kept.includes(turn) ? "" : " (not counted)"}, ${turn.after.toFixed(0)}`);
        return { ratio, line: `a second, ${show(warm)} warming up, then uncapped and capped in turn ${turns[0]!.before.toFixed(0)}, ${shown.join(", ")}: ratios ${show(ratios)}, median ${ratio?.toFixed(3) ?? "none"}` };
      } finally {
        await slow.stop();
        slow.dispose();
      }
    };
    // Kept busy a quarter of the time, before its first burst measured the host, it did 0.14 to
    // 0.16; not capped, it would do 1.
    const within = (ratio: number | undefined): boolean => ratio !== undefined && ratio > 0.19 && ratio < 0.31;
    // A second guest, from the start, when the first is outside: a cap that is wrong is wrong both times.
    const tries = [await attempt()];
    if (!within(tries[0]!.ratio)) tries.push(await attempt());
    console.log(`started at 25 %: ${tries.map((t) => t.line).join("; then, a second guest: ")}`);
    // Neither guest measured (a host busy elsewhere all along): said, and skipped, not passed.
    ctx.skip(tries.every((t) => t.ratio === undefined), "the host never gave the uncapped guest its core around a capped run");
    expect(tries.some((t) => within(t.ratio)), `ratios ${tries.map((t) => t.ratio?.toFixed(3) ?? "none").join(", ")}, each outside 0.19 to 0.31`).toBe(true);
  }, 2 * (TURNS_MS / 2 + 300_000));
});
