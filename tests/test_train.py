"""The whole pipeline through composed Hydra configs, as ``train.py`` runs it."""

import csv
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from hydra.core.global_hydra import GlobalHydra
from hydra.errors import ConfigCompositionException
from hydra.utils import instantiate
from omegaconf import OmegaConf

from braintumor.data.image import load_image
from braintumor.data.preprocessing import eval_transform
from braintumor.errors import DataError
from braintumor.pipeline.build import build_datamodule, build_module
from braintumor.pipeline.evaluate import evaluate
from braintumor.pipeline.train import train
from braintumor.training.module import MRIClassifier
from tests.conftest import FAST, ROOT, tensorboard_dir

REPORTS = [
    "val_metrics.json",
    "test_metrics.json",
    "classification_report_val.csv",
    "classification_report_test.csv",
    "confusion_matrix_val.png",
    "confusion_matrix_test.png",
]


def test_default_config_composes_and_instantiates(tmp_path, compose):
    cfg = compose()
    assert cfg.data.layout == "folder" and cfg.data.synthetic.num_classes == 8
    assert cfg.optimized_metric == "val/f1_macro_best"
    assert cfg.model.scheduler.T_max == cfg.trainer.max_epochs
    augment = instantiate(cfg.augment)
    assert len(augment.transforms(cfg.data.image_size)) >= 3
    assert augment.batch_augment(cfg.data.image_size) is not None
    for name in ("presplit", "folder"):
        other = compose([f"data={name}", "data.root=/x"])
        assert other.data.layout == name


def test_misspelled_key_or_group_fails_at_startup(compose):
    with pytest.raises(ConfigCompositionException, match="optimzer"):
        compose(["model.optimzer.lr=1"])
    with pytest.raises(ConfigCompositionException, match="nosuchdata"):
        compose(["data=nosuchdata"])


def test_fast_dev_run(make_cfg, tmp_path):
    cfg = make_cfg("debug=fdr")
    metrics = train(cfg)
    assert "train/loss" in metrics
    assert (tmp_path / "run" / "split.csv").is_file()


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory, tiny_root):
    """A real 2-epoch run on the tiny data (shared by the tests below)."""
    from tests.conftest import compose_config

    run_dir = tmp_path_factory.mktemp("trained") / "run"
    overrides = ["data=folder", f"data.root={tiny_root}", *FAST, "trainer.max_epochs=2", "seed=1"]
    cfg = compose_config(run_dir, overrides)
    metrics = train(cfg)
    GlobalHydra.instance().clear()
    return run_dir, metrics, tiny_root


def test_training_writes_every_report(trained_run):
    run_dir, metrics, _ = trained_run
    for name in REPORTS:
        assert (run_dir / "reports" / name).stat().st_size > 0, name
    test = json.loads((run_dir / "reports" / "test_metrics.json").read_text())
    assert {"accuracy", "precision_macro", "recall_macro", "f1_macro", "ece", "n"} <= set(test)
    assert test["n"] == 10  # 15% of 16 per class, rounded up, over 4 classes
    assert metrics["test/f1_macro"] == test["f1_macro"]
    assert 0.0 <= metrics["val/f1_macro_best"] <= 1.0
    checkpoints = {p.name for p in (run_dir / "checkpoints").iterdir()}
    assert "last.ckpt" in checkpoints and any(n.startswith("epoch_") for n in checkpoints)
    events = list(tensorboard_dir(run_dir).glob("events.out.tfevents.*"))
    assert events


def test_tensorboard_gets_curves_images_and_confusion_matrices(trained_run):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    run_dir, _, _ = trained_run
    board = EventAccumulator(str(tensorboard_dir(run_dir)))
    board.Reload()
    scalars = set(board.Tags()["scalars"])
    assert {
        "train/loss",
        "train/accuracy",
        "train/f1_macro",
        "val/loss",
        "val/f1_macro",
        "val/f1_macro_best",
        "val/accuracy",
        "val/ece",
        "lr-Adam",
    } <= scalars
    assert {"test/loss", "test/ece", "test/f1_macro", "test/log_loss"} <= scalars
    assert not any(t.startswith("test/f1_class/") for t in scalars)  # one table and one figure
    images = set(board.Tags()["images"])
    assert {"train/augmented_samples", "val/confusion_matrix", "test/confusion_matrix"} <= images
    assert {"val/per_class", "test/per_class"} <= images


