"""K-fold cross-validation: folds that partition the data, whole groups, stable per seed."""

from __future__ import annotations

from collections import defaultdict

import pytest

from braintumor.data.catalog import CatalogSettings, build_catalog
from braintumor.data.split import kfold_splits
from braintumor.errors import DataError


def _labels_and_groups(n_classes=4, per_class=30, group=3):
    labels = [f"c{i // per_class}" for i in range(n_classes * per_class)]
    groups = [i // group for i in range(len(labels))]
    return labels, groups


def test_five_folds_partition_the_data_with_no_group_in_two_folds():
    labels, groups = _labels_and_groups()
    tests = [kfold_splits(labels, groups, 5, fold, 0.15, seed=7) for fold in range(5)]
    owner = {}
    for fold, splits in enumerate(tests):
        for i, split in enumerate(splits):
            if split == "test":
                assert i not in owner  # disjoint
                owner[i] = fold
    assert sorted(owner) == list(range(len(labels)))  # every item tested exactly once
    folds_of_group = defaultdict(set)
    for i, fold in owner.items():
        folds_of_group[groups[i]].add(fold)
    assert all(len(f) == 1 for f in folds_of_group.values())
    for splits in tests:  # validation: whole groups out of the other folds, every class
        val = [i for i, s in enumerate(splits) if s == "val"]
        assert val and {labels[i] for i in val} == set(labels)
        assert all(
            splits[j] == "val" for i in val for j in range(len(labels)) if groups[j] == groups[i]
        )


def test_the_same_seed_gives_the_same_folds_and_another_seed_other_ones():
    labels, groups = _labels_and_groups()
    assert kfold_splits(labels, groups, 5, 2, 0.15, 7) == kfold_splits(
        labels, groups, 5, 2, 0.15, 7
    )
    assert kfold_splits(labels, groups, 5, 2, 0.15, 7) != kfold_splits(
        labels, groups, 5, 2, 0.15, 8
    )


def test_a_fold_out_of_range_or_folds_with_a_split_file_are_refused(tiny_root, tmp_path):
    labels, groups = _labels_and_groups()
    with pytest.raises(DataError, match=r"data\.fold in"):
        kfold_splits(labels, groups, 5, 5, 0.15, 7)
    with pytest.raises(DataError, match=r"cannot be combined with data\.split_file"):
        build_catalog(CatalogSettings(tiny_root, n_folds=5, fold=0, split_file=tmp_path / "s.csv"))
    with pytest.raises(DataError, match=r"needs data\.n_folds"):
        build_catalog(CatalogSettings(tiny_root, fold=1))


def test_folds_of_a_catalog_cover_every_scan_once(tiny_root):
    tested = []
    for fold in range(4):
        catalog = build_catalog(CatalogSettings(tiny_root, n_folds=4, fold=fold))
        tested += [s.path for s in catalog.in_split("test")]
    assert sorted(tested) == sorted(s.path for s in build_catalog(CatalogSettings(tiny_root)).scans)


def test_experiment_cv5_sweeps_the_five_folds(compose):
    cfg = compose(["experiment=cv5"], hydra=True)
    assert cfg.data.n_folds == 5 and cfg.hydra.sweeper.params["data.fold"] == "range(5)"
