"""An ensemble of seeds against its members, and conformal sets, on the hard benchmark.

    python bench/ensembles.py --split-file RUN/split.csv [--data /tmp/hard44v2] [--members 5]
                              [--recipe "ensemble member (64 px CNN)"] [--level 0.9]
                              [--first-seed 1] [--keep DIR]

Trains ``--members`` runs of one recipe of bench/recipes.py (seeds 1, 2, ...; a completed
run already in ``--keep DIR/member_<seed>`` is reused, e.g. bench/recipes.py's) on the same
patient-level split (``--split-file``: a split.csv of bench/recipes.py's runs, so the test
patients are those of the recipe table), combines them with ``python -m braintumor ensemble``
with ``eval.conformal=LEVEL`` and appends to docs/benchmarks.md: each member and the ensemble
on the same test images (macro F1 with its case-bootstrap interval, NLL, ECE), and the
ensemble's conformal sets (coverage and mean set size on test images and cases).
"""

from __future__ import annotations

import argparse
import csv
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import ROOT, append, header
from recipes import RECIPES, add_benchmark_arguments, benchmark, train

from braintumor.data.virtual_patients import GROUP_FILE


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default="/tmp/hard44v2")
    parser.add_argument("--split-file", type=Path, default=None,
                        help="a split.csv of bench/recipes.py (default: the same patient split, "
                        "drawn from the group file with split_seed 42)")  # fmt: skip
    parser.add_argument(
        "--rounds",
        type=int,
        default=1000,
        help="random re-splits of the held-out patients for the coverage check",
    )
    parser.add_argument("--members", type=int, default=5)
    parser.add_argument("--first-seed", type=int, default=1, help="members' seeds start here")
    parser.add_argument("--recipe", default="ensemble member (64 px CNN)")
    parser.add_argument("--level", type=float, default=0.9)
    parser.add_argument("--keep", default=None, help="keep the run folders here")
    parser.add_argument("--no-append", action="store_true")
    add_benchmark_arguments(parser)
    args = parser.parse_args()
    data = benchmark(args)
    base = ["data=folder", f"data.root={data}", f"data.group_file={data / GROUP_FILE}",
            *([f"data.split_file={args.split_file}"] if args.split_file else []),
            *RECIPES[args.recipe]]  # fmt: skip
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(args.keep) if args.keep else Path(tmp)
        runs, minutes = [], []
        seeds = range(args.first_seed, args.first_seed + args.members)
        for seed in seeds:
            run = out / f"member_{seed}"
            info = run / "run_info.json"
            if (
                args.keep
                and info.is_file()
                and json.loads(info.read_text())["status"] == "completed"
            ):
                minutes.append(json.loads(info.read_text())["wall_time_s"] / 60)  # kept: reused
            else:
                minutes.append(train(f"member {seed}", [*base, f"seed={seed}"], run)["wall"] / 60)
            runs.append(run)
        started = time.perf_counter()
        done = subprocess.run(
            [sys.executable, "-m", "braintumor", "ensemble", *map(str, runs), "--out",
             str(out / "ensemble"), f"eval.conformal={args.level}"],
            cwd=ROOT, capture_output=True, text=True,
        )  # fmt: skip
        if done.returncode != 0:
            raise SystemExit(done.stderr[-3000:])
        seconds = time.perf_counter() - started
        test = json.loads((out / "ensemble" / "reports" / "test_metrics.json").read_text())
        resplit = resplit_coverage(out / "ensemble" / "reports", args.level, args.rounds)
    members_table = done.stdout.strip().splitlines()
    sets = test["conformal"]
    lines = header("An ensemble of seeds and its conformal sets (bench/ensembles.py)", [
        f"data: {data} ({args.patients} virtual patients per tumour type, {args.slices} "
        f"slices per series, lesion contrast {args.lesion_contrast}), the patient-level split "
        f"{'of ' + args.split_file.name if args.split_file else 'from its group file'} (the "
        f"recipe table's test patients); members: `{' '.join(RECIPES[args.recipe])}`, "
        f"seeds {seeds[0]}-{seeds[-1]}, "
        f"{min(minutes):.1f}-{max(minutes):.1f} min each; the ensemble command took "
        f"{seconds:.0f} s"])  # fmt: skip
    lines += [line for line in members_table if line.startswith("|")]
    lines.append("")
    fitted = test["calibration"]["conformal"]
    lines.append(f"Conformal sets at level {args.level} (APS, calibrated on the "
                 f"{fitted['images']} validation images and {fitted.get('cases', 0)} "
                 "validation cases):")  # fmt: skip
    lines += ["", "| on test | n | coverage | mean set size | singletons |",
              "| --- | ---: | ---: | ---: | ---: |"]  # fmt: skip
    for what in ("images", "cases"):
        found = sets.get(what)
        if found and "coverage" in found:
            lines.append(f"| {what} | {found['n']} | {found['coverage']:.3f} | "
                         f"{found['mean_set_size']:.2f} | {found['singletons']:.2f} |")  # fmt: skip
    lines += ["", f"The same check over {args.rounds} random re-splits of the held-out patients "
              "(validation and test pooled, split by patient into calibration and test halves "
              "of their sizes; the threshold refitted on each calibration half, as the ensemble "
              "command fits it): one split's coverage is noisy with few patients, its mean over "
              "re-splits is what the guarantee is about.", "",
              "| re-split | test n | mean coverage | 5th-95th percentile | mean set size |",
              "| --- | ---: | ---: | --- | ---: |"]  # fmt: skip
    for what, found in resplit.items():
        lines.append(f"| {what} | {found['n']} | {found['mean']:.3f} | {found['low']:.3f}-"
                     f"{found['high']:.3f} | {found['size']:.2f} |")  # fmt: skip
    print("\n".join(lines)) if args.no_append else append(lines)


