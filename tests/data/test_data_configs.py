"""data=<public set> and data=merged compose, instantiate and train (tiny copies)."""

import csv
import json

import pytest
from hydra.utils import instantiate

from braintumor.pipeline.train import train
from tests.conftest import FAST, compose_config
from tests.data.public_sets import write_br35h, write_figshare, write_nickparvar


@pytest.fixture(scope="module")
def roots(tmp_path_factory):
    base = tmp_path_factory.mktemp("public")
    write_figshare(base / "figshare3", patients=9, per_patient=3)
    write_nickparvar(base / "nickparvar4", train=8, test=3)
    write_br35h(base / "br35h", per_class=8)
    return base


@pytest.mark.parametrize(
    ("data", "classes"),
    [
        ("figshare3", ["glioma", "meningioma", "pituitary"]),
        ("nickparvar4", ["glioma", "meningioma", "normal", "pituitary"]),
        ("br35h", ["normal", "tumor"]),
    ],
)
def test_each_public_set_config_builds_its_datamodule(compose, roots, tmp_path, data, classes):
    cfg = compose([f"data={data}", f"data.root={roots / data}", "data.num_workers=0",
                   f"data.cache_dir={tmp_path}"])  # fmt: skip
    dm = instantiate(cfg.data)
    dm.setup()
    assert dm.class_names == classes
    assert set(dm.catalog.sources) == {data}


def test_merged_config_takes_the_sources_and_their_roots(compose, roots, tmp_path):
    cfg = compose([
        "data=merged", "data.sources=[figshare3,nickparvar4]", "data.num_workers=0",
        f"data.roots.figshare3={roots / 'figshare3'}",
        f"data.roots.nickparvar4={roots / 'nickparvar4'}", f"data.cache_dir={tmp_path}",
        "data.source_weights={figshare3: 2.0}",
    ])  # fmt: skip
    dm = instantiate(cfg.data)
    dm.setup()
    assert dm.class_names == ["glioma", "meningioma", "normal", "pituitary"]
    assert set(dm.catalog.sources) == {"figshare3", "nickparvar4"}
    assert dm.loading.source_weights == {"figshare3": 2.0}


def test_a_run_on_a_merged_set_records_each_images_source(roots, tmp_path):
    cfg = compose_config(tmp_path / "run", [
        "data=merged", "data.sources=[figshare3,nickparvar4]",
        f"data.roots.figshare3={roots / 'figshare3'}",
        f"data.roots.nickparvar4={roots / 'nickparvar4'}", *FAST,
    ])  # fmt: skip
    train(cfg)
    run = tmp_path / "run"
    split = (run / "split.csv").read_text().splitlines()
    assert split[0].endswith(",source") and any(",figshare3" in row for row in split[1:])
    assert json.loads((run / "reports" / "test_metrics.json").read_text())
    subgroups = list(csv.DictReader((run / "reports" / "test_subgroups.csv").open()))
    by_source = {r["value"]: int(r["n"]) for r in subgroups if r["attribute"] == "source"}
    assert set(by_source) <= {"figshare3", "nickparvar4"} and sum(by_source.values()) > 0
    assert not any(r["value"] == "unreadable now" for r in subgroups)  # .mat slices read too
    sequences = {r["value"] for r in subgroups if r["attribute"] == "sequence"}
    assert "T1C+" in sequences  # figshare's slices, known from its label map, not "unknown"
    assert "figshare3+nickparvar4" in (run / "reports" / "model_card.md").read_text()
