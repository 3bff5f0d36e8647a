"""Training loops at parity with lightning-hydra-template's tests: resume from last.ckpt,
two validations per epoch, the debug modes, and hparams with final metrics in TensorBoard."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch
from hydra.core.global_hydra import GlobalHydra
from lightning.pytorch import Callback, LightningModule, Trainer
from lightning.pytorch.callbacks import EarlyStopping
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from braintumor.pipeline.train import train
from braintumor.resolvers import run_name
from tests.conftest import compose_config, tensorboard_dir


class LastCheckpointEpochs(Callback):
    """Records the epoch stored in ``last.ckpt`` at the start of each training epoch and at
    the end of fitting (checkpoint callbacks run last: their epoch-end save comes after ours)."""

    seen: list[int] = []

    def _record(self, trainer: Trainer) -> None:
        path = Path(trainer.checkpoint_callback.dirpath) / "last.ckpt"
        if path.is_file():
            LastCheckpointEpochs.seen.append(torch.load(path, weights_only=False)["epoch"])

    def on_train_epoch_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        self._record(trainer)

    def on_fit_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        self._record(trainer)


class BestF1AtStart(Callback):
    """Records the module's best validation F1 when each training epoch starts."""

    seen: list[float] = []

    def on_train_epoch_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        BestF1AtStart.seen.append(float(pl_module.val_f1_best.max_value))


class RestoredScores(Callback):
    """Records the best checkpoint score and early stopping's best score at the start of
    fitting (after a resumed run restored them)."""

    seen: list[tuple[float | None, float | None]] = []

    def on_train_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        stopper = next(c for c in trainer.callbacks if isinstance(c, EarlyStopping))
        best = trainer.checkpoint_callback.best_model_score
        RestoredScores.seen.append(
            (None if best is None else float(best), float(stopper.best_score))
        )


class ValidationCount(Callback):
    """Counts validation loops run during fitting (sanity checks excluded)."""

    runs = 0

    def on_validation_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        if not trainer.sanity_checking and trainer.state.fn == "fit":
            ValidationCount.runs += 1


