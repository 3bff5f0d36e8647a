"""Training order and augmentation randomness as pure functions of (seed, epoch, image).

A resumed run must see exactly the batches and augmentations the uninterrupted run would
have seen. Global random state cannot promise that (loader workers, persistent or not, draw
from streams that a restart resets), so the training sampler derives each epoch's order from
``(seed, epoch)`` and yields ``(epoch, index)`` keys, and :class:`EpochSeededDataset` seeds
the augmentation of every image from ``(seed, epoch, index)``.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager

import torch
from torch.utils.data import Dataset, Sampler, get_worker_info

_MIX = 0x9E3779B97F4A7C15  # golden-ratio constant: neighbouring inputs give distant seeds


def derived_seed(*parts: int) -> int:
    """A 63-bit seed that depends on every part (splitmix64 over the sequence)."""
    value = 0
    for part in parts:
        value = (value + int(part) + _MIX) & 0xFFFFFFFFFFFFFFFF
        value = ((value ^ (value >> 30)) * 0xBF58476D1CE4E5B9) & 0xFFFFFFFFFFFFFFFF
        value = ((value ^ (value >> 27)) * 0x94D049BB133111EB) & 0xFFFFFFFFFFFFFFFF
        value ^= value >> 31
    return value & 0x7FFFFFFFFFFFFFFF


class EpochSampler(Sampler[tuple[int, int]]):
    """Shuffles (or draws class-balanced with ``weights``) from ``(seed, epoch)`` alone.

    Lightning calls :meth:`set_epoch` before every epoch, a resumed run included. With
    ``world_size`` processes, each takes every ``world_size``-th image of the common order.
    :meth:`skip_next` drops the first images of the next pass: a run resumed from a checkpoint
    saved mid-epoch continues with the batches it had not trained on.
    """

    def __init__(
        self,
        size: int,
        seed: int,
        weights: Sequence[float] | None = None,
        rank: int = 0,
        world_size: int = 1,
    ) -> None:
        self.size = size
        self.seed = seed
        self.weights = torch.as_tensor(weights, dtype=torch.double) if weights else None
        self.rank, self.world_size = rank, world_size
        self.epoch = 0
        self._skip = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def skip_next(self, count: int) -> None:
        self._skip = count

    def order(self) -> list[int]:
        """This epoch's image indices, in training order."""
        generator = torch.Generator().manual_seed(derived_seed(self.seed, self.epoch))
        if self.weights is not None:
            picks = torch.multinomial(self.weights, self.size, True, generator=generator)
        else:
            picks = torch.randperm(self.size, generator=generator)
        # one process of world_size: every rank the same number of images, none twice
        return picks.tolist()[self.rank : len(self) * self.world_size : self.world_size]

    def __iter__(self) -> Iterator[tuple[int, int]]:
        skip, self._skip = self._skip, 0
        return iter([(self.epoch, index) for index in self.order()[skip:]])

    def __len__(self) -> int:
        return self.size // self.world_size


class ShardSampler(Sampler[int]):
    """Evaluation order for one of ``world_size`` processes: every ``world_size``-th image,
    unpadded, so that the shards together hold each image exactly once (torch's
    ``DistributedSampler`` pads with repeats, which would count some images twice)."""

    def __init__(self, size: int, rank: int = 0, world_size: int = 1) -> None:
        self.indices = list(range(rank, size, world_size))

    def __iter__(self) -> Iterator[int]:
        return iter(self.indices)

    def __len__(self) -> int:
        return len(self.indices)


class EpochSeededDataset(Dataset):
    """Wraps a dataset: item ``(epoch, index)`` is ``dataset[index]`` with the random state
    seeded from ``(seed, epoch, index)``; plain integer indices pass through unseeded."""

    def __init__(self, dataset: Dataset, seed: int) -> None:
        self.dataset = dataset
        self.seed = seed

    def __len__(self) -> int:
        return len(self.dataset)  # type: ignore[arg-type]

    def __getattr__(self, name: str):  # targets, scans, class_names, ... of the wrapped set
        if name == "dataset":
            raise AttributeError(name)
        return getattr(self.dataset, name)

    def __getitem__(self, key: int | tuple[int, int]):
        if not isinstance(key, tuple):
            return self.dataset[key]
        epoch, index = key
        with seeded(derived_seed(self.seed, epoch, index)):
            return self.dataset[index]

    def __getitems__(self, keys: list) -> list:
        """A batch at once (the DataLoader's path when the wrapped dataset batches too, e.g.
        for batched augmentations): seeded from ``(seed, epoch, the batch's images)``."""
        fetch = getattr(self.dataset, "__getitems__", None)
        if not keys or not isinstance(keys[0], tuple):
            return fetch(keys) if fetch else [self.dataset[k] for k in keys]
        if fetch is None:
            return [self[key] for key in keys]
        epoch = keys[0][0]
        indices = [index for _, index in keys]
        with seeded(derived_seed(self.seed, epoch, *indices)):
            return fetch(indices)


@contextmanager
def seeded(seed: int) -> Iterator[None]:
    """Torch's CPU random state seeded with ``seed``; in the main process, restored afterwards
    (the training step's stream stays untouched), in a worker left as is (its own).

    Only the CPU generator, where the loader's augmentations draw: ``torch.manual_seed`` would
    also queue a seed for every lazily initialized accelerator backend, formatting a stack
    trace each time (~1 ms per call, once per image with per-image augmentation)."""
    if get_worker_info() is not None:
        torch.default_generator.manual_seed(seed)
        yield
        return
    with torch.random.fork_rng(devices=[]):
        torch.default_generator.manual_seed(seed)
        yield
