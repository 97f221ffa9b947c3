# shellcheck shell=bash
# Sourced by the guest recipes (guests/*/build.sh): Debian packages for architecture i386
# through a private apt state, so the system's apt configuration is never touched and root is
# not required. Needs KEYRING set. The security suite is deliberately left out: its i386 index
# is not always in step with the main archive, and a build must not depend on it.

# Mirror URI of the system's Debian sources for SUITE (empty if none is found).
system_mirror() {
  local suite=$1 f uri
  for f in /etc/apt/sources.list.d/*.sources; do
    [ -r "$f" ] || continue
    uri=$(awk -v s="$suite" '
      BEGIN { RS = ""; FS = "\n" }
      {
        types = ""; uris = ""; suites = ""; enabled = "yes"
        for (i = 1; i <= NF; i++) {
          line = $i
          if (line ~ /^[ \t]*#/) continue
          if (match(line, /^[A-Za-z-]+:/)) {
            key = tolower(substr(line, 1, RLENGTH - 1))
            val = substr(line, RLENGTH + 1)
            gsub(/^[ \t]+|[ \t]+$/, "", val)
            if (key == "types") types = val
            else if (key == "uris") uris = val
            else if (key == "suites") suites = val
            else if (key == "enabled") enabled = tolower(val)
          }
        }
        if (enabled == "no") next
        if ((" " types " ") !~ / deb /) next
        if ((" " suites " ") !~ (" " s " ")) next
        split(uris, u, /[ \t]+/)
        if (u[1] != "" && found == "") found = u[1]
      }
      END { print found }' "$f")
    [ -n "$uri" ] && echo "$uri" && return 0
  done
  for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
    [ -r "$f" ] || continue
    uri=$(awk -v s="$suite" '
      /^[ \t]*deb[ \t]/ {
        line = $0
        sub(/^[ \t]*deb[ \t]+/, "", line)
        if (line ~ /^\[/) sub(/^\[[^]]*\][ \t]*/, "", line)
        split(line, w, /[ \t]+/)
        if (w[2] == s && found == "") found = w[1]
      }
      END { print found }' "$f")
    [ -n "$uri" ] && echo "$uri" && return 0
  done
  return 0
}

# Sets SUITE (this Debian's codename, else bookworm) and MIRROR (the system's, else Debian's).
debian_source() {
  if [ -n "${UNMACHINE_DEBIAN_SUITE:-}" ]; then
    SUITE=$UNMACHINE_DEBIAN_SUITE
  else
    SUITE=bookworm
    if [ -r /etc/os-release ]; then
      os_id=$(. /etc/os-release && echo "${ID:-}")
      os_codename=$(. /etc/os-release && echo "${VERSION_CODENAME:-}")
      if [ "$os_id" = debian ] && [ -n "$os_codename" ]; then
        SUITE=$os_codename
      fi
    fi
  fi
  MIRROR=${UNMACHINE_DEBIAN_MIRROR:-}
  if [ -z "$MIRROR" ]; then
    MIRROR=$(system_mirror "$SUITE")
    MIRROR=${MIRROR:-http://deb.debian.org/debian}
  fi
}

# Makes a private apt state in $1 with sources for $SUITE and $SUITE-updates, and sets APT
# (apt-get's options for it) and APT_QUIET. Each further argument SUITE2:PACKAGE takes PACKAGE
# from SUITE2 instead (from its point releases only: SUITE2-updates is one more index that can be
# out of step, for no gain to a single package); nothing else is taken from SUITE2.
private_apt() {
  local dir=$1 pin s p
  shift
  mkdir -p "$dir/lists/partial" "$dir/cache/archives/partial" "$dir/debs" "$dir/empty.d"
  : >"$dir/status"
  : >"$dir/preferences"
  printf 'deb [signed-by=%s] %s %s main\n' "$KEYRING" "$MIRROR" "$SUITE" "$KEYRING" "$MIRROR" "$SUITE-updates" >"$dir/sources.list"
  local -A added=([$SUITE]=1)
  for pin in "$@"; do
    s=${pin%%:*}
    p=${pin#*:}
    if [ -z "${added[$s]+x}" ]; then
      added[$s]=1
      printf 'deb [signed-by=%s] %s %s main\n' "$KEYRING" "$MIRROR" "$s" >>"$dir/sources.list"
      # apt_preferences(5): at 100, a package of this suite is the candidate only where $SUITE lacks it...
      printf 'Package: *\nPin: release n=%s\nPin-Priority: 100\n\n' "$s" >>"$dir/preferences"
    fi
    # ...except the ones named, whose candidate is this suite's version.
    printf 'Package: %s\nPin: release n=%s\nPin-Priority: 990\n\n' "$p" "$s" >>"$dir/preferences"
  done
  APT=(
    -o "Dir::State=$dir"
    -o "Dir::State::Lists=$dir/lists"
    -o "Dir::State::status=$dir/status"
    -o "Dir::Cache=$dir/cache"
    -o "Dir::Cache::pkgcache=pkgcache.bin"
    -o "Dir::Cache::srcpkgcache="
    -o "Dir::Etc::SourceList=$dir/sources.list"
    -o "Dir::Etc::SourceParts=$dir/empty.d"
    -o "Dir::Etc::Preferences=$dir/preferences"
    -o "Dir::Etc::PreferencesParts=$dir/empty.d"
    -o "APT::Architecture=i386"
    -o "APT::Architectures=i386"
    -o "Acquire::Languages=none"
    -o "Acquire::IndexTargets::deb::Contents-deb::DefaultEnabled=false"
    -o "Acquire::IndexTargets::deb::DEP-11::DefaultEnabled=false"
    -o "Acquire::IndexTargets::deb::DEP-11-icons::DefaultEnabled=false"
    -o "Acquire::IndexTargets::deb::DEP-11-icons-small::DefaultEnabled=false"
    -o "Acquire::IndexTargets::deb::DEP-11-icons-hidpi::DefaultEnabled=false"
    -o "Debug::NoLocking=1"
  )
  # Downloads land in folders the _apt user cannot write to; as root, fetch directly.
  [ "$(id -u)" = 0 ] && APT+=(-o "APT::Sandbox::User=root")
  # shellcheck disable=SC2034 # used by the recipes that source this
  if [ -t 2 ]; then APT_QUIET=(); else APT_QUIET=(-qq); fi
}
