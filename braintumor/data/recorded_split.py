"""A recorded split (a run's ``split.csv``) laid over a catalog built from the files.

For layouts whose scans are only known after reading them (figshare's ``.mat`` labels) and for
merged sets, the catalog is built as usual and the file then decides each scan's split (and
group). The file must describe exactly the readable images found: one it lacks, or one it
lists that is gone, stops the run; a listed image that is now unreadable is skipped.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

from braintumor.data.split import read_split_csv
from braintumor.errors import DataError

if TYPE_CHECKING:
    from braintumor.data.catalog import Catalog


def _shown(paths: list[str]) -> str:
    return ", ".join(f"'{p}'" for p in paths[:5]) + (" ..." if len(paths) > 5 else "")


def apply_split_file(catalog: Catalog, file: Path) -> Catalog:
    """``catalog`` with the splits (and groups) of ``file``; see the module docstring."""
    scans, splits, groups = read_split_csv(file)
    listed = {s.path: i for i, s in enumerate(scans)}
    skipped = {s.path for s, _ in catalog.skipped}
    absent = [p for p in listed if p not in skipped and p not in {s.path for s in catalog.scans}]
    if absent:
        raise DataError(
            f"{len(absent)} image(s) of split file '{file}' are not found under "
            f"'{catalog.root}': {_shown(absent)}. Is it the split of these data?"
        )
    unlisted = [s.path for s in catalog.scans if s.path not in listed]
    if unlisted:
        raise DataError(
            f"split file '{file}' lacks {len(unlisted)} of the {len(catalog.scans)} readable "
            f"images under '{catalog.root}': {_shown(unlisted)}. A split file must describe "
            "all of the data: use it with the data it was made on, or set data.split_file=null "
            "to split anew."
        )
    relabelled = [s.path for s in catalog.scans if scans[listed[s.path]].label != s.label]
    if relabelled:
        raise DataError(
            f"split file '{file}' gives {len(relabelled)} image(s) another class than the data "
            f"now do: {_shown(relabelled)}."
        )
    order = [listed[s.path] for s in catalog.scans]
    return replace(
        catalog,
        splits=tuple(splits[i] for i in order),
        groups=tuple(groups[i] for i in order) if groups is not None else catalog.groups,
    )
