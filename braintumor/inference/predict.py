"""Classify scans with a trained model: ``python -m braintumor predict ckpt=X input=Y [key=value]``.

Examples::

    python -m braintumor predict ckpt=outputs/<run>/checkpoints/last.ckpt input=scan.jpg
    python -m braintumor predict ckpt=best.ckpt input=/data/new_scans explain=true topk=5
    python -m braintumor predict ckpt=model.onnx input=/data/new_scans device=cpu

Writes ``predictions.csv`` (file, class, probability, then the top-k classes and their
probabilities) into ``out`` (default ``outputs/predict/<date>_<time>``), prints a short table,
and with ``explain=true`` (or ``--explain``) a Grad-CAM overlay PNG per scan in
``out/gradcam/`` (the scan's size, at most 1024 px on a side). Files that cannot be decoded,
or have more than 40 million pixels, are listed by path, skipped, and recorded in
``skipped.csv``. An ``out`` that already holds predictions is refused unless
``overwrite=true``. Arguments are ``key=value`` pairs like ``train.py``'s; unknown keys fail.
"""

from __future__ import annotations

import csv
import io
import logging
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import torch
from omegaconf import MISSING, OmegaConf
from omegaconf.errors import OmegaConfBaseException
from torch.utils.data import DataLoader, Dataset

from braintumor.atomic import write_atomically
from braintumor.data.scan import is_scan_file
from braintumor.errors import CheckpointError, UsageError
from braintumor.evaluation.temperature import scale
from braintumor.inference.explain import explain_picture, grad_cam, shrink, target_layer
from braintumor.inference.predictor import Predictor, TorchPredictor, load_predictor

log = logging.getLogger("braintumor.inference.predict")


@dataclass
class PredictConfig:
    """The ``key=value`` arguments of ``braintumor.inference.predict``."""

    ckpt: str = MISSING  # a Lightning checkpoint (.ckpt) or an exported ONNX file (.onnx)
    input: str = MISSING  # an image file or a folder (searched recursively)
    out: str | None = None  # output folder; default outputs/predict/<date>_<time>
    topk: int = 3  # classes listed per scan
    batch_size: int = 32
    num_workers: int = 0  # DataLoader workers decoding images
    device: str = "auto"  # auto (CUDA when available), cpu, cuda, cuda:1, ...
    threads: int | None = None  # CPU threads for inference; default: the library's
    explain: bool = False  # Grad-CAM overlays in out/gradcam/ (needs a .ckpt)
    target_class: str | None = None  # Grad-CAM class (name or index); default: the predicted one
    overwrite: bool = False  # replace the predictions already in out


def parse_args(argv: Sequence[str]) -> PredictConfig:
    """``key=value`` pairs (and ``--explain``) -> a checked :class:`PredictConfig`."""
    dotlist = ["explain=true" if a == "--explain" else a for a in argv]
    bad = [a for a in dotlist if "=" not in a]
    if bad:
        raise SystemExit(f"expected key=value arguments, got {bad}; see --help.")
    try:
        cfg = OmegaConf.merge(OmegaConf.structured(PredictConfig), OmegaConf.from_dotlist(dotlist))
    except OmegaConfBaseException as error:
        raise SystemExit(f"bad argument: {error}".splitlines()[0]) from None
    missing = [k for k in ("ckpt", "input") if OmegaConf.is_missing(cfg, k)]
    if missing:
        raise SystemExit(f"missing {', '.join(f'{k}=...' for k in missing)}; see --help.")
    return OmegaConf.to_object(cfg)


def find_inputs(path: str | Path) -> tuple[Path, list[Path]]:
    """``(base, files)``: the image files under a folder (recursive), or the one file given."""
    path = Path(path)
    if path.is_file():
        return path.parent, [path]
    if not path.is_dir():
        raise FileNotFoundError(f"input '{path}' does not exist: give an image file or a folder.")
    files = sorted(p for p in path.rglob("*") if p.is_file() and is_scan_file(p.name))
    if not files:
        raise FileNotFoundError(f"input folder '{path}' holds no image files.")
    return path, files


