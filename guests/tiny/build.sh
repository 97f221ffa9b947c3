#!/usr/bin/env bash
# Builds the firmware and the default "tiny" guest of Unmachine from Debian packages.
#
#   guests/tiny/build.sh [--force]
#
# Outputs (OUT = $UNMACHINE_CACHE, else $XDG_CACHE_HOME/unmachine, else ~/.cache/unmachine):
#   OUT/firmware/bios.bin, OUT/firmware/vgabios-stdvga.bin     (Debian "seabios")
#   OUT/guests/tiny/vmlinuz                                   (Debian i386 "686" kernel)
#   OUT/guests/tiny/initrd.img                                (busybox + virtio/9p/ne2k/fat/iso modules)
#   OUT/guests/tiny/manifest.json
#
# Packages come from a private apt state under OUT/apt (architecture i386), so the
# system's apt configuration is never touched and root is not required. busybox-static
# comes from a newer suite than the kernel (trixie; Debian has no i386 kernel after bookworm):
# bookworm's 1.35 is configured without wget's -T, and its wget then crashes on -T (it stores
# the option's number through a NULL pointer); Debian enabled the option in 1.36.1-5.
#
# Environment overrides:
#   UNMACHINE_DEBIAN_MIRROR   mirror URI (default: the one in the system's apt sources,
#                             else http://deb.debian.org/debian)
#   UNMACHINE_DEBIAN_SUITE    Debian suite (default: VERSION_CODENAME of a Debian host, else bookworm)
#   UNMACHINE_BUSYBOX_SUITE   Debian suite of busybox-static (default: trixie)
set -euo pipefail
export LC_ALL=C
umask 022

SCRIPT=$(readlink -f "${BASH_SOURCE[0]}")
LIB=$(dirname "$SCRIPT")/../lib/debian-apt.sh
RECIPE_LIB=$(dirname "$SCRIPT")/../lib/recipe.sh
INITRAMFS_LIB=$(dirname "$SCRIPT")/../lib/initramfs.sh
# shellcheck source=../lib/debian-apt.sh
. "$LIB"
# shellcheck source=../lib/initramfs.sh
. "$INITRAMFS_LIB"
# shellcheck source=../lib/recipe.sh
. "$RECIPE_LIB"
GUEST_NAME=tiny
OUT=${UNMACHINE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/unmachine}
FW_DIR=$OUT/firmware
GUEST_DIR=$OUT/guests/tiny
APT_DIR=$OUT/apt
WORK=$OUT/build/tiny

# Kernel modules loaded at boot; their dependencies are added automatically.
MODULES=(
  virtio_pci virtio_net virtio_console virtio_balloon virtio_blk
  9p 9pnet_virtio
  ne2k-pci
  vfat nls_cp437 nls_iso8859-1 nls_utf8 nls_ascii
  isofs
  ata_piix sr_mod sd_mod floppy
)
# Applets /init relies on, and the everyday tools the guest promises; the build fails if
# busybox lacks one of them.
REQUIRED_APPLETS=(sh mount mkdir hostname ip modprobe setsid sleep switch_root udhcpc cp grep cat
  ifconfig route wget awk sed tar gzip dd sha256sum)
BUSYBOX_SUITE=${UNMACHINE_BUSYBOX_SUITE:-trixie}
STEPS=6

usage() {
  sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//;p}' "$SCRIPT"
}

FORCE=0
for arg in "$@"; do
  case $arg in
    --force | -f) FORCE=1 ;;
    --help | -h) usage; exit 0 ;;
    *) echo "tiny: unknown option '$arg' (try --help)" >&2; exit 2 ;;
  esac
done

# The guest agent goes into the initramfs: built (or found current) first, and part of the
# recipe, so a changed agent rebuilds the initramfs.
AGENT_BIN=$OUT/guests/agent/umagent
bash "$(dirname "$SCRIPT")/../agent/build.sh" >/dev/null
RECIPE=$(cat "$SCRIPT" "$LIB" "$INITRAMFS_LIB" "$RECIPE_LIB" "$AGENT_BIN" | sha256sum)
RECIPE=${RECIPE%% *}

