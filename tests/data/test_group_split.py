from collections import Counter, defaultdict

import pytest

from braintumor.data.split import group_stratified_split


def _data():
    labels, groups = [], []
    gid = 0
    for label, n in (("big", 120), ("mid", 40), ("six", 6)):
        for i in range(n):
            labels.append(label)
            if label != "six" and i % 3 == 0:
                gid += 1  # triplets of near-duplicates
            elif label == "six" or i % 3 == 0:
                gid += 1
            groups.append(gid)
    return labels, groups


def test_groups_never_cross_splits_and_classes_are_stratified():
    labels, groups = _data()
    splits = group_stratified_split(labels, groups, 0.15, 0.15, seed=0)
    seen = defaultdict(set)
    for g, s in zip(groups, splits, strict=True):
        seen[g].add(s)
    assert all(len(s) == 1 for s in seen.values())
    counts = Counter(splits)
    assert 0.09 < counts["test"] / len(labels) < 0.22 and 0.09 < counts["val"] / len(labels) < 0.22
    for label in ("big", "mid", "six"):
        present = {s for lab, s in zip(labels, splits, strict=True) if lab == label}
        assert present == {"train", "val", "test"}, label


def test_same_seed_same_split():
    labels, groups = _data()
    assert group_stratified_split(labels, groups, 0.15, 0.15, 3) == group_stratified_split(
        labels, groups, 0.15, 0.15, 3
    )


def test_class_with_too_few_groups_warns_and_stays_in_train():
    labels = ["a"] * 30 + ["b"] * 2
    groups = list(range(32))
    with pytest.warns(UserWarning, match=r"b \(2\)"):
        splits = group_stratified_split(labels, groups, 0.2, 0.2, seed=0)
    assert "train" in {s for lab, s in zip(labels, splits, strict=True) if lab == "b"}
