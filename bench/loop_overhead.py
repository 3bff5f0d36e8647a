"""Loop overhead: our Lightning training vs a minimal hand-written PyTorch loop.

    python bench/loop_overhead.py [--images 640] [--rounds 5] [--no-append]

Same network (the default CNN), optimizer (Adam), batch size and in-memory tensors (96 px,
8 classes); an epoch = the training batches + a validation pass over a quarter as many images.
Lightning runs with the default callbacks (checkpoints, early stopping, LR monitor, progress
bar, sample grid), metrics and TensorBoard logging; each round fits 2 epochs and times the
second (a callback's clock), then the plain loop runs 2 epochs and times the second.
Appends the table to docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import torch
from common import append, build_classifier, compose_train, header, median
from lightning.pytorch import Callback
from omegaconf import open_dict
from torch.utils.data import DataLoader, TensorDataset

from braintumor.pipeline.build import build_trainer


class EpochClock(Callback):
    """Seconds of each training epoch, validation included."""

    def __init__(self) -> None:
        self.seconds: list[float] = []

    def on_train_epoch_start(self, trainer, pl_module) -> None:
        self.start = time.perf_counter()

    def on_train_epoch_end(self, trainer, pl_module) -> None:
        self.seconds.append(time.perf_counter() - self.start)


def lightning_epoch(cfg, train: DataLoader, val: DataLoader, out: Path) -> float:
    with open_dict(cfg):
        cfg.paths.output_dir = str(out)
        cfg.trainer.max_epochs = 2
    torch.manual_seed(0)
    module = build_classifier(cfg, 8)
    clock = EpochClock()
    trainer = build_trainer(cfg)
    trainer.callbacks.append(clock)
    trainer.fit(module, train_dataloaders=train, val_dataloaders=val)
    return clock.seconds[-1]


def plain_epoch(cfg, train: DataLoader, val: DataLoader) -> float:
    torch.manual_seed(0)
    module = build_classifier(cfg, 8)
    net, criterion = module.net, module.criterion
    net.to(memory_format=torch.channels_last)
    optimizer = torch.optim.Adam(net.parameters(), lr=cfg.model.optimizer.lr)
    seconds = 0.0
    for _ in range(2):
        start = time.perf_counter()
        net.train()
        for x, y in train:
            optimizer.zero_grad(set_to_none=True)
            loss = criterion(net(x.contiguous(memory_format=torch.channels_last)), y)
            loss.backward()
            optimizer.step()
        net.eval()
        with torch.no_grad():
            for x, _ in val:
                net(x.contiguous(memory_format=torch.channels_last))
        seconds = time.perf_counter() - start
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--images", type=int, default=640)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--no-append", action="store_true", help="print only")
    args = parser.parse_args()
    cfg = compose_train(["trainer.accelerator=cpu", "trainer.num_sanity_val_steps=0"])
    size, batch = cfg.data.image_size, cfg.data.batch_size
    g = torch.Generator().manual_seed(0)
    x = torch.randn(args.images, 1, size, size, generator=g)
    y = torch.randint(0, 8, (args.images,), generator=g)
    n_val = args.images // 4
    train = DataLoader(TensorDataset(x, y), batch_size=batch, shuffle=True, drop_last=True)
    val = DataLoader(TensorDataset(x[:n_val], y[:n_val]), batch_size=batch)
    lightning, plain = [], []
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(args.rounds):
            lightning.append(lightning_epoch(cfg.copy(), train, val, Path(tmp) / str(r)))
            plain.append(plain_epoch(cfg, train, val))
    images = len(train) * batch
    ours, theirs = images / median(lightning), images / median(plain)
    lines = header("Loop overhead: Lightning vs a plain PyTorch loop", [
        f"default CNN, {size} px, batch {batch}, Adam; epoch = {images} training images + "
        f"{n_val} validation images, in-memory tensors; medians of {args.rounds} interleaved "
        "rounds (epoch 2 of each)",
    ])  # fmt: skip
    lines += [
        "| loop | s/epoch | train img/s |", "| --- | ---: | ---: |",
        f"| ours: Lightning, default callbacks + metrics + TensorBoard | {median(lightning):.2f} "
        f"| {ours:.1f} |",
        f"| plain PyTorch loop | {median(plain):.2f} | {theirs:.1f} |",
        f"| ratio (ours / plain) | | {ours / theirs:.3f} |",
    ]  # fmt: skip
    print("\n".join(lines)) if args.no_append else append(lines)


if __name__ == "__main__":
    main()
