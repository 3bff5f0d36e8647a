#!/usr/bin/env bash
# The issue-4 quality bar for Optuna sweeps on the demo data, on this machine:
#   1. 10 trials x 2 epochs of `hparams_search=cnn_optuna`: wall time (bar: < 10 min on 2
#      cores), trial states, and whether the sweep report's best job is Optuna's best trial;
#   2. resume: a 4-trial study killed with SIGKILL mid-trial (5 s into its second trial), then
#      the same command again: the study continues (finished trials kept, the killed one re-run).
# Usage: bash bench/optuna_sweep.sh [OUT_DIR]   (default outputs/bench_optuna; prints tables)
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
OUT=${1:-outputs/bench_optuna}
# the Makefile's allocator settings (CPU training ~1.3x faster; see Makefile)
export MALLOC_MMAP_THRESHOLD_=33554432 MALLOC_TRIM_THRESHOLD_=17179869184 MALLOC_TOP_PAD_=268435456
rm -rf "$OUT" && mkdir -p "$OUT"
COMMON=(hparams_search=cnn_optuna trainer.max_epochs=2 trainer.enable_progress_bar=false
        "paths.log_dir=$OUT")

echo "== machine: $(uname -m), $(nproc) CPUs, $($PY --version), load average $(cut -d' ' -f1-3 /proc/loadavg)"

echo "== 1. 10 trials x 2 epochs"
load0=$(cut -d' ' -f1 /proc/loadavg)
t0=$(date +%s.%N)
/usr/bin/time -f "%U %S" -o "$OUT/sweep.cputime" \
  $PY train.py -m "${COMMON[@]}" hydra.sweeper.n_trials=10 > "$OUT/sweep.log" 2>&1
t1=$(date +%s.%N)
load1=$(cut -d' ' -f1 /proc/loadavg)
$PY - "$OUT/optuna/cnn_optuna" "$t0" "$t1" "$load0" "$load1" "$OUT/sweep.cputime" <<'PY'
import sys
from pathlib import Path
import optuna
from braintumor.sweeps.report import write_sweep_report
sweep, t0, t1, l0, l1, cpu = Path(sys.argv[1]), *map(float, sys.argv[2:6]), sys.argv[6]
user, system = map(float, Path(cpu).read_text().split()[-2:])
optuna.logging.set_verbosity(optuna.logging.WARNING)
study = optuna.load_study(study_name="cnn_optuna", storage=f"sqlite:///{sweep}/optuna.db")
report = write_sweep_report(sweep)
states = [t.state.name for t in study.trials]
times = [r["wall_time_s"] for r in report["rows"] if r["wall_time_s"]]
print("| quantity | value |\n| --- | --- |")
print(f"| wall time, 10 trials x 2 epochs | {t1 - t0:.0f} s ({(t1 - t0) / 60:.1f} min) |")
print(f"| CPU time (user + sys) / wall | {(user + system) / (t1 - t0):.2f} cores busy |")
print(f"| load average (1 min) before / after | {l0:.2f} / {l1:.2f} |")
print(f"| per trial (run_info wall_time_s) | min {min(times):.0f} s, median {sorted(times)[len(times)//2]:.0f} s, max {max(times):.0f} s |")
print(f"| trial states | {', '.join(f'{states.count(s)} {s}' for s in sorted(set(states)))} |")
print(f"| Optuna best trial / value | {study.best_trial.number} / {study.best_value:.4f} |")
print(f"| report's best job / value | {report['best_job']} / {report['rows'][0]['objective']:.4f} |")
print(f"| agree | {report['best_job'] == study.best_trial.number} |")
PY

echo "== 2. kill -9 5 s into trial 1 of a 4-trial study, then the same command again"
RESUME=("${COMMON[@]}" hydra.sweeper.n_trials=4 hydra.sweeper.study_name=bench_resume)
$PY train.py -m "${RESUME[@]}" > "$OUT/resume1.log" 2>&1 &
pid=$!
until [ -f "$OUT/optuna/bench_resume/1/run_info.json" ]; do sleep 1; done
sleep 5  # inside trial 1 (a trial takes 8-30 s here)
kill -9 "$pid"; wait "$pid" 2>/dev/null || true
$PY - "$OUT/optuna/bench_resume" before <<'PY' > "$OUT/resume_before.txt"
import sys, optuna
optuna.logging.set_verbosity(optuna.logging.WARNING)
s = optuna.load_study(study_name="bench_resume", storage=f"sqlite:///{sys.argv[1]}/optuna.db")
print(" ".join(f"{t.number}:{t.state.name}" for t in s.trials))
PY
$PY train.py -m "${RESUME[@]}" > "$OUT/resume2.log" 2>&1
$PY - "$OUT/optuna/bench_resume" "$(cat "$OUT/resume_before.txt")" <<'PY'
import sys, optuna
optuna.logging.set_verbosity(optuna.logging.WARNING)
s = optuna.load_study(study_name="bench_resume", storage=f"sqlite:///{sys.argv[1]}/optuna.db")
print("| quantity | value |\n| --- | --- |")
print(f"| trials after the kill | {sys.argv[2]} |")
print(f"| trials after re-running the command | {' '.join(f'{t.number}:{t.state.name}' for t in s.trials)} |")
killed = [t for t in s.trials if t.user_attrs.get("interrupted")]
for t in killed:
    again = [u.number for u in s.trials if u.number != t.number and u.params == t.params]
    print(f"| killed trial {t.number} re-run as | trial {again} (same parameters) |")
done = sum(t.state.name == "COMPLETE" for t in s.trials)
print(f"| finished trials (n_trials=4) | {done} COMPLETE |")
PY
grep -h "Resuming study\|interrupted" "$OUT/resume2.log" | sed 's/^/    /'
