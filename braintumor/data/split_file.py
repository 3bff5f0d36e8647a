"""A recorded split (``data.split_file``, a run's ``split.csv``) laid over the scans found.

One stage for every layout and for merged sets: the sources are scanned and checked as usual,
then the file decides each scan's split and group (no new split, no grouping). The file must
describe exactly the readable images found: a class the data lack, an image it lists that is
gone, one it lacks, or one it gives another class stops the run; a listed image that is now
unreadable is skipped (and reported as such).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from braintumor.data.scan import Scan
from braintumor.data.split import read_split_csv
from braintumor.errors import DataError


def _shown(paths: list[str]) -> str:
    return ", ".join(f"'{p}'" for p in paths[:5]) + (" ..." if len(paths) > 5 else "")


def recorded_splits(
    file: Path,
    root: Path,
    scans: Sequence[Scan],
    skipped: Sequence[tuple[Scan, str]],
    classes: Sequence[str],
) -> tuple[list[str], list[int] | None]:
    """The split (and group, ``None`` when the file has none) of each of ``scans`` as
    ``file`` records them; ``skipped`` are the unreadable images of ``root`` and ``classes``
    its class names (see the module docstring)."""
    listed_scans, splits, groups = read_split_csv(file)
    unknown = sorted({s.label for s in listed_scans} - set(classes))
    if unknown:
        raise DataError(
            f"split file '{file}' names class(es) {unknown} that are not classes of "
            f"'{root}' (found {list(classes)})."
        )
    listed = {s.path: i for i, s in enumerate(listed_scans)}
    found = {s.path for s in scans} | {s.path for s, _ in skipped}
    absent = [p for p in listed if p not in found]
    if absent:
        raise DataError(
            f"{len(absent)} file(s) of split file '{file}' are missing under '{root}': "
            f"{_shown(absent)}. Is data.root the folder the split was made on?"
        )
    unlisted = [s.path for s in scans if s.path not in listed]
    if unlisted:
        raise DataError(
            f"split file '{file}' lists {len(scans) - len(unlisted)} of the {len(scans)} "
            f"readable images under '{root}'; {len(unlisted)} are not in it: "
            f"{_shown(unlisted)}. A split file must describe all of data.root: use it with the "
            "data it was made on, or set data.split_file=null to split anew."
        )
    relabelled = [s.path for s in scans if listed_scans[listed[s.path]].label != s.label]
    if relabelled:
        raise DataError(
            f"split file '{file}' gives {len(relabelled)} image(s) another class than the data "
            f"now do: {_shown(relabelled)}."
        )
    order = [listed[s.path] for s in scans]
    return [splits[i] for i in order], [groups[i] for i in order] if groups is not None else None