up_to_date() {
  local f
  for f in "$FW_DIR/bios.bin" "$FW_DIR/vgabios-stdvga.bin" \
    "$GUEST_DIR/vmlinuz" "$GUEST_DIR/initrd.img" "$GUEST_DIR/manifest.json"; do
    [ -s "$f" ] || return 1
  done
  grep -q "\"recipe\": *\"$RECIPE\"" "$GUEST_DIR/manifest.json"
}

if [ "$FORCE" = 0 ] && up_to_date; then
  echo "tiny: up to date ($OUT)"
  exit 0
fi

# ---------------------------------------------------------------------------
# prerequisites (guests/lib/recipe.sh)

recipe_prerequisites
recipe_lock

debian_source

rm -rf "$WORK"
mkdir -p "$WORK"
private_apt "$APT_DIR" "$BUSYBOX_SUITE:busybox-static"

trap recipe_on_exit EXIT

# ---------------------------------------------------------------------------
step "Updating package lists ($MIRROR $SUITE $SUITE-updates, busybox from $BUSYBOX_SUITE, i386)…"
apt-get "${APT[@]}" "${APT_QUIET[@]}" update >&2 ||
  die "apt-get update failed for $MIRROR ($SUITE, $SUITE-updates, $BUSYBOX_SUITE)"

# Prints "Package Version Architecture Size Depends" (tab-separated) for each candidate.
pkg_info() {
  apt-cache "${APT[@]}" show --no-all-versions "$@" | awk '
    function flush() { if (p != "") print p "\t" v "\t" a "\t" s "\t" d; p = v = a = s = d = "" }
    /^Package: /      { flush(); p = $2 }
    /^Version: /      { v = $2 }
    /^Architecture: / { a = $2 }
    /^Size: /         { s = $2 }
    /^Depends: /      { d = substr($0, 10) }
    END { flush() }'
}

field() { # field LINE N
  local IFS=$'\t'
  local -a f
  read -r -a f <<<"$1"
  echo "${f[$2]:-}"
}

