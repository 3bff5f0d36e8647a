"""``MRIDataModule``: class folders on disk -> train/val/test DataLoaders.

It only wires the stages: the catalog (:mod:`braintumor.data.catalog`: scan -> readable ->
groups -> split -> taxonomy), the decoded cache (:mod:`~braintumor.data.cache`), the
augmentation (:mod:`~braintumor.data.augmentation`) and the loaders (one shard per process).
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
from lightning.pytorch import LightningDataModule
from torch.utils.data import DataLoader

from braintumor.data.augmentation import Augmentation
from braintumor.data.cache import decode_catalog
from braintumor.data.catalog import (
    Catalog,
    CatalogSettings,
    build_catalog,
)
from braintumor.data.dataset import ScanDataset
from braintumor.data.loaders import LoaderSettings, build_loader
from braintumor.data.merged import build_merged_catalog, source_settings
from braintumor.data.parameters import check_parameters, default_num_workers
from braintumor.data.preprocessing import Preprocessing, per_channel
from braintumor.data.sampling import derived_seed, seeded
from braintumor.data.split import SPLITS
from braintumor.data.synthetic import ensure_synthetic_dataset
from braintumor.errors import DataError

log = logging.getLogger(__name__)


class MRIDataModule(LightningDataModule):
    """Brain-MRI scans in class folders, split and served as DataLoaders.

    Each parameter is the ``data.*`` key of the same name (documented in
    ``conf/data/folder.yaml``); they go to the :class:`~braintumor.data.catalog.Catalog`
    (split), the preprocessing, the :class:`~braintumor.data.augmentation.Augmentation`, the
    decoded cache and the loaders (``seed``: order and augmentations = f(seed, epoch, image)).
    """

    def __init__(
        self,
        root: str | Path | None,
        layout: str = "folder",
        image_size: int = 128,
        channels: int = 1,
        mean: Sequence[float] = (0.5,),
        std: Sequence[float] = (0.5,),
        augment: Sequence[Callable] | None = None,
        batch_size: int = 32,
        num_workers: int | None = None,
        pin_memory: bool | None = None,
        persistent_workers: bool = True,
        multiprocessing_context: str | None = None,
        val_fraction: float = 0.15,
        test_fraction: float = 0.15,
        split_seed: int = 42,
        split_file: str | Path | None = None,
        n_folds: int | None = None,
        fold: int | None = None,
        synthetic: Mapping[str, Any] | None = None,
        check_images: bool = True,
        taxonomy: str = "folder",
        group_near_duplicates: bool = True,
        near_duplicate_distance: int = 12,
        hash_size: int = 16,
        group_file: str | Path | None = None,
        group_file_unmatched: float = 0.0,
        group_cropped_copies: bool = True,
        cropped_copy_similarity: float = 0.985,
        sampler: str | None = None,
        cache_dir: str | Path | None = None,
        prepared_dir: str | Path | None = None,
        seed: int | None = None,
        cache: str = "memory",
        decoded_cache_dir: str | Path | None = None,
        crop_margin: float = 0.0,
        augment_on: str = "batch",
        batch_augment: Callable | None = None,
        source: str | None = None,
        label_map: str | Path | None = None,
        exclude_folders: Sequence[str] = (),
        sources: Sequence[str] | None = None,
        roots: Mapping[str, str | Path] | None = None,
        label_maps: Mapping[str, str | Path | None] | None = None,
        source_weights: Mapping[str, float] | None = None,
    ) -> None:
        super().__init__()
        check_parameters(locals())
        self.sources = source_settings(sources, roots, label_maps) if sources else None
        if root is None and self.sources is None:
            raise DataError("data.root is required (data.root=/path/to/data).")
        self.root = Path(root) if root is not None else Path(".")
        self.image_size, self.channels = int(image_size), int(channels)
        self.mean = per_channel(mean, self.channels, "data.mean")
        self.std = per_channel(std, self.channels, "data.std")
        self.input_size = round(self.image_size * (1 + crop_margin))
        workers = default_num_workers() if num_workers is None else num_workers
        self.loading = LoaderSettings(
            batch_size, workers, pin_memory, persistent_workers and workers > 0,
            multiprocessing_context, sampler, int(torch.randint(2**31, ()).item())
            if seed is None else int(seed), dict(source_weights) if source_weights else None,
        )  # fmt: skip
        self.synthetic = dict(synthetic) if synthetic else None
        self.taxonomy, self.cache = taxonomy, cache
        self.decoded_cache_dir = Path(decoded_cache_dir) if decoded_cache_dir else None
        self.settings = CatalogSettings(
            self.root, layout, val_fraction, test_fraction, split_seed,
            Path(split_file) if split_file else None, n_folds, fold, check_images, taxonomy,
            group_near_duplicates, near_duplicate_distance, hash_size,
            Path(group_file) if group_file else None, float(group_file_unmatched),
            group_cropped_copies, float(cropped_copy_similarity),
            Path(cache_dir) if cache_dir else None, workers, source or "",
            Path(label_map) if label_map else None, tuple(exclude_folders or ()),
            Path(prepared_dir) if prepared_dir else None,
        )  # fmt: skip
        self.augmentation = Augmentation(
            augment_on, self.mean, self.std, self.channels, self.image_size, self.input_size,
            list(augment or []), batch_augment,
        )  # fmt: skip
        self.catalog = Catalog(self.root, (), (), (), {})
        self.datasets: dict[str, ScanDataset] = {}

    # --------------------------------------------------------------------------- setup
    def prepare_data(self) -> None:
        if self.synthetic is not None:
            ensure_synthetic_dataset(self.root, **self.synthetic)

    def setup(self, stage: str | None = None) -> None:
        """Build the catalog and decode every scan once (so ``split.csv`` and the skipped
        list are final before training), then the datasets."""
        if self.datasets:
            return
        if self.synthetic is not None and not self.root.exists():
            self.prepare_data()
        size_of = {"train": self.input_size, "val": self.image_size, "test": self.image_size}
        if self.sources is not None:
            catalog = build_merged_catalog(self.settings, self.sources)
            self.root = catalog.root  # the sources' common folder: scan paths start there
        else:
            catalog = build_catalog(self.settings)
            self.root = catalog.root  # a volume layout's prepared slices: scan paths start there
        self.catalog, images = decode_catalog(
            catalog, size_of, self.channels, self.cache, self.decoded_cache_dir,
            self.loading.num_workers,
        )  # fmt: skip
        eval_tf = self.preprocessing.eval_transform()
        transforms = {"train": self.augmentation.per_image(cached="train" in images)}
        for split in SPLITS:
            self.datasets[split] = ScanDataset(
                self.root, self.catalog.in_split(split), self.class_names, self.channels,
                transforms.get(split, eval_tf), self.catalog.label_of, images.get(split),
            )  # fmt: skip
        self.datasets["train"].batch_transform = self.augmentation.in_workers
        sizes = ", ".join(f"{len(d)} {k}" for k, d in self.datasets.items())
        log.debug(f"data: {self.root}, {self.num_classes} classes, {sizes}")

    # ------------------------------------------------------------------- what others need
    @property
    def class_names(self) -> list[str]:
        return self.catalog.class_names

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    @property
    def preprocessing(self) -> Preprocessing:
        """What a checkpoint needs to rebuild the eval transform and read its outputs."""
        return Preprocessing.build(
            self.class_names, self.image_size, self.channels, self.mean, self.std, self.taxonomy
        )

    def class_counts(self, split: str = "train") -> list[int]:
        """Images per class in ``split``, in class order."""
        counts = Counter(self.datasets[split].targets)
        return [counts.get(i, 0) for i in range(self.num_classes)]

    def save_split(self, path: str | Path) -> Path:
        """Write ``path,class,split[,group]`` for every scan used; reuse with data.split_file."""
        return self.catalog.save_split(path)

    # ----------------------------------------------------------------------- dataloaders
    def _loader(self, split: str, shuffle: bool) -> DataLoader:
        trainer = self.trainer  # set while a Trainer runs this datamodule
        return build_loader(
            self.datasets[split], split, self.loading, shuffle,
            (trainer.global_rank, trainer.world_size) if trainer else (0, 1),
            on_cuda=trainer is not None and trainer.strategy.root_device.type == "cuda",
        )  # fmt: skip

    def train_dataloader(self) -> DataLoader:
        return self._loader("train", shuffle=True)

    def val_dataloader(self) -> DataLoader:
        return self._loader("val", shuffle=False)

    def test_dataloader(self) -> DataLoader:
        return self._loader("test", shuffle=False)

    # ------------------------------------------------------------------- augmentation
    def augment_batch(self, images: torch.Tensor) -> torch.Tensor:
        """``uint8`` training images ``(N, C, S, S)`` -> augmented, normalized ``float32``."""
        return self.augmentation(images)

    def on_after_batch_transfer(self, batch: Any, dataloader_idx: int) -> Any:
        """``augment_on=device``: augment the training batch, seeded from ``(seed, epoch,
        batch, rank)`` (this runs before the training step is seeded, and a resumed run must
        draw what the uninterrupted run drew)."""
        trainer = getattr(self, "trainer", None)
        if trainer is not None and trainer.training and self.augmentation.augment_on == "device":
            images, targets = batch
            index = trainer.fit_loop.epoch_loop.batch_progress.current.ready  # batches before
            position = (trainer.current_epoch, index, trainer.global_rank)
            with seeded(derived_seed(self.loading.seed, *position)):
                return self.augmentation.on_device(images, training=True), targets
        return batch
