"""ONNX export: a graph + sidecar that ONNX Runtime runs to the checkpoint's probabilities."""

import json

import numpy as np
import pytest
import torch

from braintumor.export import check_parity
from braintumor.predict import PredictConfig, predict
from braintumor.predictor import OnnxPredictor, TorchPredictor, load_predictor


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
