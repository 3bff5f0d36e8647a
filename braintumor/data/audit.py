"""Audit a class-folder dataset before training on it.

``python -m braintumor audit DATA_ROOT [--out DIR] [--distance 12]`` prints and writes
(``audit.md`` + ``audit.json``): images per class, sizes and modes, unreadable files, junk
files, exact duplicates (identical bytes) and near-duplicate groups (perceptual hash, or the
same image up to a crop of a few percent: :mod:`braintumor.data.cropped_copies`), within and
across classes; a near-duplicate group spanning classes is a possible label conflict.

Several roots (``audit nickparvar4=data/nickparvar4 figshare3=data/figshare3``), or one set in
another layout (pre-split, figshare ``.mat``): the audit across sets
(:mod:`braintumor.data.cross_audit`), which lists the images present in several sets.
"""

from __future__ import annotations

import os
import statistics
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

from braintumor.data.cropped_copies import PAIR_SCORES, cropped_copy_pairs
from braintumor.data.duplicates import exact_duplicate_sets, groups_from_pairs, near_duplicate_pairs
from braintumor.data.fingerprint import fingerprint_scans
from braintumor.data.scan import (
    Scan,
    find_classes,
    is_scan_file,
    walk_class_folder,
    warn_about_links,
)


def _walk(root: Path, classes: list[str]) -> tuple[list[Scan], list[str]]:
    """Image scans and junk files (relative paths) under ``root`` (no link loops followed)."""
    scans: list[Scan] = []
    junk: list[str] = [e.name for e in os.scandir(root) if e.is_file()]
    links: list[str] = []
    for label in classes:
        for folder, names in walk_class_folder(root, label, links):
            for name in names:
                path = (folder / name).as_posix()
                (scans.append(Scan(path, label)) if is_scan_file(name) else junk.append(path))
    warn_about_links(root, links)
    return scans, sorted(junk)


def _size_summary(values: list[int]) -> dict[str, float]:
    if not values:
        return {}
    return {"min": min(values), "median": statistics.median(values), "max": max(values)}


def audit_dataset(
    root: str | Path,
    max_distance: int = 12,
    hash_size: int = 16,
    workers: int | None = None,
    cache_file: str | Path | None = None,
    progress: bool = False,
) -> dict[str, Any]:
    """Inspect every file under ``root/<class>/`` and return the audit as a dict."""
    root = Path(root)
    classes = find_classes(root)
    scans, junk = _walk(root, classes)
    workers = workers or max(1, os.cpu_count() or 1)
    prints = fingerprint_scans(
        root, [s.path for s in scans], hash_size, cache_file, workers=workers, progress=progress
    )
    readable = [s for s in scans if not prints[s.path].error]
    unreadable = [
        {"path": s.path, "reason": prints[s.path].error} for s in scans if prints[s.path].error
    ]
    per_class = Counter(s.label for s in readable)
    widths = [prints[s.path].width for s in readable]
    heights = [prints[s.path].height for s in readable]
    modes = Counter(prints[s.path].mode for s in readable)

    exact = [
        [{"path": readable[i].path, "class": readable[i].label} for i in members]
        for members in exact_duplicate_sets([prints[s.path].sha256 for s in readable])
    ]
    pairs = near_duplicate_pairs([prints[s.path].phash for s in readable], max_distance)
    cropped = cropped_copy_pairs(
        [root / s.path for s in readable], [prints[s.path].crop_hash for s in readable],
        [(prints[s.path].width, prints[s.path].height) for s in readable], max_distance,
        workers=workers, digests=[prints[s.path].sha256 for s in readable],
        score_cache=Path(cache_file).parent / PAIR_SCORES if cache_file else None,
    )  # fmt: skip
    pairs += [(i, j, 0) for i, j in cropped]  # copies up to a crop: listed with distance 0
    group_of = groups_from_pairs(len(readable), pairs)
    members: dict[int, list[int]] = defaultdict(list)
    for i, g in enumerate(group_of):
        members[g].append(i)
    worst: dict[int, int] = defaultdict(int)
    for i, _, d in pairs:
        worst[group_of[i]] = max(worst[group_of[i]], d)
    near = []
    for g, idx in members.items():
        if len(idx) < 2:
            continue
        labels = sorted({readable[i].label for i in idx})
        near.append(
            {
                "size": len(idx),
                "classes": labels,
                "cross_class": len(labels) > 1,
                "max_distance": worst[g],
                "members": [{"path": readable[i].path, "class": readable[i].label} for i in idx],
            }
        )
    near.sort(key=lambda grp: (not grp["cross_class"], -grp["size"], grp["members"][0]["path"]))
    return {
        "root": str(root),
        "settings": {"max_distance": max_distance, "hash_size": hash_size},
        "n_classes": len(classes),
        "n_images": len(readable),
        "images_per_class": {c: per_class.get(c, 0) for c in classes},
        "width": _size_summary(widths),
        "height": _size_summary(heights),
        "modes": dict(modes.most_common()),
        "unreadable": unreadable,
        "junk": junk,
        "exact_duplicates": exact,
        "near_duplicate_groups": near,
        "n_near_duplicate_images": sum(grp["size"] for grp in near),
        "n_label_conflicts": sum(grp["cross_class"] for grp in near),
    }


def to_markdown(report: dict[str, Any], max_groups: int = 50) -> str:
    """A readable Markdown rendering of :func:`audit_dataset`'s result."""
    counts = report["images_per_class"]
    lines = [
        f"# Data audit: `{report['root']}`",
        "",
        f"- {report['n_images']} readable images in {report['n_classes']} classes "
        f"({min(counts.values(), default=0)} to {max(counts.values(), default=0)} per class)",
        f"- width {report['width']}, height {report['height']}",
        f"- modes: {report['modes']}",
        f"- unreadable: {len(report['unreadable'])}; junk files: {len(report['junk'])}",
        f"- exact duplicate sets: {len(report['exact_duplicates'])}",
        f"- near-duplicate groups: {len(report['near_duplicate_groups'])} "
        f"({report['n_near_duplicate_images']} images; pHash of {report['settings']['hash_size']}² "
        f"bits, distance ≤ {report['settings']['max_distance']}); "
        f"**possible label conflicts (groups spanning classes): {report['n_label_conflicts']}**",
        "",
        "## Images per class",
        "",
        "| class | images |",
        "| --- | ---: |",
        *[f"| {c} | {n} |" for c, n in counts.items()],
    ]
    if report["unreadable"]:
        lines += ["", "## Unreadable files", ""]
        lines += [f"- `{u['path']}`: {u['reason']}" for u in report["unreadable"]]
    if report["junk"]:
        lines += ["", "## Junk files (ignored)", ""] + [f"- `{j}`" for j in report["junk"]]
    if report["exact_duplicates"]:
        lines += ["", "## Exact duplicates (identical files)", ""]
        for dup in report["exact_duplicates"][:max_groups]:
            lines.append("- " + ", ".join(f"`{m['path']}`" for m in dup))
    groups = report["near_duplicate_groups"]
    if groups:
        lines += ["", f"## Near-duplicate groups (first {min(max_groups, len(groups))})", ""]
        for grp in groups[:max_groups]:
            flag = "**label conflict** " if grp["cross_class"] else ""
            paths = ", ".join(f"`{m['path']}`" for m in grp["members"][:8])
            more = f" … +{grp['size'] - 8}" if grp["size"] > 8 else ""
            lines.append(
                f"- {flag}{grp['size']} images, distance ≤ {grp['max_distance']}: {paths}{more}"
            )
    return "\n".join(lines) + "\n"
