"""Training throughput on a GPU: images/s and the share of step time spent waiting for data.

    python bench/gpu_train.py [--runs "resnet18:device;resnet18:loader;cnn:device"]
                              [--epochs 4] [--no-append]

The 44-class JPEG set (bench/bench44.py) at 224 px, bf16-mixed, channels_last, decoded cache
(built once, memory-mapped, shared by the runs), the default workers. Each run is
``network:augment_on[:override,...]``: ``device`` augments whole batches on the GPU after
transfer, ``loader`` runs the per-image ``transforms.v2`` in the loader workers, ``batch`` the
batched augmentation in the workers; overrides such as ``data.pin_memory=false`` or
``model.compile=true`` apply to that run only. The waiting time is split into the loader
(until the batch reaches Lightning), the copy to the GPU, the augmentation on the GPU and the
rest (Lightning's hooks and logging between steps). Epoch 1 is a warm-up; later epochs are
timed with the GPU synchronized at each step. Without a GPU it runs two short epochs per run
on the CPU as a dry run and records nothing.
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

from braintumor.pipeline.build import build_datamodule, build_module, build_trainer


class StepClock(Callback):
    """Per training step: seconds waiting for the batch (loader, transfer, GPU augmentation)
    and seconds computing; the first epoch is not counted."""

    def __init__(self) -> None:
        self.wait = self.compute = 0.0
        self.parts = {"loader": 0.0, "copy": 0.0, "augment": 0.0}
        self.images = 0
        self.last_end: float | None = None
        self.epoch_seconds: list[float] = []
        self.counting = False

    def watch(self, dm) -> None:
        """Time the datamodule's transfer hooks: the loader's share ends when a batch reaches
        ``on_before_batch_transfer``, the copy's when ``on_after_batch_transfer`` starts."""
        before, after = dm.on_before_batch_transfer, dm.on_after_batch_transfer

        def on_before(batch, dataloader_idx):
            if self.counting:
                now = self._now()
                self.parts["loader"] += now - self.last_end
                self.mark = now
            return before(batch, dataloader_idx)

        def on_after(batch, dataloader_idx):
            if not self.counting:
                return after(batch, dataloader_idx)
            start = self._now()
            self.parts["copy"] += start - self.mark
            out = after(batch, dataloader_idx)
            self.parts["augment"] += self._now() - start
            return out

        dm.on_before_batch_transfer, dm.on_after_batch_transfer = on_before, on_after

    def _now(self) -> float:
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        return time.perf_counter()

    def on_train_epoch_start(self, trainer, pl_module) -> None:
        self.last_end = self.epoch_start = self._now()
        self.counting = trainer.current_epoch > 0

    def on_train_epoch_end(self, trainer, pl_module) -> None:
        self.epoch_seconds.append(self._now() - self.epoch_start)
        self.counting = False

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        self.start = self._now()
        if trainer.current_epoch > 0:
            self.wait += self.start - self.last_end

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        self.last_end = self._now()
        if trainer.current_epoch > 0:
            self.compute += self.last_end - self.start
            self.images += len(batch[1])


def model_overrides(net: str) -> list[str]:
    """``cnn`` or a torchvision model name (``model=backbone model.net.name=<name>``)."""
    return ["model=cnn"] if net == "cnn" else ["model=backbone", f"model.net.name={net}"]


