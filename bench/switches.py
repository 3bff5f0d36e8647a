"""Throughput switches on CPU: channels_last, bf16-mixed, torch.compile and the allocator.

    python bench/switches.py [--size 96 --batch 32] [--rounds 5] [--no-append]

Training steps (forward + backward + Adam step) of the default CNN on one in-memory batch.
The in-process variants run interleaved in rounds; the allocator variants need fresh
processes (malloc reads its settings at start), so they run as child processes, interleaved.
Appends the table to docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from contextlib import nullcontext

import torch
from common import append, build_classifier, compose_train, header, median

from braintumor.runs.allocator import ENV_KEYS, MALLOC_ENV, tune_malloc


def stepper(size: int, batch: int, precision: str = "32", **changes):
    """A function doing one training step; returns it after one warm-up step."""
    torch.manual_seed(0)
    cfg = compose_train([f"data.image_size={size}"])
    module = build_classifier(cfg, 8, **changes).train()
    optimizer = torch.optim.Adam(module.parameters(), lr=1e-3)
    x = torch.randn(batch, 1, size, size)
    y = torch.randint(0, 8, (batch,))
    autocast = torch.autocast("cpu", dtype=torch.bfloat16) if precision == "bf16" else nullcontext()

    def step() -> None:
        optimizer.zero_grad(set_to_none=True)
        with autocast:
            loss = module.criterion(module(x), y)
        loss.backward()
        optimizer.step()

    step()
    return step


def images_per_second(step, batch: int, steps: int) -> float:
    start = time.perf_counter()
    for _ in range(steps):
        step()
    return batch * steps / (time.perf_counter() - start)


def child(args: argparse.Namespace) -> None:
    """One allocator variant in this fresh process: print images/s."""
    if args.child == "mallopt":
        assert tune_malloc()
    step = stepper(args.size, args.batch)
    step()
    print(images_per_second(step, args.batch, args.steps))


def allocator_rows(args: argparse.Namespace) -> list[str]:
    base = {k: v for k, v in os.environ.items() if k not in ENV_KEYS}
    modes = {
        "glibc defaults": ("plain", base),
        "MALLOC_*_ environment (Makefile)": ("plain", {**base, **MALLOC_ENV}),
        "mallopt at start (train.py, braintumor.runs.allocator)": ("mallopt", base),
    }
    rates: dict[str, list[float]] = {m: [] for m in modes}
    for _ in range(args.rounds):
        for mode, (kind, env) in modes.items():
            cmd = [sys.executable, __file__, "--child", kind, "--size", str(args.size),
                   "--batch", str(args.batch), "--steps", str(args.steps)]  # fmt: skip
            out = subprocess.run(cmd, env=env, capture_output=True, text=True, check=True)
            rates[mode].append(float(out.stdout.strip().splitlines()[-1]))
    first = median(rates["glibc defaults"])
    return [f"| {m} | {median(r):.1f} | {median(r) / first:.2f}x |" for m, r in rates.items()]


def variant_rows(args: argparse.Namespace) -> tuple[list[str], float]:
    start = time.perf_counter()
    compiled = stepper(args.size, args.batch, compile=True)
    compiled()
    compile_s = time.perf_counter() - start
    variants = {
        "fp32, contiguous (NCHW)": stepper(args.size, args.batch, channels_last=False),
        "fp32, channels_last (default)": stepper(args.size, args.batch),
        "bf16-mixed, channels_last": stepper(args.size, args.batch, precision="bf16"),
        "fp32, channels_last, compile": compiled,
    }
    rates: dict[str, list[float]] = {v: [] for v in variants}
    for _ in range(args.rounds):
        for name, step in variants.items():
            rates[name].append(images_per_second(step, args.batch, args.steps))
    first = median(rates["fp32, contiguous (NCHW)"])
    rows = [f"| {n} | {median(r):.1f} | {median(r) / first:.2f}x |" for n, r in rates.items()]
    return rows, compile_s


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", type=int, default=96)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--child", choices=["plain", "mallopt"], help=argparse.SUPPRESS)
    parser.add_argument("--no-append", action="store_true", help="print only")
    args = parser.parse_args()
    if args.child:
        return child(args)
    lines = header("Throughput switches on CPU", [
        f"default CNN, {args.size} px, batch {args.batch}, 1 channel, 8 classes; images/s of "
        f"training steps (forward + backward + Adam), medians of {args.rounds} interleaved "
        f"rounds x {args.steps} steps after warm-up",
    ])  # fmt: skip
    rows, compile_s = variant_rows(args)
    lines += ["| variant (allocator: this process's) | img/s | vs first |", "| --- | ---: | ---: |"]
    lines += rows
    lines += ["", f"torch.compile's first step (compilation) took {compile_s:.0f} s.", ""]
    lines += ["| allocator (fp32, channels_last; fresh process each) | img/s | vs first |",
              "| --- | ---: | ---: |", *allocator_rows(args)]  # fmt: skip
    if args.no_append:
        print("\n".join(lines))
    else:
        append(lines)


if __name__ == "__main__":
    main()
