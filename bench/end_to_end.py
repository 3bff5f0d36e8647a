"""End to end: wall time, peak memory and seconds per epoch of real ``train.py`` runs.

    python bench/end_to_end.py [--data /tmp/bench44] [--sizes 128,224] [--epochs 3] [--no-append]

Runs ``make train``'s command (default CNN, demo data) and, on a 44-class set of JPEGs of up
to 630 px (bench/bench44.py), ``train.py data=folder`` at each image size, one after the
other, with the Makefile's allocator settings. Reports the wall time, the peak resident
memory of the training process (its loader workers are separate processes) and the seconds
of the first and of the later epochs (from the TensorBoard event times: an epoch runs from
its learning-rate entry to the next one). Appends the table to docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import itertools
import os
import re
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench44 import make_bench44
from common import ROOT, append, header, median
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from braintumor.runs.allocator import MALLOC_ENV


def epoch_seconds(run_dir: Path) -> list[float]:
    """Seconds of each epoch, from the wall times of the per-epoch learning-rate entries and
    of the last epoch's training loss."""
    events = next(run_dir.glob("tensorboard/**/events.out.tfevents.*"))
    acc = EventAccumulator(str(events.parent))
    acc.Reload()
    tags = acc.Tags()["scalars"]
    starts = [e.wall_time for e in acc.Scalars(next(t for t in tags if t.startswith("lr-")))]
    end = acc.Scalars("train/loss")[-1].wall_time
    bounds = [*starts, end]
    return [b - a for a, b in itertools.pairwise(bounds)]


def run(name: str, overrides: list[str], out: Path) -> list[str]:
    run_dir = out / re.sub(r"[^a-z0-9]+", "_", name.lower())
    cmd = [sys.executable, str(ROOT / "train.py"), f"hydra.run.dir={run_dir}",
           "trainer.enable_progress_bar=false", *overrides]  # fmt: skip
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    start = time.perf_counter()
    done = subprocess.run(cmd, cwd=ROOT, env={**os.environ, **MALLOC_ENV}, capture_output=True,
                          text=True)  # fmt: skip
    wall = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"{name} failed:\n{done.stdout[-2000:]}{done.stderr[-2000:]}")
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss  # KiB, max over children
    peak_note = f"{peak / 1024:.0f} MiB" if peak > before else f"<= {before / 1024:.0f} MiB"
    epochs = epoch_seconds(run_dir)
    later = median(epochs[1:]) if len(epochs) > 1 else float("nan")
    return [f"| {name} | `{' '.join(overrides) or '(defaults)'}` | {wall:.0f} s | {peak_note} | "
            f"{len(epochs)} | {epochs[0]:.1f} | {later:.1f} |"]  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default="/tmp/bench44")
    parser.add_argument("--sizes", default="128,224")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--no-append", action="store_true", help="print only")
    args = parser.parse_args()
    make_bench44(Path(args.data))  # written once, reused
    lines = header("End to end: train.py runs", [
        f"44-class data: {args.data} (bench/bench44.py); default CNN, data.cache=memory; "
        "peak memory = the training process's maximum resident set"])  # fmt: skip
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp)
        rows += run("make train", [], out)
        for size in (int(s) for s in args.sizes.split(",")):
            rows += run(f"44 classes, {size} px", ["data=folder", f"data.root={args.data}",
                        f"data.image_size={size}", f"trainer.max_epochs={args.epochs}",
                        "~callbacks.early_stopping"], out)  # fmt: skip
    lines += ["| run | overrides | wall | peak RSS | epochs | first epoch, s | later, s (median) |",
              "| --- | --- | ---: | ---: | ---: | ---: | ---: |", *rows]  # fmt: skip
    print("\n".join(lines)) if args.no_append else append(lines)


if __name__ == "__main__":
    main()
