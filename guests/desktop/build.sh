#!/usr/bin/env bash
# Builds the "desktop" guest of Unmachine from Debian i386 packages: X11 on v86's VGA (the
# kernel's bochs DRM driver with Xorg's modesetting driver), the fluxbox window manager, xterm,
# xedit, xcalc and the X utilities, and the guest agent.
#
#   guests/desktop/build.sh [--force]
#
# Outputs (OUT = $UNMACHINE_CACHE, else $XDG_CACHE_HOME/unmachine, else ~/.cache/unmachine):
#   OUT/guests/desktop/vmlinuz        (Debian i386 "686" kernel, the same package as tiny's)
#   (and tiny's files: the firmware is tiny's build, and its kernel package is reused)
#   OUT/guests/desktop/initrd.img     (busybox + the modules for 9P, overlayfs, DRM and input)
#   OUT/guests/desktop/root/          (the root file system, served to the guest read-only)
#   OUT/guests/desktop/manifest.json
#
# The root folder is made from the packages' files alone (dpkg-deb -x, no maintainer scripts,
# no root needed) and configured here. The guest mounts it over 9P read-only, as the lower
# layer of an overlay whose upper layer is a tmpfs: what a running guest changes lives in its
# memory, and the built folder is the same for every user and every run.
#
# Environment overrides: those of guests/tiny/build.sh (UNMACHINE_DEBIAN_MIRROR,
# UNMACHINE_DEBIAN_SUITE, UNMACHINE_BUSYBOX_SUITE).
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
GUEST_NAME=desktop
OUT=${UNMACHINE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/unmachine}
GUEST_DIR=$OUT/guests/desktop
APT_DIR=$OUT/apt-desktop
WORK=$OUT/build/desktop

# What the guest is made of; their dependencies come along (Recommends do not).
PACKAGES=(
  xserver-xorg-core xserver-xorg-input-evdev x11-xkb-utils
  fluxbox xterm x11-apps x11-utils x11-xserver-utils xclip
  xfonts-base fonts-dejavu-core
  busybox-static
)
# Dependencies the guest does without: a compiler's preprocessor (xrdb's), the initramfs and
# device managers (the recipe makes its own), manuals, Mesa's OpenGL drivers (Xorg runs
# without GLX or glamor on a VGA with no 3D), and the libraries of imlib2's image loaders
# (PostScript, HEIF, JPEG XL, JPEG 2000, MP3 tags, and the printing, TLS and Kerberos libraries
# they bring). Those loaders are plugins that imlib2 passes over when they cannot load; fluxbox
# draws flat colours and the windows' own icons, and opens no such file.
SKIP='^(cpp|cpp-[0-9]+|libisl[0-9]+|libmpc[0-9]+|libmpfr[0-9]+|initramfs-tools.*|klibc-utils|libklibc|linux-base|logsave|udev|kmod|man-db|groff-base|libllvm[0-9]+|libz3-[0-9]+|libgl1-mesa-dri|libsensors.*|libspectre1|libgs[0-9]*|libgs-common|libgs[0-9]*-common|libcups2|libavahi-.*|libgnutls30|libidn12|libidn2-0|libijs-.*|libjbig2dec0|libpaper.*|poppler-data|fonts-urw-base35|libheif1|libde265-0|libx265-[0-9]+|libaom3|libdav1d[0-9]+|libjxl.*|libhwy1|libopenjp2-7|libid3tag0|liblcms2-2|libgssapi-krb5-2|libkrb5.*|libk5crypto3|libcom-err2|libkeyutils1|libp11-kit0|libtasn1-6|libnettle8|libhogweed6|libunistring2|libnuma1|sensible-utils|ucf)$'
# Kernel modules the initramfs loads: 9P root, overlayfs, virtio devices, the display and input.
MODULES=(
  virtio_pci virtio_net virtio_console virtio_balloon
  9p 9pnet_virtio overlay
  bochs evdev psmouse
)
BUSYBOX_SUITE=${UNMACHINE_BUSYBOX_SUITE:-trixie}
STEPS=7

