"""The issue's quality bar: the default run on the demo data reaches test macro-F1 >= 0.90."""

import json

import pytest
from hydra.core.global_hydra import GlobalHydra

from braintumor.pipeline.train import train
from tests.conftest import compose_config


@pytest.mark.slow
def test_default_run_on_demo_data_reaches_f1_090(tmp_path):
    cfg = compose_config(tmp_path / "run", ["trainer.enable_progress_bar=false"])
    metrics = train(cfg)
    GlobalHydra.instance().clear()
    report = json.loads((tmp_path / "run" / "reports" / "test_metrics.json").read_text())
    assert report["n"] == 120
    assert metrics["test/f1_macro"] == report["f1_macro"] >= 0.90