def resplit_coverage(reports: Path, level: float, rounds: int, seed: int = 0) -> dict:
    """Coverage of APS sets refitted on random patient-level halves of the pooled held-out
    predictions (``val`` and ``test_predictions.csv``, calibrated probabilities), over images
    and over cases; mean, 5th and 95th percentile and mean set size on the test halves."""
    import numpy as np

    from braintumor.conformal import ConformalScore, prediction_sets, threshold
    from braintumor.evaluation.cases import case_probabilities

    rows, sizes = [], {}
    for split in ("val", "test"):
        with (reports / f"{split}_predictions.csv").open() as f:
            reader = csv.reader(f)
            head = next(reader)
            part = list(reader)
        sizes[split] = len({r[1] for r in part})
        rows += part
    first = head.index("predicted") + 1 + ("prediction_set" in head)
    last = len(head) - (head[-1] == "member_disagreement")  # a column of the ensemble's, no class
    names = head[first:last]
    probs = np.array([[float(v) for v in r[first:last]] for r in rows])
    if not np.allclose(probs.sum(1), 1.0, atol=1e-3):
        raise SystemExit(f"the class columns {names[0]!r}..{names[-1]!r} do not sum to 1")
    y = np.array([names.index(r[2]) for r in rows])
    groups = np.array([r[1] for r in rows])
    patients = np.unique(groups)
    table = case_probabilities(y, probs, groups, names)
    case_index = {g: i for i, g in enumerate(table.groups)}
    score = ConformalScore("aps")
    image_scores = score.of_labels(probs, y)
    scored = table.truth >= 0
    case_scores = np.full(len(table.groups), np.nan)
    case_scores[scored] = score.of_labels(table.probs[scored], table.truth[scored])
    rng = np.random.default_rng(seed)
    found: dict[str, list] = {"images": [], "cases": []}
    for _ in range(rounds):
        calibrate = set(rng.permutation(patients)[: sizes["val"]])
        on_cal = np.array([g in calibrate for g in groups])
        limit = threshold(image_scores[on_cal], level)
        sets = prediction_sets(probs[~on_cal], limit, score)
        found["images"].append((sets[np.arange(len(sets)), y[~on_cal]].mean(),
                                sets.sum(1).mean(), len(sets)))  # fmt: skip
        cal_cases = np.array([case_index[g] for g in calibrate if scored[case_index[g]]], int)
        test_cases = np.array([case_index[g] for g in patients
                               if g not in calibrate and scored[case_index[g]]], int)  # fmt: skip
        if len(cal_cases) >= 9 and len(test_cases):  # cases of one label only (else skipped)
            limit = threshold(case_scores[cal_cases], level, "validation cases")
            sets = prediction_sets(table.probs[test_cases], limit, score)
            hit = sets[np.arange(len(sets)), table.truth[test_cases]]
            found["cases"].append((hit.mean(), sets.sum(1).mean(), len(sets)))
    out = {}
    for what, values in found.items():
        if not values:
            continue
        cover = np.array([v[0] for v in values])
        out[what] = {"mean": float(cover.mean()), "low": float(np.percentile(cover, 5)),
                     "high": float(np.percentile(cover, 95)),
                     "size": float(np.mean([v[1] for v in values])),
                     "n": int(np.median([v[2] for v in values]))}  # fmt: skip
    return out


if __name__ == "__main__":
    main()
