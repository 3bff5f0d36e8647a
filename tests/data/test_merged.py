"""Several public sets as one: classes, sources, leakage-safe splits, sampling weights."""

import csv
from collections import Counter

import numpy as np
import pytest
from PIL import Image

from braintumor.data.catalog import CatalogSettings
from braintumor.data.commands.audit import main
from braintumor.data.cross_audit import audit_sources, parse_source
from braintumor.data.datamodule import MRIDataModule
from braintumor.data.loaders import source_weighted
from braintumor.data.merged import build_merged_catalog, source_settings
from braintumor.data.scan import Scan
from braintumor.data.sources.figshare import read_figshare_labels
from braintumor.errors import DataError
from tests.data.public_sets import (
    plant_figshare_copies,
    write_br35h,
    write_figshare,
    write_nickparvar,
)


@pytest.fixture(scope="module")
def sets(tmp_path_factory):
    """figshare3 (20 patients x 3 slices of 128 px) and nickparvar4 holding 40 of its slices
    as re-windowed, rescaled, cropped JPEGs, as the real 4-class set does."""
    base = tmp_path_factory.mktemp("sets")
    write_figshare(base / "figshare3", patients=20, per_patient=3, size=128)
    write_nickparvar(base / "nickparvar4", train=10, test=3)
    planted = plant_figshare_copies(base / "figshare3", base / "nickparvar4", 40)
    return base, planted


def merged_settings(base, **kw):
    kw.setdefault("taxonomy", "family")
    return CatalogSettings(base, **kw)


def sources_of(base, names=("figshare3", "nickparvar4")):
    return source_settings(list(names), {n: base / n for n in names})


def test_planted_cross_source_copies_are_found_and_never_straddle_splits(sets):
    base, planted = sets
    catalog = build_merged_catalog(merged_settings(base), sources_of(base))
    where = {s.path: (g, p) for s, g, p in zip(catalog.scans, catalog.groups, catalog.splits,
                                                strict=True)}  # fmt: skip
    found = [where[f"figshare3/{a}"][0] == where[f"nickparvar4/{b}"][0] for a, b, _ in planted]
    straddle = [where[f"figshare3/{a}"][1] != where[f"nickparvar4/{b}"][1] for a, b, _ in planted]
    assert sum(found) >= 0.95 * len(planted), [
        p for p, f in zip(planted, found, strict=True) if not f
    ]
    assert not any(straddle)
    sizes = Counter(catalog.groups)
    assert max(sizes.values()) <= 3 * 4  # a patient's slices and their copies, nothing spurious


def test_merged_catalog_knows_every_images_source_and_maps_classes(sets):
    base, _ = sets
    catalog = build_merged_catalog(merged_settings(base), sources_of(base))
    assert set(catalog.sources) == {"figshare3", "nickparvar4"}
    assert catalog.class_names == ["glioma", "meningioma", "normal", "pituitary"]
    assert catalog.label_of["nickparvar4/notumor"] == "normal"
    scan = next(s for s in catalog.scans if s.source == "figshare3")
    assert scan.source_label in ("glioma", "meningioma", "pituitary")
    assert scan.path.startswith("figshare3/") and scan.label == f"figshare3/{scan.source_label}"
    # the same name means another class in each set under family_sequence: kept apart
    with_sequence = build_merged_catalog(
        merged_settings(base, taxonomy="family_sequence"), sources_of(base)
    )
    assert with_sequence.label_of["figshare3/glioma"] == "glioma T1C+"
    assert with_sequence.label_of["nickparvar4/glioma"] == "glioma unknown"


def test_figshare_patients_stay_whole_in_a_merged_split(sets):
    base, _ = sets
    catalog = build_merged_catalog(merged_settings(base, split_seed=3), sources_of(base))
    splits: dict[str, set] = {}
    for scan, split in zip(catalog.scans, catalog.splits, strict=True):
        if scan.source == "figshare3":
            pid = read_figshare_labels(base / scan.path)[1]
            splits.setdefault(pid, set()).add(split)
    assert all(len(s) == 1 for s in splits.values())


def test_merged_datamodule_mixes_channels_and_sizes_and_writes_sources(sets, tmp_path):
    base, _ = sets
    rgb = tmp_path / "rgb"  # a set of your own: 3-channel PNGs of another size
    for name in ("tumour", "clear"):
        (rgb / name).mkdir(parents=True)
        for i in range(8):
            colour = np.random.default_rng(i).integers(0, 255, (300, 260, 3), dtype=np.uint8)
            Image.fromarray(colour).save(rgb / name / f"{i}.png")
    mine = tmp_path / "mine.csv"
    mine.write_text("source_label,family,sequence\ntumour,other_tumor,T2\nclear,normal,T2\n")
    dm = MRIDataModule(
        None, sources=["figshare3", "nickparvar4", "mine"],
        roots={"figshare3": base / "figshare3", "nickparvar4": base / "nickparvar4", "mine": rgb},
        label_maps={"mine": mine}, taxonomy="family", image_size=48, channels=3, mean=[0.5],
        std=[0.5], num_workers=0, batch_size=8, cache_dir=tmp_path / "prints",
    )  # fmt: skip
    dm.setup()
    images, _ = next(iter(dm.train_dataloader()))
    assert tuple(images.shape[1:]) == (3, 48, 48)
    assert (dm.num_classes == 5 and dm.root == base.parent) or dm.root.is_dir()
    rows = list(csv.DictReader(dm.save_split(tmp_path / "split.csv").open()))
    assert {r["source"] for r in rows} == {"figshare3", "nickparvar4", "mine"}
    assert all((dm.root / r["path"]).is_file() for r in rows)


