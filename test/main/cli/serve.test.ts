// How `unmachine serve` opens its page in Chromium: nothing another local user can read from
// the browser's command line or environment (`ps`) lets them into the web shell; the address
// it is given lets the browser in once.

import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { appWindowLaunch } from "../../../main/cli/serve.js";
import { startWebShell, type WebShell } from "../../../main/web/server.js";
import { connect, fixture, get } from "../../support/web-shell.js";

describe("serve's browser launch", () => {
  let shell: WebShell;
  beforeAll(async () => {
    const { library, pageDir } = fixture();
    shell = await startWebShell({ library, pageDir, port: 0 });
  });
  afterAll(async () => {
    await shell.close();
  });

  it("puts no token in the browser's arguments or environment", () => {
    const launch = appWindowLaunch(shell, "/usr/bin/chromium", "/tmp/profile");
    expect(launch.command).toBe("/usr/bin/chromium");
    expect(launch.args).toContain("--user-data-dir=/tmp/profile");
    expect(launch.args).toContain("--js-flags=--liftoff-only"); // the emulator's V8 flags, as the desktop app gives its page
    for (const arg of launch.args) expect(arg).not.toContain(shell.token);
    for (const [name, value] of Object.entries(launch.env)) expect(`${name}=${value}`).not.toContain(shell.token);
  });

  it("gives an address that lets the browser in once, and is worthless once read from `ps`", async () => {
    const launch = appWindowLaunch(shell, "/usr/bin/chromium", "/tmp/profile");
    const address = launch.args.find((a) => a.startsWith("--app="))!.slice("--app=".length);
    expect(address.startsWith(`${shell.origin}/`)).toBe(true);
    const browser = await get(address);
    expect(browser.status).toBe(303);
    const cookie = String(browser.headers["set-cookie"]).split(";")[0]!;
    expect((await get(`${shell.origin}/`, { cookie })).status).toBe(200);

    // Someone who copied the address from the process list gets nothing.
    const copied = await get(address);
    expect(copied.status).toBe(403);
    expect(copied.headers["set-cookie"]).toBeUndefined();
    const query = new URL(address).search;
    expect(await connect(`${shell.origin.replace("http", "ws")}/rpc${query}`, shell.origin)).toBe(403);
    expect((await get(`${shell.origin}/media/demo/bzimage${query}`)).status).toBe(403);
  });
});
