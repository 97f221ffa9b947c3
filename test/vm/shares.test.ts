// Shared folders as the tiny guest sees them, served by the host's 9P server from real host
// folders: a tree round-trips byte for byte with modes and mtimes, a symlink never leads the
// host out of the share, a read-only share refuses every change, a quota holds.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { execFileSync } from "node:child_process";
import { chmodSync, existsSync, lstatSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, statSync, symlinkSync, utimesSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { randomBytes } from "node:crypto";
import { tinyPlan } from "../support/guests.js";
import { HeadlessGuest } from "../../main/headless/runner.js";
import { hostServiceSet, type ServiceSet } from "../../main/host/services.js";

const scratch = mkdtempSync(join(tmpdir(), "unmachine-shares-"));
const rw = join(scratch, "rw");
const ro = join(scratch, "ro");
const small = join(scratch, "small");
const outside = join(scratch, "outside");

function snapshot(dir: string): Record<string, string> {
  const out: Record<string, string> = {};
  const walk = (rel: string): void => {
    for (const name of readdirSync(join(dir, rel)).sort()) {
      if (name.startsWith(".unmachine-attrs")) continue;
      const path = join(dir, rel, name);
      const st = lstatSync(path);
      const key = join(rel, name);
      if (st.isDirectory()) {
        out[key] = `dir ${(st.mode & 0o777).toString(8)}`;
        walk(key);
      } else if (st.isSymbolicLink()) out[key] = "link";
      else out[key] = `file ${(st.mode & 0o777).toString(8)} ${Math.floor(st.mtimeMs / 1000)} ${readFileSync(path).toString("base64")}`;
    }
  };
  walk("");
  return out;
}

describe("shared folders in tiny", () => {
  let guest: HeadlessGuest;
  let services: ServiceSet;
  const refused: string[] = [];
  const sh = async (command: string): Promise<{ output: string; status: number }> => guest.exec(command, 60_000);

  beforeAll(async () => {
    for (const d of [rw, ro, small, outside]) mkdirSync(d);
    // A tree to carry in: nested folders, odd names, modes, old mtimes, a binary file.
    mkdirSync(join(rw, "in", "deeper", "still"), { recursive: true });
    writeFileSync(join(rw, "in", "plain.txt"), "plain text\n");
    writeFileSync(join(rw, "in", "with space ünïcode.txt"), "names survive\n");
    writeFileSync(join(rw, "in", "deeper", "blob.bin"), randomBytes(300_000));
    writeFileSync(join(rw, "in", "deeper", "still", "script.sh"), "#!/bin/sh\necho hi\n");
    chmodSync(join(rw, "in", "deeper", "still", "script.sh"), 0o755);
    chmodSync(join(rw, "in", "plain.txt"), 0o640);
    utimesSync(join(rw, "in", "plain.txt"), new Date("2001-09-09T01:46:40Z"), new Date("2001-09-09T01:46:40Z"));
    writeFileSync(join(outside, "secret.txt"), "host secret\n");
    symlinkSync(join(outside, "secret.txt"), join(rw, "escape-abs"));
    symlinkSync("../outside", join(rw, "escape-rel"));
    writeFileSync(join(ro, "readme.txt"), "read only\n");


    // Planned and served as the CLI does it: the shares in the plan, the host's service set from it.
    const plan = tinyPlan({
      net: false,
      shares: [
        { hostPath: rw, tag: "rw", readOnly: false },
        { hostPath: ro, tag: "ro", readOnly: true },
        { hostPath: small, tag: "small", readOnly: false, quotaMiB: 1 },
      ],
    });
    services = hostServiceSet(plan, { onError: (message) => refused.push(message) });
    guest = new HeadlessGuest(plan, { services: services.attach });
    await guest.waitForShell(120_000);
  });
  afterAll(async () => {
    await guest.stop();
    guest.dispose();
    services.dispose();
  });

  it("mounts every share at /mnt/<tag>", async () => {
    expect((await sh("ls /mnt")).output.split(/\s+/).filter(Boolean)).toEqual(["ro", "rw", "small"]);
    expect(refused).toEqual([]);
  });

  it("round-trips a tree through tar byte for byte, with modes and mtimes", async () => {
    const r = await sh("cd /mnt/rw && tar -cf /tmp/t.tar in && mkdir out && tar -xpf /tmp/t.tar -C out && echo ok");
    expect(r).toEqual({ output: "ok\n", status: 0 });
    const original = snapshot(join(rw, "in"));
    expect(Object.keys(original).length).toBe(6);
    expect(snapshot(join(rw, "out", "in"))).toEqual(original);
  });

  it("keeps modes and owners the guest sets, without changing host ownership", async () => {
    const r = await sh("cd /mnt/rw && echo x > owned && chown 1234:5678 owned && chmod 4711 owned && stat -c '%u %g %a' owned");
    expect(r.output).toBe("1234 5678 4711\n");
    const st = statSync(join(rw, "owned"));
    expect(st.uid).toBe(process.getuid!());
    expect(st.mode & 0o7000).toBe(0); // nothing set-uid on the host
  });

  it("gives the guest symlinks as links and never follows them out of the share", async () => {
    expect((await sh("readlink /mnt/rw/escape-rel")).output).toBe("../outside\n");
    // The guest resolves the link in its own tree: /mnt/outside does not exist there.
    const r = await sh("cat /mnt/rw/escape-rel/secret.txt 2>&1; echo 'overwrite' > /mnt/rw/escape-abs 2>&1; echo done");
    expect(r.output).not.toContain("host secret");
    expect(readFileSync(join(outside, "secret.txt"), "utf8")).toBe("host secret\n");
    expect((await sh("ls /mnt/rw/.. ; ls -a /mnt/rw | grep -c unmachine-attrs")).output).toMatch(/ro\s+rw\s+small\s+0/);
  });

  it("refuses every change to a read-only share, and the host folder is untouched", async () => {
    const r = await sh(
      "cd /mnt/ro; for c in 'touch new' 'rm readme.txt' 'mkdir d' 'mv readme.txt x' 'chmod 777 readme.txt' 'ln -s a b'; do $c 2>&1 | grep -c 'Read-only file system'; done; echo more >> readme.txt; cat readme.txt",
    );
    expect(r.output).toContain("1\n1\n1\n1\n1\n1\n");
    expect(r.output).toContain("read only\n");
    expect(readdirSync(ro)).toEqual(["readme.txt"]);
    expect(readFileSync(join(ro, "readme.txt"), "utf8")).toBe("read only\n");
  });

  it("loses no line when two processes append to one file at once", async () => {
    const r = await sh("cd /mnt/rw && : > log && (for i in $(seq 200); do echo A$i >> log; done) & (for i in $(seq 200); do echo B$i >> /mnt/rw/log; done) & wait; wc -l < /mnt/rw/log");
    expect(r.output.trim()).toBe("400");
    const lines = readFileSync(join(rw, "log"), "utf8").trim().split("\n").sort();
    const expected = [...Array(200).keys()].flatMap((i) => [`A${i + 1}`, `B${i + 1}`]).sort();
    expect(lines).toEqual(expected);
  });

  it("shows one mode and owner through every hard link of a file", async () => {
    const r = await sh("cd /mnt/rw && echo x > h1 && ln h1 h2 && chown 12:34 h2 && chmod 4711 h1 && stat -c '%a %u %g %h' h1 h2");
    expect(r.output).toBe("4711 12 34 2\n4711 12 34 2\n");
  });

  it("counts a removed file that is still open toward the quota", async () => {
    const r = await sh("cd /mnt/small && exec 3>ghost && rm ghost && dd if=/dev/zero bs=64k count=64 >&3 2>/tmp/dd.err; exec 3>&-; cat /tmp/dd.err; ls -A /mnt/small | wc -l");
    expect(r.output).toMatch(/No space left on device/);
    expect(r.output.trim().endsWith("0")).toBe(true);
  });

  it("stops writes at the quota with ENOSPC, and the host keeps at most the quota", async () => {
    const r = await sh("dd if=/dev/zero of=/mnt/small/big bs=64k count=40 2>&1; sync");
    expect(r.output).toMatch(/No space left on device/);
    let total = 0;
    for (const f of readdirSync(small)) if (!f.startsWith(".unmachine")) total += statSync(join(small, f)).size;
    expect(total).toBeLessThanOrEqual(1024 * 1024);
    expect(total).toBeGreaterThan(512 * 1024);
  });
});

describe("unmachine run tiny --root-folder", () => {
  it("fills an empty folder on first boot, keeps what the guest writes to /etc, boots from it again", () => {
    const root = join(scratch, "root");
    const bin = join(import.meta.dirname, "../../bin/unmachine.js");
    const first = execFileSync(process.execPath, [bin, "run", "tiny", "--headless", "--root-folder", root, "--exec", "echo from-first-boot > /etc/note; mount | grep ' / '"], { encoding: "utf8", timeout: 200_000 });
    expect(first).toMatch(/^host9p on \/ type 9p/m);
    expect(existsSync(join(root, "bin", "busybox"))).toBe(true);
    expect(readFileSync(join(root, "etc", "note"), "utf8")).toBe("from-first-boot\n");
    const second = execFileSync(process.execPath, [bin, "run", "tiny", "--headless", "--root-folder", root, "--exec", "cat /etc/note"], { encoding: "utf8", timeout: 200_000 });
    expect(second).toBe("from-first-boot\n");
  });
});
