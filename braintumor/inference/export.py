"""Export a checkpoint to ONNX: ``python -m braintumor export ckpt=X [out=Y.onnx] [opset=18]``.

Writes ``Y.onnx`` (input ``image``: normalized ``(N, C, S, S)`` float32, any batch size;
output ``probabilities``: ``(N, num_classes)`` softmax) and ``Y.json`` beside it with the class
names, image size, channels, mean/std, opset and the validation metrics of the run when they
were computed for this very checkpoint (else none, and why). Runs the same random batch
through PyTorch and ONNX Runtime and publishes both files only if the probabilities agree to
``atol`` (default 1e-4). Default ``out``: the checkpoint's path with ``.onnx``.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import tempfile
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from omegaconf import MISSING, OmegaConf
from omegaconf.errors import OmegaConfBaseException
from torch import nn

from braintumor.atomic import write_atomically
from braintumor.inference.predictor import OnnxPredictor, TorchPredictor, sidecar_path
from braintumor.runs.layout import RunDir


@dataclass
class ExportConfig:
    """The ``key=value`` arguments of ``braintumor.inference.export``."""

    ckpt: str = MISSING
    out: str | None = None  # default: the checkpoint's path with .onnx
    opset: int = 18
    atol: float = 1e-4  # parity tolerance on probabilities
    parity_batch: int = 8


class _Probabilities(nn.Module):
    """The network followed by a softmax of its logits divided by the checkpoint's fitted
    temperature: the calibrated probabilities the exported graph computes."""

    def __init__(self, net: nn.Module, temperature: float = 1.0) -> None:
        super().__init__()
        self.net = net
        self.temperature = float(temperature)

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        return (self.net(image) / self.temperature).softmax(dim=1)


def same_checkpoint(recorded: str | None, ckpt: str | Path | None) -> bool:
    """Whether the checkpoint path recorded with some metrics is the file ``ckpt``.

    Equal once resolved, or, for a run folder that was moved or a path recorded relative to
    another working directory, the same ``checkpoints/<name>`` of that run.
    """
    if not recorded or not ckpt:
        return False
    ckpt = Path(ckpt).resolve()
    recorded_path = Path(recorded)
    if recorded_path.resolve() == ckpt:
        return True
    return len(recorded_path.parts) >= 2 and recorded_path.parts[-2:] == ckpt.parts[-2:]


def validation_metrics(ckpt: str | Path) -> tuple[dict[str, Any] | None, str]:
    """``(metrics, note)``: ``<run>/reports/val_metrics.json`` of the run ``ckpt`` was saved in,
    when those metrics were computed for this very file (its ``checkpoint`` field); else
    ``None`` and a note that says why (a run reports its best checkpoint, not ``last.ckpt``).
    """
    run = RunDir.of_checkpoint(ckpt)
    if run is None:
        return None, f"no validation metrics: {ckpt} is not in a run's checkpoints/ folder."
    path = run.metrics("val")
    if not path.is_file():
        return None, f"no validation metrics: {path} does not exist."
    metrics = json.loads(path.read_text())
    recorded = metrics.get("checkpoint")
    if same_checkpoint(recorded, ckpt):
        return metrics, ""
    return None, (
        f"no validation metrics for {Path(ckpt).name}: {path} holds the metrics of "
        f"{Path(recorded).name if recorded else 'an unrecorded checkpoint'}, not of this file."
    )


def model_card_beside(onnx_path: str | Path) -> Path:
    """Where an exported model's card lies: ``model.onnx`` -> ``model.model_card.md``."""
    return Path(onnx_path).with_suffix(".model_card.md")


def run_model_card(ckpt: str | Path) -> Path | None:
    """``<run>/reports/model_card.md`` when it describes this very checkpoint."""
    metrics, _ = validation_metrics(ckpt)
    run = RunDir.of_checkpoint(ckpt)
    card = run.reports / "model_card.md" if run is not None else None
    return card if metrics is not None and card is not None and card.is_file() else None


