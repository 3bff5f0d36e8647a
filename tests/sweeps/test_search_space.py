"""Hydra's sweep syntax as Optuna distributions, the grid, and the pruners the config names."""

from __future__ import annotations

import optuna
import pytest
from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

from braintumor.errors import UsageError
from braintumor.sweeps.study import build_pruner
from hydra_plugins.braintumor_optuna._search_space import grid, search_space


def test_sweep_overrides_become_distributions_and_the_command_line_wins():
    space, fixed = search_space([
        "lr=tag(log, interval(1e-4, 1e-2))", "dropout=interval(0.0, 0.5)",
        "batch=choice(16, 32)", "depth=range(2, 8, 2)", "width=interval(1, 4)",
        "augment=choice(none, strong)", "dropout=0.3",
    ])  # fmt: skip
    assert space == {
        "lr": FloatDistribution(1e-4, 1e-2, log=True),
        "batch": CategoricalDistribution([16, 32]),
        "depth": IntDistribution(2, 6, step=2),  # range's stop is excluded, as in Python
        "width": FloatDistribution(1.0, 4.0),  # Hydra's intervals are floats
        "augment": CategoricalDistribution(["none", "strong"]),
    }
    assert fixed == {"dropout": "0.3"}
    assert grid({k: space[k] for k in ("batch", "depth")}) == {"batch": [16, 32],
                                                               "depth": [2, 4, 6]}  # fmt: skip
    with pytest.raises(UsageError, match="grid sampler needs choice"):
        grid({"lr": space["lr"]})


def test_the_configs_pruners_are_built_from_its_names(compose):
    for name, kind, overrides in (
        ("median", optuna.pruners.MedianPruner, []),
        ("hyperband", optuna.pruners.HyperbandPruner, ["trainer.max_epochs=27"]),
        ("none", optuna.pruners.NopPruner, []),
    ):
        cfg = compose(["hparams_search=cnn_optuna", f"hparams_search.pruner={name}",
                       *overrides], hydra=True)  # fmt: skip
        sweeper = cfg.hydra.sweeper
        pruner = build_pruner(sweeper.pruner, sweeper.pruners)
        assert isinstance(pruner, kind), name
        if name == "hyperband":  # up to the run's last epoch
            assert pruner._max_resource == 27
