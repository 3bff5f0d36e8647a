#!/usr/bin/env bash
# The GPU check (issue 7), at most ~5 minutes: on a machine with a GPU, install if needed and
# record training images/s and the share of step time spent waiting for data, with the card's
# name, in docs/benchmarks.md. Without a GPU it does a short CPU dry run and records nothing.
#   bash bench/gpu_check.sh            (from the repository root)
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
if [ ! -x "$PY" ]; then make install >/dev/null; fi
if command -v nvidia-smi >/dev/null 2>&1; then
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || true
else
  echo "nvidia-smi not found: no GPU here, dry run only"
fi
timeout 280 "$PY" bench/gpu_train.py --data "${BENCH44:-/tmp/bench44}" "$@"
