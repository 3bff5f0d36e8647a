"""TensorBoard that opens on what matters, read back from the event files of a tiny real run:
train and val on one chart with the learning rate (custom scalars), no ``epoch`` or per-class
scalar charts, per-class numbers as one table and one figure, the hyperparameters a person set
(no ``_target_``, no paths) and labelled sample grids."""

from __future__ import annotations

import csv
import re

import matplotlib.pyplot as plt
import pytest
import torch
from hydra.core.global_hydra import GlobalHydra
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from tensorboard.plugins.custom_scalar import layout_pb2
from tensorboard.plugins.hparams import plugin_data_pb2

from braintumor.pipeline.hparams import run_hparams
from braintumor.pipeline.train import train
from braintumor.training.board import per_class_table
from braintumor.training.callbacks.sample_grid import labelled_grid
from braintumor.training.hparams import HP_METRICS
from tests.conftest import FAST, compose_config, tensorboard_dir

LR = 0.0023


@pytest.fixture(scope="module")
def board_run(tmp_path_factory, tiny_root):
    """A real 2-epoch run on the tiny data, with the learning rate set on the command line."""
    run_dir = tmp_path_factory.mktemp("board") / "run"
    overrides = ["data=folder", f"data.root={tiny_root}", *FAST, "trainer.max_epochs=2",
                 f"model.optimizer.lr={LR}", "seed=1"]  # fmt: skip
    train(compose_config(run_dir, overrides))
    GlobalHydra.instance().clear()
    board = EventAccumulator(str(tensorboard_dir(run_dir)), size_guidance={"tensors": 0})
    board.Reload()
    return run_dir, board


def test_scalars_hold_curves_not_epoch_or_per_class_charts(board_run):
    _, board = board_run
    scalars = set(board.Tags()["scalars"])
    assert {"train/loss", "val/loss", "train/f1_macro", "val/f1_macro", "lr-Adam"} <= scalars
    assert {"test/f1_macro", "test/accuracy", "test/ece"} <= scalars  # the HPARAMS columns
    assert "epoch" not in scalars and "hp_metric" not in scalars
    assert not [t for t in scalars if "_class/" in t]  # a table and a figure instead
    assert len(board.Scalars("train/loss")) == 2  # one point per epoch


def test_custom_scalars_put_train_and_val_on_one_chart_with_the_learning_rate(board_run):
    _, board = board_run
    config = board.Tensors("custom_scalars__config__")[-1].tensor_proto.string_val[0]
    layout = layout_pb2.Layout.FromString(config)
    charts = {c.title: list(c.multiline.tag) for cat in layout.category for c in cat.chart}
    scalars = board.Tags()["scalars"]

    def matched(chart: str) -> set[str]:
        return {t for t in scalars for rx in charts[chart] if re.fullmatch(rx.strip("^$"), t)}

    assert matched("loss") == {"train/loss", "val/loss"}
    assert {"train/f1_macro", "val/f1_macro"} <= matched("f1_macro")
    assert matched("learning rate") == {"lr-Adam"}
    assert len(layout.category) == 1  # the curves and the learning rate in one category


def test_hparams_are_what_a_person_set_with_the_final_metrics(board_run):
    _, board = board_run
    content = board.PluginTagToContent("hparams")
    start = plugin_data_pb2.HParamsPluginData.FromString(content["_hparams_/session_start_info"])
    hparams = dict(start.session_start_info.hparams)
    assert hparams["model.optimizer.lr"].number_value == pytest.approx(LR)
    assert hparams["model"].string_value == "cnn" and hparams["data"].string_value == "folder"
    assert {"seed", "data.batch_size", "data.image_size", "trainer.max_epochs"} <= set(hparams)
    assert len(hparams) <= 25
    for key in hparams:
        assert not re.search(r"_target_|root|cache|_dir|path|file", key), key
    experiment = plugin_data_pb2.HParamsPluginData.FromString(content["_hparams_/experiment"])
    metrics = [m.name.tag for m in experiment.experiment.metric_infos]
    assert metrics == [m for m in HP_METRICS if m in metrics]  # the objective first
    assert metrics[0] == "val/f1_macro_best" and "test/f1_macro" in metrics[:5]
    # the keys set on the command line differ between runs: TensorBoard lists them first
    infos = list(experiment.experiment.hparam_infos)
    differing = [i.name for i in infos if i.differs]
    assert "model.optimizer.lr" in differing and "data.image_size" in differing
    assert "augment" not in differing and "seed" in differing  # set by the fixture's command
    assert [i.differs for i in infos] == sorted((i.differs for i in infos), reverse=True)


