// One side of the memory bench: boots COUNT tiny guests in this process and prints, as JSON,
// its resident memory before any guest and once every guest sits at its shell prompt.
//   app:  as `unmachine run tiny` runs each (launch plan, host service set, worker thread)
//   bare: v86 alone on the same files in this thread, no host services
// Usage: node memory-guests.mjs app|bare COUNT
import { readFileSync } from "node:fs";
import { resolve } from "node:path";

const [mode, countText] = process.argv.slice(2);
const count = Number(countText);
const root = resolve(import.meta.dirname, "../..");
const SETTLE_MS = 3000;
const BOOT_MS = 300_000;

const rss = () => Number(/VmRSS:\s+(\d+) kB/.exec(readFileSync("/proc/self/status", "utf8"))[1]) * 1024;

const { GuestLibrary } = await import(`${root}/dist/main/guests/library.js`);
const library = new GuestLibrary();
const { profile, firmware, media } = library.resolve("tiny");

async function bootApp() {
  const { libraryPlan } = await import(`${root}/dist/main/guests/launch.js`);
  const { hostServiceSet } = await import(`${root}/dist/main/host/services.js`);
  const { HeadlessGuest } = await import(`${root}/dist/main/headless/runner.js`);
  return async () => {
    const plan = libraryPlan(library, "tiny");
    const services = hostServiceSet(plan, { onError: () => {} });
    await services.ready;
    const guest = new HeadlessGuest(plan, { services: services.attach });
    await guest.waitForShell(BOOT_MS);
    return async () => {
      services.dispose();
      await guest.stop();
      guest.dispose();
    };
  };
}

async function bootBare() {
  const { V86 } = await import("v86");
  const buf = (path) => {
    const b = readFileSync(path);
    return { buffer: b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength) };
  };
  return () =>
    new Promise((resolveBoot, reject) => {
      const emulator = new V86({
        wasm_path: `${root}/node_modules/v86/build/v86.wasm`,
        memory_size: profile.memory * 1024 * 1024,
        vga_memory_size: 8 * 1024 * 1024,
        bios: buf(firmware.bios),
        vga_bios: buf(firmware.vgaBios),
        bzimage: buf(media.bzimage),
        initrd: buf(media.initrd),
        cmdline: profile.cmdline,
        autostart: true,
        disable_speaker: true,
        fastboot: true,
        net_device: { type: "virtio" },
      });
      const timer = setTimeout(() => reject(new Error("bare v86 did not reach the prompt")), BOOT_MS);
      let tail = "";
      const onByte = (byte) => {
        tail = (tail + String.fromCharCode(byte)).slice(-64);
        if (/tiny:[^\n]*# /.test(tail)) {
          clearTimeout(timer);
          emulator.remove_listener("serial0-output-byte", onByte);
          resolveBoot(() => emulator.destroy());
        }
      };
      emulator.add_listener("serial0-output-byte", onByte);
    });
}

const boot = mode === "app" ? await bootApp() : await bootBare();
const baseline = rss();
const stops = await Promise.all(Array.from({ length: count }, () => boot()));
await new Promise((r) => setTimeout(r, SETTLE_MS));
const running = rss();
process.stdout.write(`${JSON.stringify({ mode, count, baseline, running })}\n`);
for (const stop of stops) await stop();
process.exit(0);
