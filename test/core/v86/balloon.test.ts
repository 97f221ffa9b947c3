// The balloon's one rule (a guest keeps between the floor and its boot RAM) and how it drives
// v86's device: the pages it asks the guest's driver to hold, and why it refuses.

import { describe, expect, it } from "vitest";
import { BALLOON_FLOOR_MiB, balloonRange, balloonTarget, setBalloon } from "../../../core/v86/balloon.js";

/** A V86 instance with v86's balloon device as libv86 builds it: a page target, Inflate and Deflate. */
function emulatorWithBalloon(driverOk = true) {
  const device = {
    num_pages: 0,
    actual: 0,
    virtio: { device_status: driverOk ? 1 | 2 | 4 | 8 : 1 | 2 },
    Inflate(pages: number) {
      device.num_pages += pages;
    },
    Deflate(pages: number) {
      device.num_pages -= pages;
    },
  };
  return { emulator: { v86: { cpu: { devices: { virtio_balloon: device } } } }, device };
}

describe("balloonTarget", () => {
  it("holds the difference between the boot RAM and the wanted RAM, in 4 KiB pages", () => {
    expect(balloonTarget(128, 64)).toEqual({ pages: 64 * 256, memory: 64 });
    expect(balloonTarget(128, 128)).toEqual({ pages: 0, memory: 128 });
  });

  it("never gives more than the boot RAM, nor less than the floor", () => {
    expect(balloonTarget(128, 512)).toEqual({ pages: 0, memory: 128 });
    expect(balloonTarget(128, 1)).toEqual({ pages: (128 - BALLOON_FLOOR_MiB) * 256, memory: BALLOON_FLOOR_MiB });
    // A guest booted with less than the floor keeps all it has.
    expect(balloonRange(48)).toEqual({ min: 48, max: 48 });
    expect(balloonTarget(48, 16)).toEqual({ pages: 0, memory: 48 });
  });
});

describe("setBalloon", () => {
  it("inflates and deflates v86's device to the wanted size", () => {
    const { emulator, device } = emulatorWithBalloon();
    expect(setBalloon(emulator, 128, 64)).toBe(64);
    expect(device.num_pages).toBe(64 * 256);
    expect(setBalloon(emulator, 128, 100)).toBe(100);
    expect(device.num_pages).toBe(28 * 256);
    expect(setBalloon(emulator, 128, 128)).toBe(128);
    expect(device.num_pages).toBe(0);
  });

  it("says why it cannot: no device, no driver, out of range", () => {
    expect(() => setBalloon({ v86: { cpu: { devices: {} } } }, 128, 64)).toThrow(/has no balloon device/);
    expect(() => setBalloon(emulatorWithBalloon(false).emulator, 128, 64)).toThrow(/balloon driver is not running/);
    const { emulator, device } = emulatorWithBalloon();
    expect(() => setBalloon(emulator, 128, 16)).toThrow("memory must be a whole number of MiB from 64 to 128 (its boot RAM), got 16");
    expect(() => setBalloon(emulator, 128, 200)).toThrow(/from 64 to 128/);
    expect(() => setBalloon(emulator, 128, 64.5)).toThrow(/whole number/);
    expect(device.num_pages).toBe(0);
  });
});
