#!/usr/bin/env bash
# The Python package's tests (python/tests, pytest): `pip install .` at the
# repository root (scikit-build-core builds libunplug.so with CMake) into a
# virtual environment, then pytest. The environment is .venv-ref when it
# exists (scripts/ref-venv.sh: transformers there, so the real-model test
# runs), else .venv-py, made here over Debian's Python.
# Usage: scripts/python-test.sh [BUILD_DIR]   (BUILD_DIR/unplug: the CLI the tests compare with)
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build}
venv=${PY_VENV:-}
if [ -z "$venv" ]; then
  if [ -x .venv-ref/bin/python ]; then venv=.venv-ref; else venv=.venv-py; fi
fi
if [ ! -x "$venv/bin/python" ]; then
  bash scripts/install-deps.sh python3-venv >/dev/null
  /usr/bin/python3 -m venv "$venv"
fi
echo "== python: pip install . pytest pandas into $venv (numpy<2: Debian's torch 1.13 in .venv-ref was built against numpy 1.x)"
"$venv/bin/pip" install --quiet --disable-pip-version-check . pytest pandas "numpy<2" || {
  echo "python-test: pip install failed (is PyPI reachable? scikit-build-core, numpy, pytest and pandas come from it)" >&2
  exit 1; }
cd python/tests   # not the repository root, whose python/ folder would shadow the installed package
OMP_WAIT_POLICY=PASSIVE UP_CLI="$(realpath "../../$build/unplug")" "../../$venv/bin/python" -m pytest -q -rs .
