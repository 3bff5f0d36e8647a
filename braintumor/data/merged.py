"""One catalog over several sources (``data=merged data.sources=[nickparvar4,figshare3]``).

Each source is scanned in its own layout and checked under its own root (its fingerprints
cached there), then the scans are put under the sources' common folder, labelled
``<source>/<label>`` (two sets may give one name to different classes) and grouped and split
together: near-copies across sets, patients and the user's groups each stay in one split.
A pre-split source's own train/test folders are not kept: a copy of one of its test images in
another set would otherwise have to be trained on. Classes come from each source's label map
under a shared taxonomy (``family``, ``family_sequence`` or ``tumor_vs_normal``).
"""

from __future__ import annotations

import logging
import os
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from braintumor.data.catalog import (
    Catalog,
    CatalogSettings,
    CatalogStages,
    check_split_settings,
    warn_missing_classes,
)
from braintumor.data.label_maps import classes_of, sequences_of
from braintumor.data.public_sets import PUBLIC_SETS
from braintumor.data.scan import Scan
from braintumor.data.sources import scan_source as scan_layout
from braintumor.data.split_file import recorded_splits
from braintumor.errors import DataError

log = logging.getLogger(__name__)

MERGED_TAXONOMIES = ("family", "family_sequence", "tumor_vs_normal")


@dataclass(frozen=True)
class SourceSettings:
    """One source of a merged set: its name, root, layout and label map."""

    name: str
    root: Path
    layout: str = "folder"
    label_map: Path | None = None
    exclude_folders: tuple[str, ...] = ()


def source_settings(
    sources: Sequence[str],
    roots: Mapping[str, str | Path] | None,
    label_maps: Mapping[str, str | Path | None] | None = None,
) -> list[SourceSettings]:
    """The settings of each named source: a public set's layout, or ``folder`` for a set of
    your own (which then needs a root and a label map)."""
    roots, label_maps = dict(roots or {}), dict(label_maps or {})
    if not sources:
        raise DataError(
            "data=merged needs data.sources, e.g. data.sources=[nickparvar4,figshare3]."
        )
    if len(set(sources)) != len(sources):
        raise DataError(f"data.sources names a source twice: {list(sources)}.")
    result = []
    for name in sources:
        if not roots.get(name):
            raise DataError(
                f"source '{name}' has no root: set data.roots.{name}=/path/to/{name} "
                f"(known sets: {', '.join(PUBLIC_SETS)})."
            )
        known = PUBLIC_SETS.get(name)
        layout, exclude = (known.layout, known.exclude_folders) if known else ("folder", ())
        mapped = Path(label_maps[name]) if label_maps.get(name) else None
        result.append(SourceSettings(name, Path(roots[name]), layout, mapped, exclude))
    for a in result:
        for b in result:
            if a is not b and a.root.absolute().is_relative_to(b.root.absolute()):
                raise DataError(
                    f"the root of source '{a.name}' ({a.root}) lies inside the root of "
                    f"'{b.name}' ({b.root}): its images would be read twice. Give each source "
                    "its own folder (data.roots.<source>)."
                )
    return result


def scan_source(
    stages: CatalogStages, source: SourceSettings
) -> tuple[list[Scan], list[str] | None]:
    """A source's readable scans (paths relative to its root) and their patients."""
    root = source.root
    if not root.is_dir():
        known = PUBLIC_SETS.get(source.name)
        hint = f" (python -m braintumor download {source.name} --out {root})" if known else ""
        raise DataError(f"the root of source '{source.name}', '{root}', does not exist{hint}.")
    found = scan_layout(root, source.layout, source.name, source.exclude_folders)
    found = stages.found_readable(found, f" in source '{source.name}'")
    if found.patients is None:
        return found.scans, None
    return found.scans, [f"{source.name}:{p}" for p in found.patients]


def build_merged_catalog(settings: CatalogSettings, sources: Sequence[SourceSettings]) -> Catalog:
    """Scan every source, then group and split them as one set (see the module docstring)."""
    check_split_settings(settings)
    if settings.taxonomy not in MERGED_TAXONOMIES:
        raise DataError(
            f"data.taxonomy={settings.taxonomy} has no meaning across sources; a merged set "
            f"needs one of {MERGED_TAXONOMIES} (classes through each source's label map)."
        )
    common = Path(os.path.commonpath([str(s.root.absolute()) for s in sources]))
    merged = CatalogStages(replace(settings, root=common))
    scans: list[Scan] = []
    patients: list[str | None] = []
    label_of: dict[str, str] = {}
    sequence_of: dict[str, str] = {}
    for source in sources:
        own = CatalogStages(
            replace(settings, root=source.root, source=source.name, group_file=None)
        )
        found, found_patients = scan_source(own, source)
        prefix = source.root.absolute().relative_to(common).as_posix()

        def rebased(scan: Scan, prefix: str = prefix, name: str = source.name) -> Scan:
            path = scan.path if prefix == "." else f"{prefix}/{scan.path}"
            return Scan(path, f"{name}/{scan.label}", name)

        labels = sorted({s.label for s in found})
        classes = classes_of(source.name, labels, settings.taxonomy, source.label_map)
        label_of.update({f"{source.name}/{k}": v for k, v in classes.items()})
        sequences = sequences_of(source.name, labels, source.label_map)
        sequence_of.update({f"{source.name}/{k}": v for k, v in sequences.items()})
        for scan in found:
            if scan.path in own.prints:  # none when nothing needs decoding
                merged.prints[rebased(scan).path] = own.prints[scan.path]
        scans += [rebased(s) for s in found]
        patients += found_patients or [None] * len(found)
        merged.skipped += [(rebased(s), why) for s, why in own.skipped]
        log.info(f"source {source.name}: {len(found)} images under {source.root}")
    if settings.split_file is not None:
        splits, groups = recorded_splits(
            settings.split_file, common, scans, merged.skipped, sorted(label_of)
        )
    else:
        grouped = merged.groups(scans, patients)
        splits = merged.split(scans, grouped)
        groups = grouped.ids if grouped else None
    catalog = Catalog(
        root=common,
        folder_names=tuple(sorted(label_of)),
        scans=tuple(scans),
        splits=tuple(splits),
        label_of=label_of,
        groups=tuple(groups) if groups is not None else None,
        skipped=tuple(merged.skipped),
        sequence_of=sequence_of,
    )
    warn_cross_source_copies(catalog)
    warn_missing_classes(catalog)
    return catalog


def cross_source_groups(catalog: Catalog) -> list[list[Scan]]:
    """The groups that hold images of more than one source (copies across sets)."""
    if catalog.groups is None:
        return []
    members: dict[str, list[Scan]] = {}
    for scan, group in zip(catalog.scans, catalog.groups, strict=True):
        members.setdefault(group, []).append(scan)
    return [m for m in members.values() if len({s.source for s in m}) > 1]


def warn_cross_source_copies(catalog: Catalog) -> None:
    """Say how many images have a near-copy in another source (kept in one split with it)."""
    shared = cross_source_groups(catalog)
    if shared:
        n = sum(len(m) for m in shared)
        warnings.warn(
            f"{n} images in {len(shared)} groups are near-copies across sources (the sets "
            "overlap); each group is kept in one split. python -m braintumor audit "
            "NAME=ROOT NAME=ROOT ... lists them.",
            stacklevel=3,
        )
