"""The audit across sets: which images are present in several of them.

``python -m braintumor audit nickparvar4=data/nickparvar4 figshare3=data/figshare3`` hashes
every image of every set (each in its own layout, fingerprints cached per set) and lists the
groups of near-copies (perceptual hash, or the same image up to a crop of a few percent) that
span sets, with the overlap of each pair of sets. ``data=merged`` keeps such groups in one
split; an external set's copies of training images are what its score must not count.
"""

from __future__ import annotations

import os
from collections import Counter, defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from braintumor.data.catalog import CatalogSettings, CatalogStages
from braintumor.data.cropped_copies import PAIR_SCORES, cropped_copy_pairs
from braintumor.data.duplicates import groups_from_pairs, near_duplicate_pairs
from braintumor.data.merged import SourceSettings, scan_source
from braintumor.data.public_sets import PUBLIC_SETS
from braintumor.data.scan import Scan
from braintumor.data.sources import detect_layout
from braintumor.errors import DataError


def parse_source(argument: str) -> SourceSettings:
    """``NAME=ROOT`` or ``ROOT`` (named after its folder): a public set's layout when the
    name is one, else detected from the files."""
    name, sep, root = argument.partition("=")
    path = Path(root if sep else argument)
    name = name if sep else path.resolve().name
    known = PUBLIC_SETS.get(name)
    if known is not None:
        return SourceSettings(name, path, known.layout, None, known.exclude_folders)
    return SourceSettings(name, path, detect_layout(path))


def audit_sources(
    sources: Sequence[SourceSettings],
    max_distance: int = 12,
    hash_size: int = 16,
    workers: int | None = None,
    cache_dir: str | Path | None = None,
) -> dict[str, Any]:
    """Fingerprint every readable image of every source and list the near-copy groups that
    span sources (``cross_source_groups``), with ``overlap[a][b]``: images of ``a`` that have
    a copy in ``b``."""
    names = [s.name for s in sources]
    if len(set(names)) != len(names):
        raise DataError(f"each set needs its own name (NAME=ROOT), got {names}.")
    workers = workers or max(1, os.cpu_count() or 1)
    scans: list[Scan] = []
    files: list[Path] = []
    prints = []
    per_source: dict[str, dict[str, Any]] = {}
    for source in sources:
        settings = CatalogSettings(
            source.root, source.layout, hash_size=hash_size, workers=workers,
            cache_dir=Path(cache_dir) if cache_dir else None, source=source.name,
        )  # fmt: skip
        stages = CatalogStages(settings)
        found, _ = scan_source(stages, source)
        scans += [Scan(s.path, s.label, source.name) for s in found]
        files += [source.root / s.path for s in found]
        prints += [stages.prints[s.path] for s in found]
        per_source[source.name] = {
            "root": str(source.root),
            "layout": source.layout,
            "n_images": len(found),
            "images_per_class": dict(sorted(Counter(s.label for s in found).items())),
            "unreadable": [{"path": s.path, "reason": why} for s, why in stages.skipped],
        }
    pairs = near_duplicate_pairs([p.phash for p in prints], max_distance)
    cropped = cropped_copy_pairs(
        files, [p.crop_hash for p in prints], [(p.width, p.height) for p in prints],
        max_distance, workers=workers, digests=[p.sha256 for p in prints],
        score_cache=Path(cache_dir) / PAIR_SCORES if cache_dir else None,
    )  # fmt: skip
    pairs += [(i, j, 0) for i, j in cropped]
    group_of = groups_from_pairs(len(scans), pairs)
    members: dict[int, list[int]] = defaultdict(list)
    for i, group in enumerate(group_of):
        members[group].append(i)
    overlap = {a: dict.fromkeys(names, 0) for a in names}
    shared, within = [], Counter()
    for idx in members.values():
        if len(idx) < 2:
            continue
        in_group = sorted({scans[i].source for i in idx})
        if len(in_group) == 1:
            within[in_group[0]] += 1
            continue
        for i in idx:
            for other in in_group:
                if other != scans[i].source:
                    overlap[scans[i].source][other] += 1
        shared.append(
            {
                "sources": in_group,
                "classes": sorted({f"{scans[i].source}/{scans[i].label}" for i in idx}),
                "members": [
                    {"source": scans[i].source, "path": scans[i].path, "class": scans[i].label}
                    for i in idx
                ],
            }
        )
    shared.sort(key=lambda g: (-len(g["members"]), g["members"][0]["path"]))
    for name in names:
        per_source[name]["near_duplicate_groups_within"] = within[name]
    return {
        "sources": per_source,
        "settings": {"max_distance": max_distance, "hash_size": hash_size},
        "n_images": len(scans),
        "cross_source_groups": shared,
        "n_images_in_several_sets": sum(len(g["members"]) for g in shared),
        "overlap": overlap,
    }


def to_markdown(report: dict[str, Any], max_groups: int = 50) -> str:
    """A readable Markdown rendering of :func:`audit_sources`'s result."""
    names = list(report["sources"])
    lines = [
        f"# Data audit across {len(names)} sets",
        "",
        f"- {report['n_images']} readable images; **{report['n_images_in_several_sets']} in "
        f"{len(report['cross_source_groups'])} groups of near-copies spanning sets** (pHash of "
        f"{report['settings']['hash_size']}² bits, distance ≤ "
        f"{report['settings']['max_distance']}, or the same image up to a crop)",
        "",
        "| set | layout | images | classes | unreadable | near-copy groups within |",
        "| --- | --- | ---: | ---: | ---: | ---: |",
    ]
    for name, info in report["sources"].items():
        lines.append(
            f"| {name} | {info['layout']} | {info['n_images']} | {len(info['images_per_class'])}"
            f" | {len(info['unreadable'])} | {info['near_duplicate_groups_within']} |"
        )
    lines += [
        "",
        "## Overlap (images of the row's set with a copy in the column's set)",
        "",
        "| | " + " | ".join(names) + " |",
        "| --- |" + " ---: |" * len(names),
    ]
    for a in names:
        cells = ["-" if a == b else str(report["overlap"][a][b]) for b in names]
        lines.append(f"| {a} | " + " | ".join(cells) + " |")
    groups = report["cross_source_groups"]
    if groups:
        lines += ["", f"## Groups spanning sets (first {min(max_groups, len(groups))})", ""]
        for group in groups[:max_groups]:
            paths = ", ".join(f"`{m['source']}:{m['path']}`" for m in group["members"][:8])
            more = f" … +{len(group['members']) - 8}" if len(group["members"]) > 8 else ""
            lines.append(f"- {len(group['members'])} images ({', '.join(group['classes'])}): "
                         f"{paths}{more}")  # fmt: skip
    return "\n".join(lines) + "\n"
