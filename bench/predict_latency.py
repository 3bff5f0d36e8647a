"""Prediction latency on CPU: eager PyTorch vs ONNX Runtime, side by side in one process,
and the cold command line (a new process per scan, as a user runs it).

    python bench/predict_latency.py                      # the default CNN at its default size
    python bench/predict_latency.py --ckpt outputs/<run>/checkpoints/last.ckpt --no-append
    python bench/predict_latency.py --model experiment=transfer_efficientnet_b0 --cold 5

Measures, with the model loaded, for each backend and thread count:
  single, end to end   decode a JPEG scan + preprocess + forward + softmax (one image)
  single, model only   a preprocessed (1, C, S, S) tensor -> probabilities
  batch of 32          preprocessed batch -> probabilities (per image)
  cold command line    ``python -m braintumor predict MODEL scan.jpeg`` in a new process:
                       wall time and peak memory (max RSS) of the whole command, with the
                       ONNX file (no torch imported) and, with --ckpt, the checkpoint
Backends run interleaved in rounds (so a burst of load on a shared machine hits both), after
a warm-up; the table shows medians (and p90 for single images). Appends the table to
docs/benchmarks.md with the date, machine, CPU count and library versions.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import torch
from common import build_classifier, compose_train
from PIL import Image

from braintumor.data.synthetic import class_names_for, render_scan
from braintumor.inference.onnx_graph import export_onnx
from braintumor.inference.onnx_predictor import OnnxPredictor
from braintumor.inference.torch_predictor import TorchPredictor
from braintumor.training.module import MRIClassifier

ROOT = Path(__file__).resolve().parents[1]


def default_module(overrides: list[str] = ()) -> MRIClassifier:
    """The default model (conf/train.yaml: CNN, demo data settings) or the one ``overrides``
    choose, untrained weights."""
    cfg = compose_train(list(overrides))
    return build_classifier(cfg, cfg.data.synthetic.num_classes).eval()


def cold_command(model: Path, scan: Path, workdir: Path, repeats: int) -> tuple[list, list]:
    """Wall seconds and peak memory (MB, max RSS) of ``repeats`` cold runs of
    ``python -m braintumor predict MODEL SCAN`` (one new process each), measured by GNU time:
    a child forked from this process (torch loaded) would count this one's memory too."""
    walls, peaks = [], []
    for i in range(repeats):
        out, usage = workdir / f"cold_{model.suffix[1:]}_{i}", workdir / "usage.txt"
        predict = [sys.executable, "-m", "braintumor", "predict", str(model), str(scan),
                   f"out={out}", "device=cpu"]  # fmt: skip
        cmd = ["/usr/bin/time", "-f", "%e %M", "-o", str(usage), *predict]
        done = subprocess.run(cmd, cwd=ROOT, stdout=subprocess.DEVNULL, text=True)
        if done.returncode != 0:
            raise SystemExit(f"{' '.join(cmd)} failed ({done.returncode})")
        wall, peak_kb = usage.read_text().split()[-2:]
        walls.append(float(wall))
        peaks.append(float(peak_kb) / 1024)
    return walls, peaks


