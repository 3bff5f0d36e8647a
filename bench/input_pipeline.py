"""Input pipeline: our train loader vs a naive ImageFolder + PIL one, and vs the model.

    python bench/input_pipeline.py [--data /tmp/bench44] [--batches 24] [--no-append]

1. On a 44-class set of JPEGs of 200-630 px (bench/bench44.py; 128 px, standard augmentation,
   batch 32, the default workers): images/s of epochs 2+ of our train DataLoader (decoded
   cache in memory, the standard augmentation on whole uint8 batches; and per image with
   transforms.v2) and of torchvision's ImageFolder with PIL and the classic transforms, on the
   same training files, interleaved.
2. On the default config (demo data): our loader's images/s against the images/s the default
   model consumes in training steps, interleaved; and the loader's settings.
Appends the tables to docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch
from bench44 import make_bench44
from common import append, build_classifier, compose_train, header, median
from hydra.utils import instantiate
from torch.utils.data import DataLoader
from torchvision import datasets
from torchvision import transforms as T

from braintumor.data.datamodule import MRIDataModule
from braintumor.pipeline.build import build_datamodule


def rate(loader: DataLoader, batches: int | None = None) -> float:
    """Images/s of one pass (the first ``batches`` batches), iterator start included."""
    start, seen = time.perf_counter(), 0
    for i, (x, _) in enumerate(loader):
        seen += len(x)
        if batches is not None and i + 1 >= batches:
            break
    return seen / (time.perf_counter() - start)


def naive_loader(root: Path, paths: set[str], size: int, dm: MRIDataModule) -> DataLoader:
    """ImageFolder + PIL + the classic transforms, on the same files and loader settings."""
    transform = T.Compose([
        T.Grayscale(1), T.Resize((size, size)), T.RandomHorizontalFlip(),
        T.RandomAffine(10, translate=(0.05, 0.05), scale=(0.95, 1.05)),
        T.ColorJitter(0.2, 0.2), T.RandomResizedCrop(size, (0.85, 1.0), (0.9, 1.1)),
        T.ToTensor(), T.Normalize([0.5], [0.5]),
    ])  # fmt: skip
    folder = datasets.ImageFolder(str(root), transform=transform)
    folder.samples = [s for s in folder.samples if str(Path(s[0]).relative_to(root)) in paths]
    loading = dm.loading
    return DataLoader(folder, batch_size=loading.batch_size, shuffle=True, drop_last=True,
                      num_workers=loading.num_workers,
                      persistent_workers=loading.persistent_workers)  # fmt: skip


def versus_naive(args: argparse.Namespace) -> list[str]:
    root = make_bench44(Path(args.data))
    cfg = compose_train(["data.image_size=128"])
    dm = MRIDataModule(root, image_size=128, check_images=False, group_near_duplicates=False,
                       batch_augment=instantiate(cfg.augment).batch_augment(128))  # fmt: skip
    start = time.perf_counter()
    dm.setup("fit")  # decodes every image into the cache
    build = time.perf_counter() - start
    ours = dm.train_dataloader()
    paths = {s.path for s in dm.datasets["train"].scans}
    per_image = MRIDataModule(root, image_size=128, check_images=False,
                              group_near_duplicates=False, augment_on="loader",
                              augment=instantiate(cfg.augment).transforms(128))  # fmt: skip
    per_image.setup("fit")
    loaders = {
        "ours (default): decoded cache + batched augmentation": ours,
        "ours, data.augment_on=loader: decoded cache + transforms.v2 per image": (
            per_image.train_dataloader()
        ),
        "naive: ImageFolder + PIL + classic transforms": naive_loader(root, paths, 128, dm),
    }
    for loader in loaders.values():  # epoch 1: workers start, not timed
        rate(loader, args.batches)
    rates: dict[str, list[float]] = {name: [] for name in loaders}
    for _ in range(args.epochs):
        for name, loader in loaders.items():
            rates[name].append(rate(loader, args.batches))
    naive = median(rates["naive: ImageFolder + PIL + classic transforms"])
    return [
        f"Data: {root} ({len(paths)} training JPEGs of 200-630 px, 44 classes), 128 px, "
        f"standard augmentation, batch {dm.loading.batch_size}, "
        f"{dm.loading.num_workers} worker(s), persistent; "
        f"medians of epochs 2-{args.epochs + 1} ({args.batches} batches each), interleaved. "
        f"Building the cache (decode + resize all {len(dm.catalog.scans)} images once, "
        f"{dm.loading.num_workers} process(es)) took {build:.1f} s.",
        "",
        "| train loader | img/s | vs naive |",
        "| --- | ---: | ---: |",
        *[f"| {n} | {median(r):.0f} | {median(r) / naive:.1f}x |" for n, r in rates.items()],
    ]


def versus_model(args: argparse.Namespace) -> list[str]:
    cfg = compose_train()
    dm = build_datamodule(cfg)
    dm.setup("fit")
    loader = dm.train_dataloader()
    batches = [b for b in loader]  # epoch 1: workers start, cache built
    module = build_classifier(cfg, dm.num_classes).train()
    optimizer = torch.optim.Adam(module.parameters(), lr=1e-3)

    def consume() -> float:
        start = time.perf_counter()
        for x, y in batches:
            optimizer.zero_grad(set_to_none=True)
            module.criterion(module(x), y).backward()
            optimizer.step()
        return sum(len(x) for x, _ in batches) / (time.perf_counter() - start)

    consume()
    loader_rates, model_rates = [], []
    for _ in range(args.epochs):
        loader_rates.append(rate(loader))
        model_rates.append(consume())
    settings = {
        f"num_workers={dm.loading.num_workers} (default), persistent": loader,
        f"num_workers={dm.loading.num_workers}, not persistent": DataLoader(
            dm.datasets["train"], dm.loading.batch_size, shuffle=True,
            num_workers=dm.loading.num_workers),
        "num_workers=0": DataLoader(dm.datasets["train"], dm.loading.batch_size, shuffle=True),
        "data.cache=none, default workers, persistent": _uncached(cfg),
    }  # fmt: skip
    for other in list(settings.values())[1:]:
        rate(other)
    setting_rates: dict[str, list[float]] = {name: [] for name in settings}
    for _ in range(args.epochs):
        for name, other in settings.items():
            setting_rates[name].append(rate(other))
    ratio = median(loader_rates) / median(model_rates)
    return [
        f"Default config (`make train`: demo data, {dm.image_size} px, batch "
        f"{dm.loading.batch_size}, standard augmentation, data.cache={dm.cache}, "
        f"{dm.loading.num_workers} worker(s)); medians of "
        f"{args.epochs} interleaved epochs of {len(dm.datasets['train'])} training images.",
        "",
        "| what | img/s |",
        "| --- | ---: |",
        f"| our train loader | {median(loader_rates):.0f} |",
        f"| the model's training steps (fwd + bwd + Adam, {torch.get_num_threads()} threads) "
        f"| {median(model_rates):.0f} |",
        f"| loader / model | {ratio:.1f}x |",
        "",
        "| loader setting (same data, epochs 2+, iterator start included) | img/s |",
        "| --- | ---: |",
        *[f"| {n} | {median(r):.0f} |" for n, r in setting_rates.items()],
    ]


def _uncached(cfg) -> DataLoader:
    dm = build_datamodule(compose_train(["data.cache=none"]))
    dm.setup("fit")
    return dm.train_dataloader()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", default="/tmp/bench44")
    parser.add_argument("--batches", type=int, default=24)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--no-append", action="store_true", help="print only")
    args = parser.parse_args()
    lines = header("Input pipeline", []) + versus_naive(args) + [""] + versus_model(args)
    print("\n".join(lines)) if args.no_append else append(lines)


if __name__ == "__main__":
    main()