step "Resolving package versions…"
meta=$(pkg_info linux-image-686) || die "package linux-image-686 not found in $SUITE (i386)"
[ -n "$meta" ] || die "package linux-image-686 not found in $SUITE (i386)"
KPKG=$(field "$meta" 4 | awk -v RS='[,|]' '
  { sub(/^[ \t\n]+/, ""); split($0, w, /[ \t\n(]+/) }
  w[1] ~ /^linux-image-[0-9].*-686$/ && k == "" { k = w[1] }
  END { print k }')
[ -n "$KPKG" ] || die "cannot find the kernel package in the Depends of linux-image-686: $(field "$meta" 4)"
KVER=${KPKG#linux-image-}

declare -A VER ARCH SIZE
while IFS= read -r line; do
  p=$(field "$line" 0)
  VER[$p]=$(field "$line" 1)
  ARCH[$p]=$(field "$line" 2)
  SIZE[$p]=$(field "$line" 3)
done < <(pkg_info "$KPKG" busybox-static seabios)
for p in "$KPKG" busybox-static seabios; do
  [ -n "${VER[$p]:-}" ] || die "package $p not found in $SUITE (i386)"
done

echo "      kernel $KPKG ${VER[$KPKG]}, busybox-static ${VER[busybox-static]}, seabios ${VER[seabios]}" >&2

deb_path() { # deb_path PACKAGE -> path of its .deb in the download folder
  local v=${VER[$1]}
  echo "$APT_DIR/debs/${1}_${v//:/%3a}_${ARCH[$1]}.deb"
}

download() { # download PACKAGE...
  local p args=()
  for p in "$@"; do args+=("$p=${VER[$p]}"); done
  (cd "$APT_DIR/debs" && apt-get "${APT[@]}" "${APT_QUIET[@]}" download "${args[@]}" >&2) ||
    die "download failed: $*"
  for p in "$@"; do
    [ -s "$(deb_path "$p")" ] || die "download of $p did not produce $(deb_path "$p")"
  done
}

cached() { if [ -s "$(deb_path "$1")" ]; then echo ", cached"; fi; }

step "Downloading $KPKG ($(mib "${SIZE[$KPKG]}")$(cached "$KPKG")), busybox-static ($(mib "${SIZE[busybox-static]}")$(cached busybox-static)), seabios ($(mib "${SIZE[seabios]}")$(cached seabios))…"
download "$KPKG" busybox-static seabios

# Keep only the packages of this build in the download folder.
for f in "$APT_DIR"/debs/*.deb; do
  [ -e "$f" ] || continue
  case $f in
    "$(deb_path "$KPKG")" | "$(deb_path busybox-static)" | "$(deb_path seabios)") ;;
    *) rm -f "$f" ;;
  esac
done

# ---------------------------------------------------------------------------
step "Extracting packages…"
for p in "$KPKG" busybox-static seabios; do
  mkdir -p "$WORK/pkg/$p"
  dpkg-deb -x "$(deb_path "$p")" "$WORK/pkg/$p" || die "cannot extract $(deb_path "$p")"
done
KROOT=$WORK/pkg/$KPKG
VMLINUZ=
for f in "$KROOT/boot/vmlinuz-$KVER" "$KROOT/usr/boot/vmlinuz-$KVER"; do
  [ -s "$f" ] && VMLINUZ=$f && break
done
[ -n "$VMLINUZ" ] || die "$KPKG contains no vmlinuz-$KVER"
MODSRC=
for d in "$KROOT/lib/modules/$KVER" "$KROOT/usr/lib/modules/$KVER"; do
  [ -d "$d" ] && MODSRC=$d && break
done
[ -n "$MODSRC" ] || die "$KPKG contains no modules folder for $KVER"
BUSYBOX=
for f in "$WORK/pkg/busybox-static/bin/busybox" "$WORK/pkg/busybox-static/usr/bin/busybox"; do
  [ -s "$f" ] && BUSYBOX=$f && break
done
[ -n "$BUSYBOX" ] || die "busybox-static contains no bin/busybox"
# A busybox built without wget's timeout crashes on 'wget -T' (see above): its wget then
# lacks the message "download timed out".
grep -q 'download timed out' "$BUSYBOX" ||
  die "busybox-static ${VER[busybox-static]} ($BUSYBOX_SUITE) is built without wget -T, which crashes its wget; choose a newer suite with UNMACHINE_BUSYBOX_SUITE"
SEABIOS=$WORK/pkg/seabios/usr/share/seabios
for f in bios.bin vgabios-stdvga.bin; do
  [ -s "$SEABIOS/$f" ] || die "seabios contains no usr/share/seabios/$f"
done
# Everything in the initramfs gets one fixed time, so equal inputs give equal output.
MTIME=$(stat -c %Y "$VMLINUZ")

# ---------------------------------------------------------------------------
ROOT=$WORK/root
MODDST=$ROOT/lib/modules/$KVER
mkdir -p "$ROOT"/{bin,dev,etc,lib,proc,sys,tmp,run,root,mnt,usr} "$MODDST"
chmod 1777 "$ROOT/tmp"
chmod 0700 "$ROOT/root"

step "Building initramfs (busybox ${VER[busybox-static]}, kernel modules for $KVER)…"
stage_modules "$MODSRC" "$MODDST" "$KPKG" "${MODULES[@]}"

# busybox: the binary itself plus a symlink per applet.
cp "$BUSYBOX" "$ROOT/bin/busybox"
chmod 0755 "$ROOT/bin/busybox"
cp "$AGENT_BIN" "$ROOT/bin/umagent"
chmod 0755 "$ROOT/bin/umagent"
APPLETS=$(busybox_applets "$BUSYBOX")
[ -n "$APPLETS" ] || die "cannot find the applet list in busybox-static's binary"
for a in "${REQUIRED_APPLETS[@]}"; do
  grep -qx -- "$a" <<<"$APPLETS" || die "busybox-static has no '$a' applet"
done
mapfile -t APPLET_LIST < <(grep -vx busybox <<<"$APPLETS")
n_applets=${#APPLET_LIST[@]}
if command -v perl >/dev/null 2>&1; then
  # One process instead of one ln per applet.
  (cd "$ROOT/bin" && perl -e 'for (@ARGV) { symlink("busybox", $_) or die "symlink $_: $!\n" }' "${APPLET_LIST[@]}")
else
  for a in "${APPLET_LIST[@]}"; do ln -s busybox "$ROOT/bin/$a"; done
fi
# One folder for every program: /sbin, /usr/bin and /usr/sbin all point at /bin.
ln -s bin "$ROOT/sbin"
ln -s ../bin "$ROOT/usr/bin"
ln -s ../bin "$ROOT/usr/sbin"

cat >"$ROOT/etc/passwd" <<'EOF'
root:x:0:0:root:/root:/bin/sh
EOF
cat >"$ROOT/etc/group" <<'EOF'
root:x:0:
EOF
echo tiny >"$ROOT/etc/hostname"
cat >"$ROOT/etc/hosts" <<'EOF'
127.0.0.1	localhost tiny
::1	localhost
EOF
echo /bin/sh >"$ROOT/etc/shells"
cat >"$ROOT/etc/profile" <<'EOF'
export PATH=/bin:/sbin:/usr/bin:/usr/sbin
export HOME=/root
export TERM=linux
PS1='tiny:\w# '
EOF

cat >"$ROOT/init" <<EOF
#!/bin/busybox sh
# PID 1 of the Unmachine "tiny" guest.
MODULES="${MODULES[*]}"
EOF
cat >>"$ROOT/init" <<'EOF'
export PATH=/bin:/sbin:/usr/bin:/usr/sbin HOME=/root TERM=linux
cd /

mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
mkdir -p /dev/pts /dev/shm /tmp /run
mount -t devpts devpts /dev/pts
chmod 1777 /tmp
exec </dev/console >/dev/console 2>&1

hostname tiny
ip link set lo up

# A driver without its device simply stays idle.
modprobe -q -a $MODULES

# Root over 9P (root=host9p rootfstype=9p): the host folder becomes /, filled from this
# initramfs the first time, and this same /init runs again from there.
if grep -q 'root=host9p' /proc/cmdline && ! grep -q ' / 9p ' /proc/mounts; then
  mkdir -p /newroot
  if mount -t 9p -o trans=virtio,version=9p2000.L,msize=512000 host9p /newroot; then
    if [ ! -x /newroot/bin/busybox ]; then
      echo "tiny: filling the empty root folder from the guest's own files"
      for d in bin etc lib root usr init; do [ -e "/$d" ] && cp -a "/$d" /newroot/; done
      for d in proc sys dev tmp run mnt; do mkdir -p "/newroot/$d"; done
    fi
    umount /proc/sys/fs/binfmt_misc 2>/dev/null
    exec switch_root /newroot /init
  fi
  echo "tiny: cannot mount the 9P root; staying in the initramfs"
fi

# Shared folders: one 9P device (tag host9p) whose top level holds every share, so each
# share is /mnt/<tag>. In a 9P root, the host serves the shares at /mnt already.
mkdir -p /mnt
if ! grep -q ' / 9p ' /proc/mounts && [ -n "$(cat /sys/bus/virtio/drivers/9pnet_virtio/*/mount_tag 2>/dev/null)" ]; then
  mount -t 9p -o trans=virtio,version=9p2000.L,msize=512000 host9p /mnt || echo "tiny: cannot mount the shared folders"
fi

# Network: DHCP from the host's NAT before the agent and the shells start, so the first command
# finds the address and the default route. udhcpc sends up to 4 discovers 1 s apart and then
# goes to the background either way, to renew the lease or to keep asking: a NIC nobody answers
# delays the prompt by about 4 s, a guest without a NIC not at all.
mkdir -p /etc/udhcpc
cat >/etc/udhcpc/default.script <<'SCRIPT'
#!/bin/sh
# udhcpc's hook; udhcpc sets interface, ip, mask, router and dns.
case "$1" in
  deconfig) ip -4 addr flush dev "$interface" ;;
  bound|renew)
    # The same lease again changes nothing, so open connections and the routes stay.
    ip -4 addr show dev "$interface" | grep -q "inet $ip/${mask:-24} " || {
      ip -4 addr flush dev "$interface"
      ip addr add "$ip/${mask:-24}" broadcast + dev "$interface"
    }
    [ -n "$router" ] && ip route replace default via "${router%% *}" dev "$interface"
    : >/etc/resolv.conf
    for ns in $dns; do echo "nameserver $ns" >>/etc/resolv.conf; done ;;
