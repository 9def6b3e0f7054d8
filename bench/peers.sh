#!/usr/bin/env bash
# unplug against transformers (CPU PyTorch), ONNX Runtime (fp32 and dynamic
# int8) and OpenVINO (fp32, and bf16 where the CPU has it), side by side in
# one run with the same thread count, on the real model (when fetched) and on
# BERT-base's shape (random weights): bench/peers.py does the timing.
#
# Usage: bench/peers.sh [OUT_DIR]      (default bench/results)
# Env:   BUILD (build), MODELS ("models/all-minilm-l6-v2 bert-base"), THREADS (2),
#        BATCHES (1,8,32), LENS (32,128), ITERS (10), ROUNDS (3), VENV (.venv-peers),
#        RUNTIMES (transformers,onnxruntime,openvino,unplug,unplug-expert), APPEND (1: add to the TSV of an earlier run),
#        EXPERTS (expert files of the first model, timed as runtime unplug-expert:TASK, TASK their directory's name),
#        OV_INT8 (1: OpenVINO int8 by NNCF in .venv-nncf; 0 leaves it out)
# Writes OUT_DIR/peers-CPU.tsv (CPU: the model name and family of this machine's
# processor, and its bf16/int8 flags): cpu, model, runtime, precision, batch,
# length, median ms over rounds, fastest round's ms, rounds.
# The environment: a virtual environment over Debian's Python that sees
# Debian's torch (python3-torch, as scripts/ref-venv.sh), with transformers,
# onnx, onnxruntime and openvino from PyPI (numpy < 2 for Debian's torch).
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-bench/results}
build=${BUILD:-build}
venv=${VENV:-.venv-peers}
[ -x "$build/unplug" ] || { echo "bench/peers.sh: build first (make)" >&2; exit 1; }
bash scripts/install-deps.sh python3-torch python3-venv >/dev/null
if [ ! -x "$venv/bin/python" ]; then /usr/bin/python3 -m venv --system-site-packages "$venv"; fi
"$venv/bin/pip" install --quiet --disable-pip-version-check transformers==4.45.2 tokenizers==0.20.3 \
  safetensors==0.8.0 huggingface-hub==0.36.2 onnx onnxruntime openvino "numpy<2" ||
  { echo "bench/peers.sh: pip install failed (is PyPI reachable?)" >&2; exit 1; }
# OpenVINO int8 (NNCF) in an environment of its own: NNCF fails to import beside Debian's torch 1.13
nncf_py=""
if [ "${OV_INT8:-1}" = 1 ]; then
  if [ ! -x .venv-nncf/bin/python ]; then /usr/bin/python3 -m venv .venv-nncf; fi
  if .venv-nncf/bin/pip install --quiet --disable-pip-version-check nncf openvino "numpy<2"; then nncf_py=.venv-nncf/bin/python
  else echo "bench/peers.sh: nncf not installed: OpenVINO int8 left out" >&2; fi
fi
flags=$(grep -m1 '^flags' /proc/cpuinfo)
isa=avx2
case "$flags" in *avx512_vnni*) isa=avx512vnni ;; esac
case "$flags" in *avx512_bf16*) isa="$isa-avx512bf16" ;; esac
case "$flags" in *amx_tile*) isa="$isa-amx" ;; esac
vendor=$(grep -m1 '^vendor_id' /proc/cpuinfo | awk '{print $3}')
fam=$(grep -m1 '^cpu family' /proc/cpuinfo | awk '{print $4}')
mdl=$(grep -m1 '^model[[:space:]]*:' /proc/cpuinfo | awk '{print $3}')
cpu=$(echo "${vendor}-f${fam}m${mdl}-${isa}" | tr 'A-Z' 'a-z')
mkdir -p "$out"
tsv=$out/peers-$cpu.tsv
[ -s "$tsv" ] && [ "${APPEND:-0}" = 1 ] ||
  printf "cpu\tmodel\truntime\tprecision\tbatch\tlength\tms_median\tms_best_round\trounds\n" >"$tsv"
echo "bench/peers.sh: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(nproc) cores, $cpu -> $tsv"
export OMP_WAIT_POLICY=PASSIVE   # torch's OpenMP threads in the Python process sleep while the others run
                                 # (peers.py runs unplug without it: the peers' own pools spin by default)
for m in ${MODELS:-models/all-minilm-l6-v2 bert-base}; do
  if [ "$m" != bert-base ] && [ ! -f "$m/config.json" ]; then echo "bench/peers.sh: $m absent (make model): skipped"; continue; fi
  ex=()
  if [ "$m" != bert-base ]; then for e in ${EXPERTS:-}; do ex+=(--expert "$e"); done; fi
  "$venv/bin/python" bench/peers.py "$m" "$tsv" --unplug "$build/unplug" --threads "${THREADS:-2}" \
    --batches "${BATCHES:-1,8,32}" --lens "${LENS:-32,128}" --iters "${ITERS:-10}" --rounds "${ROUNDS:-3}" --cpu "$cpu" \
    --runtimes "${RUNTIMES:-transformers,onnxruntime,openvino,unplug,unplug-expert}" "${ex[@]}" \
    ${nncf_py:+--ov-int8-python "$nncf_py"}
done
column -t -s $'\t' "$tsv"
