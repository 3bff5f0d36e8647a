"""ONNX export: a graph + sidecar that ONNX Runtime runs to the checkpoint's probabilities."""

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from braintumor.errors import UsageError
from braintumor.inference.export import ExportConfig, export, same_checkpoint
from braintumor.inference.loading import load_predictor
from braintumor.inference.onnx_graph import check_parity
from braintumor.inference.onnx_predictor import OnnxPredictor
from braintumor.inference.predict import PredictConfig, predict
from braintumor.inference.torch_predictor import TorchPredictor


def test_export_writes_graph_and_sidecar_and_reports_parity(exported, trained_ckpt):
    out, printed = exported
    assert out.stat().st_size > 0
    assert "parity OK" in printed and "< 0.0001" in printed
    meta = json.loads(out.with_suffix(".json").read_text())
    prep = torch.load(trained_ckpt, map_location="cpu", weights_only=False)["hyper_parameters"][
        "preprocessing"
    ]
    for key in ("class_names", "image_size", "channels", "mean", "std"):
        assert meta[key] == list(prep[key]) if key == "class_names" else meta[key] == prep[key]
    assert meta["opset"] == 18 and meta["parity_max_abs_diff"] < 1e-4
    assert meta["validation_metrics"]["n"] > 0 and "f1_macro" in meta["validation_metrics"]


def test_onnx_runtime_matches_pytorch_on_real_scans_at_any_batch_size(exported, trained_ckpt,
                                                                       tiny_root):  # fmt: skip
    eager, onnx = load_predictor(trained_ckpt, "cpu"), load_predictor(exported[0], "cpu")
    assert isinstance(onnx, OnnxPredictor) and onnx.class_names == eager.class_names
    images = [eager.load(p) for p in sorted(tiny_root.rglob("*.jpeg"))[:13]]
    for batch in (images[:1], images[1:6], images):
        expected, got = eager.predict_images(batch), onnx.predict_images(batch)
        assert got.shape == expected.shape
        assert np.abs(expected - got).max() < 1e-4


def test_parity_check_catches_a_different_model(exported, trained_ckpt):
    onnx = OnnxPredictor(exported[0], "cpu")
    eager = TorchPredictor.from_checkpoint(trained_ckpt, "cpu")
    assert check_parity(eager, onnx) < 1e-4
    with torch.no_grad():
        eager.module.net.head[-1].bias.add_(torch.arange(4.0))
    assert check_parity(eager, onnx) > 1e-2


def test_predict_runs_on_the_onnx_file(exported, trained_ckpt, tiny_root, tmp_path):
    folder = sorted(p for p in tiny_root.iterdir() if p.is_dir())[1]
    rows_onnx, _ = predict(PredictConfig(ckpt=str(exported[0]), input=str(folder),
                                         out=str(tmp_path / "a")))  # fmt: skip
    rows_ckpt, _ = predict(PredictConfig(ckpt=str(trained_ckpt), input=str(folder),
                                         out=str(tmp_path / "b")))  # fmt: skip
    assert [r["class"] for r in rows_onnx] == [r["class"] for r in rows_ckpt]
    with pytest.raises(ValueError, match="explain=true needs gradients"):
        predict(PredictConfig(ckpt=str(exported[0]), input=str(folder), explain=True))


def with_sidecar(exported, tmp_path, name: str, **changes) -> Path:
    """A copy of the exported graph whose sidecar has ``changes``."""
    onnx = Path(shutil.copy(exported[0], tmp_path / f"{name}.onnx"))
    meta = json.loads(exported[0].with_suffix(".json").read_text())
    onnx.with_suffix(".json").write_text(json.dumps({**meta, **changes}))
    return onnx


