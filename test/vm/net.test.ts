// The tiny guest's network through the host's NAT, as the guest sees it: an address by DHCP,
// the gateway answering ping, a loopback HTTP server on the host refused by default and
// reached with --allow-host, and a forwarded port answering from the host.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { spawn } from "node:child_process";
import { createServer, type Server } from "node:http";
import { get } from "node:http";
import { resolve } from "node:path";
import { randomBytes, createHash } from "node:crypto";
import { tinyPlan } from "../support/guests.js";
import { HeadlessGuest } from "../../main/headless/runner.js";
import { createNat, type Nat } from "../../main/net/nat.js";

const bin = resolve(import.meta.dirname, "../../bin/unmachine.js");
const body = randomBytes(3 * 1024 * 1024);
let server: Server;
let port = 0;

beforeAll(async () => {
  server = createServer((_req, res) => res.end(body));
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", () => r()));
  port = (server.address() as { port: number }).port;
});
afterAll(() => {
  server.close();
});

/** Runs the CLI without blocking this process, which serves the test's HTTP server. */
function run(args: string[], command: string): Promise<{ status: number | null; stdout: string; stderr: string }> {
  return new Promise((resolveRun) => {
    const child = spawn(process.execPath, [bin, "run", "tiny", "--headless", ...args, "--exec", command], { timeout: 180_000 });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d: Buffer) => (stdout += d.toString()));
    child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
    child.on("close", (status) => resolveRun({ status, stdout, stderr }));
  });
}

describe("the guest's network", () => {
  it("gets an address by DHCP, pings the gateway, and is refused the host's loopback by default", async () => {
    const r = await run([], `ip -4 addr show eth0 | grep -o 'inet [0-9./]*'; ping -c 1 -W 3 10.0.2.2 | grep -o '1 packets received'; wget -O /tmp/page http://10.0.2.2:${port}/ 2>&1 | tail -1`);
    expect(r.stdout).toContain("inet 10.0.2.15/24");
    expect(r.stdout).toContain("1 packets received");
    expect(r.stdout).toMatch(/Connection refused/);
  });

  it("reaches the host's loopback server with --allow-host, byte for byte", async () => {
    const r = await run(["--allow-host"], `wget -q -O /tmp/page http://10.0.2.2:${port}/ && sha256sum /tmp/page`);
    expect(r.stdout).toContain(createHash("sha256").update(body).digest("hex"));
    expect(r.status).toBe(0);
  });
});

describe("an old guest's NE2000 card", () => {
  it("gets the same network: DHCP, DNS through the host's resolver, a download", async () => {

    const nat = createNat({ name: "ne2k", allowHost: true });
    const guest = new HeadlessGuest(tinyPlan({ nic: "ne2k" }), { services: { net: (pipe) => nat.attach(pipe) } });
    try {
      await guest.waitForShell(120_000);
      const r = await guest.exec(
        `cat /sys/class/net/eth0/device/uevent | grep -o 'DRIVER=.*'; nslookup localhost 10.0.2.3 | grep -c 127.0.0.1; wget -q -O /tmp/page http://10.0.2.2:${port}/ && sha256sum /tmp/page`,
        120_000,
      );
      expect(r.output).toContain("DRIVER=ne2k-pci");
      expect(r.output).toMatch(/^[1-9]$/m);
      expect(r.output).toContain(createHash("sha256").update(body).digest("hex"));
    } finally {
      await guest.stop();
      guest.dispose();
      nat.dispose();
    }
  });
});

describe("a forwarded port", () => {
  let guest: HeadlessGuest;
  let nat: Nat;
  let hostPort = 0;

  beforeAll(async () => {

    nat = createNat({ name: "tiny", forwards: [{ hostPort: 0, guestPort: 8080 }] });
    hostPort = (await nat.ready)[0]!.hostPort;
    guest = new HeadlessGuest(tinyPlan(), { services: { net: (pipe) => nat.attach(pipe) } });
    await guest.waitForShell(120_000);
  });
  afterAll(async () => {
    await guest.stop();
    guest.dispose();
    nat.dispose();
  });

  it("answers from the host: a web server in the guest, fetched at 127.0.0.1", async () => {
    await guest.exec("mkdir -p /www && echo 'served from inside the guest' > /www/index.html && httpd -p 8080 -h /www && echo up", 30_000);
    const text = await new Promise<string>((resolveText, reject) => {
      get(`http://127.0.0.1:${hostPort}/index.html`, (res) => {
        let data = "";
        res.on("data", (d: Buffer) => (data += d.toString()));
        res.on("end", () => resolveText(data));
      }).on("error", reject);
    });
    expect(text).toBe("served from inside the guest\n");
  });
});
