# shellcheck shell=bash
# Sourced by the guest recipes (guests/*/build.sh): how a recipe reports (die, step), checks
# its tools (need), prints sizes (mib), takes its output folder's build lock, and says where a
# failed build left its work. Needs GUEST_NAME, STEPS, OUT, WORK and FORCE set, and the
# recipe's own up_to_date function.

die() {
  echo "$GUEST_NAME: $*" >&2
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

mib() { # bytes -> "12 MiB" / "0.9 MiB"
  awk -v b="$1" 'BEGIN { m = b / 1048576; if (m >= 10) printf "%d MiB", m + 0.5; else printf "%.1f MiB", m }'
}

# The tools every recipe uses and Debian's archive keyring (KEYRING); makes OUT.
recipe_prerequisites() {
  need apt-get apt
  need apt-cache apt
  need dpkg-deb dpkg
  need cpio cpio
  need gzip gzip
  need awk mawk
  KEYRING=/usr/share/keyrings/debian-archive-keyring.gpg
  [ -r "$KEYRING" ] || die "missing $KEYRING; install it with: apt-get install debian-archive-keyring"
  mkdir -p "$OUT" || die "cannot create $OUT"
}

# One build at a time per output folder: a second waits, then ends at once if the first built
# what it would have.
recipe_lock() {
  command -v flock >/dev/null 2>&1 || return 0
  exec 9>"$OUT/.$GUEST_NAME.lock"
  if ! flock -n 9; then
    echo "$GUEST_NAME: waiting for another build in $OUT…" >&2
    flock 9
    if [ "$FORCE" = 0 ] && up_to_date; then
      echo "$GUEST_NAME: up to date ($OUT)"
      exit 0
    fi
  fi
}

# Until the recipe sets finished=1, its end is a failure, told with where its work files are
# (install with: trap recipe_on_exit EXIT).
finished=0
recipe_on_exit() {
  local rc=$?
  if [ "$finished" != 1 ]; then
    [ "$rc" = 0 ] && rc=1
    echo "$GUEST_NAME: build failed (exit $rc); work files kept in $WORK" >&2
  fi
}
