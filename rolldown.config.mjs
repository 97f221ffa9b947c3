// The command line bundled (npm run build, after tsc): `unmachine` and its emulator worker load
// a few files instead of some ninety modules, each found, read and linked by Node's loader on
// every start. A headless resume answered 50-70 ms sooner in interleaved runs here. Packages
// stay outside (node_modules); the Electron app and the tests use tsc's dist/main as before.
export default {
  input: {
    main: "dist/main/cli/main.js",
    worker: "dist/main/headless/worker.js",
    "worker-start": "dist/main/headless/worker-start.js",
  },
  platform: "node",
  // Packages and Node's own modules: everything not a path is loaded as it is.
  external: (id) => !id.startsWith(".") && !id.startsWith("/"),
  output: { dir: "dist/cli", format: "esm", entryFileNames: "[name].js", chunkFileNames: "[name]-[hash].js", cleanDir: true },
  logLevel: "warn",
};
