#!/usr/bin/env bash
# Builds the Unmachine guest agent (umagent.c) as a static i386 Linux binary.
#
#   guests/agent/build.sh [--force]
#
# Output (OUT = $UNMACHINE_CACHE, else $XDG_CACHE_HOME/unmachine, else ~/.cache/unmachine):
#   OUT/guests/agent/umagent          static ELF 32-bit i386, stripped
#   OUT/guests/agent/manifest.json    recipe hash and package versions
#
# The host's own gcc compiles with -m32; the i386 C library, kernel headers and libgcc come
# from Debian packages (libc6-dev, linux-libc-dev, libgcc-N-dev for architecture i386),
# downloaded into a private apt state under OUT/apt-agent and unpacked there, so the
# system's apt configuration is never touched and root is not required.
#
# Environment overrides:
#   UNMACHINE_DEBIAN_MIRROR   mirror URI (default: the one in the system's apt sources,
#                             else http://deb.debian.org/debian)
#   UNMACHINE_DEBIAN_SUITE    Debian suite (default: VERSION_CODENAME of a Debian host, else bookworm)
#   CC                        the compiler (default gcc; it must accept -m32)
set -euo pipefail
export LC_ALL=C
umask 022

SCRIPT=$(readlink -f "${BASH_SOURCE[0]}")
LIB=$(dirname "$SCRIPT")/../lib/debian-apt.sh
# shellcheck source=../lib/debian-apt.sh
. "$LIB"
SRC_DIR=$(dirname "$SCRIPT")
SOURCE=$SRC_DIR/umagent.c
OUT=${UNMACHINE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/unmachine}
AGENT_DIR=$OUT/guests/agent
APT_DIR=$OUT/apt-agent
WORK=$OUT/build/agent
CC=${CC:-gcc}
STEPS=4

usage() {
  sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//;p}' "$SCRIPT"
}

FORCE=0
for arg in "$@"; do
  case $arg in
    --force | -f) FORCE=1 ;;
    --help | -h) usage; exit 0 ;;
    *) echo "agent: unknown option '$arg' (try --help)" >&2; exit 2 ;;
  esac
done

die() {
  echo "agent: $*" >&2
  exit 1
}

step_no=0
step() {
  step_no=$((step_no + 1))
  echo "[$step_no/$STEPS] $*" >&2
}

need() { # need TOOL PACKAGE
  command -v "$1" >/dev/null 2>&1 ||
    die "missing tool '$1'; install it with: apt-get install $2"
}

[ -r "$SOURCE" ] || die "cannot read $SOURCE"
need "$CC" gcc
need apt-get apt
need apt-cache apt
need dpkg-deb dpkg
need sha256sum coreutils
KEYRING=/usr/share/keyrings/debian-archive-keyring.gpg
[ -r "$KEYRING" ] || die "missing $KEYRING; install it with: apt-get install debian-archive-keyring"

GCC_MAJOR=$("$CC" -dumpversion 2>/dev/null) || die "cannot ask $CC for its version"
GCC_MAJOR=${GCC_MAJOR%%.*}
case $GCC_MAJOR in
  '' | *[!0-9]*) die "$CC -dumpversion gave '$GCC_MAJOR'; expected a GCC version" ;;
esac
GCC_FULL=$("$CC" -dumpfullversion 2>/dev/null || "$CC" -dumpversion)
LIBGCC=libgcc-$GCC_MAJOR-dev
PACKAGES=(libc6-dev linux-libc-dev "$LIBGCC")

RECIPE=$(cat "$SCRIPT" "$LIB" "$SOURCE" | sha256sum)
RECIPE=${RECIPE%% *}
RECIPE=$(printf '%s %s' "$RECIPE" "$GCC_FULL" | sha256sum)
RECIPE=${RECIPE%% *}

up_to_date() {
  [ -s "$AGENT_DIR/umagent" ] && [ -s "$AGENT_DIR/manifest.json" ] &&
    grep -q "\"recipe\": *\"$RECIPE\"" "$AGENT_DIR/manifest.json"
}

if [ "$FORCE" = 0 ] && up_to_date; then
  echo "agent: up to date ($AGENT_DIR/umagent)"
  exit 0
fi

mkdir -p "$OUT" || die "cannot create $OUT"
if command -v flock >/dev/null 2>&1; then
  exec 9>"$OUT/.agent.lock"
  if ! flock -n 9; then
    echo "agent: waiting for another build in $OUT…" >&2
    flock 9
    if [ "$FORCE" = 0 ] && up_to_date; then
      echo "agent: up to date ($AGENT_DIR/umagent)"
      exit 0
    fi
  fi
fi

debian_source

rm -rf "$WORK"
mkdir -p "$WORK"
private_apt "$APT_DIR"

finished=0
on_exit() {
  local rc=$?
  if [ "$finished" != 1 ]; then
    [ "$rc" = 0 ] && rc=1
    echo "agent: build failed (exit $rc); work files kept in $WORK" >&2
  fi
}
trap on_exit EXIT

# ---------------------------------------------------------------------------
step "Updating package lists ($MIRROR $SUITE $SUITE-updates, i386)…"
apt-get "${APT[@]}" "${APT_QUIET[@]}" update >&2 ||
  die "apt-get update failed for $MIRROR ($SUITE, $SUITE-updates)"

declare -A VER ARCH
while IFS=$'\t' read -r p v a; do
  VER[$p]=$v
  ARCH[$p]=$a