def test_loggers_get_the_reports_numbers_computed_once(trained_run):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    run_dir, metrics, _ = trained_run
    board = EventAccumulator(str(tensorboard_dir(run_dir)))
    board.Reload()
    for split in ("val", "test"):
        report = json.loads((run_dir / "reports" / f"{split}_metrics.json").read_text())
        for name, value in report.items():
            if isinstance(value, float):
                key = f"{split}/{name}"
                assert board.Scalars(key)[-1].value == pytest.approx(value, abs=1e-6), key
                assert metrics[key] == value, key
        rows = csv.DictReader((run_dir / "reports" / f"classification_report_{split}.csv").open())
        table = board.Tensors(f"{split}/per_class/text_summary")[-1].tensor_proto.string_val[0]
        for row in (r for r in rows if not r["class"].endswith(" avg")):
            cells = next(
                x for x in table.decode().splitlines() if x.startswith(f"| {row['class']} |")
            )
            for name in ("precision", "recall", "f1"):
                assert f"| {float(row[name]):.3f} |" in cells, (name, cells)
    # torchmetrics during training and the report agree: the best checkpoint's val F1 as
    # the epochs measured it is the report's val F1 of that checkpoint
    val = json.loads((run_dir / "reports" / "val_metrics.json").read_text())
    assert metrics["val/f1_macro_best"] == pytest.approx(val["f1_macro"], abs=1e-6)


