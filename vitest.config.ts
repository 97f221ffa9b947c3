// Unit tests (test/core, test/main, test/renderer) and vm tests (test/vm: real guests booting in v86).
import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    projects: [
      {
        test: {
          name: "unit",
          include: ["test/core/**/*.test.ts", "test/main/**/*.test.ts", "test/renderer/**/*.test.ts", "test/fuzz/**/*.test.ts"],
          environment: "node",
          testTimeout: 20_000,
        },
      },
      {
        test: {
          name: "vm",
          include: ["test/vm/**/*.test.ts"],
          environment: "node",
          testTimeout: 180_000,
          hookTimeout: 180_000,
          // Each boot takes a core and ~300 MB; two at once on two cores is the limit.
          fileParallelism: false,
          setupFiles: ["test/support/vm-setup.ts"],
        },
      },
    ],
  },
});
