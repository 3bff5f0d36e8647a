"""Export a checkpoint to ONNX: ``python -m braintumor export ckpt=X [out=Y.onnx] [opset=18]``
(or ``python -m braintumor export X.ckpt [key=value ...]``).

Writes ``Y.onnx`` (input ``image``: normalized ``(N, C, S, S)`` float32, any batch size;
outputs ``probabilities``: ``(N, num_classes)`` calibrated softmax, and ``logits``: the raw
logits) and ``Y.json`` beside it with the class names, image size, channels, mean/std, opset,
the calibration (temperature, abstention threshold, out-of-distribution statistics) and the
validation metrics of the run when they were computed for this very checkpoint (else none,
and why). Runs the same random batch through PyTorch and ONNX Runtime and publishes both
files only if the probabilities agree to ``atol`` (default 1e-4). Default ``out``: the run
folder's ``export/<checkpoint name>.onnx`` (beside the checkpoint when it is in no run).
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from omegaconf import MISSING, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from braintumor.atomic import write_atomically
from braintumor.errors import UsageError
from braintumor.inference.cli import argument_error, user_errors
from braintumor.inference.identity import read_identity
from braintumor.inference.predictor import sidecar_path
from braintumor.runs.layout import RunDir


@dataclass
class ExportConfig:
    """The ``key=value`` arguments of ``braintumor.inference.export``."""

    ckpt: str = MISSING
    out: str | None = None  # default: <run>/export/<checkpoint name>.onnx
    opset: int = 18
    atol: float = 1e-4  # parity tolerance on probabilities
    parity_batch: int = 8


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


def default_out(ckpt: str | Path) -> Path:
    """Where an export goes without ``out``: ``<run>/export/<checkpoint name>.onnx`` for a
    checkpoint in a run folder, else beside the checkpoint."""
    run = RunDir.of_checkpoint(ckpt)
    name = Path(ckpt).with_suffix(".onnx").name
    return run.export / name if run is not None else Path(ckpt).with_suffix(".onnx")


def check_config(cfg: ExportConfig) -> None:
    """Refuse arguments that cannot work, before PyTorch is imported."""
    ckpt = Path(cfg.ckpt)
    if not ckpt.is_file():
        raise FileNotFoundError(f"ckpt='{ckpt}' does not exist: give a checkpoint (.ckpt) file.")
    if ckpt.suffix != ".ckpt":
        raise UsageError(
            f"ckpt='{ckpt}' is not a checkpoint (.ckpt): export takes the checkpoint of a run, "
            "e.g. outputs/<run>/checkpoints/epoch_XXX.ckpt."
        )
    if cfg.out is not None and Path(cfg.out).suffix != ".onnx":
        raise UsageError(f"out='{cfg.out}' must end in .onnx (its sidecar is the .json beside).")
    if cfg.out is not None and Path(cfg.out).is_dir():
        raise UsageError(f"out='{cfg.out}' is a folder: give the ONNX file's path, x.onnx.")
    if not 14 <= cfg.opset <= 23:
        raise UsageError(f"opset={cfg.opset}: use an ONNX opset from 14 to 23 (default 18).")
    if not cfg.atol > 0:
        raise UsageError(f"atol={cfg.atol}: the parity tolerance must be positive (e.g. 1e-4).")
    if cfg.parity_batch < 1:
        raise UsageError(f"parity_batch={cfg.parity_batch}: it must be at least 1.")


def export(cfg: ExportConfig) -> tuple[Path, float]:
    """Export ``cfg.ckpt``, check parity, then publish the graph and its sidecar; return the
    ONNX path and the max difference."""
    check_config(cfg)
    from braintumor.inference.onnx_graph import check_parity, export_onnx  # PyTorch
    from braintumor.inference.onnx_predictor import OnnxPredictor
    from braintumor.inference.torch_predictor import TorchPredictor

    torch_predictor = TorchPredictor.from_checkpoint(cfg.ckpt, device="cpu")
    out = Path(cfg.out) if cfg.out else default_out(cfg.ckpt)
    metrics, note = validation_metrics(cfg.ckpt)
    extra: dict[str, Any] = {
        "checkpoint": str(Path(cfg.ckpt).resolve()),
        "identity": read_identity(cfg.ckpt),  # run, epoch, date: shown by the web page
        "validation_metrics": metrics,
        **({"validation_metrics_note": note} if note else {}),
    }
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    except OSError as error:
        raise UsageError(
            f"cannot write into '{out.parent}' ({error.strerror or error}): choose another "
            "place with out=.../model.onnx."
        ) from None
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
    """``key=value`` pairs (or the checkpoint alone, first) -> an :class:`ExportConfig`."""
    argv = list(argv)
    if argv and "=" not in argv[0]:
        argv[0] = f"ckpt={argv[0]}"
    bad = [a for a in argv if "=" not in a]
    if bad:
        raise UsageError(
            f"expected key=value arguments after the checkpoint, got {bad}; see --help."
        )
    try:
        cfg = OmegaConf.merge(OmegaConf.structured(ExportConfig), OmegaConf.from_dotlist(argv))
    except (OmegaConfBaseException, ValueError) as error:
        known = list(ExportConfig.__dataclass_fields__)
        raise UsageError(argument_error(error, known)) from None
    if OmegaConf.is_missing(cfg, "ckpt"):
        raise UsageError("missing ckpt=/path/to/checkpoint.ckpt; see --help.")
    return OmegaConf.to_object(cfg)


def main(argv: Sequence[str] | None = None) -> None:
    """The command line (also installed as ``braintumor-export``)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if any(a in ("-h", "--help") for a in argv):
        print(__doc__)
        return
    with user_errors():
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
