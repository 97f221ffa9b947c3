# shellcheck shell=bash
# Sourced by the guest recipes (guests/*/build.sh): copies kernel modules out of an extracted
# Debian kernel package, with everything they depend on, and writes the index busybox's
# modprobe reads (modules.dep, modules.alias), so no depmod is needed on the build host; packs
# a folder into an initramfs without root. Needs the recipe's die and need functions.

modname() { # path or name -> module name (as the kernel spells it)
  local b=${1##*/}
  b=${b%%.ko*}
  echo "${b//-/_}"
}

# stage_modules MODSRC MODDST PACKAGE MODULE...: copies each MODULE (uncompressed) from the
# package's modules folder MODSRC to MODDST, with its dependencies, and indexes them there.
stage_modules() {
  local src_dir=$1 dst_dir=$2 package=$3 f b m line i
  shift 3
  declare -gA MODPATH=() BUILTIN=() DEPS=() STAGED=()
  while IFS= read -r -d '' f; do
    f=${f#./}
    b=${f##*/}
    b=${b%%.ko*}
    MODPATH[${b//-/_}]=$f
  done < <(cd "$src_dir" && find . \( -name '*.ko' -o -name '*.ko.*' \) -print0)
  [ "${#MODPATH[@]}" -gt 0 ] || die "no kernel modules found in $package"
  mkdir -p "$dst_dir"
  if [ -f "$src_dir/modules.builtin" ]; then
    while IFS= read -r f; do
      f=${f##*/}
      f=${f%%.ko*}
      [ -n "$f" ] && BUILTIN[${f//-/_}]=1
    done <"$src_dir/modules.builtin"
    cp "$src_dir/modules.builtin" "$dst_dir/"
  fi
  KMOD_SRC=$src_dir KMOD_DST=$dst_dir KMOD_PACKAGE=$package
  KMOD_ALIASES=$dst_dir/modules.alias.unsorted
  : >"$KMOD_ALIASES"
  for m in "$@"; do
    stage_module "$(modname "$m")"
  done

  # modules.dep in depmod's format: every module lists all of its dependencies,
  # those needed first at the end (modprobe loads them right to left).
  declare -gA SEEN
  ORDER=()
  for m in "${!STAGED[@]}"; do
    SEEN=()
    ORDER=()
    visit_module "$m"
    line="${STAGED[$m]}:"
    for ((i = ${#ORDER[@]} - 2; i >= 0; i--)); do
      line+=" ${STAGED[${ORDER[$i]}]}"
    done
    echo "$line"
  done | sort >"$dst_dir/modules.dep"
  sort -u "$KMOD_ALIASES" >"$dst_dir/modules.alias"
  rm -f "$KMOD_ALIASES"
  : >"$dst_dir/modules.symbols"
}

# Copies a module (uncompressed) and, recursively, its dependencies.
stage_module() {
  local name=$1 src dst rel info d deps="" line
  [ -n "${STAGED[$name]+x}" ] && return 0
  src=${MODPATH[$name]:-}
  if [ -z "$src" ]; then
    [ -n "${BUILTIN[$name]+x}" ] && return 0 # built into the kernel
    die "kernel module '$name' is not in $KMOD_PACKAGE"
  fi
  rel=${src%.ko*}.ko
  dst=$KMOD_DST/$rel
  mkdir -p "${dst%/*}"
  case $src in
    *.ko) cp "$KMOD_SRC/$src" "$dst" ;;
    *.ko.xz) need xz xz-utils; xz -dc "$KMOD_SRC/$src" >"$dst" ;;
    *.ko.zst) need zstd zstd; zstd -dcq "$KMOD_SRC/$src" >"$dst" ;;
    *.ko.gz) gzip -dc "$KMOD_SRC/$src" >"$dst" ;;
    *) die "unsupported module file $src" ;;
  esac
  STAGED[$name]=$rel
  # The .modinfo strings are NUL-terminated "key=value" records.
  info=$(tr '\0' '\n' <"$dst" | sed -n -e 's/^depends=/D /p' -e 's/^alias=/A /p')
  while IFS= read -r line; do
    case $line in
      "D "*) [ -z "$deps" ] && deps=${line#D } ;;
      "A "*) echo "alias ${line#A } $name" >>"$KMOD_ALIASES" ;;
    esac
  done <<<"$info"
  deps=${deps//,/ }
  DEPS[$name]=""
  for d in $deps; do
    d=$(modname "$d")
    stage_module "$d"
    [ -n "${STAGED[$d]+x}" ] && DEPS[$name]+=" $d"
  done
  return 0
}

visit_module() {
  local n=$1 d
  [ -n "${SEEN[$n]+x}" ] && return 0
  SEEN[$n]=1
  for d in ${DEPS[$n]}; do visit_module "$d"; done
  ORDER+=("$n")
}

# pack_initramfs FOLDER MTIME OUTPUT: FOLDER (but its dev) as a gzip'ed newc archive, every
# entry owned by root. The kernel needs /dev/console before /init runs, and a device node cannot
# be made without root, so /dev and /dev/console are written as a small archive by hand ahead
# of the rest; the kernel reads the concatenated archives as one.
pack_initramfs() {
  local folder=$1 mtime=$2 output=$3
  {
    newc_entry "$mtime" dev $((8#040755)) 0 0 1
    newc_entry "$mtime" dev/console $((8#020600)) 5 1 2
    newc_entry "$mtime" 'TRAILER!!!' 0 0 0 0
    (cd "$folder" && find . -mindepth 1 ! -path ./dev | sort |
      cpio -o -H newc -R 0:0 --reproducible --quiet)
  } | gzip -9 -n >"$output"
}

newc_entry() { # newc_entry MTIME NAME MODE RDEVMAJOR RDEVMINOR INO
  local namesize=$((${#2} + 1))
  printf '070701%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X' \
    "$6" "$3" 0 0 1 "$1" 0 0 0 "$4" "$5" "$namesize" 0
  printf '%s\0' "$2"
  head -c $(((4 - (110 + namesize) % 4) % 4)) /dev/zero
}

# busybox_applets BINARY: the applet names of a busybox binary, one a line. The list is read
# from the binary's sorted, NUL-separated name table ("[", "[[", "acpid", ...), because an
# i386 binary cannot be run on every build host. The bytes before the table need not end in a
# NUL, so its "[" may end a longer string.
busybox_applets() {
  tr '\0' '\n' <"$1" | awk '
  function reset() { n = 0; on = 0 }
  BEGIN { reset() }
  on {
    if ($0 ~ /^[][a-z0-9_.-]+$/ && $0 > list[n - 1]) { list[n++] = $0; next }
    if ($0 == "" && n >= 50) { for (i = 0; i < n; i++) print list[i]; done = 1 }
    reset()
  }
  done { next }
  prev ~ /\[$/ && $0 ~ /^(\[\[|[a-z])/ { on = 1; n = 2; list[0] = "["; list[1] = $0 }
  { prev = $0 }'
}
