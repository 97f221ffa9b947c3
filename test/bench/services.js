#!/usr/bin/env node
// Benchmark of host services, one run: a 32 MiB file written and read by the tiny guest (dd)
// through the host's 9P server, against v86's own in-memory 9P and QEMU TCG's -virtfs on the
// same kernel and initrd; a 32 MiB download through the host's NAT against QEMU's user
// networking; and the host memory of one guest with its services.
// Results as MiB/s and ratios, also written to test-results/bench/services.json.
import { spawn } from "node:child_process";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { GuestLibrary } from "../../dist/main/guests/library.js";
import { HeadlessGuest } from "../../dist/main/headless/runner.js";
import { libraryPlan } from "../../dist/main/guests/launch.js";
import { serveP9, sharesBackend } from "../../dist/main/host/p9-service.js";
import { createNat } from "../../dist/main/net/nat.js";
import { createServer } from "node:http";
import { QEMU, qemuTinyArgs, requireQemu } from "./qemu.mjs";

requireQemu();

const root = resolve(import.meta.dirname, "../..");
const MB = 32;
const { profile, media } = new GuestLibrary().resolve("tiny");
// The guest is planned as the CLI plans it; only the NIC is left out where the run measures files.
const library = new GuestLibrary();
const plan = (overrides) => libraryPlan(library, "tiny", undefined, overrides);
// Timed in the guest by its own clock (/proc/uptime, 10 ms steps); sync is timed into the
// write, and the read runs after dropping the guest's page cache.
const ddScript = (dir) =>
  `cd ${dir} && up() { cut -d' ' -f1 /proc/uptime; }; t0=$(up); dd if=/dev/zero of=f bs=1M count=${MB} 2>/dev/null; sync; t1=$(up); echo 3 > /proc/sys/vm/drop_caches; ` +
  `t2=$(up); dd if=f of=/dev/null bs=1M 2>/dev/null; t3=$(up); awk -v a=$t0 -v b=$t1 -v c=$t2 -v d=$t3 'BEGIN { printf "W %d R %d\\n", (b-a)*1e6, (d-c)*1e6 }'; rm f`;
const parse = (text) => {
  const m = /W (\d+) R (\d+)/.exec(text);
  if (!m) throw new Error(`no timing in: ${text.slice(-500)}`);
  return { write: MB / (Number(m[1]) / 1e6), read: MB / (Number(m[2]) / 1e6) };
};

async function inV86(services, builtin9p, dir) {
  const guest = new HeadlessGuest(plan({ net: false, builtin9p }), { services });
  try {
    await guest.waitForShell(180_000);
    const r = await guest.exec(ddScript(dir), 180_000);
    return parse(r.output);
  } finally {
    await guest.stop();
    guest.dispose();
  }
}

function inQemu(shareDir) {
  return new Promise((resolvePromise, reject) => {
    const args = qemuTinyArgs(profile, media, ["-virtfs", `local,path=${shareDir},mount_tag=host9p,security_model=mapped-xattr,id=p9`]);
    const child = spawn(QEMU, args, { stdio: ["pipe", "pipe", "pipe"] });
    let out = "";
    let sent = false;
    const timer = setTimeout(() => { child.kill("SIGKILL"); reject(new Error("QEMU did not finish in 300 s")); }, 300_000);
    child.stdout.on("data", (d) => {
      out += d.toString("latin1");
      if (!sent && /tiny:[^\n]*# /.test(out)) {
        sent = true;
        child.stdin.write(`${ddScript("/mnt")}; echo DONE''MARK\n`);
      }
      if (/DONEMARK/.test(out)) {
        clearTimeout(timer);
        child.kill("SIGKILL");
        try { resolvePromise(parse(out)); } catch (e) { reject(e); }
      }
    });
    child.on("error", reject);
  });
}

// A 32 MiB download from an HTTP server on the host's loopback, reached at the gateway 10.0.2.2.
const body = Buffer.alloc(MB * 1024 * 1024, 7);
const http = createServer((_req, res) => res.end(body));
await new Promise((r) => http.listen(0, "127.0.0.1", r));
const httpPort = http.address().port;
const wgetScript = () =>
  `sleep 2; up() { cut -d' ' -f1 /proc/uptime; }; t0=$(up); wget -q -O /dev/null http://10.0.2.2:${httpPort}/; t1=$(up); awk -v a=$t0 -v b=$t1 'BEGIN { printf "N %d\\n", (b-a)*1e6 }'`;
const parseNet = (text) => {
  const m = /N (\d+)/.exec(text);
  if (!m) throw new Error(`no timing in: ${text.slice(-500)}`);
  return MB / (Number(m[1]) / 1e6);
};

