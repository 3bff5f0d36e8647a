"""Inputs that cannot be honoured as given are refused (never silently ignored)."""

from __future__ import annotations

import csv
import json
import shutil
from collections import defaultdict
from pathlib import Path

import pytest

from braintumor.data.datamodule import MRIDataModule
from braintumor.errors import DataError


def _dm(root, **kwargs) -> MRIDataModule:
    defaults = dict(image_size=32, batch_size=8, num_workers=0, val_fraction=0.25,
                    test_fraction=0.25, group_near_duplicates=False)  # fmt: skip
    dm = MRIDataModule(root, **{**defaults, **kwargs})
    dm.setup("fit")
    return dm


def _write_groups(path: Path, root: Path, style: str = "relative") -> Path:
    """Four "patients" of four consecutive scans per class."""
    with path.open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["path", "group"])
        for folder in sorted(p for p in root.iterdir() if p.is_dir()):
            for i, file in enumerate(sorted(folder.glob("*.jpeg"))):
                shown = {
                    "relative": file.relative_to(root).as_posix(),
                    "absolute": str(file),
                    "dotted": "./" + file.relative_to(root).as_posix(),
                    "other": f"/elsewhere/{folder.name}/{file.name}",
                }[style]
                writer.writerow([shown, f"{folder.name}:{i // 4}"])
    return path


def _splits_per_group(dm: MRIDataModule) -> dict[str, set[str]]:
    split_of = {s.path: split for split, d in dm.datasets.items() for s in d.scans}
    spans = defaultdict(set)
    for scan in dm.catalog.scans:
        spans[f"{scan.label}:{int(Path(scan.path).stem.split('_')[-1]) // 4}"].add(
            split_of[scan.path]
        )
    return spans


@pytest.mark.parametrize("style", ["relative", "absolute", "dotted"])
def test_group_file_with_relative_or_absolute_paths_keeps_each_group_in_one_split(
    tiny_root, tmp_path, style
):
    dm = _dm(tiny_root, group_file=_write_groups(tmp_path / "groups.csv", tiny_root, style))
    spans = _splits_per_group(dm)
    assert len(spans) == 16 and all(len(s) == 1 for s in spans.values()), spans


def test_group_file_whose_paths_match_nothing_is_refused_with_examples(tiny_root, tmp_path):
    groups = _write_groups(tmp_path / "groups.csv", tiny_root, "other")
    with pytest.raises(
        DataError, match=r"64 of 64 path\(s\).*match no image.*/elsewhere/Glioblastoma"
    ):
        _dm(tiny_root, group_file=groups)


def test_group_file_may_leave_a_stated_share_unmatched(tiny_root, tmp_path):
    groups = _write_groups(tmp_path / "groups.csv", tiny_root)
    rows = groups.read_text().splitlines()
    groups.write_text("\n".join([*rows, "gone/case_9999.jpeg,ghost"]) + "\n")
    with pytest.raises(DataError, match=r"1 of 65 path\(s\)"):
        _dm(tiny_root, group_file=groups)
    dm = _dm(tiny_root, group_file=groups, group_file_unmatched=0.05)
    assert all(len(s) == 1 for s in _splits_per_group(dm).values())


def test_split_file_that_covers_part_of_the_data_is_refused(tiny_root, tmp_path):
    path = _dm(tiny_root).save_split(tmp_path / "split.csv")
    rows = path.read_text().splitlines()
    path.write_text("\n".join(rows[:13]) + "\n")  # 12 of the 64 images
    with pytest.raises(DataError, match=r"lists 12 of the 64 readable images.*split anew"):
        _dm(tiny_root, split_file=path)


def test_split_file_still_accepts_data_whose_only_extra_files_are_unreadable(tiny_copy, tmp_path):
    path = _dm(tiny_copy).save_split(tmp_path / "split.csv")
    (next(tiny_copy.iterdir()) / "broken.jpeg").write_bytes(b"not an image")
    with pytest.warns(UserWarning, match="broken.jpeg"):
        dm = _dm(tiny_copy, split_file=path)
    assert sum(len(d) for d in dm.datasets.values()) == 64
    assert [s.path.endswith("broken.jpeg") for s, _ in dm.catalog.skipped] == [True]


