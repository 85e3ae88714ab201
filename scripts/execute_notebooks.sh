#!/usr/bin/env bash
# Re-execute notebooks in place, as their stored outputs are made: offline, so that "auto"
# picks EfficientNet-Lite0 (the model every machine has), with the sample-photo mirror if set.
#   scripts/execute_notebooks.sh [notebooks/NN_*.ipynb ...]   (default: all of them)
set -euo pipefail
cd "$(dirname "$0")/.."
export TF_CPP_MIN_LOG_LEVEL=3 PYTHONWARNINGS=ignore::DeprecationWarning
# The stored outputs are one more numeric configuration than the tests run (see the Makefile):
# oneDNN off here, on in `make test` and `make test-numeric`.
export TF_ENABLE_ONEDNN_OPTS=0
unset GRADCAM_MODEL
if [ -z "${GRADCAM_DATA_MIRROR:-}" ] && [ -d ../shared/data/images ]; then
  export GRADCAM_DATA_MIRROR="$(cd ../shared/data/images && pwd)"
fi
notebooks=("$@")
[ ${#notebooks[@]} -gt 0 ] || notebooks=(notebooks/[0-9][0-9]_*.ipynb)
for notebook in "${notebooks[@]}"; do
  echo "executing $notebook"
  .venv/bin/jupyter nbconvert --to notebook --execute --inplace \
    --ExecutePreprocessor.kernel_name=python3 --ExecutePreprocessor.timeout=900 \
    --ExecutePreprocessor.store_widget_state=False "$notebook"
  .venv/bin/python scripts/store_widget_fallbacks.py "$notebook"
done