async function netInV86() {
  const nat = createNat({ name: "bench", allowHost: true });
  const guest = new HeadlessGuest(plan({}), { services: { net: (pipe) => nat.attach(pipe) } });
  try {
    await guest.waitForShell(180_000);
    return parseNet((await guest.exec(wgetScript(), 300_000)).output);
  } finally {
    await guest.stop();
    guest.dispose();
    nat.dispose();
  }
}

function netInQemu() {
  return new Promise((resolvePromise, reject) => {
    const args = qemuTinyArgs(profile, media, ["-netdev", "user,id=n0", "-device", "virtio-net-pci,netdev=n0"]);
    const child = spawn(QEMU, args, { stdio: ["pipe", "pipe", "pipe"] });
    let out = "";
    let sent = false;
    const timer = setTimeout(() => { child.kill("SIGKILL"); reject(new Error("QEMU did not finish in 300 s")); }, 300_000);
    child.stdout.on("data", (d) => {
      out += d.toString("latin1");
      if (!sent && /tiny:[^\n]*# /.test(out)) {
        sent = true;
        child.stdin.write(`${wgetScript()}; echo DONE''MARK\n`);
      }
      if (/DONEMARK/.test(out)) {
        clearTimeout(timer);
        child.kill("SIGKILL");
        try { resolvePromise(parseNet(out)); } catch (e) { reject(e); }
      }
    });
    child.on("error", reject);
  });
}

function peakRss(pid) {
  try {
    return Number(/VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, "utf8"))[1]) * 1024;
  } catch {
    return 0;
  }
}

/** Peak RSS of `unmachine run tiny` with a share and the agent, until it prints the prompt. */
function guestMemory(shareDir) {
  return new Promise((resolvePromise) => {
    const child = spawn(process.execPath, ["bin/unmachine.js", "run", "tiny", "--headless", "--share", `${shareDir}:bench`, "--exec", "ls /mnt/bench >/dev/null; sleep 2"], { cwd: root, stdio: ["ignore", "pipe", "ignore"] });
    let peak = 0;
    const poll = setInterval(() => (peak = Math.max(peak, peakRss(child.pid))), 50);
    child.on("exit", () => {
      clearInterval(poll);
      resolvePromise(peak);
    });
  });
}

const scratch = mkdtempSync(join(tmpdir(), "unmachine-bench-"));
const share = join(scratch, "share");
const qshare = join(scratch, "qshare");
mkdirSync(share);
mkdirSync(qshare);
const backend = sharesBackend([{ hostPath: share, tag: "bench", readOnly: false }]);
const results = {
  "unmachine 9P": await inV86({ p9: (pipe) => serveP9(backend, pipe) }, false, "/mnt/bench"),
  "v86 built-in 9P": await inV86({}, true, "/mnt"),
  "qemu tcg -virtfs": await inQemu(qshare),
};
const net = { "unmachine NAT": await netInV86(), "qemu tcg user-net": await netInQemu() };
http.close();
const rssMiB = (await guestMemory(share)) / 2 ** 20;
rmSync(scratch, { recursive: true, force: true });

console.log(`\n9P, ${MB} MiB file, guest dd bs=1M (write includes sync; read after dropping caches):`);
for (const [name, r] of Object.entries(results)) console.log(`  ${name.padEnd(17)} write ${r.write.toFixed(1).padStart(7)} MiB/s   read ${r.read.toFixed(1).padStart(7)} MiB/s`);
const u = results["unmachine 9P"];
for (const ref of ["v86 built-in 9P", "qemu tcg -virtfs"]) {
  console.log(`  unmachine / ${ref}: write ${(u.write / results[ref].write).toFixed(2)}x, read ${(u.read / results[ref].read).toFixed(2)}x`);
}
console.log(`Network, ${MB} MiB HTTP download from the host's loopback (guest wget, virtio-net):`);
for (const [name, v] of Object.entries(net)) console.log(`  ${name.padEnd(17)} ${v.toFixed(1).padStart(7)} MiB/s`);
console.log(`  unmachine / qemu tcg user-net: ${(net["unmachine NAT"] / net["qemu tcg user-net"]).toFixed(2)}x`);
console.log(`Host memory of one tiny guest with a share and the agent (peak RSS): ${rssMiB.toFixed(0)} MiB`);
mkdirSync(join(root, "test-results", "bench"), { recursive: true });
writeFileSync(join(root, "test-results", "bench", "services.json"), JSON.stringify({ megabytes: MB, p9: results, net, rssMiB }, null, 2));