esac
exit 0
SCRIPT
chmod 0755 /etc/udhcpc/default.script
dhcp=
for nic in /sys/class/net/eth*; do
  [ -e "$nic" ] || continue
  ifname=${nic##*/}
  ip link set "$ifname" up
  udhcpc -i "$ifname" -b -t 4 -T 1 -p "/run/udhcpc.$ifname.pid" -s /etc/udhcpc/default.script >/dev/null 2>&1 &
  dhcp="$dhcp $!"
done
# Each udhcpc returns once it has a lease or has given up for now (its daemon stays behind).
if [ -n "$dhcp" ]; then
  wait $dhcp
  for nic in /sys/class/net/eth*; do
    ip -4 addr show dev "${nic##*/}" | grep -q ' inet ' ||
      echo "tiny: no DHCP answer on ${nic##*/}; still asking in the background"
  done
fi

# The guest agent on virtio-console (COM2 where there is no virtio), kept running.
agent_on() {
  while :; do
    [ -c "$1" ] && [ -x /bin/umagent ] && /bin/umagent "$1"
    sleep 1
  done
}
if [ -x /bin/umagent ]; then
  if [ -c /dev/hvc0 ]; then agent_on /dev/hvc0 & else agent_on /dev/ttyS1 & fi
fi

# busybox halt/poweroff/reboot ask PID 1 with these signals.
trap 'sync; exec halt -f' USR1
trap 'sync; exec poweroff -f' USR2
trap 'sync; exec reboot -f' TERM

# A login shell with job control on a terminal, started again whenever it exits.
shell_on() {
  while :; do
    if [ -c "$1" ]; then
      setsid sh -c "exec sh -l <>$1 >&0 2>&1"
    fi
    sleep 1
  done
}
shell_on /dev/ttyS0 &
shell_on /dev/tty1 &

# PID 1 must never exit; waiting also reaps orphaned processes.
while :; do
  wait
  sleep 1
done
EOF
chmod 0755 "$ROOT/init"

find "$ROOT" -exec touch -h -d "@$MTIME" {} +

pack_initramfs "$ROOT" "$MTIME" "$WORK/initrd.img"

n_mods=$(wc -l <"$MODDST/modules.dep")

# ---------------------------------------------------------------------------
step "Installing to $OUT…"
mkdir -p "$FW_DIR" "$GUEST_DIR"
# The manifest goes first and comes back last, so a half-finished install is
# never taken as up to date.
rm -f "$GUEST_DIR/manifest.json"
put() { # put SOURCE DEST: atomic copy
  cp "$1" "$2.tmp.$$"
  mv -f "$2.tmp.$$" "$2"
}
put "$SEABIOS/bios.bin" "$FW_DIR/bios.bin"
put "$SEABIOS/vgabios-stdvga.bin" "$FW_DIR/vgabios-stdvga.bin"
put "$VMLINUZ" "$GUEST_DIR/vmlinuz"
put "$WORK/initrd.img" "$GUEST_DIR/initrd.img"
cat >"$WORK/manifest.json" <<EOF
{
  "kernel": "$KVER",
  "kernelPackage": "${VER[$KPKG]}",
  "busybox": "${VER[busybox-static]}",
  "seabios": "${VER[seabios]}",
  "recipe": "$RECIPE",
  "builtAt": "$(date -u +%Y-%m-%dT%H:%M:%SZ)"
}
EOF
put "$WORK/manifest.json" "$GUEST_DIR/manifest.json"

rm -rf "$WORK"
rmdir "$OUT/build" 2>/dev/null || true
finished=1
echo "tiny: built kernel $KVER, $n_mods modules, $n_applets busybox applets ($OUT)"