def test_every_metric_name_comes_from_the_vocabulary(trained_run, tmp_path):
    """TensorBoard, the metrics JSON, train()'s metrics, the hparams, the sweep table, the
    console summary and the web page all use the names of braintumor.vocabulary."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    from tensorboard.plugins.hparams import plugin_data_pb2

    from braintumor.evaluation.summary import COLUMNS
    from braintumor.inference.web.page import METRIC_LABELS
    from braintumor.runs.record import recorded_run
    from braintumor.sweeps.report import write_sweep_report
    from braintumor.training.hparams import HP_METRICS
    from braintumor.vocabulary import METRIC_NAMES, REPORT_FIELDS, is_metric_key

    run_dir, metrics, _ = trained_run
    board = EventAccumulator(str(tensorboard_dir(run_dir)))
    board.Reload()
    scalars = board.Tags()["scalars"]
    assert "lr-Adam" in scalars and "val/f1_macro" in scalars
    assert [t for t in scalars if not is_metric_key(t)] == []
    content = board.PluginTagToContent("hparams")
    experiment = plugin_data_pb2.HParamsPluginData.FromString(content["_hparams_/experiment"])
    hparams = [m.name.tag for m in experiment.experiment.metric_infos]
    assert hparams and [t for t in hparams if not is_metric_key(t)] == []
    assert all(map(is_metric_key, HP_METRICS))
    assert [k for k in metrics if not is_metric_key(k)] == []
    for split in ("val", "test"):
        report = json.loads((run_dir / "reports" / f"{split}_metrics.json").read_text())
        assert set(report) - set(REPORT_FIELDS) <= set(METRIC_NAMES)
    assert set(COLUMNS) | set(METRIC_LABELS) <= set(METRIC_NAMES)

    sweep = tmp_path / "sweep"
    shutil.copytree(run_dir / "reports", sweep / "0" / "reports")
    with recorded_run(sweep / "0", ["seed=1"], "val/f1_macro_best", 0) as record:
        record.finish(metrics)
    write_sweep_report(sweep)
    columns = next(csv.reader((sweep / "sweep_summary.csv").open()))
    other = {"rank", "job", "status", "seed", "epochs", "wall_time_s", "error"}
    assert "test/f1_macro" in columns
    assert [c for c in columns if c not in other and not is_metric_key(c)] == []


def test_checkpoint_alone_is_enough_to_predict(trained_run):
    run_dir, _, data_root = trained_run
    ckpt = next((run_dir / "checkpoints").glob("epoch_*.ckpt"))
    model = MRIClassifier.load_from_checkpoint(ckpt, map_location="cpu").eval()
    prep = model.hparams.preprocessing
    assert prep["class_names"] == sorted(p.name for p in data_root.iterdir() if p.is_dir())
    assert prep["image_size"] == 32 and prep["channels"] == 1
    transform = eval_transform(prep["image_size"], prep["mean"], prep["std"], prep["channels"])
    first = next(data_root.rglob("*.jpeg"))
    with torch.no_grad():
        probs = model(transform(load_image(first, prep["channels"]))[None]).softmax(1)
    assert probs.shape == (1, 4) and probs.sum().item() == pytest.approx(1.0)


def test_evaluate_checkpoint_reproduces_test_metrics(trained_run, tmp_path):
    from tests.conftest import compose_config

    run_dir, _, data_root = trained_run
    ckpt = next((run_dir / "checkpoints").glob("epoch_*.ckpt"))
    overrides = ["data=folder", f"data.root={data_root}", *FAST, "train=false", f"ckpt_path={ckpt}",
                 "data.split_seed=12345", "data.image_size=64"]  # fmt: skip
    cfg = compose_config(tmp_path / "eval", overrides)
    metrics = evaluate(cfg)
    GlobalHydra.instance().clear()
    original = json.loads((run_dir / "reports" / "test_metrics.json").read_text())
    again = json.loads((tmp_path / "eval" / "reports" / "test_metrics.json").read_text())
    # the run's split.csv and the checkpoint's preprocessing were used, not the overrides
    assert (tmp_path / "eval" / "split.csv").read_text() == (run_dir / "split.csv").read_text()
    for key in ("accuracy", "f1_macro", "precision_macro", "recall_macro", "ece", "n"):
        assert again[key] == pytest.approx(original[key], abs=1e-6), key
    assert metrics["test/f1_macro"] == pytest.approx(original["f1_macro"])


def test_evaluate_rejects_a_checkpoint_of_other_classes(trained_run, tmp_path, tiny_copy):
    from tests.conftest import compose_config

    run_dir, _, _ = trained_run
    ckpt = run_dir / "checkpoints" / "last.ckpt"
    first = sorted(p for p in tiny_copy.iterdir() if p.is_dir())[0]
    first.rename(tiny_copy / "Renamed T2")
    overrides = ["data=folder", f"data.root={tiny_copy}", *FAST, "train=false", f"ckpt_path={ckpt}",
                 f"data.split_file={tmp_path / 'none.csv'}"]  # fmt: skip
    overrides[-1] = "data.split_file=null"
    cfg = compose_config(tmp_path / "eval", overrides)
    OmegaConf.update(cfg, "ckpt_path", str(Path(tmp_path / "copy.ckpt")))
    Path(tmp_path / "copy.ckpt").write_bytes(ckpt.read_bytes())  # no split.csv beside it
    with pytest.raises(DataError, match=r"missing from the data \['" + first.name):
        evaluate(cfg)
    GlobalHydra.instance().clear()


def test_class_weights_balanced(make_cfg, tiny_copy):
    victim = sorted(p for p in tiny_copy.iterdir() if p.is_dir())[0]
    for f in sorted(victim.glob("*.jpeg"))[8:]:
        f.unlink()
    cfg = make_cfg("model.class_weights=balanced", "model.label_smoothing=0.1", root=tiny_copy)
    dm = build_datamodule(cfg)
    module = build_module(cfg, dm)
    weights = module.criterion.weight
    counts = torch.tensor(dm.class_counts("train"), dtype=torch.float32)
    assert counts[0] < counts[1] and weights[0] > weights[1]
    products = weights * counts  # inverse frequency: weight x count is the same for all
    assert torch.allclose(products, products.mean().expand(4))
    assert module.criterion.label_smoothing == 0.1


def _run_train_py(args, tmp_path, timeout=240):
    cmd = [sys.executable, str(ROOT / "train.py"), *args, f"paths.log_dir={tmp_path / 'outputs'}",
           f"paths.cache_dir={tmp_path / 'cache'}", *FAST]  # fmt: skip
    result = subprocess.run(cmd, cwd=tmp_path, capture_output=True, text=True, timeout=timeout)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return result


def test_train_py_presplit_layout_from_the_command_line(tiny_root, tmp_path):
    root = tmp_path / "presplit"
    for split, picks in (("train", slice(0, 10)), ("test", slice(10, 16))):
        for class_dir in (p for p in tiny_root.iterdir() if p.is_dir()):
            (root / split / class_dir.name).mkdir(parents=True)
            for f in sorted(class_dir.glob("*.jpeg"))[picks]:
                (root / split / class_dir.name / f.name).write_bytes(f.read_bytes())
    result = _run_train_py(
        ["data=presplit", f"data.root={root}", "data.val_fraction=0.25"], tmp_path
    )
    assert "Run directory:" in result.stdout and "test" in result.stdout
    runs = list((tmp_path / "outputs").glob("*/*/reports/test_metrics.json"))
    assert len(runs) == 1 and json.loads(runs[0].read_text())["n"] == 24


def test_grid_multirun_runs_every_job(tiny_root, tmp_path):
    """``python train.py -m seed=1,2``: every job runs, records run_info.json, and the sweep
    report (table, plot, mean ± std over seeds) is written when the multirun ends."""
    _run_train_py(["-m", "data=folder", f"data.root={tiny_root}", "seed=1,2"], tmp_path)
    sweeps = list((tmp_path / "outputs" / "multirun").iterdir())
    assert len(sweeps) == 1
    jobs = sorted(p.name for p in sweeps[0].iterdir() if p.is_dir() and p.name.isdigit())
    assert jobs == ["0", "1"]
    for job in jobs:
        assert (sweeps[0] / job / "reports" / "test_metrics.json").is_file()
        assert (sweeps[0] / job / "checkpoints" / "last.ckpt").is_file()
        info = json.loads((sweeps[0] / job / "run_info.json").read_text())
        assert info["status"] == "completed" and f"seed={int(job) + 1}" in info["overrides"]
    table = (sweeps[0] / "sweep_summary.md").read_text()
    assert "2 jobs: 2 completed" in table and "| seed |" in table
    seeds = (sweeps[0] / "seed_summary.md").read_text()
    assert "seeds 1 2 (2 runs)" in seeds and "| val/f1_macro_best |" in seeds
