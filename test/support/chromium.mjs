// Debian's Chromium as the end-to-end tests and the benchmarks launch it (never a downloaded
// browser): the desktop app's page as near as a browser gets, with the V8 flags the app gives
// its pages (main/emulator-v8.ts), read from the build.
import { EMULATOR_V8_FLAGS } from "../../dist/main/emulator-v8.js";

export const CHROMIUM = {
  executablePath: "/usr/bin/chromium",
  headless: true,
  args: ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update", "--disable-sync", "--no-first-run", `--js-flags=${EMULATOR_V8_FLAGS}`],
};
