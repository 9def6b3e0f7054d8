#!/usr/bin/env bash
# The reference environment the tests compare unplug against: Hugging Face
# transformers (PyPI, pinned) on Debian's CPU PyTorch (python3-torch 1.13,
# about 250 MB with its dependencies, against several GB of CUDA packages that
# PyPI's Linux torch wheels pull in), in a virtual environment over Debian's
# Python that sees Debian's torch and numpy.
#
# Usage: scripts/ref-venv.sh [DIR]          (default .venv-ref; git ignores it)
# Then:  DIR/bin/python -c "import transformers"; tests/cli_transformers.sh finds it
set -euo pipefail
cd "$(dirname "$0")/.."
dir=${1:-.venv-ref}
TRANSFORMERS=transformers==4.45.2   # the last line of 4.x that still runs on torch 1.13
# and what it brings that decides the reference (the fast tokenizer is tokenizers')
PINS=(tokenizers==0.20.3 safetensors==0.8.0 huggingface-hub==0.36.2)
bash scripts/install-deps.sh python3-torch python3-venv
if [ ! -x "$dir/bin/python" ]; then
  /usr/bin/python3 -m venv --system-site-packages "$dir"
fi
if ! "$dir/bin/python" -c "import transformers, sys; sys.exit(transformers.__version__ != '${TRANSFORMERS#*==}')" 2>/dev/null; then
  echo "ref-venv: pip install $TRANSFORMERS ${PINS[*]} (PyPI)"
  "$dir/bin/pip" install --quiet --disable-pip-version-check "$TRANSFORMERS" "${PINS[@]}" || {
    echo "ref-venv: could not install $TRANSFORMERS from PyPI (is PyPI reachable?)" >&2; exit 1; }
fi
"$dir/bin/python" -c "import transformers, torch, numpy; print(f'ref-venv: $dir: transformers {transformers.__version__}, torch {torch.__version__}, numpy {numpy.__version__}')"