def test_group_file_giving_one_path_two_groups_is_refused(tiny_root, tmp_path):
    groups = _write_groups(tmp_path / "groups.csv", tiny_root)
    first = groups.read_text().splitlines()[1].split(",")[0]
    groups.write_text(groups.read_text() + f"./{first},another\n")
    with pytest.raises(DataError, match="two groups"):
        _dm(tiny_root, group_file=groups)


def test_evaluating_other_data_refuses_the_checkpoints_split_unless_told(
    trained_ckpt, tiny_root, tmp_path
):
    import shutil

    from hydra.core.global_hydra import GlobalHydra

    from braintumor.pipeline.evaluate import evaluate
    from tests.conftest import FAST, compose_config

    bigger = Path(shutil.copytree(tiny_root, tmp_path / "bigger"))
    for folder in sorted(p for p in bigger.iterdir() if p.is_dir()):
        for file in sorted(folder.glob("*.jpeg"))[:4]:
            shutil.copy(file, folder / f"extra_{file.name}")  # 16 images the split never saw
    overrides = ["data=folder", f"data.root={bigger}", *FAST, "train=false", "logger=none",
                 f"ckpt_path={trained_ckpt}", "data.group_near_duplicates=false"]  # fmt: skip
    try:
        cfg = compose_config(tmp_path / "eval", overrides)
        with pytest.raises(DataError, match=r"(?s)16 are not in it.*eval.reuse_split=false"):
            evaluate(cfg)
        cfg = compose_config(tmp_path / "eval_new", [*overrides, "eval.reuse_split=false"])
        metrics = evaluate(cfg)
    finally:
        GlobalHydra.instance().clear()
    split = (tmp_path / "eval_new" / "split.csv").read_text().splitlines()
    test = json.loads((tmp_path / "eval_new" / "reports" / "test_metrics.json").read_text())
    assert len(split) == 1 + 80 and test["n"] == 12 and "test/f1_macro" in metrics  # split anew


def test_split_csv_records_the_users_case_ids_and_names_near_copy_groups(tiny_copy, tmp_path):
    folders = sorted(p for p in tiny_copy.iterdir() if p.is_dir())
    first, second, unlisted = folders[0], folders[1], folders[2]
    files = sorted(first.glob("*.jpeg"))
    shutil.copy(files[0], first / "copy_of_case0.jpeg")  # a near-copy of a listed scan
    shutil.copy(files[4], first / "case1_copy_as_case0.jpeg")  # ties case1 to case0
    copied = sorted(unlisted.glob("*.jpeg"))[0]
    shutil.copy(copied, unlisted / "zz_copy.jpeg")  # copies no case id names
    path = tmp_path / "groups.csv"
    with path.open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["path", "group"])
        for n, folder in enumerate((first, second)):
            for i, file in enumerate(sorted(folder.glob("case_*.jpeg"))):
                writer.writerow([file.relative_to(tiny_copy).as_posix(), f"P-{n}{i // 4:03d}"])
        writer.writerow([f"{first.name}/case1_copy_as_case0.jpeg", "P-0000"])
    dm = _dm(tiny_copy, group_file=path, group_near_duplicates=True)
    recorded = dm.save_split(tmp_path / "split.csv")
    with recorded.open(newline="") as f:
        group_of = {row["path"]: row["group"] for row in csv.DictReader(f)}

    def rel(file: Path) -> str:
        return file.relative_to(tiny_copy).as_posix()

    assert group_of[rel(files[0])] == group_of[rel(first / "copy_of_case0.jpeg")] == "P-0000+P-0001"
    assert group_of[rel(files[8])] == "P-0002"  # the user's id, not a renumbered integer
    assert {group_of[rel(f)] for f in sorted(second.glob("*.jpeg"))[:4]} == {"P-1000"}
    assert (
        group_of[rel(copied)]
        == group_of[rel(unlisted / "zz_copy.jpeg")]
        == (f"near-copy:{rel(copied)}")
    )
    alone = sorted(unlisted.glob("*.jpeg"))[1]
    assert group_of[rel(alone)] == rel(alone)
    reused = _dm(tiny_copy, split_file=recorded)  # a recorded split reads its ids back
    assert reused.catalog.groups == dm.catalog.groups
    assert reused.catalog.splits == dm.catalog.splits