done < <(apt-cache "${APT[@]}" show --no-all-versions "${PACKAGES[@]}" 2>/dev/null | awk '
  /^Package: /      { p = $2 }
  /^Version: /      { v = $2 }
  /^Architecture: / { a = $2 }
  /^$/              { if (p != "") print p "\t" v "\t" a; p = "" }
  END               { if (p != "") print p "\t" v "\t" a }')
for p in "${PACKAGES[@]}"; do
  [ -n "${VER[$p]:-}" ] ||
    die "package $p not found in $SUITE (i386)$([ "$p" = "$LIBGCC" ] && echo "; $CC is GCC $GCC_MAJOR, so its i386 libgcc must come from the same suite")"
done

deb_path() { # deb_path PACKAGE -> path of its .deb in the download folder
  local v=${VER[$1]}
  echo "$APT_DIR/debs/${1}_${v//:/%3a}_${ARCH[$1]}.deb"
}

summary=""
for p in "${PACKAGES[@]}"; do
  summary+="${summary:+, }$p ${VER[$p]}"
  [ -s "$(deb_path "$p")" ] && summary+=" (cached)"
done
step "Downloading $summary…"
args=()
for p in "${PACKAGES[@]}"; do [ -s "$(deb_path "$p")" ] || args+=("$p=${VER[$p]}"); done
if [ ${#args[@]} -gt 0 ]; then
  (cd "$APT_DIR/debs" && apt-get "${APT[@]}" "${APT_QUIET[@]}" download "${args[@]}" >&2) ||
    die "download failed: ${args[*]}"
fi
keep=()
for p in "${PACKAGES[@]}"; do
  [ -s "$(deb_path "$p")" ] || die "download of $p did not produce $(deb_path "$p")"
  keep+=("$(deb_path "$p")")
done
for f in "$APT_DIR"/debs/*.deb; do
  [ -e "$f" ] || continue
  case " ${keep[*]} " in *" $f "*) ;; *) rm -f "$f" ;; esac
done

# ---------------------------------------------------------------------------
step "Unpacking the i386 C library, kernel headers and libgcc…"
SYSROOT=$WORK/sysroot
mkdir -p "$SYSROOT"
for p in "${PACKAGES[@]}"; do
  dpkg-deb -x "$(deb_path "$p")" "$SYSROOT" || die "cannot extract $(deb_path "$p")"
done
GCC_LIB=
for d in "$SYSROOT/usr/lib/gcc/i686-linux-gnu/$GCC_MAJOR" "$SYSROOT/usr/lib/gcc/i686-linux-gnu/"*; do
  [ -f "$d/crtbeginT.o" ] && GCC_LIB=$d && break
done
[ -n "$GCC_LIB" ] || die "$LIBGCC (i386) has no crtbeginT.o"
for f in usr/lib/i386-linux-gnu/libc.a usr/lib/i386-linux-gnu/crt1.o usr/include/stdio.h usr/include/i386-linux-gnu/asm/unistd.h; do
  [ -e "$SYSROOT/$f" ] || die "the unpacked packages lack $f"
done

# ---------------------------------------------------------------------------
step "Compiling umagent ($CC $GCC_FULL -m32 -static)…"
# --sysroot supplies headers, crt*.o and libc.a; -B the i386 crtbeginT.o, libgcc.a, libgcc_eh.a.
"$CC" -m32 -march=i686 -mtune=generic -static -std=c11 -O2 -s \
  -Wall -Wextra -D_FORTIFY_SOURCE=2 -fstack-protector-strong \
  --sysroot="$SYSROOT" -B"$GCC_LIB/" -L"$GCC_LIB" \
  -o "$WORK/umagent" "$SOURCE" >&2 ||
  die "compiling $SOURCE failed"

# A static i386 executable: ELF class 1, machine 3, and no program interpreter.
if command -v file >/dev/null 2>&1; then
  desc=$(file -b "$WORK/umagent")
  case $desc in
    *"ELF 32-bit LSB"*"Intel 80386"*"statically linked"*) ;;
    *) die "the result is not a static i386 executable: $desc" ;;
  esac
else
  desc=$(od -An -tx1 -j4 -N1 "$WORK/umagent" | tr -d ' ')/$(od -An -tx1 -j18 -N1 "$WORK/umagent" | tr -d ' ')
  [ "$desc" = 01/03 ] || die "the result is not an i386 ELF executable (class/machine $desc)"
  ! grep -q 'ld-linux' "$WORK/umagent" || die "the result is not statically linked"
  desc="ELF 32-bit i386, static"
fi

mkdir -p "$AGENT_DIR"
rm -f "$AGENT_DIR/manifest.json"
cp "$WORK/umagent" "$AGENT_DIR/umagent.tmp.$$"
chmod 0755 "$AGENT_DIR/umagent.tmp.$$"
mv -f "$AGENT_DIR/umagent.tmp.$$" "$AGENT_DIR/umagent"
cat >"$WORK/manifest.json" <<EOF
{
  "compiler": "$CC $GCC_FULL",
  "libc6-dev": "${VER[libc6-dev]}",
  "linux-libc-dev": "${VER[linux-libc-dev]}",
  "$LIBGCC": "${VER[$LIBGCC]}",
  "recipe": "$RECIPE",
  "builtAt": "$(date -u +%Y-%m-%dT%H:%M:%SZ)"
}
EOF
cp "$WORK/manifest.json" "$AGENT_DIR/manifest.json.tmp.$$"
mv -f "$AGENT_DIR/manifest.json.tmp.$$" "$AGENT_DIR/manifest.json"

rm -rf "$WORK"
rmdir "$OUT/build" 2>/dev/null || true
finished=1
echo "agent: built $AGENT_DIR/umagent ($(stat -c %s "$AGENT_DIR/umagent") bytes; $desc)"
