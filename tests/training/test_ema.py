"""model.ema_decay: the weights' moving average is what is validated, checkpointed and served,
and a resumed run continues the same average."""

from __future__ import annotations

import pytest
import torch

from braintumor.errors import UsageError
from braintumor.pipeline.train import train
from braintumor.training.module import MRIClassifier

COMMON = ["logger=none", "~callbacks.lr_monitor", "~callbacks.augmented_samples", "seed=3",
          "trainer.deterministic=true", "~callbacks.early_stopping",
          "model.ema_decay=0.6"]  # fmt: skip


def _checkpoint(path):
    return torch.load(path, map_location="cpu", weights_only=False)


def test_the_average_is_checkpointed_and_served(make_cfg, tmp_path):
    metrics = train(make_cfg(*COMMON, "trainer.max_epochs=2"))
    best = next((tmp_path / "run" / "checkpoints").glob("epoch_*.ckpt"))
    saved = _checkpoint(best)
    averaged, current = saved["state_dict"], saved["current_model_state"]
    assert averaged.keys() == current.keys()
    assert any(not torch.equal(averaged[k], current[k]) for k in averaged)  # two sets of weights
    served = MRIClassifier.from_checkpoint(best).state_dict()
    assert all(torch.equal(served[k], averaged[k]) for k in averaged)
    assert 0 <= metrics["test/f1_macro"] <= 1  # the reports ran on the averaged checkpoint


def test_a_resumed_run_continues_the_same_average(make_cfg, tmp_path):
    train(make_cfg(*COMMON, "trainer.max_epochs=3", "test=false", run="whole"))
    train(make_cfg(*COMMON, "trainer.max_epochs=1", "test=false", run="first"))
    last = tmp_path / "first" / "checkpoints" / "last.ckpt"
    train(make_cfg(*COMMON, "trainer.max_epochs=3", "test=false", f"ckpt_path={last}",
                   run="resumed"))  # fmt: skip
    whole = _checkpoint(tmp_path / "whole" / "checkpoints" / "last.ckpt")
    resumed = _checkpoint(tmp_path / "resumed" / "checkpoints" / "last.ckpt")
    for part in ("state_dict", "current_model_state"):
        assert all(torch.equal(whole[part][k], resumed[part][k]) for k in whole[part]), part


def test_a_decay_outside_0_1_is_refused(make_cfg):
    with pytest.raises(UsageError, match=r"model\.ema_decay must be a number in \[0, 1\)"):
        train(make_cfg("model.ema_decay=1.5"))


def _fresh_statistics(model, images):
    """The BatchNorm statistics ``model``'s own weights give ``images`` (one batch)."""
    import copy

    model = copy.deepcopy(model)
    layers = [m for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    for m in layers:
        m.reset_running_stats()
        m.momentum = None
    model.train()
    with torch.no_grad():
        model(images)
    return [(m.running_mean, m.running_var) for m in layers]


@pytest.mark.parametrize("bn_batches", [1, 0])
def test_the_average_has_batchnorm_statistics_of_its_own_weights(make_cfg, tmp_path, bn_batches):
    """Averaging the statistics like the weights gives statistics that no network had (it
    collapsed a bf16 run to one class): they are recomputed through the averaged weights.
    One batch per epoch without augmentation: the statistics are that batch's exactly."""
    from hydra.utils import instantiate

    cfg = make_cfg(*COMMON, "trainer.max_epochs=3", "test=false", "augment=none",
                   "data.batch_size=64", "model.optimizer.lr=0.05",
                   f"model.ema_bn_batches={bn_batches}")  # fmt: skip
    train(cfg)
    data = instantiate(cfg.data)
    data.setup("fit")
    ((images, _),) = list(data.train_dataloader())
    for saved in ("last.ckpt", next((tmp_path / "run" / "checkpoints").glob("epoch_*")).name):
        served = MRIClassifier.from_checkpoint(tmp_path / "run" / "checkpoints" / saved)
        layers = [m for m in served.modules() if isinstance(m, torch.nn.BatchNorm2d)]
        fresh = _fresh_statistics(served.net, images.contiguous(memory_format=served.memory_format))
        consistent = all(
            torch.allclose(m.running_mean, mean, atol=1e-5, rtol=1e-4)
            and torch.allclose(m.running_var, var, atol=1e-5, rtol=1e-4)
            for m, (mean, var) in zip(layers, fresh, strict=True)
        )
        assert layers and consistent == (bn_batches > 0), saved


def test_a_negative_bn_batches_is_refused(make_cfg):
    with pytest.raises(UsageError, match=r"model\.ema_bn_batches must be a whole number >= 0"):
        train(make_cfg("model.ema_decay=0.9", "model.ema_bn_batches=-1"))


def test_a_run_resumed_mid_epoch_recomputes_the_same_batchnorm_statistics(make_cfg, tmp_path):
    """Stopped at step 20 (epoch 1, batch 8 of 11): the statistics after epoch 1 come from
    batches 7-10, two of them trained before the stop, kept in the mid-epoch checkpoint."""
    common = [*COMMON, "test=false", "data.batch_size=4", "model.ema_bn_batches=4",
              "callbacks.step_checkpoint.every_n_train_steps=10"]  # fmt: skip
    train(make_cfg(*common, "trainer.max_epochs=2", run="whole"))
    train(make_cfg(*common, "trainer.max_epochs=2", "+trainer.max_steps=20", run="first"))
    stopped = tmp_path / "first" / "checkpoints" / "step.ckpt"
    saved = _checkpoint(stopped)
    assert saved["global_step"] == 20 and saved["epoch"] == 1
    kept = next(v for k, v in saved["callbacks"].items() if "bn_inputs" in v)["bn_inputs"]
    assert len(kept) == 4
    train(make_cfg(*common, "trainer.max_epochs=2", f"ckpt_path={stopped}", run="resumed"))
    whole = _checkpoint(tmp_path / "whole" / "checkpoints" / "last.ckpt")["state_dict"]
    resumed = _checkpoint(tmp_path / "resumed" / "checkpoints" / "last.ckpt")["state_dict"]
    assert any("running_var" in k for k in whole)
    assert all(torch.equal(whole[k], resumed[k]) for k in whole), [
        k for k in whole if not torch.equal(whole[k], resumed[k])
    ]
