"""``MRIDataModule``: class folders on disk -> train/val/test DataLoaders."""

from __future__ import annotations

import hashlib
import logging
import os
import warnings
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
from lightning.pytorch import LightningDataModule
from torch.utils.data import DataLoader, Sampler
from torchvision.transforms import v2

from braintumor.data.augmentation import TrainAugmentation
from braintumor.data.cache import CACHE_MODES, DecodedImages, decode_all
from braintumor.data.dataset import ScanDataset
from braintumor.data.duplicates import combine_groups, groups_from_pairs, near_duplicate_pairs
from braintumor.data.fingerprint import fingerprint_scans
from braintumor.data.groups import check_group_paths, read_group_file
from braintumor.data.sampling import EpochSampler, EpochSeededDataset, ShardSampler
from braintumor.data.scan import DataError, Scan, find_classes, scan_class_folders
from braintumor.data.split import (
    SPLITS,
    group_stratified_split,
    read_split_csv,
    stratified_split,
    write_split_csv,
)
from braintumor.data.synthetic import ensure_synthetic_dataset
from braintumor.data.taxonomy import label_map
from braintumor.data.transforms import (
    eval_transform,
    per_channel,
    train_transform,
)

log = logging.getLogger(__name__)

LAYOUTS = ("folder", "presplit")
AUGMENT_ON = ("loader", "batch", "device")


def default_num_workers() -> int:
    """Loader workers when ``num_workers`` is null: CPU count - 1, between 1 and 8."""
    return max(1, min(8, (os.cpu_count() or 2) - 1))


