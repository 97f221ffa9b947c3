// The tiny guest's everyday tools, used as a user would in one booted guest: the network is
// up as soon as the prompt shows (even with a DHCP server slower than the boot), wget (with -T,
// -O, -q, -U, -S) fetches from a host loopback server through the NAT, udhcpc renews, and awk,
// sed, tar, dd and a tmpfs mount do their work.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createServer, type Server } from "node:http";
import { createHash, randomBytes } from "node:crypto";
import { tinyPlan } from "../support/guests.js";
import { HeadlessGuest } from "../../main/headless/runner.js";
import { createNat, type Nat } from "../../main/net/nat.js";
import type { ExecResult } from "../../core/console/serial-exec.js";
import type { FramePipe } from "../../core/pipe/frame-pipe.js";

const body = randomBytes(256 * 1024);
const sha256 = (data: Uint8Array): string => createHash("sha256").update(data).digest("hex");

/** An IPv4 UDP frame from port 67: the NAT's DHCP server answering. */
function isDhcpAnswer(frame: Uint8Array): boolean {
  if (frame.length < 42 || frame[12] !== 0x08 || frame[13] !== 0x00 || frame[23] !== 17) return false;
  const udp = 14 + (frame[14]! & 0x0f) * 4;
  return frame.length >= udp + 8 && ((frame[udp]! << 8) | frame[udp + 1]!) === 67;
}

/** The guest's end of the network, with every DHCP answer held back: a DHCP server slower than the guest's boot. */
function slowDhcp(pipe: FramePipe, delayMs: number): FramePipe {
  return {
    send: (frame) => (isDhcpAnswer(frame) ? void setTimeout(() => pipe.send(frame), delayMs) : pipe.send(frame)),
    onFrame: (listener) => pipe.onFrame(listener),
    onClose: (listener) => pipe.onClose(listener),
    get closed() {
      return pipe.closed;
    },
    dispose: () => pipe.dispose(),
  };
}

