"""Training throughput on a GPU: images/s and the share of step time spent waiting for data.

    python bench/gpu_train.py [--model resnet18] [--epochs 3] [--no-append]

The 44-class JPEG set (bench/bench44.py) at 224 px, bf16-mixed, channels_last, decoded cache
in memory, augmentation on the GPU after transfer (data.augment_on=device), the default
workers. Epoch 1 is a warm-up; later epochs are timed with the GPU synchronized at each step.
Without a GPU it runs one short epoch on the CPU as a dry run and records nothing.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import torch
from bench44 import make_bench44
from common import append, compose_train, header
from lightning.pytorch import Callback
from omegaconf import open_dict

from braintumor.pipeline import build_datamodule, build_module, build_trainer


class StepClock(Callback):
    """Per training step: seconds waiting for the batch (loader, transfer, GPU augmentation)
    and seconds computing; the first epoch is not counted."""

    def __init__(self) -> None:
        self.wait = self.compute = 0.0
        self.images = 0
        self.last_end: float | None = None

    def _now(self) -> float:
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        return time.perf_counter()

    def on_train_epoch_start(self, trainer, pl_module) -> None:
        self.last_end = self._now()

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        self.start = self._now()
        if trainer.current_epoch > 0:
            self.wait += self.start - self.last_end

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        self.last_end = self._now()
        if trainer.current_epoch > 0:
            self.compute += self.last_end - self.start
            self.images += len(batch[1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", default="/tmp/bench44")
    parser.add_argument("--model", default="resnet18")
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--no-append", action="store_true", help="print only")
    args = parser.parse_args()
    gpu = torch.cuda.is_available()
    root = make_bench44(Path(args.data))
    overrides = [
        "data=folder", f"data.root={root}", f"data.image_size={args.size}",
        f"data.batch_size={args.batch}", "data.cache=memory", "data.augment_on=device",
        "data.group_near_duplicates=false", "data.check_images=false",
        f"model={args.model}", "model.channels_last=true", "logger=none",
        "~callbacks.lr_monitor", "~callbacks.augmented_samples", "~callbacks.model_checkpoint",
        "~callbacks.early_stopping", "trainer.enable_progress_bar=false",
        "trainer.num_sanity_val_steps=0", "+trainer.limit_val_batches=0",
        f"trainer.max_epochs={args.epochs if gpu else 2}",
        f"trainer.accelerator={'gpu' if gpu else 'cpu'}",
        f"trainer.precision={'bf16-mixed' if gpu else '32-true'}",
    ]  # fmt: skip
    if not gpu:
        overrides += ["+trainer.limit_train_batches=3", "data.batch_size=8", "data.image_size=64"]
        print("no GPU: a dry run on the CPU (2 epochs x 3 batches, 64 px); nothing is recorded")
    cfg = compose_train(overrides)
    with tempfile.TemporaryDirectory() as tmp, open_dict(cfg):
        cfg.paths.output_dir = tmp
        dm = build_datamodule(cfg)
        module = build_module(cfg, dm)
        clock = StepClock()
        trainer = build_trainer(cfg)
        trainer.callbacks.append(clock)
        trainer.fit(module, datamodule=dm)
    total = clock.wait + clock.compute
    rate, share = clock.images / total, clock.wait / total
    device = torch.cuda.get_device_name() if gpu else "CPU (dry run)"
    lines = header(f"Training on a GPU: {device}", [
        f"{args.model}, {cfg.data.image_size} px, batch {cfg.data.batch_size}, "
        f"{cfg.trainer.precision}, channels_last, data.cache=memory, data.augment_on=device, "
        f"{dm.num_workers} loader worker(s); epochs 2-{cfg.trainer.max_epochs} of "
        f"{len(dm.datasets['train'])} training images (bench/bench44.py), GPU synchronized "
        "at every step",
    ])  # fmt: skip
    lines += [
        "| train img/s | share of step time waiting for data |", "| ---: | ---: |",
        f"| {rate:.0f} | {share:.0%} |",
    ]  # fmt: skip
    print("\n".join(lines)) if args.no_append or not gpu else append(lines)


if __name__ == "__main__":
    main()
