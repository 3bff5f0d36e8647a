"""Seconds per epoch of the transfer recipes on this machine, from measured step throughput.

    python bench/transfer_epoch_time.py [--steps 4] [--archs resnet18,...]

For each recipe's network at its image size (224 px, 1 channel, batch 32) it times training
steps (forward + backward + AdamW step, channels_last) and eval batches on random tensors, then
converts images/s into seconds per epoch of the 44-class set split 70/15/15 (3,135 train and
672 val images). The data loader is not included. Prints a table and appends it to
docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import os
import platform
import time
from datetime import date
from pathlib import Path

import torch

from braintumor.models import build_model

ROOT = Path(__file__).resolve().parents[1]
TRAIN, VAL = 3135, 672


def throughput(arch: str, size: int, batch: int, steps: int, device: str) -> tuple[float, float]:
    net = build_model({"name": arch}, num_classes=44, in_channels=1)
    net = net.to(device, memory_format=torch.channels_last)
    opt = torch.optim.AdamW(net.parameters(), lr=3e-4)
    x = torch.randn(batch, 1, size, size, device=device).contiguous(
        memory_format=torch.channels_last
    )
    y = torch.randint(0, 44, (batch,), device=device)

    def train_step() -> None:
        opt.zero_grad(set_to_none=True)
        torch.nn.functional.cross_entropy(net(x), y).backward()
        opt.step()

    def timed(fn, n: int) -> float:
        fn()  # warm-up
        if device == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        for _ in range(n):
            fn()
        if device == "cuda":
            torch.cuda.synchronize()
        return n * batch / (time.perf_counter() - start)

    net.train()
    train_ips = timed(train_step, steps)
    net.eval()
    with torch.no_grad():
        eval_ips = timed(lambda: net(x), steps)
    return train_ips, eval_ips


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--steps", type=int, default=4)
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument(
        "--archs", default="resnet18,efficientnet_b0,mobilenet_v3_large,convnext_tiny"
    )
    args = parser.parse_args()
    device = "cuda" if torch.cuda.is_available() else "cpu"
    where = torch.cuda.get_device_name() if device == "cuda" else f"CPU, {os.cpu_count()} cores"
    rows = []
    for arch in args.archs.split(","):
        train_ips, eval_ips = throughput(arch, args.size, args.batch, args.steps, device)
        epoch = TRAIN / train_ips + VAL / eval_ips
        rows.append(f"| {arch} | {train_ips:.1f} | {eval_ips:.1f} | {epoch:.1f} |")
        print(rows[-1], flush=True)
    text = "\n".join(
        [
            f"## Transfer recipes: time per epoch — {date.today()}",
            "",
            f"{where}, {platform.machine()}, torch {torch.__version__}; {args.size} px, 1 channel, "
            f"batch {args.batch}, channels_last, fp32, {args.steps} timed steps after one warm-up; "
            f"epoch = {TRAIN} train + {VAL} val images (the 44-class set split 70/15/15), "
            "data loading excluded.",
            "",
            "| network | train img/s | eval img/s | s/epoch |",
            "| --- | ---: | ---: | ---: |",
            *rows,
            "",
        ]
    )
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
