// The reference: v86 alone, no app around it. Boots the same kernel and initrd with the same
// options and prints "PROMPT <ms>" when the shell prompt shows on serial.
// Usage: node bare-v86.mjs <bios> <vgabios> <vmlinuz> <initrd> <cmdline> <memoryMiB>
import { readFileSync } from "node:fs";
import { V86 } from "v86";

const [bios, vga, kernel, initrd, cmdline, memory] = process.argv.slice(2);
const start = performance.now();
const buf = (path) => {
  const b = readFileSync(path);
  return { buffer: b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength) };
};
const emulator = new V86({
  wasm_path: new URL("../../node_modules/v86/build/v86.wasm", import.meta.url).pathname,
  memory_size: Number(memory) * 1024 * 1024,
  vga_memory_size: 8 * 1024 * 1024,
  bios: buf(bios),
  vga_bios: buf(vga),
  bzimage: buf(kernel),
  initrd: buf(initrd),
  cmdline,
  autostart: true,
  disable_speaker: true,
  fastboot: true,
  net_device: { type: "virtio" },
});
let tail = "";
let done = false;
emulator.add_listener("serial0-output-byte", (byte) => {
  tail = (tail + String.fromCharCode(byte)).slice(-64);
  if (!done && /tiny:[^\n]*# /.test(tail)) {
    done = true;
    process.stdout.write(`PROMPT ${Math.round(performance.now() - start)}\n`);
    void emulator.destroy().finally(() => process.exit(0));
  }
});