def test_merged_needs_a_shared_taxonomy_and_a_root_per_source(sets):
    base, _ = sets
    with pytest.raises(DataError, match="no meaning across sources"):
        build_merged_catalog(merged_settings(base, taxonomy="folder"), sources_of(base))
    with pytest.raises(DataError, match=r"data\.roots\.br35h"):
        source_settings(["figshare3", "br35h"], {"figshare3": base / "figshare3"})
    with pytest.raises(DataError, match="lies inside the root of 'nickparvar4'"):
        source_settings(["nickparvar4", "mine"], {"nickparvar4": base, "mine": base / "x"})
    with pytest.raises(DataError, match="download figshare3"):
        build_merged_catalog(
            merged_settings(base),
            source_settings(["figshare3"], {"figshare3": base / "absent"}),
        )


def test_br35h_merges_under_tumor_vs_normal_only(sets, tmp_path):
    base, _ = sets
    write_br35h(tmp_path / "br35h", per_class=8)
    names = {"nickparvar4": base / "nickparvar4", "br35h": tmp_path / "br35h"}
    with pytest.raises(DataError, match="say 'tumour' without its family"):
        build_merged_catalog(merged_settings(base), source_settings(list(names), names))
    catalog = build_merged_catalog(
        merged_settings(base, taxonomy="tumor_vs_normal"), source_settings(list(names), names)
    )
    assert catalog.class_names == ["normal", "tumor"]
    assert not any("/pred/" in s.path for s in catalog.scans)


def test_source_weights_set_each_sources_share_of_draws():
    scans = [Scan(f"a{i}", "x", "a") for i in range(10)] + [
        Scan(f"b{i}", "x", "b") for i in range(40)
    ]
    weights = source_weighted(scans, {"a": 3.0, "b": 1.0}, None)
    share_a = sum(weights[:10]) / sum(weights)
    assert share_a == pytest.approx(0.75)
    balanced = source_weighted(scans, {"a": 1.0}, [1.0] * 5 + [3.0] * 5 + [1.0] * 40)
    assert sum(balanced[:10]) == pytest.approx(sum(balanced[10:]))  # "b" defaults to 1
    assert balanced[5] == pytest.approx(3 * balanced[0])  # within a source: as given
    with pytest.raises(DataError, match=r"\['c'\]"):
        source_weighted(scans, {"c": 1.0}, None)


def test_audit_across_sets_lists_the_planted_copies(sets, tmp_path):
    base, planted = sets
    report = audit_sources(
        [parse_source(f"figshare3={base / 'figshare3'}"), parse_source(str(base / "nickparvar4"))],
        workers=1, cache_dir=tmp_path,
    )  # fmt: skip
    groups = [
        {(m["source"], m["path"]) for m in g["members"]} for g in report["cross_source_groups"]
    ]
    found = [
        any({("figshare3", a), ("nickparvar4", b)} <= g for g in groups) for a, b, _ in planted
    ]
    assert sum(found) >= 0.95 * len(planted)
    assert report["overlap"]["nickparvar4"]["figshare3"] >= 0.95 * len(planted)
    assert report["sources"]["nickparvar4"]["layout"] == "presplit"
    assert report["sources"]["figshare3"]["n_images"] == 60


def test_audit_command_across_sets_writes_markdown_and_json(sets, tmp_path, capsys):
    base, _ = sets
    report = main([f"figshare3={base / 'figshare3'}", f"nickparvar4={base / 'nickparvar4'}",
                   "--out", str(tmp_path / "audit"), "--workers", "1"])  # fmt: skip
    printed = capsys.readouterr().out
    assert f"{report['n_images_in_several_sets']} in" in printed and "Full audit" in printed
    markdown = (tmp_path / "audit" / "audit.md").read_text()
    assert "## Overlap" in markdown and "| nickparvar4 | presplit |" in markdown
    assert (tmp_path / "audit" / "audit.json").is_file()


def test_merged_split_file_reproduces_the_split(sets, tmp_path):
    base, _ = sets
    first = build_merged_catalog(merged_settings(base, split_seed=1), sources_of(base))
    recorded = first.save_split(tmp_path / "split.csv")
    again = build_merged_catalog(
        merged_settings(base, split_seed=2, split_file=recorded), sources_of(base)
    )
    assert again.splits == first.splits
    with pytest.raises(DataError, match="not classes of"):
        build_merged_catalog(
            merged_settings(base, split_file=recorded), sources_of(base, ("figshare3",))
        )


def test_each_label_knows_its_sequence_from_the_label_maps(sets):
    base, _ = sets
    catalog = build_merged_catalog(merged_settings(base), sources_of(base))
    assert catalog.sequence_of["figshare3/glioma"] == "T1C+"
    assert catalog.sequence_of["nickparvar4/glioma"] == "unknown"
