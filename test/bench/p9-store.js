#!/usr/bin/env node
// Benchmark of the shares' attribute store, one run: N files created by the guest's calls and
// then chmod'ed and chown'ed one by one through the host's 9P server over a host folder, against
// the host doing the same creates and chmods itself (Node's fs on the same disk) as the floor.
// Results as milliseconds and ratios, also written to test-results/bench/p9-store.json.
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import * as fsp from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { P9Server } from "../../dist/core/p9/server.js";
import { decodeMessage, encodeMessage, NOFID, NOTAG, OpenFlags, SetattrValid } from "../../dist/core/p9/messages.js";
import { HostFolderBackend } from "../../dist/main/p9/host-folder-backend.js";

const root = resolve(import.meta.dirname, "../..");
const scratch = mkdtempSync(join(tmpdir(), "unmachine-bench-store-"));
const none = { mode: 0, uid: 0, gid: 0, size: 0n, atimeSec: 0n, atimeNsec: 0n, mtimeSec: 0n, mtimeNsec: 0n };

async function throughServer(dir, n) {
  const backend = new HostFolderBackend(dir);
  const server = new P9Server(backend);
  let tag = 1;
  const rpc = async (m) => {
    const reply = decodeMessage(await server.handle(encodeMessage({ ...m, tag: m.type === "Tversion" ? NOTAG : tag++ & 0x7fff })));
    if (reply.type === "Rlerror") throw new Error(`${m.type}: errno ${reply.ecode}`);
    return reply;
  };
  await rpc({ type: "Tversion", msize: 65536, version: "9P2000.L" });
  await rpc({ type: "Tattach", fid: 0, afid: NOFID, uname: "", aname: "", nUname: 0 });
  const t0 = performance.now();
  for (let i = 0; i < n; i++) {
    await rpc({ type: "Twalk", fid: 0, newfid: 1, wnames: [] });
    await rpc({ type: "Tlcreate", fid: 1, name: `f${i}`, flags: OpenFlags.WRONLY | OpenFlags.CREAT, mode: 0o100644, gid: 0 });
    await rpc({ type: "Tclunk", fid: 1 });
  }
  const t1 = performance.now();
  for (let i = 0; i < n; i++) {
    await rpc({ type: "Twalk", fid: 0, newfid: 1, wnames: [`f${i}`] });
    await rpc({ type: "Tsetattr", fid: 1, valid: SetattrValid.MODE, ...none, mode: 0o4711 });
    await rpc({ type: "Tsetattr", fid: 1, valid: SetattrValid.UID | SetattrValid.GID, ...none, uid: 1000, gid: 1000 });
    await rpc({ type: "Tclunk", fid: 1 });
  }
  const t2 = performance.now();
  server.dispose();
  await backend.close();
  return { create: t1 - t0, change: t2 - t1 };
}

async function byHost(dir, n) {
  const t0 = performance.now();
  for (let i = 0; i < n; i++) await (await fsp.open(join(dir, `f${i}`), "wx", 0o644)).close();
  const t1 = performance.now();
  for (let i = 0; i < n; i++) {
    await fsp.chmod(join(dir, `f${i}`), 0o711);
    await fsp.chmod(join(dir, `f${i}`), 0o711);
  }
  const t2 = performance.now();
  return { create: t1 - t0, change: t2 - t1 };
}

const results = {};
for (const n of [500, 2000]) {
  const ours = await throughServer(mkdtempSync(join(scratch, "ours-")), n);
  const host = await byHost(mkdtempSync(join(scratch, "host-")), n);
  results[n] = { ours, host, ratio: { create: ours.create / host.create, change: ours.change / host.change } };
  const f = (x) => `${x.toFixed(0)} ms`;
  console.log(`${n} files: create ${f(ours.create)} (host ${f(host.create)}, ${results[n].ratio.create.toFixed(1)}x), ` +
    `chmod+chown each ${f(ours.change)} (host chmod twice ${f(host.change)}, ${results[n].ratio.change.toFixed(1)}x)`);
}
rmSync(scratch, { recursive: true, force: true });
mkdirSync(join(root, "test-results", "bench"), { recursive: true });
writeFileSync(join(root, "test-results", "bench", "p9-store.json"), `${JSON.stringify(results, null, 2)}\n`);
