// Careless and concurrent uses of the library: a guest's folder holding the user's own files, a
// guest.json the user broke by hand, and rm or reset while another process runs the guest.
// Each is refused with one line naming the thing, or done without losing what is not the guest's.
import { afterEach, describe, expect, it } from "vitest";
import { spawn, type ChildProcess } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { GuestLibrary } from "../../../main/guests/library.js";
import { addGuest, editGuest, removeGuest, resetGuest } from "../../../main/guests/library-edit.js";
import { OverlayDisk } from "../../../main/disk/overlay.js";
import { buildFatImage, materialize } from "../../../core/fat/image.js";
import { fileFromBytes } from "../../../core/fat/tree.js";

function fixture(): { library: GuestLibrary; root: string; data: string } {
  const root = mkdtempSync(join(tmpdir(), "unmachine-edit-"));
  const built = join(root, "cache");
  mkdirSync(join(built, "firmware"), { recursive: true });
  writeFileSync(join(built, "firmware", "bios.bin"), Buffer.alloc(1024));
  writeFileSync(join(built, "firmware", "vgabios-stdvga.bin"), Buffer.alloc(1024));
  const data = join(root, "data");
  return { library: new GuestLibrary(join(root, "builtin"), [built], data), root, data };
}

const dosDisk = (): Uint8Array => materialize(buildFatImage([fileFromBytes("IO.SYS", new Uint8Array(8), 0), fileFromBytes("MSDOS.SYS", new Uint8Array(8), 0)]));

let holder: ChildProcess | undefined;
afterEach(async () => {
  if (holder && holder.exitCode === null && holder.signalCode === null) {
    const gone = new Promise((resolve) => holder!.once("exit", resolve));
    holder.kill("SIGKILL");
    await gone;
  }
  holder = undefined;
});

describe("a guest's folder", () => {
  it("adding an image never takes over a folder of the library holding the user's files", () => {
    const { library, root, data } = fixture();
    const folder = join(data, "guests", "win");
    mkdirSync(folder, { recursive: true });
    writeFileSync(join(folder, "notes.txt"), "mine");
    writeFileSync(join(folder, "settings.json"), "{}");
    const image = join(root, "win.img");
    writeFileSync(image, dosDisk());
    // The name from the file is taken by a folder of the user's files: the guest gets another.
    const added = addGuest(library, image);
    expect(added.name).toBe("win-2");
    expect(readdirSync(folder).sort()).toEqual(["notes.txt", "settings.json"]);
    expect(library.problem("win-2")).toBeUndefined();
    // Asked for by name: refused, naming the folder and the files, nothing removed.
    expect(() => addGuest(library, image, { name: "win" })).toThrow(`--name "win": ${folder} holds files that are not a guest's (notes.txt); move them away or choose another name`);
    expect(readdirSync(folder).sort()).toEqual(["notes.txt", "settings.json"]);
  });

  it("rm removes the guest's own files and keeps the user's, saying so", () => {
    const { library, root, data } = fixture();
    const image = join(root, "dos.img");
    writeFileSync(image, dosDisk());
    addGuest(library, image, { name: "dos" });
    const folder = join(data, "guests", "dos");
    writeFileSync(join(folder, "saved-game.dat"), "keep me");
    const kept = removeGuest(library, "dos", false);
    expect(kept).toEqual(["saved-game.dat"]);
    expect(library.has("dos")).toBe(false);
    expect(readFileSync(join(folder, "saved-game.dat"), "utf8")).toBe("keep me");
    // With nothing else in it, the folder goes.
    addGuest(library, image, { name: "dos2" });
    expect(removeGuest(library, "dos2", false)).toEqual([]);
    expect(existsSync(join(data, "guests", "dos2"))).toBe(false);
    expect(existsSync(image)).toBe(true);
  });

  it("a guest.json broken by hand is named in one line, and the guest can still be removed", () => {
    const { library, root, data } = fixture();
    const image = join(root, "dos.img");
    writeFileSync(image, dosDisk());
    addGuest(library, image, { name: "dos" });
    const file = join(data, "guests", "dos", "guest.json");
    writeFileSync(file, "{ not json");
    expect(() => library.profile("dos")).toThrow(`${file}: not valid JSON`);
    removeGuest(library, "dos", false);
    expect(existsSync(join(data, "guests", "dos"))).toBe(false);
  });
});

describe("files the user edited or chose carelessly", () => {
  it("a guest.json whose name was edited to another guest's is still the guest of its folder", () => {
    const { library, root, data } = fixture();
    const image = join(root, "dos.img");
    writeFileSync(image, dosDisk());
    addGuest(library, image, { name: "dos" });
    addGuest(library, image, { name: "other" });
    const file = join(data, "guests", "dos", "guest.json");
    writeFileSync(file, readFileSync(file, "utf8").replace('"name": "dos"', '"name": "other"'));
    expect(library.profile("dos").name).toBe("dos");
    expect(library.summaries().map((g) => g.name)).toEqual(["dos", "other"]);
  });

  it("refuses a title with line breaks or control characters, which would break the list's rows", () => {
    const { library, root } = fixture();
    const image = join(root, "dos.img");
    writeFileSync(image, dosDisk());
    addGuest(library, image, { name: "dos" });
    expect(() => editGuest(library, "dos", [["title", "Games\nand more"]])).toThrow(`title: expected 1 to 80 characters on one line, without control characters`);
    editGuest(library, "dos", [["title", "Jeux & Spiele ✓"]]);
    expect(library.profile("dos").title).toBe("Jeux & Spiele ✓");
    // A file named with a line break (or a page upload's name) gets a title on one line.
    const odd = join(root, "two\nlines.img");
    writeFileSync(odd, dosDisk());
    expect(library.profile(addGuest(library, odd).name).title).toBe("two lines.img");
  });

  it("refuses to add a file kept inside the library's own folder (a guest's image or overlay)", () => {
    const { library, root, data } = fixture();
    const image = join(root, "dos.img");
    writeFileSync(image, dosDisk());
    addGuest(library, image, { name: "dos" });
    const inside = join(data, "guests", "dos", "copy.img");
    writeFileSync(inside, dosDisk());
    expect(() => addGuest(library, inside, { name: "copy" })).toThrow(`${inside}: is inside Unmachine's library folder ${join(data, "guests")}; copy it out first`);
    expect(library.has("copy")).toBe(false);
  });
});

describe("a guest another process runs", () => {
  it("is neither removed nor reset while its disk is open there", async () => {
    const { library, root, data } = fixture();
    const image = join(root, "dos.img");
    writeFileSync(image, dosDisk());
    addGuest(library, image, { name: "dos" });
    const overlay = join(data, "guests", "dos", "hda.overlay");
    const disk = new OverlayDisk(image, overlay);
    disk.write(0, new Uint8Array(512).fill(1));
    disk.close();
    // Another `unmachine run dos` (or a shell's tab) has the overlay open for writing.
    holder = spawn(process.execPath, ["-e", "setTimeout(() => {}, 30000)"], { stdio: "ignore" });
    writeFileSync(`${overlay}.lock`, `${holder.pid}\n`);
    expect(() => resetGuest(library, "dos")).toThrow(`dos is running (process ${holder.pid}); stop it first`);
    expect(() => removeGuest(library, "dos", true)).toThrow(`dos is running (process ${holder.pid}); stop it first`);
    expect(library.user.overlayBytes("dos")).toBe(512);
    const gone = new Promise((resolve) => holder!.once("exit", resolve));
    holder.kill("SIGKILL");
    await gone;
    resetGuest(library, "dos");
    expect(library.user.overlayBytes("dos")).toBe(0);
  });
});
