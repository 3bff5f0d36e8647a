"""EvaluationSettings: made once from conf/eval/, every constraint checked with the key named."""

from __future__ import annotations

import dataclasses

import pytest
from omegaconf import OmegaConf

from braintumor.constraints import BOOLEAN, NULL, Either, Interval, Options, check
from braintumor.errors import UsageError
from braintumor.evaluation.settings import CONSTRAINTS, EvaluationSettings
from braintumor.pipeline.settings import evaluation_settings
from tests.conftest import CONF_DIR, FAST, compose_config


def test_conf_eval_holds_every_evaluation_setting_and_its_defaults_pass(compose):
    cfg = compose()
    settings = evaluation_settings(cfg)
    names = {f.name for f in dataclasses.fields(EvaluationSettings)} - {"seed"}
    assert names <= set(cfg.eval)  # every default written in conf/eval/default.yaml
    assert settings.bootstrap == cfg.eval.bootstrap and settings.ece_bins == cfg.eval.ece_bins
    assert settings.seed == cfg.seed
    assert set(CONSTRAINTS) <= {f.name for f in dataclasses.fields(EvaluationSettings)}


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("eval.bootstrap=-1", r"eval\.bootstrap must be a whole number >= 0, got -1\."),
        ("eval.bootstrap=2.5", r"eval\.bootstrap must be a whole number >= 0, got 2\.5\."),
        ("eval.tta=rotate", r"eval\.tta must be one of 'none', 'flip', 'flip_shift', got 'rotate'"),
        ("eval.target_accuracy=0", r"eval\.target_accuracy must be a number in \(0, 1\], got 0\."),
        ("eval.calibration=platt", r"eval\.calibration must be one of 'temperature', 'none'"),
        ("eval.ece_bins=0", r"eval\.ece_bins must be a whole number >= 1, got 0\."),
        ("eval.remove_near_copies=1", r"eval\.remove_near_copies must be one of True, False"),
        ("eval.pointing_target=mask", r"eval\.pointing_target must be one of 'label', 'pred"),
    ],
)
def test_a_bad_evaluation_setting_is_refused_naming_the_key(compose, override, message):
    with pytest.raises(UsageError, match=message):
        evaluation_settings(compose([override]))


def test_a_bad_evaluation_setting_stops_the_run_before_training(tmp_path):
    from braintumor.pipeline.train import train

    cfg = compose_config(tmp_path / "run", [*FAST, "logger=none", "eval.min_support=-3"])
    with pytest.raises(UsageError, match=r"eval\.min_support must be a whole number >= 0"):
        train(cfg)
    assert not (tmp_path / "run" / "checkpoints").exists()  # nothing was trained


def test_a_missing_evaluation_key_names_the_config_group():
    values = OmegaConf.to_container(OmegaConf.load(CONF_DIR / "eval" / "default.yaml"))
    del values["bootstrap"]
    with pytest.raises(KeyError, match=r"eval is missing \['bootstrap'\]"):
        EvaluationSettings.from_config(values, seed=0)


def test_constraints_tell_booleans_from_numbers_and_describe_themselves():
    assert BOOLEAN.accepts(True) and not BOOLEAN.accepts(1)
    assert Interval(0, whole=True).accepts(3) and not Interval(0, whole=True).accepts(True)
    assert not Interval(0, 1).accepts(float("nan"))
    assert str(Interval(0, 1, closed="left")) == "a number in [0, 1)"
    assert Either((NULL, Interval(0, whole=True))).accepts(None)
    assert str(Either((NULL, Options((1, 3))))) == "one of None or one of 1, 3"
    check("data", {"channels": 3, "unchecked": "x"}, {"channels": Options((1, 3))})
    with pytest.raises(UsageError, match=r"data\.channels must be one of 1, 3, got 2\."):
        check("data", {"channels": 2}, {"channels": Options((1, 3))})
