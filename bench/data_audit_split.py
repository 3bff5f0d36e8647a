"""Audit and leakage-safe split of a 44-class set: wall times and split checks.

    python bench/data_audit_split.py [DATA_ROOT]

Without DATA_ROOT, a synthetic 44-class set like the public one (102 scans per class, JPEGs of
200-630 px) is generated once into .cache/braintumor/bench44. Prints a table and appends it to
docs/benchmarks.md.
"""

from __future__ import annotations

import os
import platform
import sys
import tempfile
import time
from collections import defaultdict
from datetime import date
from pathlib import Path

import torch

from braintumor.data.audit import audit_dataset
from braintumor.data.datamodule import MRIDataModule
from braintumor.data.synthetic import ensure_synthetic_dataset

ROOT = Path(__file__).resolve().parents[1]


def _setup(root: Path, cache: Path, seed: int) -> tuple[MRIDataModule, float]:
    start = time.perf_counter()
    dm = MRIDataModule(
        root, image_size=128, split_seed=seed, cache_dir=cache, num_workers=os.cpu_count()
    )
    dm.setup()
    return dm, time.perf_counter() - start


def main() -> None:
    if len(sys.argv) > 1:
        root = Path(sys.argv[1])
    else:
        root = ROOT / ".cache/braintumor/bench44"
        ensure_synthetic_dataset(
            root, num_classes=44, per_class=102, seed=1, min_size=200, max_size=630
        )
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        report = audit_dataset(root, workers=os.cpu_count())
        rows.append(("audit, cold (decode + hash every image)", time.perf_counter() - start))
        cache = Path(tmp) / "fingerprints"
        dm, cold = _setup(root, cache, seed=42)
        rows.append(("datamodule setup + group split, cold cache", cold))
        dm2, warm = _setup(root, cache, seed=42)
        rows.append(("datamodule setup + group split, warm cache", warm))
        split_a, split_b = Path(tmp) / "a.csv", Path(tmp) / "b.csv"
        dm.save_split(split_a)
        dm2.save_split(split_b)
        identical = split_a.read_bytes() == split_b.read_bytes()
    splits_of = defaultdict(set)
    for scan, split in zip(dm.catalog.scans, dm.catalog.splits, strict=True):
        splits_of[scan.label].add(split)
    counts = defaultdict(int)
    for scan in dm.catalog.scans:
        counts[scan.label] += 1
    eligible = [c for c, n in counts.items() if n >= 3]
    complete = sum(splits_of[c] == {"train", "val", "test"} for c in eligible)
    n = report["n_images"]
    sizes = f"{report['width']['min']}-{report['width']['max']} px"
    lines = [
        f"## Audit and split of a 44-class set — {date.today()}",
        "",
        f"Machine: {platform.machine()}, {os.cpu_count()} CPUs, "
        f"Python {platform.python_version()}, torch {torch.__version__}. "
        f"Data: `{root.name}`, {n} images, {report['n_classes']} classes, {sizes}.",
        "",
        "| step | seconds | images/s |",
        "| --- | ---: | ---: |",
        *[f"| {name} | {secs:.1f} | {n / secs:.0f} |" for name, secs in rows],
        "",
        f"Same seed, same `split.csv`: {'yes' if identical else 'NO'}. Classes with >= 3 images "
        f"present in train, val and test: {complete}/{len(eligible)}. Near-duplicate groups found: "
        f"{len(report['near_duplicate_groups'])}.",
        "",
    ]
    text = "\n".join(lines)
    print(text)
    out = ROOT / "docs" / "benchmarks.md"
    if not out.exists():
        out.write_text(
            "# Benchmarks\n\nNumbers measured by the scripts in `bench/`, newest last.\n\n"
        )
    with out.open("a") as f:
        f.write(text + "\n")


if __name__ == "__main__":
    main()
