// Builds the page (renderer/) into dist/renderer, for the web shell and the Electron window.
import { defineConfig } from "vite";
import { svelte } from "@sveltejs/vite-plugin-svelte";

export default defineConfig({
  root: "renderer",
  base: "./",
  plugins: [svelte()],
  build: {
    outDir: "../dist/renderer",
    emptyOutDir: true,
    target: "es2022",
    chunkSizeWarningLimit: 4096,
  },
});