def _trained_epochs(run_dir: Path, steps_per_epoch: int) -> list[int]:
    """The epochs for which the run logged a training loss (from its TensorBoard events: an
    epoch's loss is logged at its last step)."""
    board = EventAccumulator(str(tensorboard_dir(run_dir)))
    board.Reload()
    return [(e.step + 1) // steps_per_epoch - 1 for e in board.Scalars("train/loss")]


def test_resume_from_last_ckpt_continues_without_repeating_epochs(make_cfg, tmp_path):
    LastCheckpointEpochs.seen = []
    probe = f"+callbacks.probe._target_={__name__}.LastCheckpointEpochs"
    first = train(make_cfg("trainer.max_epochs=2", "seed=1", probe, run="first"))
    assert LastCheckpointEpochs.seen == [0, 1]  # last.ckpt written at every epoch
    last = tmp_path / "first" / "checkpoints" / "last.ckpt"
    LastCheckpointEpochs.seen = []
    second = train(
        make_cfg("trainer.max_epochs=4", "seed=1", probe, f"ckpt_path={last}", run="second")
    )
    assert LastCheckpointEpochs.seen == [2, 3]  # epochs 0 and 1 were not trained again
    assert (first["epoch"], second["epoch"]) == (2, 4)
    state = torch.load(tmp_path / "second" / "checkpoints" / "last.ckpt", weights_only=False)
    first_state = torch.load(last, weights_only=False)
    steps = first_state["global_step"] // 2
    assert _trained_epochs(tmp_path / "first", steps) == [0, 1]
    assert _trained_epochs(tmp_path / "second", steps) == [2, 3]
    assert state["epoch"] == 3 and state["global_step"] == 2 * first_state["global_step"]


def test_a_resumed_run_remembers_its_best_f1_and_ignores_the_sanity_check(make_cfg, tmp_path):
    first = train(make_cfg("trainer.max_epochs=2", run="first"))
    last = tmp_path / "first" / "checkpoints" / "last.ckpt"
    stored = float(torch.load(last, weights_only=False)["state_dict"]["val_f1_best.max_value"])
    assert stored == pytest.approx(first["val/f1_macro_best"])
    BestF1AtStart.seen = []
    probe = f"+callbacks.probe._target_={__name__}.BestF1AtStart"
    second = train(
        make_cfg("trainer.max_epochs=3", "trainer.num_sanity_val_steps=1", probe,
                 f"ckpt_path={last}", run="second")
    )  # fmt: skip
    assert BestF1AtStart.seen == [pytest.approx(stored)]  # restored; the sanity batch not seen
    assert second["val/f1_macro_best"] >= stored


def test_a_checkpoint_with_the_old_metric_names_resumes_with_its_best_score(make_cfg, tmp_path):
    """Checkpoints saved while the monitor was called val/f1 keep the best score and early
    stopping's state when resumed (filed under val/f1_macro, the same number)."""
    train(make_cfg("trainer.max_epochs=2", "seed=1", run="first"))
    folder = tmp_path / "first" / "checkpoints"
    checkpoint = torch.load(folder / "last.ckpt", weights_only=False)
    legacy = {}
    for key, state in checkpoint["callbacks"].items():
        if "'monitor': 'val/f1_macro'" in key:  # as checkpoints of older runs store them
            key = key.replace("'val/f1_macro'", "'val/f1'")
            state = {**state, **({"monitor": "val/f1"} if "monitor" in state else {})}
        legacy[key] = state
    assert sum("'val/f1'" in k for k in legacy) == 2  # ModelCheckpoint and EarlyStopping
    best = next(float(s["best_model_score"]) for s in legacy.values() if s.get("best_model_path"))
    torch.save({**checkpoint, "callbacks": legacy}, folder / "legacy.ckpt")
    RestoredScores.seen = []
    probe = f"+callbacks.probe._target_={__name__}.RestoredScores"
    train(make_cfg("trainer.max_epochs=3", "seed=1", probe,
                            f"ckpt_path={folder / 'legacy.ckpt'}", run="second"))  # fmt: skip
    assert RestoredScores.seen == [(pytest.approx(best), pytest.approx(best))]


def test_two_validation_loops_per_epoch(make_cfg):
    ValidationCount.runs = 0
    cfg = make_cfg(
        "trainer.val_check_interval=0.5", "trainer.max_epochs=1", "data.batch_size=4",
        f"+callbacks.count._target_={__name__}.ValidationCount",
    )  # fmt: skip
    metrics = train(cfg)
    assert ValidationCount.runs == 2
    assert 0.0 <= metrics["val/f1_macro_best"] <= 1.0


@pytest.mark.parametrize("mode", ["fdr", "limit", "overfit", "profiler"])
def test_debug_mode_runs(mode, make_cfg):
    cap = [] if mode == "fdr" else ["trainer.max_epochs=2"]  # the modes' own epochs: slow test
    metrics = train(make_cfg(f"debug={mode}", *cap))
    assert "train/loss" in metrics and "test/f1_macro" in metrics


@pytest.mark.slow
def test_debug_overfit_drives_training_loss_far_below_chance(make_cfg):
    # the tests' fast overrides cap epochs at 1 and shrink the CNN: the mode's 30 epochs back,
    # and a network with the capacity to memorize 3 batches
    cfg = make_cfg("debug=overfit", "trainer.max_epochs=30", "model.net.widths=[16,32,64]",
                   "model.net.dropout=0.0", "model.optimizer.lr=3e-3")  # fmt: skip
    chance = math.log(4)  # 4 classes: a broken model or data set stays near ln(4) = 1.39
    assert train(cfg)["train/loss"] < 0.3 * chance


def test_tensorboard_hparams_have_the_final_metrics_and_named_runs(make_cfg, tmp_path):
    from tensorboard.plugins.hparams import plugin_data_pb2

    overrides = ("trainer.max_epochs=2", "model.optimizer.lr=0.002")
    metrics = train(make_cfg(*overrides))
    run_dir = tmp_path / "run"
    folder = tensorboard_dir(run_dir)
    # named by the overrides (sorted by Hydra), paths left out, long names cut with a hash
    assert folder.name.startswith("callbacks.augmented_samples.num_images=4,data.batch_size=16,")
    assert "root" not in folder.name and "~" in folder.name
    assert folder.parent.name == "tensorboard" and len(folder.name) <= 120
    board = EventAccumulator(str(folder))
    board.Reload()
    scalars = set(board.Tags()["scalars"])
    assert "hp_metric" not in scalars and "epoch" not in scalars  # no charts of bookkeeping
    report = json.loads((run_dir / "reports" / "test_metrics.json").read_text())
    val = json.loads((run_dir / "reports" / "val_metrics.json").read_text())
    content = board.PluginTagToContent("hparams")
    experiment = plugin_data_pb2.HParamsPluginData.FromString(content["_hparams_/experiment"])
    tags = {m.name.tag for m in experiment.experiment.metric_infos}
    assert {"val/f1_macro_best", "val/f1_macro", "test/f1_macro", "test/accuracy"} <= tags
    # the tab shows each tag's last value: the final metrics (val: the best checkpoint's)
    last = {tag: board.Scalars(tag)[-1].value for tag in tags}
    assert last["test/f1_macro"] == pytest.approx(report["f1_macro"], abs=1e-6)
    assert last["val/f1_macro"] == pytest.approx(val["f1_macro"], abs=1e-6)
    assert last["val/f1_macro_best"] == pytest.approx(metrics["val/f1_macro_best"])
    start = plugin_data_pb2.HParamsPluginData.FromString(
        content["_hparams_/session_start_info"]
    ).session_start_info.hparams
    assert start["model.optimizer.lr"].number_value == pytest.approx(0.002)
    assert start["augment"].string_value == "standard"


def test_run_name_shows_overrides_safely():
    assert run_name("") == ""
    name = run_name("data.root=/a/b c,model.net.widths=[8,16],model.optimizer.lr=0.000123456789")
    assert name == "data.root=_a_b_c,model.net.widths=[8,16],model.optimizer.lr=0.0001235"
    long_a = run_name(",".join(f"k{i}=v" for i in range(60)))
    long_b = run_name(",".join(f"k{i}=v" for i in range(61)))
    assert len(long_a) == len(long_b) == 120 and long_a != long_b


def test_run_name_is_hydras_override_dirname_without_the_excluded_keys(tmp_path, tiny_root):
    cfg = compose_config(
        tmp_path, ["data=folder", f"data.root={tiny_root}", "seed=3", "model.optimizer.lr=0.003"]
    )
    try:
        # sorted by Hydra, data.root left out (exclude_keys)
        assert cfg.logger.tensorboard.version == "data=folder,model.optimizer.lr=0.003,seed=3"
    finally:
        GlobalHydra.instance().clear()


def test_precision_auto_is_bf16_on_a_gpu_with_it_and_32_bit_on_the_cpu(monkeypatch):
    import torch

    from braintumor.pipeline.build import trainer_precision

    assert trainer_precision("16-mixed", "gpu") == "16-mixed"  # what a user sets, kept
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert trainer_precision("auto", "auto") == "32-true"
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert trainer_precision("auto", "cpu") == "32-true"
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda: True)
    assert trainer_precision("auto", "auto") == "bf16-mixed"
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda: False)
    assert trainer_precision("auto", "gpu") == "16-mixed"


@pytest.mark.parametrize("native", [False, True])
def test_precision_auto_bf16_takes_bf16_on_a_cpu_only_where_it_is_native(monkeypatch, native):
    import torch

    from braintumor.pipeline.build import trainer_precision

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda: native)
    monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: False)
    assert trainer_precision("auto-bf16", "cpu") == ("bf16-mixed" if native else "32-true")
    assert trainer_precision("auto", "cpu") == "32-true"  # the default stays 32-bit on CPUs
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda: False)
    assert trainer_precision("auto-bf16", "auto") == "16-mixed"  # a GPU: as auto