usage() {
  sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//;p}' "$SCRIPT"
}

FORCE=0
for arg in "$@"; do
  case $arg in
    --force | -f) FORCE=1 ;;
    --help | -h) usage; exit 0 ;;
    *) echo "desktop: unknown option '$arg' (try --help)" >&2; exit 2 ;;
  esac
done

AGENT_BIN=$OUT/guests/agent/umagent
bash "$(dirname "$SCRIPT")/../agent/build.sh" >/dev/null
# The firmware (SeaBIOS) and the kernel package are tiny's: built (or found current) first.
bash "$(dirname "$SCRIPT")/../tiny/build.sh" >/dev/null
RECIPE=$(cat "$SCRIPT" "$LIB" "$INITRAMFS_LIB" "$RECIPE_LIB" "$AGENT_BIN" | sha256sum)
RECIPE=${RECIPE%% *}

up_to_date() {
  local f
  for f in "$GUEST_DIR/vmlinuz" "$GUEST_DIR/initrd.img" "$GUEST_DIR/manifest.json" "$GUEST_DIR/root/init"; do
    [ -s "$f" ] || return 1
  done
  grep -q "\"recipe\": *\"$RECIPE\"" "$GUEST_DIR/manifest.json"
}

if [ "$FORCE" = 0 ] && up_to_date; then
  echo "desktop: up to date ($OUT)"
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

