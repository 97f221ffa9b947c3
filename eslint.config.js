// Lint: typescript-eslint's recommended rules, and the layer rules of STYLE.md: core imports
// nothing of ours and no runtime; the page never imports main/ or Node; only the Electron
// shell imports 'electron'; only main/electron/ipc.ts imports ipcMain.
import tseslint from "typescript-eslint";

const nodeBuiltins = ["node:*", "fs", "path", "os", "child_process", "worker_threads", "crypto", "http", "net"];

export default tseslint.config(
  { ignores: ["dist/**", "release/**", "node_modules/**", "test-results/**", "playwright-report/**", "**/*.svelte"] },
  ...tseslint.configs.recommended,
  {
    rules: {
      "@typescript-eslint/no-unused-vars": ["error", { argsIgnorePattern: "^_" }],
    },
  },
  {
    files: ["core/**/*.ts"],
    rules: {
      "no-restricted-imports": ["error", { patterns: [
        { group: ["../../main/*", "../main/*", "../../renderer/*", "../renderer/*"], message: "core imports nothing of main/ or renderer/" },
        { group: nodeBuiltins, message: "core is runtime-free: no Node modules" },
        { group: ["electron", "svelte", "svelte/*"], message: "core is runtime-free" },
      ] }],
    },
  },
  {
    files: ["renderer/**/*.ts"],
    rules: {
      "no-restricted-imports": ["error", { patterns: [
        { group: ["**/main/*"], message: "the page never imports the host (main/)" },
        { group: [...nodeBuiltins, "electron"], message: "the page has no Node or Electron access" },
      ] }],
    },
  },
  {
    files: ["main/**/*.ts"],
    ignores: ["main/electron/**"],
    rules: {
      "no-restricted-imports": ["error", { patterns: [
        { group: ["electron"], message: "only main/electron/ imports electron" },
        { group: ["**/renderer/*"], message: "the host never imports the page" },
      ] }],
    },
  },
  {
    files: ["main/electron/**/*.ts"],
    ignores: ["main/electron/ipc.ts"],
    rules: {
      "no-restricted-syntax": ["error", {
        selector: "ImportSpecifier[imported.name='ipcMain']",
        message: "only main/electron/ipc.ts imports ipcMain",
      }],
    },
  },
  {
    files: ["main/electron/preload.cts"],
    rules: { "@typescript-eslint/no-require-imports": "off" },
  },
);
