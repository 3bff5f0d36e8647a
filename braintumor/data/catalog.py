"""The data catalog: which scans a run uses, in which split, under which class, and which it
skipped. Built by plain stages, each a function of the previous one's result::

    scan (the layout's reader: class folders, pre-split folders or .mat slices: sources/)
      -> readable (decode each scan once; unreadable ones are skipped and reported)
      -> groups (near-duplicates + patient ids in the files + the user's case ids)
      -> split (stratified; whole groups), or the pre-split folders', or a split file's
      -> taxonomy (folder names -> class names, through the source's label map)

:func:`build_catalog` runs them for one :class:`CatalogSettings`; the result is frozen.
Several sources at once: :mod:`braintumor.data.merged`.
"""

from __future__ import annotations

import hashlib
import logging
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import NamedTuple

from braintumor.data.cropped_copies import PAIR_SCORES, cropped_copy_pairs
from braintumor.data.duplicates import combine_groups, groups_from_pairs, near_duplicate_pairs
from braintumor.data.fingerprint import Fingerprint, fingerprint_scans
from braintumor.data.groups import check_group_paths, group_ids, read_group_file
from braintumor.data.label_maps import classes_of, sequences_of
from braintumor.data.scan import Scan
from braintumor.data.sources import FoundScans, layout_of, scan_source
from braintumor.data.split import SPLITS, assign_splits, kfold_splits, write_split_csv
from braintumor.data.split_file import recorded_splits
from braintumor.errors import DataError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class CatalogSettings:
    """What decides a catalog (the ``data.*`` keys of the same names)."""

    root: Path
    layout: str = "folder"
    val_fraction: float = 0.15
    test_fraction: float = 0.15
    split_seed: int = 42
    split_file: Path | None = None
    n_folds: int | None = None  # K-fold cross-validation: fold ``fold`` is the test set
    fold: int | None = None
    check_images: bool = True
    taxonomy: str = "folder"
    group_near_duplicates: bool = True
    near_duplicate_distance: int = 12
    hash_size: int = 16
    group_file: Path | None = None
    group_file_unmatched: float = 0.0
    group_cropped_copies: bool = True
    cropped_copy_similarity: float = 0.985
    cache_dir: Path | None = None  # where fingerprints are kept between runs
    workers: int = 1
    source: str = ""  # the public set (its label map); "" for plain class folders
    label_map: Path | None = None  # a user's label map, overriding the source's
    exclude_folders: tuple[str, ...] = ()  # folders of root that are not classes
    prepared_dir: Path | None = None  # where a volume layout (nifti) writes its slices


@dataclass(frozen=True)
class Catalog:
    """Scans with their split (and group), the class names, and the skipped scans."""

    root: Path
    folder_names: tuple[str, ...]
    scans: tuple[Scan, ...]
    splits: tuple[str, ...]
    label_of: Mapping[str, str]
    groups: tuple[str, ...] | None = None  # one per scan (the user's ids: groups.group_ids)
    skipped: tuple[tuple[Scan, str], ...] = ()
    sequence_of: Mapping[str, str] = field(default_factory=dict)  # label -> T1, T1C+, ...

    @property
    def class_names(self) -> list[str]:
        return sorted(set(self.label_of.values()))

    @property
    def sources(self) -> tuple[str, ...]:
        """The source of each scan (``""`` for plain class folders)."""
        return tuple(s.source for s in self.scans)

    def in_split(self, split: str) -> list[Scan]:
        return [s for s, p in zip(self.scans, self.splits, strict=True) if p == split]

    def without(self, failed: Mapping[str, str]) -> Catalog:
        """The catalog with the scans of ``failed`` (path -> reason) moved to ``skipped``."""
        keep = [i for i, s in enumerate(self.scans) if s.path not in failed]
        dropped = tuple((s, failed[s.path]) for s in self.scans if s.path in failed)
        return replace(
            self,
            scans=tuple(self.scans[i] for i in keep),
            splits=tuple(self.splits[i] for i in keep),
            groups=tuple(self.groups[i] for i in keep) if self.groups is not None else None,
            skipped=self.skipped + dropped,
        )

    def save_split(self, path: str | Path) -> Path:
        """Write ``path,class,split[,group]`` for every scan used (``class`` is the folder);
        reuse it with ``data.split_file``."""
        return write_split_csv(path, self.scans, self.splits, self.groups)


def warn_unreadable(bad: Sequence[tuple[Scan, str]], root: Path, of: str = "") -> None:
    """One warning listing (up to 20 of) the skipped scans and why."""
    listing = "\n".join(f"  {root / s.path}: {reason}" for s, reason in bad[:20])
    more = f"\n  ... and {len(bad) - 20} more" if len(bad) > 20 else ""
    warnings.warn(f"skipping {len(bad)} unreadable image(s){of}:\n{listing}{more}", stacklevel=3)