step "Resolving packages…"
# The kernel: the one linux-image-686 depends on, as for tiny.
KPKG=$(apt-cache "${APT[@]}" show --no-all-versions linux-image-686 | awk '
  /^Depends: / {
    n = split(substr($0, 10), w, /[ ,|(]+/)
    for (i = 1; i <= n; i++) if (w[i] ~ /^linux-image-[0-9].*-686$/) { print w[i]; exit }
  }') || true
[ -n "$KPKG" ] || die "cannot find the kernel package linux-image-686 depends on in $SUITE (i386)"
KVER=${KPKG#linux-image-}
# What apt would install on an empty system: "Inst NAME (VERSION SUITE [ARCH])", maybe more after.
declare -A VER ARCH
mapfile -t INST < <(apt-get "${APT[@]}" -s install --no-install-recommends "${PACKAGES[@]}" "$KPKG" 2>&1 |
  awk '/^Inst / { v = $3; sub(/^\(/, "", v); a = $0; sub(/^[^[]*\[/, "", a); sub(/\].*/, "", a); print $2 " " v " " a }')
[ "${#INST[@]}" -gt 0 ] || die "apt cannot resolve ${PACKAGES[*]} in $SUITE (i386): $(apt-get "${APT[@]}" -s install --no-install-recommends "${PACKAGES[@]}" 2>&1 | tail -3)"
WANT=()
for line in "${INST[@]}"; do
  read -r p v a <<<"$line"
  VER[$p]=$v
  ARCH[$p]=$a
  [[ $p =~ $SKIP ]] && continue
  WANT+=("$p")
done
for p in "${PACKAGES[@]}" "$KPKG"; do
  [ -n "${VER[$p]:-}" ] || die "package $p not found in $SUITE (i386)"
done
echo "      ${#WANT[@]} packages (of ${#INST[@]} with the ones left out), kernel $KPKG ${VER[$KPKG]}" >&2

deb_path() { # deb_path PACKAGE -> path of its .deb in the download folder
  local v=${VER[$1]}
  echo "$APT_DIR/debs/${1}_${v//:/%3a}_${ARCH[$1]}.deb"
}

# tiny's build keeps the same kernel package: linked, not downloaded again.
if [ ! -s "$(deb_path "$KPKG")" ] && [ -s "$OUT/apt/debs/${KPKG}_${VER[$KPKG]//:/%3a}_${ARCH[$KPKG]}.deb" ]; then
  ln -f "$OUT/apt/debs/${KPKG}_${VER[$KPKG]//:/%3a}_${ARCH[$KPKG]}.deb" "$(deb_path "$KPKG")" 2>/dev/null ||
    cp "$OUT/apt/debs/${KPKG}_${VER[$KPKG]//:/%3a}_${ARCH[$KPKG]}.deb" "$(deb_path "$KPKG")"
fi
MISSING=()
for p in "${WANT[@]}"; do
  [ -s "$(deb_path "$p")" ] || MISSING+=("$p")
done
if [ "${#MISSING[@]}" -gt 0 ]; then
  bytes=$(apt-cache "${APT[@]}" show --no-all-versions "${MISSING[@]}" | awk '/^Size: / { s += $2 } END { print s + 0 }')
  step "Downloading ${#MISSING[@]} packages ($(mib "$bytes"); $((${#WANT[@]} - ${#MISSING[@]})) cached)…"
  args=()
  for p in "${MISSING[@]}"; do args+=("$p=${VER[$p]}"); done
  (cd "$APT_DIR/debs" && apt-get "${APT[@]}" "${APT_QUIET[@]}" download "${args[@]}" >&2) ||
    die "download failed"
  for p in "${MISSING[@]}"; do
    [ -s "$(deb_path "$p")" ] || die "download of $p did not produce $(deb_path "$p")"
  done
else
  step "Downloading: all ${#WANT[@]} packages cached"
fi
# Keep only the packages of this build in the download folder.
declare -A KEEP
for p in "${WANT[@]}"; do KEEP[$(deb_path "$p")]=1; done
for f in "$APT_DIR"/debs/*.deb; do
  [ -e "$f" ] && [ -z "${KEEP[$f]+x}" ] && rm -f "$f"
done

# ---------------------------------------------------------------------------
ROOT=$WORK/root
step "Extracting ${#WANT[@]} packages…"
mkdir -p "$ROOT"
for p in "${WANT[@]}"; do
  [ "$p" = "$KPKG" ] && continue
  dpkg-deb -x "$(deb_path "$p")" "$ROOT" || die "cannot extract $(deb_path "$p")"
done
# Documentation and translations: nothing in the guest reads them.
rm -rf "$ROOT"/usr/share/{doc,man,info,locale,lintian,bug}
KROOT=$WORK/kernel
mkdir -p "$KROOT"
dpkg-deb -x "$(deb_path "$KPKG")" "$KROOT" || die "cannot extract $(deb_path "$KPKG")"

# ---------------------------------------------------------------------------
step "Configuring the root folder…"
# Merged /usr, as Debian installs it: /bin, /sbin and /lib are links into /usr.
for d in bin sbin lib; do
  if [ -d "$ROOT/$d" ] && [ ! -L "$ROOT/$d" ]; then
    mkdir -p "$ROOT/usr/$d"
    cp -a "$ROOT/$d/." "$ROOT/usr/$d/"
    rm -rf "${ROOT:?}/$d"
  fi
  mkdir -p "$ROOT/usr/$d"
  ln -sfn "usr/$d" "$ROOT/$d"
done
BUSYBOX=$ROOT/usr/bin/busybox
[ -s "$BUSYBOX" ] || die "busybox-static contains no bin/busybox"
APPLETS=$(busybox_applets "$BUSYBOX")
[ -n "$APPLETS" ] || die "cannot find the applet list in busybox-static's binary"
# busybox fills in what the packages leave out (a shell, mount, ip, modprobe...); a real
# program of the same name wins.
n_applets=0
while IFS= read -r a; do
  [ "$a" = busybox ] && continue
  [ -e "$ROOT/usr/bin/$a" ] || [ -L "$ROOT/usr/bin/$a" ] || [ -e "$ROOT/usr/sbin/$a" ] && continue
  ln -s busybox "$ROOT/usr/bin/$a"
  n_applets=$((n_applets + 1))
done <<<"$APPLETS"
cp "$AGENT_BIN" "$ROOT/usr/bin/umagent"
chmod 0755 "$ROOT/usr/bin/umagent"

mkdir -p "$ROOT"/{dev,proc,sys,tmp,run,mnt,root,var/lib/xkb,var/log,var/tmp,etc/X11}
chmod 1777 "$ROOT/tmp" "$ROOT/var/tmp"
chmod 0700 "$ROOT/root"
cat >"$ROOT/etc/passwd" <<'EOF'
root:x:0:0:root:/root:/bin/sh
nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin
EOF
cat >"$ROOT/etc/group" <<'EOF'
root:x:0:
tty:x:5:
video:x:44:
input:x:101:
nogroup:x:65534:
EOF
cat >"$ROOT/etc/nsswitch.conf" <<'EOF'
passwd: files
group: files
hosts: files dns
EOF
echo desktop >"$ROOT/etc/hostname"
cat >"$ROOT/etc/hosts" <<'EOF'
127.0.0.1	localhost desktop
::1	localhost
EOF
echo /bin/sh >"$ROOT/etc/shells"
cat >"$ROOT/etc/profile" <<'EOF'
export PATH=/usr/local/bin:/usr/bin:/usr/sbin
export HOME=/root
export TERM=linux
PS1='desktop:\w# '
EOF

# Xorg: the bochs DRM device through the modesetting driver, no GL (the VGA has no 3D), and
# no udev: the init script lists the input devices (evdev) in /run/xorg.conf, from this.
cat >"$ROOT/etc/X11/xorg.conf.in" <<'EOF'
# Made into /run/xorg.conf by /init at each boot, with one InputDevice per /dev/input/event*.
Section "ServerFlags"
  Option "AutoAddDevices" "false"
  Option "AutoEnableDevices" "false"
  Option "DontVTSwitch" "true"
  Option "BlankTime" "0"
  Option "StandbyTime" "0"
  Option "SuspendTime" "0"
  Option "OffTime" "0"
EndSection
Section "Module"
  Disable "glx"
  Disable "glamoregl"
EndSection
Section "Files"
  FontPath "/usr/share/fonts/X11/misc"
  FontPath "/usr/share/fonts/X11/75dpi"
  FontPath "/usr/share/fonts/X11/100dpi"
  FontPath "built-ins"
EndSection
Section "Device"
  Identifier "vga"
  Driver "modesetting"
  Option "kmsdev" "/dev/dri/card0"
  Option "AccelMethod" "none"
EndSection
Section "Screen"
  Identifier "screen"
  Device "vga"
  DefaultDepth 24
  SubSection "Display"
    Depth 24
    Modes "1024x768"
  EndSubSection
EndSection
EOF

# The apps the agent lists and launches (unmachine apps/launch): xterm ships its .desktop
# file; the editor and the calculator get small ones here.
mkdir -p "$ROOT/usr/share/applications"
cat >"$ROOT/usr/share/applications/xedit.desktop" <<'EOF'
[Desktop Entry]
Type=Application
Name=Xedit
Comment=A simple text editor
Exec=xedit %f
StartupWMClass=Xedit
EOF
cat >"$ROOT/usr/share/applications/xcalc.desktop" <<'EOF'
[Desktop Entry]
Type=Application
Name=Xcalc
Comment=A scientific calculator
Exec=xcalc
StartupWMClass=XCalc
EOF

# fluxbox: a menu of the guest's apps on a click on the desktop, a task bar with a clock. It
# keeps its windows framed when the screen changes size: a size change cost the guest 0.6-1.1 s
# of CPU with three windows, where jwm, which restarts on a new size and frames every window
# again, cost 2.0-2.4 s with one, and let clicks and keys fall between its frames meanwhile.
# Its settings are root's (~/.fluxbox): fluxbox starts with a folder of its defaults where
# there is none, over the settings it was given.
FB=$ROOT/root/.fluxbox
mkdir -p "$FB"
chmod 0700 "$FB"
cat >"$FB/init" <<'EOF'
session.menuFile: ~/.fluxbox/menu
session.keyFile: ~/.fluxbox/keys
session.appsFile: ~/.fluxbox/apps
session.styleFile: ~/.fluxbox/style
session.styleOverlay: ~/.fluxbox/overlay
session.configVersion: 13
session.doubleClickInterval: 250
session.tabsAttachArea: Titlebar
session.screen0.workspaces: 1
session.screen0.workspaceNames: Desktop
session.screen0.focusModel: ClickFocus
session.screen0.tabFocusModel: ClickToTabFocus
session.screen0.autoRaise: false
session.screen0.clickRaises: true
session.screen0.focusNewWindows: true
session.screen0.windowPlacement: RowSmartPlacement
session.screen0.defaultDeco: NORMAL
session.screen0.tabs.intitlebar: true
session.screen0.tabs.usePixmap: false
session.screen0.toolbar.visible: true
session.screen0.toolbar.autoHide: false
session.screen0.toolbar.placement: BottomCenter
session.screen0.toolbar.widthPercent: 100
session.screen0.toolbar.height: 28
session.screen0.toolbar.layer: Dock
session.screen0.toolbar.tools: iconbar, clock
session.screen0.iconbar.mode: {static groups} (workspace)
session.screen0.iconbar.usePixmap: false
session.screen0.iconbar.iconWidth: 220
session.screen0.iconbar.alignment: Left
session.screen0.strftimeFormat: %H:%M
session.screen0.slit.autoHide: true
session.screen0.menuDelay: 0
EOF
cat >"$FB/menu" <<'EOF'
[begin] (Apps)
  [exec] (Terminal) {xterm}
  [exec] (Text editor) {xedit}
  [exec] (Calculator) {xcalc}
  [exec] (Clock) {xclock}
  [separator]
  [restart] (Restart the window manager)
[end]
EOF
# No tabbing (windows grouped in one frame): each of the guest's windows keeps a frame of its own.
cat >"$FB/keys" <<'EOF'
OnDesktop Mouse1 :RootMenu
OnDesktop Mouse2 :RootMenu
OnDesktop Mouse3 :RootMenu
OnWindow Mod1 Mouse1 :MacroCmd {Raise} {Focus} {StartMoving}
OnWindow Mod1 Mouse3 :MacroCmd {Raise} {Focus} {StartResizing NearestCorner}
OnWindowBorder Move1 :StartMoving
OnLeftGrip Move1 :StartResizing bottomleft
OnRightGrip Move1 :StartResizing bottomright
OnTitlebar Double Mouse1 :Maximize
OnTitlebar Mouse1 :MacroCmd {Raise} {Focus}
OnTitlebar Move1 :StartMoving
OnTitlebar Mouse3 :WindowMenu
Mod1 Tab :NextWindow (workspace=[current])
Mod1 Shift Tab :PrevWindow (workspace=[current])
Mod1 F4 :Close
Mod1 F9 :Minimize
Mod1 F10 :Maximize
EOF
: >"$FB/apps"
: >"$FB/overlay"
cp "$ROOT/etc/X11/fluxbox/window.menu" "$FB/windowmenu"
cat >"$FB/style" <<'EOF'
style.name: Unmachine
background: unset
borderWidth: 1
borderColor: #2e3436
window.font: sans-9
window.justify: left
window.title.height: 20
window.bevelWidth: 2
window.handleWidth: 4
window.borderWidth: 1
window.borderColor: #2e3436
window.title.focus: flat
window.title.focus.color: #3465a4
window.title.unfocus: flat
window.title.unfocus.color: #555753
window.label.focus: parentrelative
window.label.unfocus: parentrelative
window.label.focus.textColor: #ffffff
window.label.unfocus.textColor: #d3d7cf
window.button.focus: parentrelative
window.button.unfocus: parentrelative
window.button.pressed: flat
window.button.pressed.color: #204a87
window.button.focus.picColor: #ffffff
window.button.unfocus.picColor: #d3d7cf
window.handle.focus: flat
window.handle.focus.color: #3465a4
window.handle.unfocus: flat
window.handle.unfocus.color: #555753
window.grip.focus: flat
window.grip.focus.color: #204a87
window.grip.unfocus: flat
window.grip.unfocus.color: #555753
window.frame.focusColor: #3465a4
window.frame.unfocusColor: #555753
toolbar: flat
toolbar.color: #2e3436
toolbar.bevelWidth: 2
toolbar.borderWidth: 0
toolbar.clock: flat
toolbar.clock.color: #2e3436
toolbar.clock.textColor: #eeeeec
toolbar.clock.font: sans-9
toolbar.iconbar.empty: flat
toolbar.iconbar.empty.color: #2e3436
toolbar.iconbar.focused: flat
toolbar.iconbar.focused.color: #3465a4
toolbar.iconbar.focused.textColor: #ffffff
toolbar.iconbar.focused.font: sans-9
toolbar.iconbar.unfocused: flat
toolbar.iconbar.unfocused.color: #555753
toolbar.iconbar.unfocused.textColor: #d3d7cf
toolbar.iconbar.unfocused.font: sans-9
toolbar.iconbar.borderWidth: 1
toolbar.iconbar.borderColor: #2e3436
menu.title: flat
menu.title.color: #3465a4
menu.title.textColor: #ffffff
menu.title.font: sans-9
menu.frame: flat
menu.frame.color: #eeeeec
menu.frame.textColor: #000000
menu.frame.font: sans-9
menu.hilite: flat
menu.hilite.color: #3465a4
menu.hilite.textColor: #ffffff
menu.itemHeight: 20
menu.titleHeight: 20
menu.borderWidth: 1
menu.borderColor: #2e3436
menu.bullet: triangle
EOF
# The desktop's colour is xsetroot's, as X starts (the style leaves the desktop unset). fluxbox's
# wallpaper helper, with no image viewer to call, would open a message window on the guest's screen.
rm -f "$ROOT/usr/bin/fbsetbg"

# Core fonts: fonts.dir lists each font file with its name, which mkfontdir would read from
# the file; the name is the PCF file's FONT property, found here as a string in the file.
n_fonts=0
for dir in "$ROOT"/usr/share/fonts/X11/*/; do
  [ -d "$dir" ] || continue
  list=$WORK/fonts.dir
  : >"$list"
  for f in "$dir"*.pcf.gz; do
    [ -e "$f" ] || continue
    name=$(gzip -dc "$f" | tr -c '[:print:]' '\n' | grep -m1 -E '^-[^-]*-[^-]*-[^-]*-[^-]*-[^-]*-[^-]*-[0-9]*-[0-9]*-[0-9]*-[0-9]*-[^-]*-[0-9]*-[^-]*-[^-]*$' || true)
    [ -n "$name" ] && echo "${f##*/} $name" >>"$list"
  done
  if [ -s "$list" ]; then
    { wc -l <"$list"; sort "$list"; } >"${dir}fonts.dir"
    n_fonts=$((n_fonts + $(wc -l <"$list")))
  fi
done
[ -s "$ROOT/usr/share/fonts/X11/misc/fonts.dir" ] || die "no core fonts found in xfonts-base"

cat >"$ROOT/init" <<'EOF'
#!/bin/sh
# The desktop guest's first process, started by the initramfs on the overlay root: the
# devices, the agent, X with fluxbox and an xterm, and a shell on the serial console.
export PATH=/usr/local/bin:/usr/bin:/usr/sbin HOME=/root TERM=linux
cd /
mount -t tmpfs -o mode=0755,nosuid,nodev tmpfs /run
mount -t tmpfs -o mode=1777,nosuid,nodev tmpfs /tmp
mkdir -p /dev/pts /dev/shm
mount -t devpts devpts /dev/pts
mount -t tmpfs -o mode=1777,nosuid,nodev tmpfs /dev/shm
exec </dev/console >/dev/console 2>&1
hostname desktop
ip link set lo up
mark() { echo "desktop: $*" >/dev/kmsg; }
mark "init: started"

# Network: DHCP from the host's NAT in the background (nothing here waits for it).
mkdir -p /run/udhcpc
cat >/run/udhcpc/default.script <<'SCRIPT'
#!/bin/sh
case "$1" in
  deconfig) ip -4 addr flush dev "$interface" ;;
  bound|renew)
    ip -4 addr show dev "$interface" | grep -q "inet $ip/${mask:-24} " || {
      ip -4 addr flush dev "$interface"
      ip addr add "$ip/${mask:-24}" broadcast + dev "$interface"
    }
    [ -n "$router" ] && ip route replace default via "${router%% *}" dev "$interface"
    : >/run/resolv.conf
    for ns in $dns; do echo "nameserver $ns" >>/run/resolv.conf; done ;;
esac
exit 0
SCRIPT
chmod 0755 /run/udhcpc/default.script
ln -sf /run/resolv.conf /etc/resolv.conf
for nic in /sys/class/net/eth*; do
  [ -e "$nic" ] || continue
  ip link set "${nic##*/}" up
  udhcpc -i "${nic##*/}" -b -t 4 -T 1 -s /run/udhcpc/default.script >/dev/null 2>&1 &
done

# The guest agent on virtio-console, kept running.
agent_on() {
  while :; do
    [ -c "$1" ] && /usr/bin/umagent "$1"
    sleep 1
  done
}
agent_on /dev/hvc0 &

# X: one InputDevice per event device (evdev tells keyboards from pointers), then the
# window manager and a terminal once the server answers.
x_config() {
  cat /etc/X11/xorg.conf.in
  layout=""
  for ev in /dev/input/event*; do
    [ -c "$ev" ] || continue
    id=${ev##*/}
    printf 'Section "InputDevice"\n  Identifier "%s"\n  Driver "evdev"\n  Option "Device" "%s"\nEndSection\n' "$id" "$ev"
    layout="$layout  InputDevice \"$id\" \"SendCoreEvents\"\n"
  done
  printf 'Section "ServerLayout"\n  Identifier "layout"\n  Screen "screen"\n%bEndSection\n' "$layout"
}
x_session() {
  x_config >/run/xorg.conf
  /usr/lib/xorg/Xorg :0 -config /run/xorg.conf -nolisten tcp -noreset -novtswitch \
    -logfile /run/Xorg.0.log >/run/Xorg.out 2>&1 &
  export DISPLAY=:0
  while ! xprop -root >/dev/null 2>&1; do
    kill -0 $! 2>/dev/null || { echo "desktop: X did not start; see /run/Xorg.0.log"; return; }
    sleep 0.5
  done
  mark "X is up"
  xsetroot -solid '#4e6a86'
  (while :; do fluxbox; sleep 1; done) >/run/fluxbox.log 2>&1 &
  # The terminal once the window manager is up (at most 20 s on): it frames it and gives it the
  # focus, so what the user types first goes to it.
  i=0
  until xprop -root _NET_SUPPORTING_WM_CHECK 2>/dev/null | grep -q 'window id' || [ $i -ge 100 ]; do
    sleep 0.2
    i=$((i + 1))
  done
  xterm -geometry 80x24+40+40 >/dev/null 2>&1 &
  mark "session started"
}
x_session &

trap 'sync; exec poweroff -f' USR2
trap 'sync; exec halt -f' USR1
trap 'sync; exec reboot -f' TERM

# A login shell on the serial console, started again whenever it exits.
while :; do
  while :; do
    setsid sh -c 'exec sh -l <>/dev/ttyS0 >&0 2>&1'
    sleep 1
  done &
  # PID 1 must never exit; waiting also reaps orphaned processes.
  while :; do wait; sleep 1; done
done
EOF
chmod 0755 "$ROOT/init"

# ---------------------------------------------------------------------------
step "Building initramfs (busybox, kernel modules for $KVER)…"
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
MTIME=$(stat -c %Y "$VMLINUZ")
IRFS=$WORK/initramfs
mkdir -p "$IRFS"/{bin,dev,proc,sys,host,rw,newroot}
stage_modules "$MODSRC" "$IRFS/lib/modules/$KVER" "$KPKG" "${MODULES[@]}"
n_mods=$(wc -l <"$IRFS/lib/modules/$KVER/modules.dep")
cp "$BUSYBOX" "$IRFS/bin/busybox"
for a in sh mount mkdir modprobe switch_root echo cat grep sleep; do
  grep -qx -- "$a" <<<"$APPLETS" || die "busybox-static has no '$a' applet"
  ln -s busybox "$IRFS/bin/$a"
done
cat >"$IRFS/init" <<EOF
#!/bin/busybox sh
# The desktop guest's initramfs: mounts the root folder (9P, read-only) under a tmpfs
# overlay, so the guest may change anything while the shared folder stays as built.
MODULES="${MODULES[*]}"
EOF
cat >>"$IRFS/init" <<'EOF'
export PATH=/bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
exec </dev/console >/dev/console 2>&1
modprobe -q -a $MODULES
rescue() {
  echo "desktop: $*; a shell in the initramfs instead"
  exec sh
}
mark() { echo "desktop: $*" >/dev/kmsg; }
mark "initramfs: modules loaded"
# The host serves one 9P device: the root folder as "root" beside the user's shares. The root
# never changes while the guest runs (the host serves it read-only), so the guest caches what
# it reads (cache=loose): without it every program start asks the host for each library again.
mount -t 9p -o trans=virtio,version=9p2000.L,msize=512000,cache=loose host9p /host || rescue "cannot mount the host's 9P device"
[ -x /host/root/init ] || rescue "the host serves no root folder"
mount -t tmpfs -o mode=0755 tmpfs /rw
mkdir -p /rw/upper /rw/work
mount -t overlay -o lowerdir=/host/root,upperdir=/rw/upper,workdir=/rw/work overlay /newroot ||
  rescue "cannot mount the overlay root"
# The shares, each at /mnt/<tag> as in tiny.
mount --move /host /newroot/mnt
for d in dev proc sys; do mount --move /$d /newroot/$d; done
mark "initramfs: root mounted"
exec switch_root /newroot /init
EOF
chmod 0755 "$IRFS/init"
find "$IRFS" -exec touch -h -d "@$MTIME" {} +
pack_initramfs "$IRFS" "$MTIME" "$WORK/initrd.img"

# ---------------------------------------------------------------------------
root_bytes=$(du -sb "$ROOT" | awk '{ print $1 }')
step "Installing to $GUEST_DIR ($(mib "$root_bytes") root folder)…"
mkdir -p "$GUEST_DIR"
# The manifest goes first and comes back last, so a half-finished install is never taken as
# up to date. A guest running on the old root keeps its open files (the folder is renamed, then
# removed).
rm -f "$GUEST_DIR/manifest.json"
put() { # put SOURCE DEST: atomic copy
  cp "$1" "$2.tmp.$$"
  mv -f "$2.tmp.$$" "$2"
}
put "$VMLINUZ" "$GUEST_DIR/vmlinuz"
put "$WORK/initrd.img" "$GUEST_DIR/initrd.img"
rm -rf "$GUEST_DIR/root.old"
[ -e "$GUEST_DIR/root" ] && mv "$GUEST_DIR/root" "$GUEST_DIR/root.old"
mv "$ROOT" "$GUEST_DIR/root"
rm -rf "$GUEST_DIR/root.old"
cat >"$WORK/manifest.json" <<EOF
{
  "kernel": "$KVER",
  "kernelPackage": "${VER[$KPKG]}",
  "xorg": "${VER[xserver-xorg-core]}",
  "packages": ${#WANT[@]},
  "rootBytes": $root_bytes,
  "recipe": "$RECIPE",
  "builtAt": "$(date -u +%Y-%m-%dT%H:%M:%SZ)"
}
EOF
put "$WORK/manifest.json" "$GUEST_DIR/manifest.json"

rm -rf "$WORK"
rmdir "$OUT/build" 2>/dev/null || true
finished=1
echo "desktop: built ${#WANT[@]} packages into a $(mib "$root_bytes") root, kernel $KVER with $n_mods modules, $n_fonts core fonts, $n_applets busybox applets ($GUEST_DIR)"