OUTPUTS = ("predictions.csv", "skipped.csv", "gradcam")


def check_config(cfg: PredictConfig) -> None:
    """Refuse settings that cannot work, before anything is loaded."""
    for key, low in (("batch_size", 1), ("topk", 1), ("num_workers", 0), ("threads", 0)):
        value = getattr(cfg, key)
        if value is not None and value < low:
            raise UsageError(f"{key}={value}: it must be at least {low}.")


def prepare_out(out: Path, overwrite: bool = False) -> None:
    """Create ``out`` and check that it is writable and holds no earlier predictions (unless
    ``overwrite``)."""
    if out.exists() and not out.is_dir():
        raise UsageError(f"out='{out}' is a file, not a folder: choose a folder with out=...")
    earlier = [name for name in OUTPUTS if (out / name).exists()]
    if earlier and not overwrite:
        raise UsageError(
            f"out='{out}' already holds predictions ({', '.join(earlier)}): pass "
            "overwrite=true to replace them, or choose another folder with out=..."
        )
    try:
        out.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=out):
            pass
    except OSError as error:
        raise UsageError(
            f"cannot write into out='{out}' ({error.strerror or error}): choose a folder you "
            "can write to with out=..."
        ) from None


class _Scans(Dataset):
    """Preprocessed scans (plus, with ``thumbnails``, the image shrunk for an overlay); a file
    that fails to decode yields its error instead."""

    def __init__(self, files: Sequence[Path], predictor: Predictor, thumbnails: bool) -> None:
        self.files, self.predictor, self.thumbnails = list(files), predictor, thumbnails

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, i: int) -> tuple[int, torch.Tensor | None, torch.Tensor | None, str]:
        try:
            image = self.predictor.load(self.files[i])
            thumbnail = shrink(image) if self.thumbnails else None
            return i, self.predictor.transform(image), thumbnail, ""
        except Exception as error:  # PIL raises many types for bad files
            return i, None, None, f"{type(error).__name__}: {error}"


def _keep(items: list) -> list:
    return items  # a picklable identity collate: images keep their own sizes


def class_index(target: str | None, class_names: Sequence[str]) -> int | None:
    """``target_class`` (a class name or an index) -> the class index, checked."""
    if target is None:
        return None
    if target in class_names:
        return list(class_names).index(target)
    if str(target).lstrip("-").isdigit() and -len(class_names) <= int(target) < len(class_names):
        return int(target) % len(class_names)
    raise UsageError(f"target_class '{target}' is neither an index nor one of {list(class_names)}.")


def _overlay_path(out: Path, base: Path, file: Path, label: str) -> Path:
    relative = file.relative_to(base) if file.is_relative_to(base) else Path(file.name)
    tag = "".join(c if c.isalnum() or c in "+-_." else "_" for c in label)
    return out / "gradcam" / relative.parent / f"{relative.stem}_{tag}.png"