class Groups(NamedTuple):
    """The groups of a catalog's scans: ``labels`` for the split, ``ids`` for the records."""

    labels: list[int]
    ids: list[str]


@dataclass
class CatalogStages:
    """The stages of one catalog build, sharing the fingerprints (one decode per scan)."""

    settings: CatalogSettings
    prints: dict[str, Fingerprint] = field(default_factory=dict)
    skipped: list[tuple[Scan, str]] = field(default_factory=list)

    # ---------------------------------------------------------------------------- readable
    def fingerprints(self, scans: Sequence[Scan]) -> dict[str, Fingerprint]:
        cfg = self.settings
        cache = None
        if cfg.cache_dir is not None:
            key = hashlib.sha1(str(cfg.root.resolve()).encode()).hexdigest()[:16]
            cache = cfg.cache_dir / f"{key}.json"
        found = fingerprint_scans(
            cfg.root, [s.path for s in scans], cfg.hash_size, cache, workers=cfg.workers,
            progress=len(scans) > 500,
        )  # fmt: skip
        self.prints.update(found)
        return found

    def readable(self, scans: list[Scan]) -> list[Scan]:
        """Drop (and report) scans that cannot be decoded; keep their fingerprints."""
        cfg = self.settings
        grouping = cfg.group_near_duplicates and cfg.split_file is None  # else the file groups
        if not (cfg.check_images or grouping):
            return scans
        prints = self.fingerprints(scans)
        bad = [(s, prints[s.path].error) for s in scans if prints[s.path].error]
        if not bad:
            return scans
        self.skipped += bad
        warn_unreadable(bad, cfg.root, f" of {len(scans)}")
        bad_paths = {s.path for s, _ in bad}
        return [s for s in scans if s.path not in bad_paths]

    # ------------------------------------------------------------------------------ groups
    def groups(
        self, scans: list[Scan], patients: Sequence[str | None] | None = None
    ) -> Groups | None:
        """Near-duplicate groups combined with the patients (figshare's ids) and the user's
        groups; None when none of them is on."""
        cfg = self.settings
        groupings: list[Sequence] = [patients] if patients is not None else []
        given = [[None if p is None else f"patient:{p}" for p in patients]] if patients else []
        if cfg.group_file is not None:
            by_path = read_group_file(cfg.group_file, cfg.root)
            known = {s.path for s in scans} | {s.path for s, _ in self.skipped}
            check_group_paths(cfg.group_file, by_path, known, cfg.root, cfg.group_file_unmatched)
            groupings.append([by_path.get(s.path) for s in scans])
            given.append([by_path[s.path].removeprefix("user:") if s.path in by_path else None
                          for s in scans])  # fmt: skip
        if cfg.group_near_duplicates:
            prints = [self.prints[s.path] for s in scans]
            pairs = near_duplicate_pairs([p.phash for p in prints], cfg.near_duplicate_distance)
            if cfg.group_cropped_copies:
                # Pairs that one patient or group already holds together need no pixel check.
                joined = combine_groups(*groupings) if groupings else None
                cropped = cropped_copy_pairs(
                    [cfg.root / s.path for s in scans], [p.crop_hash for p in prints],
                    [(p.width, p.height) for p in prints], cfg.near_duplicate_distance,
                    cfg.cropped_copy_similarity, cfg.workers, digests=[p.sha256 for p in prints],
                    score_cache=cfg.cache_dir / PAIR_SCORES if cfg.cache_dir else None,
                    joined=joined,
                )  # fmt: skip
                pairs = pairs + [(i, j, -1) for i, j in cropped]
            groupings.append(groups_from_pairs(len(scans), pairs))
            if pairs:
                n_grouped = len({i for p in pairs for i in p[:2]})
                log.info(f"{n_grouped} near-duplicate images kept together in one split each")
        if not groupings:
            return None
        labels = combine_groups(*groupings)
        return Groups(labels, group_ids(labels, [s.path for s in scans], *given))

    # ------------------------------------------------------------------------------ scan
    def found_readable(self, found: FoundScans, of: str = "") -> FoundScans:
        """``found`` without the files its reader could not read and the scans that do not
        decode, both reported (``of``: where, in the warning)."""
        if found.skipped:
            self.skipped += found.skipped
            total = len(found.scans) + len(found.skipped)
            warn_unreadable(found.skipped, self.settings.root, f" of {total}{of}")
        return found.keep({s.path for s in self.readable(found.scans)})

    def split(self, scans: list[Scan], grouped: Groups | None) -> list[str]:
        """Stratified by label, whole groups, K-fold when ``n_folds`` is set."""
        cfg = self.settings
        labels = [s.label for s in scans]
        groups = grouped.labels if grouped else None
        if cfg.n_folds is not None:
            return kfold_splits(
                labels, groups, cfg.n_folds, cfg.fold or 0, cfg.val_fraction, cfg.split_seed
            )
        return assign_splits(labels, groups, cfg.val_fraction, cfg.test_fraction, cfg.split_seed)

    def given_splits(self, scans: list[Scan], given: list[str]) -> list[str]:
        """The splits of a pre-split set's folders; without ``val/``, val is carved out of
        train."""
        cfg, splits = self.settings, list(given)
        if "val" not in splits and cfg.val_fraction > 0:
            train_idx = [i for i, p in enumerate(splits) if p == "train"]
            fraction = min(0.5, cfg.val_fraction * len(scans) / max(1, len(train_idx)))
            train_scans = [scans[i] for i in train_idx]
            grouped = self.groups(train_scans)
            carved = assign_splits(
                [s.label for s in train_scans], grouped.labels if grouped else None, fraction, 0.0,
                cfg.split_seed,
            )  # fmt: skip
            for i, assigned in zip(train_idx, carved, strict=True):
                splits[i] = assigned
        return splits