def measure(root: Path, cache_dir: str, run: str, args, gpu: bool) -> dict:
    """One training run (``network:augment_on[:override,...]``); its images/s, wait share and
    epoch times."""
    net, augment_on, *extra = run.split(":")
    extra = extra[0].split(",") if extra else []
    overrides = [
        "data=folder", f"data.root={root}", f"data.image_size={args.size}",
        f"data.batch_size={args.batch}", "data.cache=disk", f"data.decoded_cache_dir={cache_dir}",
        f"data.augment_on={augment_on}", "data.group_near_duplicates=false",
        "data.check_images=false", *model_overrides(net), "model.channels_last=true", "logger=none",
        "~callbacks.lr_monitor", "~callbacks.augmented_samples", "~callbacks.model_checkpoint",
        "~callbacks.last_checkpoint", "~callbacks.early_stopping",
        "trainer.enable_progress_bar=false", "trainer.num_sanity_val_steps=0",
        "+trainer.limit_val_batches=0", f"trainer.max_epochs={args.epochs if gpu else 2}",
        f"trainer.accelerator={'gpu' if gpu else 'cpu'}",
        f"trainer.precision={'bf16-mixed' if gpu else '32-true'}",
    ]  # fmt: skip
    if not gpu:
        overrides += ["+trainer.limit_train_batches=3", "data.batch_size=8", "data.image_size=64"]
    cfg = compose_train(overrides + extra)
    with tempfile.TemporaryDirectory() as tmp, open_dict(cfg):
        cfg.paths.output_dir = tmp
        start = time.perf_counter()
        dm = build_datamodule(cfg)
        module = build_module(cfg, dm)
        clock = StepClock()
        clock.watch(dm)
        trainer = build_trainer(cfg)
        trainer.callbacks.append(clock)
        trainer.fit(module, datamodule=dm)
        total_s = time.perf_counter() - start
        pinned = trainer.train_dataloader.pin_memory
    busy = clock.wait + clock.compute
    parts = {k: v / busy for k, v in clock.parts.items()}
    parts["other"] = clock.wait / busy - sum(parts.values())
    return {
        "run": ", ".join([net, f"augment_on={augment_on}", *extra]),
        "pinned": pinned,
        "parts": parts,
        "workers": dm.loading.num_workers,
        "rate": clock.images / busy,
        "share": clock.wait / busy,
        "first": clock.epoch_seconds[0],
        "later": sum(clock.epoch_seconds[1:]) / max(1, len(clock.epoch_seconds) - 1),
        "total": total_s,
        "train": len(dm.datasets["train"]),
        "size": cfg.data.image_size,
        "batch": cfg.data.batch_size,
        "precision": cfg.trainer.precision,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", default="/tmp/bench44")
    parser.add_argument("--runs", default=";".join([
        "resnet18:device", "resnet18:device:data.pin_memory=false", "resnet18:batch",
        "resnet18:loader", "resnet18:device:trainer.precision=32-true",
        "resnet18:device:model.compile=true", "cnn:device",
    ]))  # fmt: skip
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--no-append", action="store_true", help="print only")
    args = parser.parse_args()
    gpu = torch.cuda.is_available()
    if not gpu:
        print("no GPU: a dry run on the CPU (2 epochs x 3 batches, 64 px); nothing is recorded")
    root = make_bench44(Path(args.data))
    rows = []
    with tempfile.TemporaryDirectory() as cache_dir:
        for run in args.runs.split(";"):
            try:
                rows.append(measure(root, cache_dir, run, args, gpu))
            except Exception as error:  # one failing setting must not lose the others
                reason = " ".join(f"{type(error).__name__}: {error}".split())[:200]
                rows.append({"run": run, "error": reason})
            print(rows[-1], flush=True)
    device = torch.cuda.get_device_name() if gpu else "CPU (dry run)"
    first = next((r for r in rows if "error" not in r), None)
    if first is None:
        raise SystemExit("every run failed")
    lines = header(f"Training on a GPU: {device}", [
        f"{first['size']} px, batch {first['batch']}, {first['precision']}, channels_last, "
        f"data.cache=disk (decoded once, memory-mapped), {first['workers']} loader worker(s); "
        f"{first['train']} training images (bench/bench44.py); img/s and the waiting share "
        f"over epochs 2-{args.epochs if gpu else 2}, the GPU synchronized at every step "
        "(waiting = loader + copy to the GPU + augmentation on the GPU + the rest: Lightning's "
        "hooks and logging between steps; shares of the step time)",
    ])  # fmt: skip
    lines += [
        "| run | pinned | train img/s | waiting for data | loader | copy | augment | other "
        "| first epoch s | later epochs s | run s (setup incl.) |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for r in rows:
        if "error" in r:
            lines.append(f"| {r['run']} | failed: {r['error']} |" + " |" * 9)
            continue
        p = r["parts"]
        lines.append(
            f"| {r['run']} | {'yes' if r['pinned'] else 'no'} | {r['rate']:.0f} | {r['share']:.0%} "
            f"| {p['loader']:.0%} | {p['copy']:.0%} | {p['augment']:.0%} | {p['other']:.0%} "
            f"| {r['first']:.2f} | {r['later']:.2f} | {r['total']:.1f} |"
        )
    print("\n".join(lines)) if args.no_append or not gpu else append(lines)


if __name__ == "__main__":
    main()
