"""Training recipes on the hard benchmark: which default wins, measured.

    python bench/recipes.py [--data /tmp/hard44v2] [--only NAME;...] [--seeds 1]
        [--first-seed 42] [--no-append]
        [--patients 24 --slices 4 --lesion-contrast 0.6]

The set is :mod:`braintumor.data.virtual_patients` (44 classes, 24 virtual patients per tumor
type, each scanned in all its sequences, 4 slices per series; written once and reused) with a
patient-level split from its group file. The first recipe's ``split.csv`` is reused by every
other run (``data.split_file``), so all are tested on the same patients. Each recipe runs
``train.py`` in its own process, one after the other; the table gives test macro-F1 with its
case-bootstrap 95% interval, accuracy, ECE (after temperature scaling), the best epoch, the
wall time and the peak resident memory of the training process. Appends to
docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import ROOT, append, header

from braintumor.data.virtual_patients import GROUP_FILE, ensure_patient_dataset, patient_types
from braintumor.runs.allocator import MALLOC_ENV

# name -> train.py overrides (besides the data); every recipe fits 15 minutes on 2 cores
RECIPES: dict[str, list[str]] = {
    "baseline_cnn": ["experiment=baseline_cnn"],
    "from_scratch": ["experiment=from_scratch"],
    "from_scratch_resnet18": ["experiment=from_scratch_resnet18"],
    "from_scratch, bf16 on a CPU that has it": ["experiment=from_scratch",
                                                "trainer.precision=auto-bf16"],
    "baseline_cnn, 60 epochs": ["experiment=baseline_cnn", "trainer.max_epochs=60",
                                "callbacks.early_stopping.patience=15"],
    "from_scratch_resnet18, no MixUp/CutMix, no EMA": [
        "experiment=from_scratch_resnet18", "model.mixup_alpha=0", "model.cutmix_alpha=0",
        "model.ema_decay=null"],
    "cnn, strong augment, AdamW, label smoothing, 40 epochs": [
        "experiment=baseline_cnn", "augment=strong", "model.optimizer._target_=torch.optim.AdamW",
        "model.optimizer.weight_decay=0.05", "model.label_smoothing=0.1", "trainer.max_epochs=40",
        "callbacks.early_stopping.patience=15"],
    "from_scratch_resnet18, resnet10t": ["experiment=from_scratch_resnet18",
                                         "model.net.name=resnet10t"],
    # from_scratch is the CNN with AdamW, label smoothing and EMA for 60 epochs (published as
    # "cnn, AdamW, label smoothing, EMA, 60 epochs"); shorter schedules of it:
    "baseline_cnn, modern optimizer": ["experiment=from_scratch", "trainer.max_epochs=30",
                                       "callbacks.early_stopping.patience=10"],
    "cnn, AdamW, label smoothing, EMA, 36 epochs": ["experiment=from_scratch",
                                                    "trainer.max_epochs=36",
                                                    "callbacks.early_stopping.patience=12"],
    "transfer recipe, random weights": ["experiment=transfer", "model.net.pretrained=false",
                                        "data.image_size=128"],
    "ensemble member (64 px CNN)": ["experiment=baseline_cnn", "data.image_size=64",
                                    "trainer.max_epochs=20"],
    "64 px CNN, 40 epochs": ["experiment=baseline_cnn", "data.image_size=64",
                             "trainer.max_epochs=40", "callbacks.early_stopping.patience=40"],
    "64 px CNN, 100 epochs": ["experiment=baseline_cnn", "data.image_size=64",
                              "trainer.max_epochs=100", "callbacks.early_stopping.patience=100"],
}  # fmt: skip


def train(name: str, overrides: list[str], run_dir: Path) -> dict:
    """Run ``train.py`` with ``overrides`` into ``run_dir``; its test metrics, time, memory."""
    cmd = [sys.executable, str(ROOT / "train.py"), f"hydra.run.dir={run_dir}",
           "trainer.enable_progress_bar=false", *overrides]  # fmt: skip
    start = time.perf_counter()
    env = {**os.environ, **MALLOC_ENV}
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)  # fmt: skip
    output = proc.stdout.read()
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"{name} failed:\n{output[-3000:]}")
    metrics = json.loads((run_dir / "reports" / "test_metrics.json").read_text())
    best = Path(metrics["checkpoint"]).stem
    epochs = len(list((run_dir / "checkpoints").glob("epoch_*.ckpt")))
    return {"metrics": metrics, "wall": wall, "peak_mib": usage.ru_maxrss / 1024, "best": best,
            "epochs_kept": epochs}  # fmt: skip


def row(name: str, overrides: list[str], seed: int, result: dict) -> str:
    m = result["metrics"]
    lo, hi = m["ci95"]["f1_macro"]
    return (f"| {name} | {seed} | **{m['f1_macro']:.3f}** ({lo:.3f}-{hi:.3f}) | "
            f"{m['accuracy']:.3f} | {m['ece']:.3f} | {m['log_loss']:.2f} | {result['best']} | "
            f"{result['wall'] / 60:.1f} min | {result['peak_mib']:.0f} MiB | "
            f"`{' '.join(overrides)}` |")  # fmt: skip


def add_benchmark_arguments(parser: argparse.ArgumentParser) -> None:
    """The hard set's parameters (``braintumor.data.virtual_patients``)."""
    # 24 x 4 since 2026-12-07: the 12 x 8 set at contrast 0.35 hid most T1/T2 lesions at the
    # grey matter's level (docs/data.md), and its 25 test patients separated no two recipes.
    parser.add_argument("--patients", type=int, default=24, help="virtual patients per type")
    parser.add_argument("--slices", type=int, default=4, help="slices per series")
    parser.add_argument("--lesion-contrast", type=float, default=0.6)


