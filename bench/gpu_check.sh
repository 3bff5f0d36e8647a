#!/usr/bin/env bash
# The GPU check (issue 7), at most ~5 minutes: on a machine with a GPU, record training images/s
# and the share of step time spent waiting for data, with the card's name, in
# docs/benchmarks.md (bench/gpu_train.py). Without a GPU it does a short CPU dry run and records
# nothing.
#   bash bench/gpu_check.sh [gpu_train.py options]      (from anywhere)
# PY picks the interpreter (default .venv/bin/python, made by `make install` when missing); a
# machine whose own python already has torch can run PY=python3 with the project on PYTHONPATH.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
if ! command -v "$PY" >/dev/null 2>&1; then make install >/dev/null; fi
if command -v nvidia-smi >/dev/null 2>&1; then
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || true
else
  echo "nvidia-smi not found: no GPU here, dry run only"
fi
"$PY" -c "import torch, lightning, torchvision; print('torch', torch.__version__, \
'torchvision', torchvision.__version__, 'lightning', lightning.__version__)"
timeout 300 "$PY" bench/gpu_train.py --data "${BENCH44:-/tmp/bench44}" "$@"
