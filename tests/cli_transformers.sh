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
# CI sets UP_REQUIRE_REF=1 once it has set all three up: there a skip is a failure
skip() {
  if [ "${UP_REQUIRE_REF:-0}" = 1 ]; then echo "FAIL (UP_REQUIRE_REF=1): $*"; exit 1; fi
  echo "SKIP: $*"; exit 77
}
[ -f "$model/model.safetensors" ] || skip "no $model (fetch it: make model)"
[ -d "$data/glue" ] || skip "no $data/glue (the GLUE and TREC copies in ../shared/data)"
"$py" -c "import transformers, torch" 2>/dev/null || skip "no transformers + torch at $py (make it: scripts/ref-venv.sh)"
"$py" "$src/tests/ref_transformers.py" "$cli" "$model" "$data"