def export_onnx(
    module: nn.Module, out: str | Path, opset: int = 18, extra: dict[str, Any] | None = None
) -> Path:
    """Write ``module``'s net (+ softmax) as ONNX with a dynamic batch axis, and its sidecar."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    prep = module.preprocessing
    calibration = dict(getattr(module, "calibration", {}) or {})
    model = _Probabilities(module.net, calibration.get("temperature", 1.0)).eval().cpu()
    example = torch.zeros(2, prep.channels, prep.image_size, prep.image_size)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # exporter chatter about its own internals
        torch.onnx.export(
            model, (example,), str(out), input_names=["image"], output_names=["probabilities"],
            opset_version=opset, dynamo=True, external_data=False, verbose=False,
            dynamic_shapes={"image": {0: torch.export.Dim("batch", min=1, max=4096)}},
        )  # fmt: skip
    meta = {
        **prep.to_dict(),
        "opset": opset,
        "input": "image",
        "output": "probabilities",
        "gradcam_layer": module.hparams.get("gradcam_layer"),
        "calibration": calibration,  # the temperature is applied inside the graph
        "torch": torch.__version__,
        **(extra or {}),
    }
    write_atomically(sidecar_path(out), json.dumps(meta, indent=2) + "\n")
    return out


def check_parity(
    torch_predictor: TorchPredictor, onnx_predictor: OnnxPredictor, batch: int = 8, seed: int = 0
) -> float:
    """Max absolute difference of probabilities between the two on one random batch."""
    size, channels = torch_predictor.image_size, torch_predictor.channels
    generator = torch.Generator().manual_seed(seed)
    x = torch.randn(batch, channels, size, size, generator=generator)
    expected = torch_predictor.probabilities(x)
    got = onnx_predictor.probabilities(x)
    return float(np.abs(expected - got).max())


def export(cfg: ExportConfig) -> tuple[Path, float]:
    """Export ``cfg.ckpt``, check parity, then publish the graph and its sidecar; return the
    ONNX path and the max difference."""
    torch_predictor = TorchPredictor.from_checkpoint(cfg.ckpt, device="cpu")
    out = Path(cfg.out) if cfg.out else Path(cfg.ckpt).with_suffix(".onnx")
    metrics, note = validation_metrics(cfg.ckpt)
    extra: dict[str, Any] = {
        "checkpoint": str(Path(cfg.ckpt).resolve()),
        "validation_metrics": metrics,
        **({"validation_metrics_note": note} if note else {}),
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:  # both files are written and checked beside `out`, then renamed into place
        staged = export_onnx(torch_predictor.module, staging / out.name, cfg.opset, extra)
        diff = check_parity(torch_predictor, OnnxPredictor(staged, device="cpu"), cfg.parity_batch)
        if not diff < cfg.atol:
            raise RuntimeError(
                f"ONNX parity FAILED: max |p_torch - p_onnx| = {diff:.2e} >= {cfg.atol:g} on a "
                f"batch of {cfg.parity_batch}; '{out}' was not written (not safe to deploy)."
            )
        meta = json.loads(sidecar_path(staged).read_text())
        meta["parity_max_abs_diff"] = diff
        write_atomically(sidecar_path(staged), json.dumps(meta, indent=2) + "\n")
        os.replace(staged, out)
        os.replace(sidecar_path(staged), sidecar_path(out))
        card = run_model_card(cfg.ckpt)
        if card is not None:  # the card of this very checkpoint travels with the ONNX file
            write_atomically(model_card_beside(out), card.read_text())
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return out, diff


def parse_args(argv: Sequence[str]) -> ExportConfig:
    """``key=value`` pairs -> a checked :class:`ExportConfig`."""
    try:
        cfg = OmegaConf.merge(OmegaConf.structured(ExportConfig), OmegaConf.from_dotlist(argv))
    except (OmegaConfBaseException, ValueError) as error:
        raise SystemExit(f"bad argument: {error}".splitlines()[0]) from None
    if OmegaConf.is_missing(cfg, "ckpt"):
        raise SystemExit("missing ckpt=/path/to/checkpoint.ckpt; see --help.")
    return OmegaConf.to_object(cfg)


def main(argv: Sequence[str] | None = None) -> None:
    """The command line (also installed as ``braintumor-export``)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if any(a in ("-h", "--help") for a in argv):
        print(__doc__)
        return
    cfg = parse_args(argv)
    out, diff = export(cfg)
    import onnxruntime

    print(
        f"exported {out} (+ {sidecar_path(out).name}, opset {cfg.opset})\n"
        f"parity OK: max |p_torch - p_onnxruntime| = {diff:.2e} < {cfg.atol:g} on a batch of "
        f"{cfg.parity_batch} (onnxruntime {onnxruntime.__version__})"
    )


if __name__ == "__main__":
    main()
