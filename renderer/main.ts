// The page's entry: connects to the host (Electron preload or web shell) and mounts the app.
import { mount } from "svelte";
import "@xterm/xterm/css/xterm.css";
import "./app.css";
import App from "./components/App.svelte";
import { connectHost } from "./bridge/index.js";

const target = document.getElementById("app")!;
try {
  mount(App, { target, props: { host: connectHost() } });
} catch (error) {
  target.textContent = error instanceof Error ? error.message : String(error);
}