class MRIDataModule(LightningDataModule):
    """Brain-MRI scans in class folders, split and served as DataLoaders.

    Parameters
    ----------
    root : the data folder. ``layout="folder"``: ``root/<class>/*.jpeg``, split for you
        (stratified, ``val_fraction``/``test_fraction``/``split_seed``) or as recorded in
        ``split_file``. ``layout="presplit"``: ``root/{train,val,test}/<class>/*.jpeg``; without
        ``val/``, a stratified ``val_fraction`` of the whole set is carved out of ``train/``.
    image_size, channels, mean, std : preprocessing; ``mean``/``std`` with one value apply to
        every channel.
    augment : ``transforms.v2`` transforms applied to training images (``uint8`` tensors).
    batch_size, num_workers, pin_memory, persistent_workers, multiprocessing_context :
        DataLoader knobs (``multiprocessing_context``: how workers start, ``None`` for the
        platform's default: fork on Linux before Python 3.14, spawn on macOS and Windows);
        ``num_workers=None`` picks :func:`default_num_workers`, ``pin_memory=None`` pins
        batches when the trainer runs on a CUDA device (faster host-to-device copies).
    synthetic : parameters of :func:`~braintumor.data.synthetic.ensure_synthetic_dataset`;
        when given, the demo dataset is generated into ``root`` on first use.
    check_images : decode every scan once at setup and skip (with a warning) those that fail.
    taxonomy : label set: ``folder`` (one class per folder), ``tumor_type`` or
        ``tumor_vs_normal`` (derived from "<Type> <Sequence>" folder names).
    group_near_duplicates : keep perceptual near-duplicates (``near_duplicate_distance`` bits
        of a ``hash_size``-squared-bit pHash) in one split of an automatic split.
    group_file : CSV ``path,group`` (e.g. patient ids); scans of one group stay in one split.
        Paths are relative to ``root`` or absolute under it.
    group_file_unmatched : the share of ``group_file``'s paths allowed to name no image of
        ``root`` (default 0: any such path refuses the file, naming examples).
    sampler : ``None`` (shuffle) or ``"balanced"`` (draw classes equally often).
    cache_dir : where image fingerprints are cached between runs (``None``: no cache).
    seed : training order and augmentations are functions of ``(seed, epoch, image)``, so a
        resumed run sees the batches the uninterrupted one would (``None``: a random seed).
    cache : decode and resize each scan once, into ``memory``, a memory-mapped file in
        ``decoded_cache_dir`` (``disk``, reused across runs), or not at all (``none``: decode
        every epoch). The pixels, and so the training, are the same either way.
    crop_margin : training images are resized to ``image_size * (1 + crop_margin)`` before the
        augmentations (and cached at that size), so random crops keep more detail.
    augment_on : ``loader`` (the ``augment`` transforms, image by image, in the loader
        workers), ``batch`` (``batch_augment`` on whole batches in the workers) or ``device``
        (``batch_augment`` after the batch reaches the accelerator; workers only read
        ``uint8`` images).
    batch_augment : the batched augmentations (``augment.batched``); without it, ``batch`` and
        ``device`` apply the ``augment`` transforms image by image.
    """

    def __init__(
        self,
        root: str | Path,
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
        synthetic: Mapping[str, Any] | None = None,
        check_images: bool = True,
        taxonomy: str = "folder",
        group_near_duplicates: bool = True,
        near_duplicate_distance: int = 12,
        hash_size: int = 16,
        group_file: str | Path | None = None,
        group_file_unmatched: float = 0.0,
        sampler: str | None = None,
        cache_dir: str | Path | None = None,
        seed: int | None = None,
        cache: str = "memory",
        decoded_cache_dir: str | Path | None = None,
        crop_margin: float = 0.0,
        augment_on: str = "batch",
        batch_augment: Callable | None = None,
    ) -> None:
        super().__init__()
        if layout not in LAYOUTS:
            raise ValueError(f"data.layout must be one of {LAYOUTS}, got '{layout}'.")
        if channels not in (1, 3):
            raise ValueError(f"data.channels must be 1 or 3, got {channels}.")
        if image_size < 8:
            raise ValueError(f"data.image_size must be at least 8, got {image_size}.")
        if cache not in CACHE_MODES:
            raise ValueError(f"data.cache must be one of {CACHE_MODES}, got '{cache}'.")
        if augment_on not in AUGMENT_ON:
            raise ValueError(f"data.augment_on must be one of {AUGMENT_ON}, got '{augment_on}'.")
        if not 0.0 <= crop_margin <= 1.0:
            raise ValueError(f"data.crop_margin must be in [0, 1], got {crop_margin}.")
        self.root = Path(root)
        self.layout = layout
        self.image_size = int(image_size)
        self.channels = int(channels)
        self.mean = per_channel(mean, self.channels, "data.mean")
        self.std = per_channel(std, self.channels, "data.std")
        self.augment = list(augment or [])
        self.batch_size = batch_size
        self.num_workers = default_num_workers() if num_workers is None else num_workers
        self.pin_memory = pin_memory
        self.persistent_workers = persistent_workers and self.num_workers > 0
        if multiprocessing_context not in (None, "fork", "spawn", "forkserver"):
            raise ValueError(
                "data.multiprocessing_context must be null, fork, spawn or forkserver, got "
                f"'{multiprocessing_context}'."
            )
        self.multiprocessing_context = multiprocessing_context
        self.val_fraction = val_fraction
        self.test_fraction = test_fraction
        self.split_seed = split_seed
        self.split_file = Path(split_file) if split_file else None
        self.synthetic = dict(synthetic) if synthetic else None
        self.check_images = check_images
        if sampler not in (None, "balanced"):
            raise ValueError(f"data.sampler must be null or 'balanced', got '{sampler}'.")
        self.taxonomy = taxonomy
        self.group_near_duplicates = group_near_duplicates
        self.near_duplicate_distance = near_duplicate_distance
        self.hash_size = hash_size
        self.group_file = Path(group_file) if group_file else None
        if not 0.0 <= group_file_unmatched <= 1.0:
            raise ValueError(
                f"data.group_file_unmatched must be in [0, 1], got {group_file_unmatched}."
            )
        self.group_file_unmatched = float(group_file_unmatched)
        self.sampler = sampler
        self.cache_dir = Path(cache_dir) if cache_dir else None
        self.seed = int(torch.randint(2**31, ()).item()) if seed is None else int(seed)
        self.cache = cache
        self.decoded_cache_dir = Path(decoded_cache_dir) if decoded_cache_dir else None
        self.input_size = round(self.image_size * (1 + crop_margin))
        self.augment_on = augment_on
        self.batch_augment = batch_augment
        self.folder_names: list[str] = []
        self.label_of: dict[str, str] = {}
        self.groups: list[int] | None = None
        self._prints: dict = {}
        self.class_names: list[str] = []
        self.scans: list[Scan] = []
        self.splits: list[str] = []
        self.skipped: list[tuple[Scan, str]] = []
        self.datasets: dict[str, ScanDataset] = {}

    # ----------------------------------------------------------------- discovery and split
    def prepare_data(self) -> None:
        if self.synthetic is not None:
            ensure_synthetic_dataset(self.root, **self.synthetic)

    def setup(self, stage: str | None = None) -> None:
        if self.datasets:
            return
        if self.synthetic is not None and not self.root.exists():
            self.prepare_data()
        if self.layout == "folder":
            self.folder_names = find_classes(self.root)
            if self.split_file is not None:
                scans, splits = self._from_split_file()
            else:
                scans = self._readable(scan_class_folders(self.root, self.folder_names))
                splits = self._split([s.label for s in scans], scans,
                                     self.val_fraction, self.test_fraction)  # fmt: skip
        else:
            scans, splits = self._presplit()
        self.label_of = label_map(self.folder_names, self.taxonomy)
        self.class_names = sorted(set(self.label_of.values()))
        self.scans, self.splits = scans, splits
        present = {
            split: {
                self.label_of[s.label] for s, p in zip(scans, splits, strict=True) if p == split
            }
            for split in SPLITS
        }
        missing = [
            f"{split}: {sorted(set(self.class_names) - present[split])}"
            for split in SPLITS
            if present[split] and set(self.class_names) - present[split]
        ]
        if missing:
            warnings.warn(
                "some classes have no image in a split (their metrics there are undefined): "
                + "; ".join(missing),
                stacklevel=2,
            )
        scans, splits, images = self._decode_cache(scans, splits)
        self.scans, self.splits = scans, splits
        if self.augment_on != "loader":  # workers only resize; see augment_batch
            size = self.input_size
            train = None if "train" in images else v2.Resize((size, size), antialias=True)
        else:
            train = train_transform(
                self.image_size, self.mean, self.std, self.channels, self.augment, self.input_size
            )
        transforms = {
            "train": train,
            "val": eval_transform(self.image_size, self.mean, self.std, self.channels),
            "test": eval_transform(self.image_size, self.mean, self.std, self.channels),
        }
        for split in SPLITS:
            chosen = [s for s, p in zip(scans, splits, strict=True) if p == split]
            self.datasets[split] = ScanDataset(
                self.root, chosen, self.class_names, self.channels, transforms[split],
                self.label_of, images.get(split),
            )  # fmt: skip
        if self.augment_on == "batch":
            self.datasets["train"].batch_transform = self.train_augmentation
        sizes = ", ".join(f"{len(d)} {k}" for k, d in self.datasets.items())
        log.debug(f"data: {self.root} ({self.layout}), {len(self.class_names)} classes, {sizes}")

    def _decode_cache(
        self, scans: list[Scan], splits: list[str]
    ) -> tuple[list[Scan], list[str], dict[str, DecodedImages]]:
        """Decode every scan once into the decoded cache (training images at ``input_size``,
        the others at ``image_size``), before the split is recorded; drop (and report) those
        that fail, so ``split.csv`` and ``skipped`` are final before training starts."""
        if self.cache == "none" or not scans:
            return scans, splits, {}
        size_of = {"train": self.input_size, "val": self.image_size, "test": self.image_size}
        images: dict[str, DecodedImages] = {}
        errors: dict[str, str] = {}
        for size in sorted(set(size_of.values())):
            wanted = [s.path for s, p in zip(scans, splits, strict=True) if size_of[p] == size]
            if not wanted:
                continue
            decoded, failed = decode_all(
                self.root, wanted, self.channels, size, self.cache, self.decoded_cache_dir,
                workers=self.num_workers,
            )  # fmt: skip
            errors.update(failed)
            images.update({split: decoded for split in SPLITS if size_of[split] == size})
        if not errors:
            return scans, splits, images
        bad = [s for s in scans if s.path in errors]
        self.skipped += [(s, errors[s.path]) for s in bad]
        listing = "\n".join(f"  {self.root / s.path}: {errors[s.path]}" for s in bad[:20])
        more = f"\n  ... and {len(bad) - 20} more" if len(bad) > 20 else ""
        warnings.warn(f"skipping {len(bad)} unreadable image(s):\n{listing}{more}", stacklevel=3)
        keep = [i for i, s in enumerate(scans) if s.path not in errors]
        if self.groups is not None and len(self.groups) == len(scans):
            self.groups = [self.groups[i] for i in keep]
        return [scans[i] for i in keep], [splits[i] for i in keep], images

    @property
    def train_augmentation(self) -> TrainAugmentation:
        """The batch augmentation of training images (picklable, for any worker start method)."""
        return TrainAugmentation(
            self.mean, self.std, self.channels, self.image_size, self.input_size, self.augment,
            self.batch_augment,
        )  # fmt: skip

    def _fingerprints(self, scans: list[Scan]) -> dict:
        cache = None
        if self.cache_dir is not None:
            key = hashlib.sha1(str(self.root.resolve()).encode()).hexdigest()[:16]
            cache = self.cache_dir / f"{key}.json"
        return fingerprint_scans(
            self.root, [s.path for s in scans], self.hash_size, cache, workers=self.num_workers,
            progress=len(scans) > 500,
        )  # fmt: skip

    def _readable(self, scans: list[Scan]) -> list[Scan]:
        """Drop (and report) scans that cannot be decoded; keep their fingerprints."""
        if not (self.check_images or self.group_near_duplicates):
            return scans
        self._prints.update(self._fingerprints(scans))
        bad = [(s, self._prints[s.path].error) for s in scans if self._prints[s.path].error]
        if bad:
            self.skipped += bad
            listing = "\n".join(f"  {self.root / s.path}: {reason}" for s, reason in bad[:20])
            more = f"\n  ... and {len(bad) - 20} more" if len(bad) > 20 else ""
            warnings.warn(
                f"skipping {len(bad)} unreadable image(s) of {len(scans)}:\n{listing}{more}",
                stacklevel=2,
            )
            bad_paths = {s.path for s, _ in bad}
            scans = [s for s in scans if s.path not in bad_paths]
        return scans

    def _group_ids(self, scans: list[Scan]) -> list[int] | None:
        """Near-duplicate groups combined with the user's groups; None when neither is on."""
        groupings: list[list] = []
        if self.group_near_duplicates:
            hashes = [self._prints[s.path].phash for s in scans]
            pairs = near_duplicate_pairs(hashes, self.near_duplicate_distance)
            groupings.append(groups_from_pairs(len(scans), pairs))
            n_grouped = len({i for p in pairs for i in p[:2]})
            if pairs:
                log.info(f"{n_grouped} near-duplicate images kept together in one split each")
        if self.group_file is not None:
            by_path = read_group_file(self.group_file, self.root)
            known = {s.path for s in scans} | {s.path for s, _ in self.skipped}
            check_group_paths(self.group_file, by_path, known, self.root, self.group_file_unmatched)
            groupings.append([by_path.get(s.path) for s in scans])
        if not groupings:
            return None
        return combine_groups(*groupings)

    def _split(
        self, strata: list[str], scans: list[Scan], val_fraction: float, test_fraction: float
    ) -> list[str]:
        groups = self._group_ids(scans)
        self.groups = groups
        singletons = groups is None or len(set(groups)) == len(groups)
        if singletons and min(Counter(strata).values(), default=0) >= 3:
            # nothing to keep together: the exact (and much faster) stratified split
            return stratified_split(strata, val_fraction, test_fraction, self.split_seed)
        if groups is None:  # tiny classes: the group-aware split places them with a warning
            groups = list(range(len(scans)))
        return group_stratified_split(strata, groups, val_fraction, test_fraction, self.split_seed)

    def _from_split_file(self) -> tuple[list[Scan], list[str]]:
        scans, splits, groups = read_split_csv(self.split_file)
        unknown = sorted({s.label for s in scans} - set(self.folder_names))
        if unknown:
            raise DataError(
                f"split file '{self.split_file}' names class(es) {unknown} that are not folders "
                f"of '{self.root}' (found {self.folder_names})."
            )
        absent = [s.path for s in scans if not (self.root / s.path).is_file()]
        if absent:
            shown = ", ".join(absent[:5]) + (" ..." if len(absent) > 5 else "")
            raise DataError(
                f"{len(absent)} file(s) of split file '{self.split_file}' are missing under "
                f"'{self.root}': {shown}. Is data.root the folder the split was made on?"
            )
        self._check_split_file_covers_root(scans)
        kept = set(self._readable(scans)) if self.check_images else set(scans)
        keep = [i for i, s in enumerate(scans) if s in kept]
        if groups is not None:
            self.groups = [groups[i] for i in keep]
        return [scans[i] for i in keep], [splits[i] for i in keep]

    def _check_split_file_covers_root(self, listed: list[Scan]) -> None:
        """Refuse a split file that leaves readable images of ``root`` out: it was made on
        other data (or the data changed), and training on its part would be silent."""
        names = {s.path for s in listed}
        unlisted = [
            s for s in scan_class_folders(self.root, self.folder_names) if s.path not in names
        ]
        if self.check_images and unlisted:
            readable = set(self._readable(unlisted))  # the unreadable ones are reported
            unlisted = [s for s in unlisted if s in readable]
        if not unlisted:
            return
        shown = ", ".join(f"'{s.path}'" for s in unlisted[:5]) + (
            " ..." if len(unlisted) > 5 else ""
        )
        raise DataError(
            f"split file '{self.split_file}' lists {len(listed)} of the "
            f"{len(listed) + len(unlisted)} readable images under '{self.root}'; "
            f"{len(unlisted)} are not in it: {shown}. A split file must describe all of "
            "data.root: use it with the data it was made on, or set data.split_file=null to "
            "split anew."
        )

    def _presplit(self) -> tuple[list[Scan], list[str]]:
        folders = {split: self.root / split for split in SPLITS}
        for split in ("train", "test"):
            if not folders[split].is_dir():
                raise DataError(
                    f"data.layout=presplit expects '{folders[split]}' (root/train, root/test and "
                    "optionally root/val, each holding the same class folders)."
                )
        present = [split for split in SPLITS if folders[split].is_dir()]
        classes = {split: find_classes(folders[split]) for split in present}
        self.folder_names = classes["train"]
        problems = []
        for split in present[1:]:
            extra = sorted(set(classes[split]) - set(self.folder_names))
            lacking = sorted(set(self.folder_names) - set(classes[split]))
            if extra:
                problems.append(f"{split}/ has class(es) not in train/: {extra}")
            if lacking:
                problems.append(f"{split}/ lacks class(es) of train/: {lacking}")
        if problems:
            raise DataError(
                f"class folders differ between the splits of '{self.root}': "
                + "; ".join(problems)
                + ". Every split must hold the same class folders."
            )
        scans: list[Scan] = []
        splits: list[str] = []
        for split in present:
            found = scan_class_folders(folders[split], self.folder_names, tree=self.root)
            found = [Scan(f"{split}/{s.path}", s.label) for s in found]
            found = self._readable(found)
            scans += found
            splits += [split] * len(found)
        if "val" not in present and self.val_fraction > 0:
            train_idx = [i for i, p in enumerate(splits) if p == "train"]
            fraction = min(0.5, self.val_fraction * len(scans) / max(1, len(train_idx)))
            train_scans = [scans[i] for i in train_idx]
            carved = self._split([s.label for s in train_scans], train_scans, fraction, 0.0)
            for i, assigned in zip(train_idx, carved, strict=True):
                splits[i] = assigned
        return scans, splits

    # ------------------------------------------------------------------- what others need
    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    @property
    def preprocessing(self) -> dict[str, Any]:
        """What a checkpoint needs to rebuild the eval transform and read its outputs."""
        return {
            "class_names": list(self.class_names),
            "image_size": self.image_size,
            "channels": self.channels,
            "mean": list(self.mean),
            "std": list(self.std),
            "taxonomy": self.taxonomy,
        }

    def class_counts(self, split: str = "train") -> list[int]:
        """Images per class in ``split``, in class order."""
        counts = Counter(self.datasets[split].targets)
        return [counts.get(i, 0) for i in range(self.num_classes)]

    def save_split(self, path: str | Path) -> Path:
        """Write ``path,class,split[,group]`` for every scan used (``class`` is the folder);
        reuse it with ``data.split_file``."""
        groups = (
            self.groups if self.groups is not None and len(self.groups) == len(self.scans) else None
        )
        return write_split_csv(path, self.scans, self.splits, groups)

    # ----------------------------------------------------------------------- dataloaders
    def _loader(self, split: str, shuffle: bool) -> DataLoader:
        dataset = self.datasets[split]
        if len(dataset) == 0:
            raise DataError(f"the {split} split is empty; check the split fractions or split file.")
        trainer = self.trainer  # set while a Trainer runs this datamodule
        rank, world = (trainer.global_rank, trainer.world_size) if trainer else (0, 1)
        sampler: Sampler = ShardSampler(len(dataset), rank, world)
        if shuffle:
            weights = None
            if self.sampler == "balanced":
                counts = Counter(dataset.targets)
                weights = [1.0 / counts[t] for t in dataset.targets]
            sampler = EpochSampler(len(dataset), self.seed, weights, rank, world)
            dataset = EpochSeededDataset(dataset, self.seed)
        return DataLoader(
            dataset,
            batch_size=self.batch_size,
            sampler=sampler,
            num_workers=self.num_workers,
            pin_memory=self._pin_memory(),
            persistent_workers=self.persistent_workers,
            multiprocessing_context=self.multiprocessing_context if self.num_workers else None,
            drop_last=shuffle and len(sampler) > self.batch_size,
        )

    def _pin_memory(self) -> bool:
        if self.pin_memory is not None:
            return self.pin_memory
        trainer = self.trainer
        return trainer is not None and trainer.strategy.root_device.type == "cuda"

    def train_dataloader(self) -> DataLoader:
        return self._loader("train", shuffle=True)

    def val_dataloader(self) -> DataLoader:
        return self._loader("val", shuffle=False)

    def test_dataloader(self) -> DataLoader:
        return self._loader("test", shuffle=False)

    # ------------------------------------------------------------- augmentation on device
    def augment_batch(self, images: torch.Tensor) -> torch.Tensor:
        """``uint8`` training images ``(N, C, S, S)`` -> augmented, normalized ``float32``
        (see :class:`~braintumor.data.augmentation.TrainAugmentation`)."""
        return self.train_augmentation(images)

    def on_after_batch_transfer(self, batch: Any, dataloader_idx: int) -> Any:
        trainer = getattr(self, "trainer", None)
        if self.augment_on == "device" and trainer is not None and trainer.training:
            images, targets = batch
            return self.augment_batch(images), targets
        return batch
