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


def test_pairs_a_group_file_already_joins_are_not_verified(planted, tmp_path):
    """A copy and its original in one group of the group file need no pixel check: their pair
    is not scored, yet they share a split; pairs across groups are still verified."""
    first, _ = _groups(planted, cache_dir=tmp_path / "all")
    every = json.loads((tmp_path / "all" / PAIR_SCORES).read_text())["scores"]
    without, _ = _groups(planted, group_cropped_copies=False)
    crop_only = [
        (o, c) for o, c, _ in planted.copies if first[o] == first[c] and without[o] != without[c]
    ]
    joined, apart = crop_only[0], crop_only[1]
    group_file = tmp_path / "groups.csv"
    group_file.write_text(f"path,group\n{joined[0]},case-a\n{joined[1]},case-a\n")
    group, catalog = _groups(planted, cache_dir=tmp_path / "joined", group_file=group_file)
    scored = json.loads((tmp_path / "joined" / PAIR_SCORES).read_text())["scores"]

    def key(pair):
        return PairScores.key(*(hashlib.sha256((planted.root / p).read_bytes()).hexdigest()
                                for p in pair))  # fmt: skip

    assert key(joined) in every and key(joined) not in scored  # the joined pair: not checked
    assert key(apart) in scored and group[apart[0]] == group[apart[1]]  # the other: checked
    assert len(scored) == len(every) - 1
    split_of = dict(zip((s.path for s in catalog.scans), catalog.splits, strict=True))
    assert group[joined[0]] == group[joined[1]] and split_of[joined[0]] == split_of[joined[1]]
