"""An ensemble of seeds against its members, and conformal sets, on the hard benchmark.

    python bench/ensembles.py --split-file RUN/split.csv [--data /tmp/hard44] [--members 5]
                              [--recipe "ensemble member (64 px CNN)"] [--level 0.9]

Trains ``--members`` runs of one recipe of bench/recipes.py (seeds 1, 2, ...) on the same
patient-level split (``--split-file``: a split.csv of bench/recipes.py's runs, so the test
patients are those of the recipe table), combines them with ``python -m braintumor ensemble``
with ``eval.conformal=LEVEL`` and appends to docs/benchmarks.md: each member and the ensemble
on the same test images (macro F1 with its case-bootstrap interval, NLL, ECE), and the
ensemble's conformal sets (coverage and mean set size on test images and cases).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import ROOT, append, header
from recipes import RECIPES, train

from braintumor.data.virtual_patients import GROUP_FILE, ensure_patient_dataset


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default="/tmp/hard44")
    parser.add_argument("--split-file", type=Path, required=True)
    parser.add_argument("--members", type=int, default=5)
    parser.add_argument("--recipe", default="ensemble member (64 px CNN)")
    parser.add_argument("--level", type=float, default=0.9)
    parser.add_argument("--keep", default=None, help="keep the run folders here")
    parser.add_argument("--no-append", action="store_true")
    args = parser.parse_args()
    data = ensure_patient_dataset(args.data)
    base = ["data=folder", f"data.root={data}", f"data.group_file={data / GROUP_FILE}",
            f"data.split_file={args.split_file}", *RECIPES[args.recipe]]  # fmt: skip
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(args.keep) if args.keep else Path(tmp)
        runs, minutes = [], []
        for seed in range(1, args.members + 1):
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
    members_table = done.stdout.strip().splitlines()
    sets = test["conformal"]
    lines = header("An ensemble of seeds and its conformal sets (bench/ensembles.py)", [
        f"data: {data}, the patient-level split of {args.split_file.name} (the recipe table's "
        f"test patients); members: `{' '.join(RECIPES[args.recipe])}`, seeds 1-{args.members}, "
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
    print("\n".join(lines)) if args.no_append else append(lines)


if __name__ == "__main__":
    main()
