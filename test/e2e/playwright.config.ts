// End-to-end tests: Debian's Chromium (never a downloaded browser) against the web shell,
// and the Electron app where its binary exists. Screenshot references live in references/.
import { defineConfig } from "@playwright/test";
import { CHROMIUM } from "../support/chromium.mjs";

export default defineConfig({
  testDir: ".",
  testMatch: "*.spec.ts",
  outputDir: "../../test-results/e2e",
  snapshotPathTemplate: "{testDir}/references/{arg}{ext}",
  timeout: 180_000,
  expect: { timeout: 20_000 },
  workers: 1,
  reporter: [["list"], ["json", { outputFile: "../../test-results/e2e.json" }]],
  use: {
    headless: CHROMIUM.headless,
    viewport: { width: 1280, height: 900 },
    launchOptions: { executablePath: CHROMIUM.executablePath, args: CHROMIUM.args },
  },
});
