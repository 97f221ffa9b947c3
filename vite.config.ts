// Builds the page (renderer/) into dist/renderer, for the web shell and the Electron window.
import { defineConfig } from "vite";
import { svelte } from "@sveltejs/vite-plugin-svelte";

export default defineConfig({
  root: "renderer",
  base: "./",
  plugins: [svelte()],
  // The state compressor's worker loads its zstd module on demand, which needs module workers.
  worker: { format: "es" },
  build: {
    outDir: "../dist/renderer",
    emptyOutDir: true,
    target: "es2022",
    chunkSizeWarningLimit: 4096,
  },
});
