#!/usr/bin/env bash
# Debian packages Unmachine needs beyond Node: installs the missing ones when run as root,
# otherwise prints the one command to run. Usage: system-deps.sh [start|test|bench]
set -euo pipefail
purpose=${1:-start}

declare -A need=(
  [cpio]=cpio            # the tiny guest's initramfs
  [xz]=xz-utils
  [gzip]=gzip
  [dpkg-deb]=dpkg
  [apt-get]=apt
  [gcc]=gcc              # the guest agent, built as a static i386 binary
)
case "$purpose" in
  test) need[chromium]=chromium; need[Xvfb]=xvfb; need[genisoimage]=genisoimage; need[mkfs.vfat]=dosfstools; need[mcopy]=mtools; need[syslinux]=syslinux ;;  # e2e: Chromium; the agent's X clipboard: an X server; vm: CD, floppy, FAT and bootable hard-disk images
  bench) need[chromium]=chromium; need[qemu-system-i386]=qemu-system-x86; need[mkfs.vfat]=dosfstools; need[mcopy]=mtools; need[syslinux]=syslinux ;;  # the QEMU TCG reference; the disk benchmark's bootable image
  start) [ -n "${DISPLAY:-}" ] && need[chromium]=chromium ;;  # the app window when Electron is absent
esac

missing=()
for cmd in "${!need[@]}"; do
  command -v "$cmd" >/dev/null 2>&1 || missing+=("${need[$cmd]}")
done
# The MBR of a bootable hard-disk image (test/support/bootable-disk.mjs): a file, not a command.
case "$purpose" in
  test | bench) [ -e /usr/lib/syslinux/mbr/mbr.bin ] || missing+=(syslinux-common) ;;
esac
# libzstd, which a headless resume decodes its state with (main/headless/state-decode.ts): a
# library, not a command. Debian's apt depends on it; without it a resume is only slower.
ldconfig -p 2>/dev/null | grep -q 'libzstd\.so\.1 ' || missing+=(libzstd1)
[ ${#missing[@]} -eq 0 ] && exit 0

mapfile -t missing < <(printf '%s\n' "${missing[@]}" | sort -u)
if [ "$(id -u)" -ne 0 ]; then
  echo "Unmachine needs these Debian packages: ${missing[*]}" >&2
  echo "Install them with: sudo apt-get install -y --no-install-recommends ${missing[*]}" >&2
  exit 1
fi
echo "Installing Debian packages: ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq || echo "apt-get update had errors; trying the install anyway" >&2
apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