def test_an_onnx_file_is_checked_against_its_sidecar(exported, tmp_path):
    names = json.loads(exported[0].with_suffix(".json").read_text())["class_names"]
    for name, changes, what in [
        ("fewer", {"class_names": names[:3]}, "outputs 4 class probabilities, the sidecar names 3"),
        ("more", {"class_names": [*names, "extra"]}, "outputs 4 class probabilities, the "
                                                     "sidecar names 5"),
        ("size", {"image_size": 64}, "takes input ['batch', 1, 32, 32], the sidecar says "
                                     "['N', 1, 64, 64]"),
        ("rgb", {"channels": 3}, "takes input ['batch', 1, 32, 32], the sidecar says "
                                 "['N', 3, 32, 32]"),
    ]:  # fmt: skip
        onnx = with_sidecar(exported, tmp_path, name, **changes)
        with pytest.raises(UsageError) as error:
            load_predictor(onnx, "cpu")
        message = str(error.value)
        assert what in message, message
        assert str(onnx) in message and str(onnx.with_suffix(".json")) in message
        assert "export" in message
    assert load_predictor(with_sidecar(exported, tmp_path, "same"), "cpu").class_names == names


def test_export_of_last_ckpt_embeds_no_metrics_of_the_best_one(trained_ckpt, tmp_path):
    last = trained_ckpt.parent / "last.ckpt"
    out, _ = export(ExportConfig(ckpt=str(last), out=str(tmp_path / "last.onnx")))
    meta = json.loads(out.with_suffix(".json").read_text())
    assert meta["checkpoint"] == str(last.resolve()) and meta["validation_metrics"] is None
    note = meta["validation_metrics_note"]
    assert f"holds the metrics of {trained_ckpt.name}, not of this file" in note
    assert "val_metrics.json" in note and "last.ckpt" in note
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no staging left


def test_metrics_belong_to_a_checkpoint_by_path_or_by_its_name_in_the_run(tmp_path):
    ckpt = tmp_path / "run" / "checkpoints" / "epoch_003.ckpt"
    assert same_checkpoint(str(ckpt), ckpt)
    assert same_checkpoint(str(tmp_path / "run" / "checkpoints" / ".." / "checkpoints" /
                               "epoch_003.ckpt"), ckpt)  # fmt: skip
    assert same_checkpoint("/elsewhere/moved/checkpoints/epoch_003.ckpt", ckpt)  # run moved
    assert same_checkpoint("outputs/x/checkpoints/epoch_003.ckpt", ckpt)  # relative
    assert not same_checkpoint(str(ckpt.with_name("epoch_002.ckpt")), ckpt)
    assert not same_checkpoint(str(ckpt.with_name("last.ckpt")), ckpt)
    assert not same_checkpoint("in-memory weights", ckpt)
    assert not same_checkpoint(None, ckpt)


def test_export_writes_into_the_run_folder_by_default(trained_ckpt):
    out, diff = export(ExportConfig(ckpt=str(trained_ckpt)))
    run = trained_ckpt.parents[1]
    assert out == run / "export" / "epoch_002.onnx" and diff < 1e-4
    meta = json.loads(out.with_suffix(".json").read_text())
    assert meta["identity"] == {"run": run.name, "checkpoint": trained_ckpt.name, "epoch": 2,
                                "step": meta["identity"]["step"],
                                "saved": meta["identity"]["saved"]}  # fmt: skip
    assert out.with_suffix(".model_card.md").is_file()


def test_export_argument_mistakes_are_one_line_before_torch_is_imported(trained_ckpt, tmp_path):
    import subprocess
    import sys

    from tests.conftest import ROOT

    notes = tmp_path / "notes.txt"
    notes.write_text("x")
    cases = {
        (str(tmp_path / "gone.ckpt"),): "gone.ckpt' does not exist",
        (str(notes),): "is not a checkpoint (.ckpt)",
        (str(trained_ckpt), "out=model.pt"): "must end in .onnx",
        (str(trained_ckpt), "opset=9"): "opset=9: use an ONNX opset from 14 to 23",
        (str(trained_ckpt), "opset=new"): "bad value for opset",
        (str(trained_ckpt), "atol=0"): "atol=0.0: the parity tolerance must be positive",
        (str(trained_ckpt), "output=x.onnx"): "unknown argument 'output'",
    }
    for args, expected in cases.items():
        cmd = [sys.executable, "-X", "importtime", "-m", "braintumor", "export", *args]
        result = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=120)
        errors = [line for line in result.stderr.splitlines() if not line.startswith("import ")]
        assert result.returncode == 2 and len(errors) == 1, result.stderr[-2000:]
        assert errors[0].startswith("error: ") and expected in errors[0]
        assert not [line for line in result.stderr.splitlines() if line.endswith("| torch")]
