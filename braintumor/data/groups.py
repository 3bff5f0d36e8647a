"""User-supplied groups (case or patient ids) that must stay within one split."""

from __future__ import annotations

import csv
import os
from collections import defaultdict
from collections.abc import Collection, Mapping, Sequence
from pathlib import Path, PurePosixPath

from braintumor.errors import DataError


def root_relative(listed: str, root: Path) -> str:
    """A path as listed in a group file -> the scan path it names (relative to ``root``).

    Relative paths are taken relative to ``root`` (``./`` and ``\\`` separators allowed);
    absolute paths must lie under ``root`` (as given or with links resolved). A path that
    cannot be made relative is returned unchanged, so it matches no scan.
    """
    text = listed.strip().replace("\\", "/")
    if not os.path.isabs(text):
        parts = [p for p in PurePosixPath(text).parts if p != "."]
        return PurePosixPath(*parts).as_posix() if parts else text
    for base in (root.absolute(), root.resolve()):
        for candidate in (Path(text), Path(text).resolve()):
            if candidate.is_relative_to(base):
                return candidate.relative_to(base).as_posix()
    return listed


def read_group_file(path: str | Path, root: str | Path) -> dict[str, str]:
    """Read a CSV with columns ``path`` (relative to the data root, or absolute under it) and
    ``group``; ``{scan path relative to root: group}`` (rows with an empty group skipped)."""
    path, root = Path(path), Path(root)
    if not path.is_file():
        raise DataError(f"group file '{path}' does not exist (data.group_file).")
    with path.open(newline="") as f:
        reader = csv.DictReader(f)
        if not {"path", "group"} <= set(reader.fieldnames or []):
            raise DataError(
                f"group file '{path}' needs the columns 'path,group' (path relative to "
                f"data.root, e.g. 'Meningioma T1/img1.jpeg,patient_17'); found {reader.fieldnames}."
            )
        groups: dict[str, str] = {}
        for row in reader:
            if row["group"] == "":
                continue
            scan, group = root_relative(row["path"], root), f"user:{row['group']}"
            if groups.setdefault(scan, group) != group:
                raise DataError(
                    f"group file '{path}' gives '{scan}' two groups ({groups[scan][5:]} and "
                    f"{row['group']}, line {reader.line_num}): one image belongs to one case. "
                    "Fix the file."
                )
            groups[scan] = group
    return groups


def group_ids(
    labels: Sequence[int], paths: Sequence[str], *given: Sequence[str | None]
) -> list[str]:
    """What ``split.csv`` records as each scan's group, ``labels`` being the groups the split
    keeps whole (:func:`~braintumor.data.duplicates.combine_groups`) and ``given`` the ids
    that named them (the user's case ids, a source's patient ids), one per scan or ``None``.

    Without ``given`` ids, the labels themselves. With them: a group's given ids (joined by
    ``+`` where near-copies tie several cases together), ``near-copy:<its first file>`` for a
    group of copies that no id names, and the file itself for a scan alone.
    """
    if not given:
        return [str(label) for label in labels]
    members: dict[int, list[int]] = defaultdict(list)
    for i, label in enumerate(labels):
        members[label].append(i)
    id_of: dict[int, str] = {}
    for label, items in members.items():
        names = sorted({ids[i] for ids in given for i in items if ids[i] is not None})
        if names:
            id_of[label] = "+".join(names)  # type: ignore[arg-type]
        elif len(items) > 1:
            id_of[label] = f"near-copy:{paths[items[0]]}"
        else:
            id_of[label] = paths[items[0]]
    return [id_of[label] for label in labels]


def check_group_paths(
    file: Path, by_path: Mapping[str, str], known: Collection[str], root: Path, unmatched: float
) -> None:
    """Refuse a group file when more than ``unmatched`` (a share) of its paths name no image
    under ``root``: its groups would silently not apply, and cases would span splits."""
    missing = [p for p in by_path if p not in known]
    if not missing or len(missing) <= unmatched * len(by_path):
        return
    shown = ", ".join(f"'{p}'" for p in missing[:5]) + (" ..." if len(missing) > 5 else "")
    raise DataError(
        f"{len(missing)} of {len(by_path)} path(s) in group file '{file}' match no image under "
        f"data.root '{root}': {shown}. List paths relative to data.root (e.g. "
        f"'{min(known, default='<class>/<file>.jpeg')}') or absolute paths under it, point "
        "data.root at the data the file describes, or allow a share of unmatched paths with "
        f"data.group_file_unmatched (now {unmatched:g})."
    )