def benchmark(args: argparse.Namespace) -> Path:
    """The hard set of ``args``, written once into ``args.data`` (reused when it is there)."""
    return ensure_patient_dataset(args.data, patients=args.patients, slices=args.slices,
                                  lesion_contrast=args.lesion_contrast)  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default="/tmp/hard44v2")
    parser.add_argument("--only", default=None, help="recipe names separated by ;")
    parser.add_argument("--seeds", type=int, default=1, help="seeds per recipe (42, 43, ...)")
    parser.add_argument("--first-seed", type=int, default=42, help="the first of the seeds")
    parser.add_argument("--keep", default=None, help="keep the run folders here")
    parser.add_argument(
        "--split-file",
        type=Path,
        default=None,
        help="a split.csv of an earlier run on the same set, reused by all",
    )
    parser.add_argument("--no-append", action="store_true", help="print only")
    add_benchmark_arguments(parser)
    args = parser.parse_args()
    data = benchmark(args)
    images = sum(1 for _ in data.glob("*/*.jpeg"))
    chosen = args.only.split(";") if args.only else list(RECIPES)
    unknown = set(chosen) - set(RECIPES)
    if unknown:
        raise SystemExit(f"unknown recipes {sorted(unknown)}; known: {list(RECIPES)}")
    base = ["data=folder", f"data.root={data}", f"data.group_file={data / GROUP_FILE}"]
    lines = header("Recipes on the hard benchmark (bench/recipes.py)", [
        f"data: {data} (braintumor.data.virtual_patients: 44 classes, {args.patients} virtual "
        f"patients per tumour type and normal ({len(patient_types(44)) * args.patients}), "
        f"{args.slices} slices per "
        f"series, lesion contrast {args.lesion_contrast}: {images:,} slices), patient-level "
        "split 70/15/15 from its group file, the same split for "
        "every run; test macro-F1 with its 95% case-bootstrap interval (1,000 resamples of "
        "patients); ECE after temperature scaling; peak RSS of the training process"])  # fmt: skip
    lines += ["| recipe | seed | test macro-F1 (95% CI) | accuracy | ECE | NLL | best | wall | "
              "peak RSS | overrides |", "| --- | ---: | --- | ---: | ---: | ---: | --- | ---: | "
              "---: | --- |"]  # fmt: skip
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(args.keep) if args.keep else Path(tmp)
        split_file: Path | None = args.split_file
        for name in chosen:
            for seed in range(args.first_seed, args.first_seed + args.seeds):
                run_dir = out / f"{name.replace(' ', '_').replace(',', '')}_{seed}"
                split = [f"data.split_file={split_file}"] if split_file else []
                result = train(name, [*base, *split, *RECIPES[name], f"seed={seed}"], run_dir)
                split_file = split_file or run_dir / "split.csv"
                if args.keep is None and split_file.parent == run_dir:
                    split_file = Path(tmp) / "split.csv"
                    split_file.write_bytes((run_dir / "split.csv").read_bytes())
                lines.append(row(name, RECIPES[name], seed, result))
                print(lines[-1], flush=True)
    print("\n".join(lines)) if args.no_append else append(lines)


if __name__ == "__main__":
    main()
