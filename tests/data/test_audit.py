"""The audit and a full run on a dirty copy of the 44-class layout."""

import csv
import json
from collections import defaultdict

import pytest

from braintumor.data.audit import audit_dataset
from braintumor.data.commands.audit import main
from tests.dirty44 import build_dirty44


@pytest.fixture(scope="module")
def dirty(tmp_path_factory):
    return build_dirty44(tmp_path_factory.mktemp("dirty") / "brain44c")


def _groups_of(report):
    return [{m["path"] for m in grp["members"]} for grp in report["near_duplicate_groups"]]


def test_audit_finds_every_planted_problem(dirty):
    report = audit_dataset(dirty.root, workers=1)
    assert report["n_classes"] == 44
    assert [u["path"] for u in report["unreadable"]] == dirty.unreadable
    assert sorted(report["junk"]) == sorted(dirty.junk)
    assert {"L", "RGB", "CMYK", "RGBA", "I;16"} <= set(report["modes"])
    groups = _groups_of(report)
    for a, b in dirty.near_pairs + dirty.conflict_pairs:
        assert any({a, b} <= g for g in groups), (a, b)
    assert len(groups) == len(dirty.near_pairs) + len(dirty.conflict_pairs)  # nothing spurious
    conflicts = [grp for grp in report["near_duplicate_groups"] if grp["cross_class"]]
    assert {frozenset(m["path"] for m in c["members"]) for c in conflicts} == {
        frozenset(p) for p in dirty.conflict_pairs
    }
    assert report["n_label_conflicts"] == 2


def test_audit_counts_readable_images_per_class(dirty):
    report = audit_dataset(dirty.root, workers=1)
    expected = dict(dirty.counts)
    assert report["images_per_class"] == expected  # the truncated file is not counted
    assert report["n_images"] == sum(expected.values())


def test_audit_command_writes_markdown_and_json(dirty, tmp_path, capsys):
    main([str(dirty.root), "--out", str(tmp_path / "audit"), "--workers", "2"])
    printed = capsys.readouterr().out
    assert "possible label conflicts (groups spanning classes): 2" in printed
    saved = json.loads((tmp_path / "audit" / "audit.json").read_text())
    assert saved["n_label_conflicts"] == 2
    markdown = (tmp_path / "audit" / "audit.md").read_text()
    assert "**label conflict**" in markdown and dirty.unreadable[0] in markdown
    again = audit_dataset(dirty.root, cache_file=tmp_path / "audit" / "fingerprints.json")
    assert again["near_duplicate_groups"] == saved["near_duplicate_groups"]


def test_brain44c_run_reports_bad_files_and_keeps_duplicates_together(dirty, make_cfg, tmp_path):
    from braintumor.pipeline.train import train

    cfg = make_cfg("data=brain44c", f"data.root={dirty.root}", "data.image_size=32")
    with pytest.warns(UserWarning, match="skipping 1 unreadable") as record:
        metrics = train(cfg)
    assert any(dirty.unreadable[0] in str(w.message) for w in record)
    run = tmp_path / "run"
    skipped = list(csv.DictReader((run / "skipped_images.csv").open()))
    assert [r["path"] for r in skipped] == dirty.unreadable
    rows = list(csv.DictReader((run / "split.csv").open()))
    assert len(rows) == sum(dirty.counts.values())
    split_of = {r["path"]: r["split"] for r in rows}
    for a, b in dirty.near_pairs + dirty.conflict_pairs:
        assert split_of[a] == split_of[b], (a, b)
    by_group = defaultdict(set)
    for r in rows:
        by_group[r["group"]].add(r["split"])
    assert all(len(s) == 1 for s in by_group.values())
    per_class = defaultdict(set)
    for r in rows:
        per_class[r["class"]].add(r["split"])
    groups_per_class = defaultdict(set)
    for r in rows:
        groups_per_class[r["class"]].add(r["group"])
    for label, splits in per_class.items():
        if len(groups_per_class[label]) >= 3:
            assert splits == {"train", "val", "test"}, label
    report = json.loads((run / "reports" / "test_metrics.json").read_text())
    assert "accuracy_tumor_type" in report and report["accuracy_tumor_type"] >= report["accuracy"]
    assert metrics["test/accuracy_tumor_type"] == report["accuracy_tumor_type"]
