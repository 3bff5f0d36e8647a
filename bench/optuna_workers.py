"""Issue 16's quality bar for sweeps on the demo data, on this machine:

1. 12 trials x 2 epochs of ``hparams_search=cnn_optuna`` (64 px, width 0.5: ``LIGHT``): one
   worker, then two workers (two processes, one journal study, 6 trials each on average):
   wall time, trials per worker, distinct trial numbers and parameter sets.
2. Pruning: 8 trials x 4 epochs (``LIGHT``, no test reports), ``hparams_search.pruner=
   median`` against ``none`` with the same sampler seed: trials pruned, epochs trained in
   total, best value, wall time.

Usage: python bench/optuna_workers.py [OUT_DIR] [--part 1|2] [--pruner none median]
       (prints Markdown tables; the two pruning sweeps may run as two processes at once)
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

import optuna

ROOT = Path(__file__).resolve().parents[1]
MALLOC = {"MALLOC_MMAP_THRESHOLD_": "33554432", "MALLOC_TRIM_THRESHOLD_": "17179869184",
          "MALLOC_TOP_PAD_": "268435456"}  # the Makefile's allocator settings  # fmt: skip


# Smaller trials than the config's space (up to 128 px, width 1.5), so that the bench fits a
# shared 2-core machine: 64 px, width 0.5, no bootstrap intervals; lr, weight decay, dropout,
# batch size and augmentation are still searched.
LIGHT = ["data.image_size=64", "model.net.width_multiplier=0.5", "eval.bootstrap=0"]


def _cmd(out: Path, study: str, n_trials: int, epochs: int, *extra: str) -> list[str]:
    return [sys.executable, str(ROOT / "train.py"), "-m", "hparams_search=cnn_optuna",
            f"hydra.sweeper.study_name={study}", f"hydra.sweeper.n_trials={n_trials}",
            f"hydra.sweeper.storage={out / study / 'optuna.journal'}",
            f"trainer.max_epochs={epochs}", "trainer.enable_progress_bar=false",
            f"paths.log_dir={out / 'runs'}", *LIGHT, *extra]  # fmt: skip


def _sweep(out: Path, study: str, workers: int, n_trials: int, epochs: int,
           *extra: str) -> dict:  # fmt: skip
    """Run ``workers`` processes on one study; wall time, CPU use, loads, the study."""
    load0 = os.getloadavg()[0]
    cpu0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.monotonic()
    logs = [open(out / f"{study}.{i}.log", "w") for i in range(workers)]  # noqa: SIM115
    procs = [subprocess.Popen(_cmd(out, study, n_trials, epochs, *extra), cwd=ROOT,
                              stdout=log, stderr=subprocess.STDOUT, env={**os.environ, **MALLOC})
             for log in logs]  # fmt: skip
    codes = [p.wait() for p in procs]
    wall = time.monotonic() - start
    cpu1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (cpu1.ru_utime - cpu0.ru_utime) + (cpu1.ru_stime - cpu0.ru_stime)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    storage = optuna.storages.JournalStorage(
        optuna.storages.journal.JournalFileBackend(str(out / study / "optuna.journal"))
    )
    trials = optuna.load_study(study_name=study, storage=storage).trials
    jobs = out / "runs" / "optuna" / study
    epochs_run = []
    for t in trials:
        info = json.loads((jobs / str(t.number) / "run_info.json").read_text())
        epochs_run.append(info.get("epochs") or 0)
    return {"codes": codes, "wall": wall, "cpu": cpu, "load": (load0, os.getloadavg()[0]),
            "trials": trials, "epochs": epochs_run}  # fmt: skip


def _best(trials: list) -> str:
    done = [t for t in trials if t.state.name == "COMPLETE"]
    best = max(done, key=lambda t: t.value) if done else None
    return f"{best.value:.4f} (trial {best.number})" if best else "none"


def part1(out: Path) -> None:
    print("\n## 1. 12 trials x 2 epochs: one worker vs two workers on one journal study\n")
    print(
        "| workers | wall time | cores busy (CPU/wall) | load before/after | trials per worker "
        "| distinct trial numbers / parameter sets | states | best val/f1_macro_best |"
    )
    print("| ---: | ---: | ---: | --- | --- | --- | --- | --- |")
    for workers in (1, 2):
        r = _sweep(out, f"w{workers}", workers, 12, 2)
        trials = r["trials"]
        pids = [t.system_attrs["braintumor:worker"]["pid"] for t in trials]
        per_worker = sorted((pids.count(p) for p in set(pids)), reverse=True)
        params = {tuple(sorted(t.params.items())) for t in trials}
        states = [t.state.name for t in trials]
        print(f"| {workers} | {r['wall']:.0f} s ({r['wall'] / 60:.1f} min) | "
              f"{r['cpu'] / r['wall']:.2f} | {r['load'][0]:.1f} / {r['load'][1]:.1f} | "
              f"{per_worker} | {len({t.number for t in trials})} / {len(params)} | "
              f"{', '.join(f'{states.count(s)} {s}' for s in sorted(set(states)))} | "
              f"{_best(trials)} |", flush=True)  # fmt: skip


def part2(out: Path, n_trials: int, epochs: int, pruner: str, startup: int = 3,
          warmup: int = 1) -> None:  # fmt: skip
    """One sweep with ``pruner``; the median pruner lets ``startup`` trials run to the end
    first and stops others from epoch index ``warmup`` on."""
    print(f"\n## 2. pruner {pruner}: {n_trials} trials x {epochs} epochs, sampler seed 1234\n")
    print(f"| pruner | wall time | trials pruned | epochs trained (of {n_trials * epochs}) "
          "| best val/f1_macro_best | load before/after |")  # fmt: skip
    print("| --- | ---: | ---: | ---: | --- | --- |")
    extra = [
        f"hparams_search.pruner={pruner}",
        f"hydra.sweeper.pruners.median.n_startup_trials={startup}",
        f"hydra.sweeper.pruners.median.n_warmup_steps={warmup}",
        "test=false",
    ]  # the objective is a validation metric: no test reports
    r = _sweep(out, f"prune_{pruner}_{startup}_{warmup}", 1, n_trials, epochs, *extra)
    states = [t.state.name for t in r["trials"]]
    print(f"| {pruner} | {r['wall']:.0f} s ({r['wall'] / 60:.1f} min) | "
          f"{states.count('PRUNED')} | {sum(r['epochs'])} | {_best(r['trials'])} | "
          f"{r['load'][0]:.1f} / {r['load'][1]:.1f} |", flush=True)  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out", nargs="?", type=Path, default=ROOT / "outputs" / "bench_workers")
    parser.add_argument("--part", choices=("1", "2"), help="one part only (default: both)")
    parser.add_argument("--trials", type=int, default=8, help="part 2's trials")
    parser.add_argument("--epochs", type=int, default=4, help="part 2's epochs per trial")
    parser.add_argument("--pruner", nargs="+", default=["none", "median"], help="part 2's")
    parser.add_argument("--startup", type=int, default=3, help="median: trials run in full")
    parser.add_argument("--warmup", type=int, default=1, help="median: epochs never stopped")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    print(f"machine: {os.uname().machine}, {os.cpu_count()} CPUs, Python "
          f"{sys.version.split()[0]}, optuna {optuna.__version__}")  # fmt: skip
    if args.part in (None, "1"):
        part1(args.out)
    if args.part in (None, "2"):
        for pruner in args.pruner:
            part2(args.out, args.trials, args.epochs, pruner, args.startup, args.warmup)


if __name__ == "__main__":
    main()
