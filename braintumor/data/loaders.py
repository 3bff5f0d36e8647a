"""DataLoaders over one split: seeded epoch order for training, one shard per process."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from torch.utils.data import DataLoader, Dataset, Sampler

from braintumor.data.sampling import EpochSampler, EpochSeededDataset, ShardSampler
from braintumor.data.scan import Scan
from braintumor.errors import DataError


@dataclass(frozen=True)
class LoaderSettings:
    """The DataLoader knobs of a run (the ``data.*`` keys of the same names)."""

    batch_size: int = 32
    num_workers: int = 0
    pin_memory: bool | None = None  # None: pinned when training on a CUDA device
    persistent_workers: bool = False
    multiprocessing_context: str | None = None  # None: the platform's default start method
    sampler: str | None = None  # None (shuffle) or "balanced"
    seed: int = 0  # training order and augmentations = f(seed, epoch, image)
    source_weights: Mapping[str, float] | None = None  # each source's share of training draws


def build_loader(
    dataset: Dataset, split: str, settings: LoaderSettings, shuffle: bool,
    shard: tuple[int, int] = (0, 1), on_cuda: bool = False,
) -> DataLoader:  # fmt: skip
    """The loader of ``split``. Training (``shuffle``) draws a seeded order per epoch (classes
    equally often with ``sampler=balanced``); evaluation visits each image once. ``shard`` is
    ``(rank, world size)``: each process gets its own share, without padding. Batches are
    pinned as ``pin_memory`` says, or (``None``) when training on a CUDA device."""
    if len(dataset) == 0:  # type: ignore[arg-type]
        raise DataError(f"the {split} split is empty; check the split fractions or split file.")
    rank, world = shard
    sampler: Sampler = ShardSampler(len(dataset), rank, world)  # type: ignore[arg-type]
    if shuffle:
        weights = None
        if settings.sampler == "balanced":
            counts = Counter(dataset.targets)  # type: ignore[attr-defined]
            weights = [1.0 / counts[t] for t in dataset.targets]  # type: ignore[attr-defined]
        if settings.source_weights:
            weights = source_weighted(dataset.scans, settings.source_weights, weights)  # type: ignore[attr-defined]
        sampler = EpochSampler(len(dataset), settings.seed, weights, rank, world)  # type: ignore[arg-type]
        dataset = EpochSeededDataset(dataset, settings.seed)
    workers = settings.num_workers
    pin = on_cuda if settings.pin_memory is None else settings.pin_memory
    return (EpochLoader if shuffle else DataLoader)(
        dataset, batch_size=settings.batch_size, sampler=sampler, num_workers=workers,
        pin_memory=pin, persistent_workers=settings.persistent_workers and workers > 0,
        multiprocessing_context=settings.multiprocessing_context if workers else None,
        drop_last=shuffle and len(sampler) > settings.batch_size,
    )  # fmt: skip


class EpochLoader(DataLoader):
    """A training loader that reads its sampler at the first batch, not at ``iter()``.

    Lightning makes the training iterator before it sets the sampler's epoch, and a resumed
    run trains on that first iterator (a mid-epoch resume also sets the sampler's skip after
    it). Loader workers take their first indices the moment the iterator is made, so without
    this a run resumed with ``num_workers > 0`` would train its first epoch in epoch 0's
    order (in-process loading reads the sampler lazily and never showed it)."""

    def __iter__(self) -> Iterator[Any]:
        return _FirstBatchIterator(super().__iter__)


class _FirstBatchIterator:
    """An iterator that calls ``start`` (and so starts the loader workers) at the first
    ``next()``."""

    def __init__(self, start: Callable[[], Iterator[Any]]) -> None:
        self._start = start
        self._iterator: Iterator[Any] | None = None

    def __iter__(self) -> _FirstBatchIterator:
        return self

    def __next__(self) -> Any:
        if self._iterator is None:
            self._iterator = self._start()
        return next(self._iterator)


def source_weighted(
    scans: Sequence[Scan], source_weights: Mapping[str, float], weights: list[float] | None
) -> list[float]:
    """Per-image draw weights giving each source a share of the training draws proportional
    to its weight (``data.source_weights``), within a source as ``weights`` (or uniform)."""
    sources = [s.source for s in scans]
    unknown = sorted(set(source_weights) - set(sources))
    if unknown:
        raise DataError(
            f"data.source_weights names source(s) {unknown} that have no training image; the "
            f"sources are {sorted(set(sources))}."
        )
    if any(float(w) < 0 for w in source_weights.values()):
        raise DataError(f"data.source_weights must be >= 0, got {dict(source_weights)}.")
    base = weights or [1.0] * len(scans)
    totals = Counter()
    for source, w in zip(sources, base, strict=True):
        totals[source] += w
    return [
        float(source_weights.get(source, 1.0)) * w / totals[source]
        for source, w in zip(sources, base, strict=True)
    ]
