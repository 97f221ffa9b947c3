// The web shell serves only the user who started it: a request from another local user's
// process, even one holding the printed token, is refused before anything else is looked at.
// The owner of a loopback connection is read from the kernel's socket table.

import { execFile } from "node:child_process";
import { promisify } from "node:util";
import { createRequire } from "node:module";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startWebShell, type WebShell } from "../../../main/web/server.js";
import { loopbackPeerUid } from "../../../main/web/peer.js";
import { fixture, get } from "../../support/web-shell.js";

const NOBODY = 65534;
const isRoot = process.getuid?.() === 0;

describe("the web shell's peer check", () => {
  let shell: WebShell;
  beforeAll(async () => {
    shell = await startWebShell(fixture());
  });
  afterAll(() => shell.close());

  it("serves its own user", async () => {
    expect((await get(shell.url)).status).toBe(303);
  });

  it.skipIf(!isRoot)("refuses another local user holding the token (run as root to switch users)", async () => {
    // As that user: the server answers while the child runs (a synchronous spawn would block it).
    const asNobody = async (script: string, ...args: string[]): Promise<string> =>
      (await promisify(execFile)(process.execPath, ["-e", script, ...args], { uid: NOBODY, gid: NOBODY, encoding: "utf8", timeout: 20_000, cwd: "/" })).stdout.trim();
    const script = `
      const http = require("node:http");
      http.get(process.argv[1], (res) => { console.log(res.statusCode); res.resume(); }).on("error", (e) => console.log("error", e.message));`;
    expect(await asNobody(script, shell.url)).toBe("403");
    const ws = `
      const { WebSocket } = require(${JSON.stringify(createRequire(import.meta.url).resolve("ws"))});
      const w = new WebSocket(process.argv[1], { headers: { origin: process.argv[2] } });
      w.on("open", () => { console.log("open"); w.close(); });
      w.on("unexpected-response", (_q, res) => console.log(res.statusCode));
      w.on("error", (e) => console.log("error", e.message));`;
    const rpc = `${shell.origin.replace("http", "ws")}/rpc?token=${shell.token}`;
    expect(await asNobody(ws, rpc, shell.origin)).toBe("403");
  });

  it("reads a connection's owner from the socket table", () => {
    const dir = mkdtempSync(join(tmpdir(), "unmachine-tcp-"));
    const table = join(dir, "tcp");
    writeFileSync(table, [
      "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode",
      "   0: 0100007F:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000  1000        0 1 1 0 100 0 0 10 0",
      "   1: 0100007F:C350 0100007F:1F90 01 00000000:00000000 00:00000000 00000000  1001        0 2 1 0 20 4 30 10 -1",
      "   2: 0100007F:1F90 0100007F:C350 01 00000000:00000000 00:00000000 00000000  1000        0 3 1 0 20 4 30 10 -1",
    ].join("\n"));
    expect(loopbackPeerUid(8080, 50000, table)).toBe(1001);
    expect(loopbackPeerUid(8080, 50001, table)).toBeNull();
    expect(loopbackPeerUid(8080, 50000, join(dir, "missing"))).toBeUndefined();
  });
});