def predict(cfg: PredictConfig) -> tuple[list[dict[str, Any]], list[tuple[str, str]]]:
    """Run ``cfg``; return the prediction rows (as in the CSV) and the skipped files."""
    check_config(cfg)
    out = Path(cfg.out or Path("outputs/predict") / datetime.now().strftime("%Y-%m-%d_%H-%M-%S"))
    prepare_out(out, cfg.overwrite)
    predictor = load_predictor(cfg.ckpt, cfg.device, cfg.threads)
    if cfg.explain and not isinstance(predictor, TorchPredictor):
        raise UsageError("explain=true needs gradients: give the checkpoint (.ckpt), not ONNX.")
    names = predictor.class_names
    topk = max(1, min(cfg.topk, len(names)))
    target = class_index(cfg.target_class, names)
    base, files = find_inputs(cfg.input)
    layer = target_layer(predictor.module) if cfg.explain else None
    loader = DataLoader(
        _Scans(files, predictor, thumbnails=cfg.explain), batch_size=cfg.batch_size,
        num_workers=cfg.num_workers, collate_fn=_keep,
    )  # fmt: skip
    rows: list[dict[str, Any]] = []
    skipped: list[tuple[str, str]] = []
    for items in loader:
        good = [(i, x, thumbnail) for i, x, thumbnail, reason in items if not reason]
        for i, _, _, reason in items:
            if reason:
                skipped.append((str(files[i]), reason))
                log.warning(f"skipped {files[i]}: {reason}")
        if not good:
            continue
        batch = torch.stack([x for _, x, _ in good])
        if layer is not None:
            device = predictor.device
            targets = None if target is None else [target] * len(good)
            maps, probs_t = grad_cam(predictor.module, layer, batch.to(device), targets)
            probs = scale(probs_t.cpu().numpy(), predictor.temperature)  # calibrated
        else:
            probs = predictor.predict_batch(batch)
        top = probs.argsort(axis=1)[:, ::-1][:, :topk]
        abstain = predictor.abstains(probs)
        for row, ((i, _, thumbnail), p, order) in enumerate(zip(good, probs, top, strict=True)):
            record: dict[str, Any] = {
                "file": str(files[i]),
                "class": names[order[0]],
                "probability": round(float(p[order[0]]), 6),
            }
            for k, c in enumerate(order, start=1):
                record[f"class_{k}"] = names[c]
                record[f"probability_{k}"] = round(float(p[c]), 6)
            record["confidence"] = record["probability"]  # calibrated top probability
            record["abstain"] = bool(abstain[row])  # below the threshold: "uncertain - refer"
            if layer is not None:
                explained = names[target if target is not None else order[0]]
                path = _overlay_path(out, base, files[i], explained)
                path.parent.mkdir(parents=True, exist_ok=True)
                png = io.BytesIO()
                explain_picture(thumbnail, maps[row]).save(png, format="PNG")
                write_atomically(path, png.getvalue())
                record["gradcam_class"], record["gradcam"] = explained, str(path)
            rows.append(record)
    _write(out, rows, skipped)
    _print_table(rows, skipped, out)
    return rows, skipped


def _csv(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    text = io.StringIO(newline="")
    writer = csv.writer(text)
    if header:
        writer.writerow(header)
    writer.writerows(rows)
    return text.getvalue()


def _write(out: Path, rows: list[dict[str, Any]], skipped: list[tuple[str, str]]) -> None:
    """``predictions.csv`` and (when files were skipped) ``skipped.csv``, each published whole;
    a ``skipped.csv`` of an earlier run that this one replaces is removed."""
    header = list(rows[0]) if rows else []
    write_atomically(out / "predictions.csv", _csv(header, [list(r.values()) for r in rows]))
    if skipped:
        write_atomically(out / "skipped.csv", _csv(["file", "reason"], skipped))
    else:
        (out / "skipped.csv").unlink(missing_ok=True)


def _print_table(rows: list[dict[str, Any]], skipped: list, out: Path, limit: int = 20) -> None:
    width = min(60, max([len(r["file"]) for r in rows[:limit]] + [4]))
    lines = [f"{'file':<{width}}  {'class':<24} {'prob':>6}"]
    for r in rows[:limit]:
        name = r["file"] if len(r["file"]) <= width else "..." + r["file"][-width + 3 :]
        lines.append(f"{name:<{width}}  {r['class']:<24} {r['probability']:>6.3f}")
    if len(rows) > limit:
        lines.append(f"... {len(rows) - limit} more")
    csv_path = out / "predictions.csv"
    lines.append(f"{len(rows)} scans predicted, {len(skipped)} skipped -> {csv_path}")
    print("\n".join(lines))


def main(argv: Sequence[str] | None = None) -> None:
    """The command line (also installed as ``braintumor-predict``)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if any(a in ("-h", "--help") for a in argv):
        print(__doc__)
        return
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    try:
        predict(parse_args(argv))
    except (UsageError, FileNotFoundError, CheckpointError) as error:  # the user's to fix
        raise SystemExit(f"error: {' '.join(str(error).split())}") from None


if __name__ == "__main__":
    main()