def timed(fn: Callable[[], object], repeats: int) -> list[float]:
    """Wall-clock milliseconds of ``repeats`` calls of ``fn``."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append((time.perf_counter() - start) * 1e3)
    return times


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return cpu


def run(args: argparse.Namespace) -> str:
    module = (MRIClassifier.load_from_checkpoint(args.ckpt, map_location="cpu").eval()
              if args.ckpt else default_module(args.model))  # fmt: skip
    workdir = Path(tempfile.mkdtemp(prefix="bench_"))
    onnx_path = export_onnx(module, workdir / "model.onnx")
    eager = TorchPredictor(module, device="cpu")
    scan = workdir / "scan.jpeg"
    phantom = class_names_for(8)[-1]  # any scan will do: latency does not depend on the class
    Image.fromarray(render_scan(phantom, np.random.default_rng(0), 200)).save(scan)
    size, channels = eager.image_size, eager.channels
    single = eager.preprocess([eager.load(scan)])
    batch = single.repeat(args.batch, 1, 1, 1) + 0.01 * torch.randn(
        args.batch, channels, size, size
    )
    rows = []
    for threads in args.threads:
        torch.set_num_threads(threads)
        backends = {"eager PyTorch": eager,
                    "ONNX Runtime": OnnxPredictor(onnx_path, "cpu", threads=threads)}  # fmt: skip
        diff = float(np.abs(eager.probabilities(batch) - backends["ONNX Runtime"].probabilities(
            batch)).max())  # fmt: skip
        tasks = {
            "single, end to end": lambda p: p.predict_images([p.load(scan)]),
            "single, model only": lambda p: p.probabilities(single),
            f"batch of {args.batch}": lambda p: p.probabilities(batch),
        }
        samples = {(t, b): [] for t in tasks for b in backends}
        for task, fn in tasks.items():
            for predictor in backends.values():
                timed(lambda fn=fn, p=predictor: fn(p), args.warmup)
            for _ in range(args.rounds):
                for backend, predictor in backends.items():
                    reps = args.repeats if task.startswith("single") else max(1, args.repeats // 8)
                    samples[task, backend] += timed(lambda fn=fn, p=predictor: fn(p), reps)
        for task in tasks:
            medians = {}
            for backend in backends:
                values = samples[task, backend]
                med = statistics.median(values)
                if task.startswith("batch"):
                    text = f"{med:.2f} ms ({med / args.batch:.3f} ms/image)"
                else:
                    text = f"{med:.2f} ms (p90 {np.percentile(values, 90):.2f})"
                medians[backend] = (med, text)
            ratio = medians["eager PyTorch"][0] / medians["ONNX Runtime"][0]
            rows.append(f"| {task} | {threads} | {medians['eager PyTorch'][1]} | "
                        f"{medians['ONNX Runtime'][1]} | {ratio:.2f}x |")  # fmt: skip
        rows.append(f"| parity, batch of {args.batch} | {threads} | max abs diff of "
                    f"probabilities {diff:.1e} | | |")  # fmt: skip
    if args.cold:
        models = [onnx_path] + ([Path(args.ckpt)] if args.ckpt else [])
        walls = {}
        for model in models:
            wall, peak = cold_command(model, scan, workdir, args.cold)
            walls[model.suffix] = statistics.median(wall)
            rows.append(f"| cold `predict {model.name} scan.jpeg` | default | "
                        f"{statistics.median(wall):.2f} s wall (max {max(wall):.2f}), "
                        f"{max(peak):.0f} MB peak RSS | {args.cold} runs | |")  # fmt: skip
        if ".ckpt" in walls:
            rows.append(f"| cold command, checkpoint / ONNX | | | | "
                        f"{walls['.ckpt'] / walls['.onnx']:.1f}x |")  # fmt: skip
    import onnxruntime

    prep = eager.preprocessing
    header = [
        f"## Prediction latency, {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC",
        "",
        f"- machine: {machine()}, {os.cpu_count()} CPUs, load average at start "
        f"{os.getloadavg()[0]:.2f} (other jobs share this machine)",
        f"- torch {torch.__version__}, onnxruntime {onnxruntime.__version__}, "
        f"python {platform.python_version()}",
        f"- model: {args.ckpt or ' '.join(args.model) or 'default CNN (conf/model/cnn.yaml)'}"
        f"{'' if args.ckpt else ', untrained weights'}, "
        f"{type(module.net).__name__}, {prep.num_classes} classes, "
        f"{prep.image_size} px, {prep.channels} channel(s)",
        f"- medians of {args.rounds} interleaved rounds x {args.repeats} calls "
        f"(batches: {max(1, args.repeats // 8)} calls) after {args.warmup} warm-up calls; "
        "ratio = eager / ONNX Runtime (> 1: ONNX Runtime faster)",
        "",
        "| task | threads | eager PyTorch | ONNX Runtime | ratio |",
        "| --- | --- | --- | --- | --- |",
    ]
    return "\n".join(header + rows) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--ckpt", help="a checkpoint (default: the default CNN, untrained)")
    parser.add_argument("--model", nargs="*", default=[],
                        help="config overrides choosing an untrained model instead, e.g. "
                        "experiment=transfer_efficientnet_b0")  # fmt: skip
    parser.add_argument("--cold", type=int, default=5,
                        help="cold command-line runs per model file (0: none)")  # fmt: skip
    parser.add_argument("--threads", type=int, nargs="+", default=[1, os.cpu_count() or 1])
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--repeats", type=int, default=40)
    parser.add_argument("--warmup", type=int, default=20)
    parser.add_argument("--out", default=str(ROOT / "docs" / "benchmarks.md"))
    parser.add_argument("--no-append", action="store_true", help="print only")
    args = parser.parse_args()
    table = run(args)
    print(table)
    if not args.no_append:
        out = Path(args.out)
        out.parent.mkdir(parents=True, exist_ok=True)
        if not out.exists():
            out.write_text("# Benchmarks\n\nMeasured numbers, newest last. Re-run the scripts in "
                           "`bench/` to add yours.\n")  # fmt: skip
        with out.open("a") as f:
            f.write("\n" + table)
        print(f"appended to {out}")


if __name__ == "__main__":
    main()