def test_per_class_test_numbers_are_one_table_and_one_figure(board_run):
    run_dir, board = board_run
    text = board.Tensors("test/per_class/text_summary")[-1].tensor_proto.string_val[0].decode()
    rows = csv.DictReader((run_dir / "reports" / "classification_report_test.csv").open())
    classes = [r for r in rows if not r["class"].endswith(" avg")]
    assert len(classes) == 4
    for row in classes:
        line = next(x for x in text.splitlines() if x.startswith(f"| {row['class']} |"))
        assert f"{float(row['f1']):.3f}" in line and f"| {row['support']} |" in line
    images = set(board.Tags()["images"])
    assert {"test/per_class", "val/per_class", "test/confusion_matrix"} <= images


def test_sample_grid_is_labelled_with_class_names(board_run):
    _, board = board_run
    grid = board.Images("train/augmented_samples")[-1]
    assert grid.width >= 4 * 100 and grid.height >= 150  # 4 labelled images, not 32 px tiles
    names = ["Glioma T1", "Meningioma T1C+", "Oligodendroglioma T1C+", "_NORMAL T2"]
    fig = labelled_grid(torch.rand(4, 1, 16, 16), names, per_row=2)
    texts = [t.get_text().replace("\n", " ") for ax in fig.axes for t in ax.texts]
    assert texts == names
    assert min(t.get_fontsize() for ax in fig.axes for t in ax.texts) * fig.dpi / 72 >= 9
    plt.close(fig)


def test_two_sweep_jobs_that_differ_in_lr_differ_in_their_hparams(tmp_path, tiny_root):
    jobs = []
    for lr in (0.01, 0.001):
        overrides = ["data=folder", f"data.root={tiny_root}", f"model.optimizer.lr={lr}"]
        jobs.append(run_hparams(compose_config(tmp_path / str(lr), overrides)))
        GlobalHydra.instance().clear()
    differ = {k for k in jobs[0] if jobs[0][k] != jobs[1].get(k)}
    assert differ == {"model.optimizer.lr"}
    assert "data.root" not in jobs[0] and not any("_target_" in k for k in jobs[0])


def test_per_class_table_is_markdown_with_one_row_per_class():
    rows = [{"class": "a", "precision": 0.5, "recall": 1.0, "f1": 2 / 3, "support": 1},
            {"class": "b|c", "precision": 1.0, "recall": 0.5, "f1": 0.7, "support": 2}]  # fmt: skip
    table = per_class_table(rows).splitlines()
    assert table[0] == "| class | precision | recall | f1 | support |"
    assert table[2] == "| a | 0.500 | 1.000 | 0.667 | 1 |"
    assert table[3].startswith("| b\\|c | 1.000 |") and len(table) == 4


def test_a_sweep_marks_only_what_it_varies_as_differing(tmp_path):
    """In a multirun the HPARAMS tab lists first the keys the sweep varies (its search space
    and the command line's ``a=1,2`` sweeps), not every key its command line fixed."""
    from hydra.core.hydra_config import HydraConfig
    from omegaconf import OmegaConf, open_dict

    from braintumor.pipeline.hparams import swept_keys
    from tests.conftest import compose_train

    cfg = compose_train(["hparams_search=cnn_optuna", "data.image_size=64"], hydra=True)
    with open_dict(cfg):
        cfg.hydra.runtime.output_dir = str(tmp_path / "sweep" / "3")
    sweep = ["seed=1,2", "data.root=/x", "model.net.widths=[8,16]", "data.split_file=a,b"]
    (tmp_path / "sweep").mkdir()
    OmegaConf.save({"hydra": {"overrides": {"task": sweep}}}, tmp_path / "sweep" / "multirun.yaml")
    saved = HydraConfig.instance().cfg
    try:
        HydraConfig().set_config(cfg)
        keys = swept_keys()
    finally:
        HydraConfig.instance().cfg = saved
        GlobalHydra.instance().clear()
    assert keys[0] == "model.optimizer.lr" and "augment" in keys and keys[-1] == "seed"
    assert "model.net.widths" not in keys and "data.split_file" not in keys  # fixed; a path
