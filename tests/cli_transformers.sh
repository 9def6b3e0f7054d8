#!/usr/bin/env bash
# unplug against Hugging Face transformers on a real pretrained model
# (tests/ref_transformers.py): token ids on every GLUE and TREC text, last
# hidden states in fp32 and bf16, the sentence-transformers embedding.
# Needs models/all-minilm-l6-v2 (scripts/fetch-model.sh), ../shared/data and
# the reference environment (scripts/ref-venv.sh, or UP_REF_PYTHON); skips
# (exit 77) saying which is missing. .ci/run provides all three.
set -u
. "$(dirname "$0")/lib.sh"
model=${UP_REAL_MODEL:-$src/models/all-minilm-l6-v2}
data=${UP_DATA:-$src/../shared/data}
py=${UP_REF_PYTHON:-$src/.venv-ref/bin/python}
[ -f "$model/model.safetensors" ] || { echo "SKIP: no $model (fetch it: make model)"; exit 77; }
[ -d "$data/glue" ] || { echo "SKIP: no $data/glue (the GLUE and TREC copies in ../shared/data)"; exit 77; }
"$py" -c "import transformers, torch" 2>/dev/null || {
  echo "SKIP: no transformers + torch at $py (make it: scripts/ref-venv.sh)"; exit 77; }
"$py" "$src/tests/ref_transformers.py" "$cli" "$model" "$data" --report "$tmp/report.json"
