"""Copies with a slightly different crop are grouped with their original; distinct scans are not."""

from __future__ import annotations

import hashlib
import json
from collections import defaultdict

import pytest

from braintumor.data.catalog import CatalogSettings, build_catalog
from braintumor.data.cropped_copies import PAIR_SCORES, PairScores
from tests.planted_copies import build_planted


@pytest.fixture(scope="module")
def planted(tmp_path_factory):
    return build_planted(tmp_path_factory.mktemp("planted") / "data")


def _groups(planted, **settings) -> dict[str, int]:
    catalog = build_catalog(CatalogSettings(planted.root, val_fraction=0.2, test_fraction=0.2,
                                            **settings))  # fmt: skip
    return {s.path: g for s, g in zip(catalog.scans, catalog.groups, strict=True)}, catalog


def test_planted_crops_are_grouped_with_their_originals_and_nothing_else(planted):
    group, catalog = _groups(planted)
    grouped = sum(group[original] == group[copy] for original, copy, _ in planted.copies)
    assert grouped / len(planted.copies) >= 0.98, grouped
    originals_per_group = defaultdict(set)
    for original in planted.originals:
        originals_per_group[group[original]].add(original)
    assert all(len(v) == 1 for v in originals_per_group.values())  # 0 false groups
    split_of = dict(zip((s.path for s in catalog.scans), catalog.splits, strict=True))
    assert all(split_of[o] == split_of[c] for o, c, _ in planted.copies)


def test_without_the_crop_check_most_cropped_copies_are_missed(planted):
    group, _ = _groups(planted, group_cropped_copies=False)
    cropped = [(o, c) for o, c, kind in planted.copies if "crop" in kind]
    assert sum(group[o] == group[c] for o, c in cropped) < len(cropped) / 2


def test_verified_pairs_are_kept_by_content_and_reused(planted, tmp_path):
    """A second catalog of the same files reads each candidate's similarity from the cache
    (cached scores changed by hand change the result: nothing was verified again)."""
    first, _ = _groups(planted, cache_dir=tmp_path)
    stored = json.loads((tmp_path / PAIR_SCORES).read_text())
    assert stored["scores"] and all(-1.0 <= v <= 1.0 for v in stored["scores"].values())
    without, _ = _groups(planted, group_cropped_copies=False)
    original, copy, _ = next(  # a copy only the crop check groups
        (o, c, k) for o, c, k in planted.copies if first[o] == first[c] and without[o] != without[c]
    )
    digest = {p: hashlib.sha256((planted.root / p).read_bytes()).hexdigest()
              for p in (original, copy)}  # fmt: skip
    assert PairScores.key(digest[original], digest[copy]) in stored["scores"]
    stored["scores"] = dict.fromkeys(stored["scores"], 0.0)
    (tmp_path / PAIR_SCORES).write_text(json.dumps(stored))
    again, _ = _groups(planted, cache_dir=tmp_path)
    assert again[original] != again[copy]