def warn_missing_classes(catalog: Catalog) -> None:
    """Warn about classes without an image in a split that has images (undefined metrics)."""
    label = catalog.label_of
    present = {split: {label[s.label] for s in catalog.in_split(split)} for split in SPLITS}
    wanted = set(catalog.class_names)
    missing = [
        f"{split}: {sorted(wanted - present[split])}"
        for split in SPLITS
        if present[split] and wanted - present[split]
    ]
    if missing:
        warnings.warn(
            "some classes have no image in a split (their metrics there are undefined): "
            + "; ".join(missing),
            stacklevel=3,
        )


def check_split_settings(settings: CatalogSettings) -> None:
    """Refuse split settings that contradict each other."""
    given = layout_of(settings.layout).gives_splits  # split folders, as presplit's
    if settings.n_folds is not None and (settings.split_file or given):
        raise DataError(
            "data.n_folds (cross-validation) splits the data itself: it cannot be combined "
            "with data.split_file or data.layout=presplit."
        )
    if settings.fold is not None and settings.n_folds is None:
        raise DataError(f"data.fold={settings.fold} needs data.n_folds (e.g. data.n_folds=5).")


def prepared_settings(settings: CatalogSettings) -> CatalogSettings:
    """``settings`` with ``root`` the prepared slices of a volume layout (``data=nifti``), whose
    groups are the volumes' cases; unchanged for any other layout."""
    layout = layout_of(settings.layout)
    if not layout.prepared:
        return settings
    if settings.group_file is not None:
        raise DataError(
            f"data.group_file cannot be used with data.layout={layout.name}: the group of each "
            "slice is its volume's case (docs/data.md#nifti-volumes); give each case its own "
            "folder (root/<class>/<case>/*.nii.gz) to set it."
        )
    if settings.prepared_dir is None:
        raise DataError(f"data.layout={layout.name} writes the volumes' slices into "
                        "data.prepared_dir: set it (data=nifti does).")  # fmt: skip
    root = layout.module().prepare(settings.root, settings.prepared_dir, settings.exclude_folders)
    return replace(settings, root=root)


def build_catalog(settings: CatalogSettings) -> Catalog:
    """Run the stages for ``settings``: the scans, their splits and groups, the taxonomy."""
    check_split_settings(settings)
    settings = prepared_settings(settings)
    stages = CatalogStages(settings)
    source = settings.source
    found = scan_source(settings.root, settings.layout, source, settings.exclude_folders)
    found = stages.found_readable(found)
    scans = [replace(s, source=source) for s in found.scans]
    names = found.classes or sorted({s.label for s in scans})
    skipped = [(replace(s, source=source), why) for s, why in stages.skipped]
    if settings.split_file is not None:
        splits, groups = recorded_splits(settings.split_file, settings.root, scans, skipped, names)
    elif found.splits is not None:  # pre-split folders
        splits, groups = stages.given_splits(scans, found.splits), None
    else:
        grouped = stages.groups(scans, found.patients)
        splits = stages.split(scans, grouped)
        groups = grouped.ids if grouped else None
    catalog = Catalog(
        root=settings.root,
        folder_names=tuple(names),
        scans=tuple(scans),
        splits=tuple(splits),
        label_of=classes_of(source, names, settings.taxonomy, settings.label_map),
        sequence_of=sequences_of(source, names, settings.label_map),
        groups=tuple(groups) if groups is not None else None,
        skipped=tuple(skipped),
    )
    warn_missing_classes(catalog)
    return catalog