describe("the tiny guest's tools", () => {
  let server: Server;
  let url = "";
  let guest: HeadlessGuest;
  let nat: Nat;
  let firstExec: ExecResult;
  const stalled = new Set<() => void>();

  beforeAll(async () => {
    server = createServer((req, res) => {
      if (req.url === "/file") {
        res.setHeader("X-Served-By", "unmachine-test");
        res.end(body);
      } else if (req.url === "/agent") {
        res.end(`agent=${req.headers["user-agent"] ?? ""}\n`);
      } else if (req.url === "/stall") {
        // Headers but no body, until the test ends: only a read timeout ends the download.
        res.writeHead(200, { "Content-Length": "100" });
        res.flushHeaders();
        stalled.add(() => res.destroy());
      } else {
        res.statusCode = 404;
        res.end();
      }
    });
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", () => r()));
    url = `http://10.0.2.2:${(server.address() as { port: number }).port}`;

    nat = createNat({ name: "tiny", allowHost: true });
    guest = new HeadlessGuest(tinyPlan(), { services: { net: (pipe) => nat.attach(slowDhcp(pipe, 1000)) } });
    await guest.waitForShell(120_000);
    // The very first command, as soon as the guest counts as running.
    firstExec = await guest.exec("ip -4 addr show dev eth0; ip route", 30_000);
  });
  afterAll(async () => {
    for (const end of stalled) end();
    await guest?.stop();
    guest?.dispose();
    nat?.dispose();
    server?.close();
  });

  it("has its DHCP lease and default route when the prompt shows", () => {
    expect(firstExec.output).toMatch(/inet 10\.0\.2\.15\/24 /);
    expect(firstExec.output).toMatch(/^default via 10\.0\.2\.2 dev eth0/m);
  });

  it("wget -T -q -O downloads a file byte for byte", async () => {
    const r = await guest.exec(`wget -T 5 -q -O /tmp/file ${url}/file && sha256sum /tmp/file`, 60_000);
    expect(r.output).toBe(`${sha256(body)}  /tmp/file\n`);
    expect(r.status).toBe(0);
  });

  it("wget -U sends the user agent, -S prints the server's headers, -O - writes to stdout", async () => {
    const agent = await guest.exec(`wget -q -T 5 -U 'tiny-test/1.0' -O - ${url}/agent`, 30_000);
    expect(agent.output).toBe("agent=tiny-test/1.0\n");
    const headers = await guest.exec(`wget -S -T 5 -O /dev/null ${url}/file 2>&1`, 30_000);
    expect(headers.output).toMatch(/HTTP\/1\.1 200 OK/);
    expect(headers.output).toMatch(/X-Served-By: unmachine-test/i);
  });

  it("wget -T gives up on a server that stops sending", async () => {
    const r = await guest.exec(`start=$(date +%s); wget -q -T 2 -O /tmp/stall ${url}/stall; rc=$?; echo "rc=$rc after $(($(date +%s) - start)) s"`, 60_000);
    expect(r.output).toMatch(/download timed out/);
    const m = /rc=(\d+) after (\d+) s/.exec(r.output);
    expect(m?.[1]).toBe("1");
    expect(Number(m?.[2])).toBeGreaterThanOrEqual(1);
    expect(Number(m?.[2])).toBeLessThan(15);
  });

  it("udhcpc renews the lease, and the boot's udhcpc stays to renew it later", async () => {
    const r = await guest.exec("udhcpc -i eth0 -n -q -t 3 -T 1 -s /etc/udhcpc/default.script 2>&1; ip route; kill -0 $(cat /run/udhcpc.eth0.pid) && echo daemon running", 60_000);
    expect(r.output).toMatch(/lease of 10\.0\.2\.15 obtained/);
    expect(r.output).toMatch(/^default via 10\.0\.2\.2 dev eth0/m);
    expect(r.output).toContain("daemon running");
  });

  it("awk and sed transform text", async () => {
    const awk = await guest.exec(`printf 'alice 3\\nbob 5\\ncarol 7\\n' | awk '$2 > 4 { n = n $1 ","; s += $2 } END { printf "%s%d\\n", n, s }'`, 30_000);
    expect(awk.output).toBe("bob,carol,12\n");
    const sed = await guest.exec(`printf 'hello world\\nsecond line\\nthird\\n' > /tmp/text; sed -i -e 's/world/guest/' -e '2d' -e 's/^h/H/' /tmp/text; sed -n 'p' /tmp/text`, 30_000);
    expect(sed.output).toBe("Hello guest\nthird\n");
  });

  it("tar creates and extracts a compressed archive with the same content", async () => {
    const r = await guest.exec(
      "cd /tmp && rm -rf src out && mkdir -p src/sub out && echo first > src/a.txt && dd if=/dev/urandom of=src/sub/b.bin bs=1024 count=64 2>/dev/null && " +
        "tar czf t.tgz src && tar tzf t.tgz | sort && tar xzf t.tgz -C out && cat out/src/a.txt && " +
        "sha256sum src/sub/b.bin out/src/sub/b.bin | awk '{ print $1 }' | uniq | wc -l",
      30_000,
    );
    expect(r.output).toBe("src/\nsrc/a.txt\nsrc/sub/\nsrc/sub/b.bin\nfirst\n1\n");
    expect(r.status).toBe(0);
  });

  it("dd writes and reads a file of a known size", async () => {
    const r = await guest.exec("dd if=/dev/zero of=/tmp/zero bs=4096 count=256 2>&1; stat -c %s /tmp/zero; dd if=/tmp/zero of=/dev/null bs=65536 2>&1", 30_000);
    expect(r.output).toMatch(/^256\+0 records in\n256\+0 records out\n/);
    expect(r.output).toMatch(/^1048576$/m);
    expect(r.output).toMatch(/^16\+0 records in\n16\+0 records out/m);
  });

  it("mounts a tmpfs and lists it", async () => {
    const r = await guest.exec("mkdir -p /tmp/ram && mount -t tmpfs -o size=2m tmpfs /tmp/ram && echo kept > /tmp/ram/note && ls /tmp/ram && grep ' /tmp/ram ' /proc/mounts && df -k /tmp/ram | awk 'NR == 2 { print $2 }'", 30_000);
    expect(r.output).toMatch(/^note\ntmpfs \/tmp\/ram tmpfs rw[^\n]*size=2048k/);
    expect(r.output).toMatch(/^2048$/m);
  });
});
