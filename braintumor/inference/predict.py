"""Classify scans with a trained model: ``python -m braintumor predict MODEL INPUT [key=value]``.

Examples::

    python -m braintumor predict model.onnx scan.jpg
    python -m braintumor predict ckpt=outputs/<run>/checkpoints/last.ckpt input=scan.jpg
    python -m braintumor predict ckpt=best.ckpt input=/data/new_scans explain=true topk=5

MODEL (or ``ckpt=``) is an exported ONNX file (fast: no PyTorch is loaded) or a checkpoint;
INPUT (or ``input=``) an image file or a folder, searched recursively. Writes
``predictions.csv`` into ``out`` (default ``outputs/predict/<date>_<time>``) with one row per
scan: ``file, class, probability, confidence``, the next classes of the top ``topk``
(``class_2, probability_2, ...``) and ``model``. ``probability`` is calibrated; ``confidence``
says it in words (high, moderate, low), ``uncertain - refer`` below the model's abstention
threshold, or ``not an MRI scan: <why>`` when the out-of-distribution check refuses the
image (then no class is given; ``check_input=false`` classifies it anyway). Prints a short
table. With ``explain=true`` (or ``--explain``, checkpoints only) a Grad-CAM overlay PNG per
scan in ``out/gradcam/``. Files that cannot be decoded, or have more than 40 million pixels,
are listed, skipped, and recorded in ``skipped.csv``. An ``out`` that already holds
predictions is refused unless ``overwrite=true``. Unknown keys fail.

One job, though over 300 lines: the command's settings, its walk over the input, its rows and
its files are one contract with the user (what is written, skipped and refused), read in one
place; the model itself is behind :mod:`braintumor.inference.loading`.
"""

from __future__ import annotations

import csv
import io
import sys
import tempfile
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from omegaconf import MISSING, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from braintumor.atomic import write_atomically
from braintumor.conformal import describe_set
from braintumor.data.scan import is_scan_file
from braintumor.errors import UsageError
from braintumor.inference.cli import argument_error, user_errors
from braintumor.inference.loading import load_predictor
from braintumor.inference.predictor import Predictor
from braintumor.inference.preprocess import DecodedScan
from braintumor.inference.study import is_study
from braintumor.inference.study_predict import predict_pacs_study, predict_study
from braintumor.inference.wording import REFUSED, word_answer


@dataclass
class PredictConfig:
    """The ``key=value`` arguments of ``braintumor.inference.predict``."""

    ckpt: str = MISSING  # a Lightning checkpoint (.ckpt) or an exported ONNX file (.onnx)
    input: str = MISSING  # an image file or a folder (searched recursively)
    out: str | None = None  # output folder; default outputs/predict/<date>_<time>
    topk: int = 3  # classes listed per scan
    batch_size: int = 32
    num_workers: int = 2  # threads decoding images
    device: str = "auto"  # auto (CUDA when available), cpu, cuda, cuda:1, ...
    threads: int | None = None  # CPU threads for inference; default: the library's
    explain: bool = False  # Grad-CAM overlays in out/gradcam/ (needs a .ckpt)
    target_class: str | None = None  # Grad-CAM class (name or index); default: the predicted one
    overwrite: bool = False  # replace the predictions already in out
    check_input: bool = True  # refuse images that are not MRI scans like the training data
    dicomweb: str | None = None  # a DICOMweb server (its root URL): the study comes from there
    study: str | None = None  # the StudyInstanceUID to retrieve from dicomweb
    store_result: bool = False  # send the answer back to dicomweb as a research-use-only SR


def _dicomweb_flags(argv: list[str]) -> list[str]:
    """``--dicomweb URL --study UID --store-result`` as their ``key=value`` settings."""
    out, k = [], 0
    while k < len(argv):
        item = argv[k]
        if item in ("--dicomweb", "--study") and k + 1 < len(argv):
            out.append(f"{item[2:]}={argv[k + 1]}")
            k += 2
            continue
        out.append("store_result=true" if item == "--store-result" else item)
        k += 1
    return out


def parse_args(argv: Sequence[str]) -> PredictConfig:
    """``[MODEL] [INPUT] key=value ...`` (and ``--explain``) -> a checked
    :class:`PredictConfig`; raises :class:`UsageError` with what is wrong."""
    argv = _dicomweb_flags(list(argv))
    positional = [a for a in argv if "=" not in a and not a.startswith("--")]
    flags = [a for a in argv if a.startswith("--")]
    unknown = [f for f in flags if f != "--explain"]
    if unknown:
        raise UsageError(
            f"unknown option {unknown[0]}: the flags are --explain, --dicomweb URL --study UID "
            "and --store-result; see --help."
        )
    dotlist = [a for a in argv if "=" in a] + (["explain=true"] if flags else [])
    given = {a.split("=", 1)[0] for a in dotlist}
    if "dicomweb" in given and "input" not in given:
        dotlist.append("input=dicomweb")  # the study comes from the server
        given.add("input")
    names = [k for k in ("ckpt", "input") if k not in given]
    if len(positional) > len(names):
        extra = positional[len(names) :]
        raise UsageError(
            f"unexpected argument(s) {extra}: give the model and one input (a file or a folder), "
            "then key=value settings; see --help."
        )
    dotlist += [f"{k}={v}" for k, v in zip(names, positional, strict=False)]
    try:
        cfg = OmegaConf.merge(OmegaConf.structured(PredictConfig), OmegaConf.from_dotlist(dotlist))
    except (OmegaConfBaseException, ValueError) as error:
        known = list(PredictConfig.__dataclass_fields__)
        raise UsageError(argument_error(error, known)) from None
    if (cfg.dicomweb is None) != (cfg.study is None):
        raise UsageError("dicomweb=URL and study=UID go together (--dicomweb URL --study UID).")
    if cfg.store_result and cfg.dicomweb is None:
        raise UsageError("store_result=true sends the answer back to a DICOMweb server: give "
                         "dicomweb=URL study=UID.")  # fmt: skip
    missing = [k for k in ("ckpt", "input") if OmegaConf.is_missing(cfg, k)]
    if missing:
        what = {"ckpt": "the model (a .onnx or .ckpt file)", "input": "a scan or a folder"}
        raise UsageError(f"missing {' and '.join(what[k] for k in missing)}; see --help.")
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


OUTPUTS = ("predictions.csv", "skipped.csv", "gradcam", "study.json", "study_slices.csv")


def check_config(cfg: PredictConfig) -> None:
    """Refuse settings that cannot work, before anything is loaded."""
    for key, low in (("batch_size", 1), ("topk", 1), ("num_workers", 0), ("threads", 0)):
        value = getattr(cfg, key)
        if value is not None and value < low:
            raise UsageError(f"{key}={value}: it must be at least {low}.")
    model = Path(cfg.ckpt)
    if not model.is_file():
        raise FileNotFoundError(
            f"model '{model}' does not exist: give an exported .onnx file or a .ckpt checkpoint."
        )
    if model.suffix not in (".onnx", ".ckpt"):
        raise UsageError(
            f"model '{model}' is neither an ONNX file (.onnx) nor a checkpoint (.ckpt)."
        )
    if cfg.explain and model.suffix != ".ckpt":
        raise UsageError("explain=true needs gradients: give the checkpoint (.ckpt), not ONNX.")
    if cfg.dicomweb is None and not Path(cfg.input).exists():
        raise FileNotFoundError(
            f"input '{cfg.input}' does not exist: give an image file or a folder."
        )


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


def class_index(target: str | None, class_names: Sequence[str]) -> int | None:
    """``target_class`` (a class name or an index) -> the class index, checked."""
    if target is None:
        return None
    if target in class_names:
        return list(class_names).index(target)
    if str(target).lstrip("-").isdigit() and -len(class_names) <= int(target) < len(class_names):
        return int(target) % len(class_names)
    raise UsageError(f"target_class '{target}' is neither an index nor one of {list(class_names)}.")


def _decode(predictor: Predictor, path: Path) -> DecodedScan | str:
    """The decoded scan, or why it cannot be read."""
    try:
        return predictor.read(path)
    except Exception as error:  # PIL raises many types for bad files
        return f"{type(error).__name__}: {error}"


def _decoded_batches(
    predictor: Predictor, files: Sequence[Path], batch_size: int, workers: int
) -> Iterator[list[tuple[Path, DecodedScan | str]]]:
    """The files decoded (by ``workers`` threads: PIL releases the GIL), batch by batch."""
    if workers <= 1 or len(files) == 1:
        for start in range(0, len(files), batch_size):
            chunk = files[start : start + batch_size]
            yield [(f, _decode(predictor, f)) for f in chunk]
        return
    with ThreadPoolExecutor(workers) as pool:
        for start in range(0, len(files), batch_size):
            chunk = files[start : start + batch_size]
            yield list(zip(chunk, pool.map(lambda f: _decode(predictor, f), chunk), strict=True))


def _overlay_path(out: Path, base: Path, file: Path, label: str) -> Path:
    relative = file.relative_to(base) if file.is_relative_to(base) else Path(file.name)
    tag = "".join(c if c.isalnum() or c in "+-_." else "_" for c in label)
    return out / "gradcam" / relative.parent / f"{relative.stem}_{tag}.png"


def predict(cfg: PredictConfig) -> tuple[list[dict[str, Any]], list[tuple[str, str]]]:
    """Run ``cfg``; return the prediction rows (as in the CSV) and the skipped files."""
    check_config(cfg)
    out = Path(cfg.out or Path("outputs/predict") / datetime.now().strftime("%Y-%m-%d_%H-%M-%S"))
    from_pacs = cfg.dicomweb is not None
    if from_pacs or (Path(cfg.input).exists() and is_study([cfg.input])):
        # a study (from a PACS, or DICOM, NIfTI, a zip): one answer
        prepare_out(out, cfg.overwrite)
        predictor = load_predictor(cfg.ckpt, cfg.device, cfg.threads)
        model = Path(cfg.ckpt).name
        if from_pacs:
            answer = predict_pacs_study(predictor, cfg.dicomweb, cfg.study, out, cfg.topk,
                                        cfg.explain, model, cfg.store_result)  # fmt: skip
        else:
            answer = predict_study(predictor, [cfg.input], out, cfg.topk, cfg.explain, model)
        return [answer], []
    base, files = find_inputs(cfg.input)
    prepare_out(out, cfg.overwrite)
    predictor = load_predictor(cfg.ckpt, cfg.device, cfg.threads)
    if not cfg.check_input:
        predictor.calibration.pop("ood", None)
    names = predictor.class_names
    topk = max(1, min(cfg.topk, len(names)))
    target = class_index(cfg.target_class, names)
    explainer = _Explainer(predictor, out, base, target) if cfg.explain else None
    rows: list[dict[str, Any]] = []
    skipped: list[tuple[str, str]] = []
    for items in _decoded_batches(predictor, files, cfg.batch_size, cfg.num_workers):
        for path, scan in items:
            if isinstance(scan, str):
                skipped.append((str(path), scan))
                print(f"skipped {path}: {scan}", file=sys.stderr)
        good = [(path, scan) for path, scan in items if not isinstance(scan, str)]
        if not good:
            continue
        scans = [scan for _, scan in good]
        answer = predictor.assess(scans)
        sets = predictor.prediction_sets(answer.probabilities)
        for row, (path, scan) in enumerate(good):
            probs, verdict = answer.probabilities[row], answer.verdicts[row]
            order = probs.argsort()[::-1][:topk]
            best, abstain = names[order[0]], bool(answer.abstain[row])
            words = word_answer(best, float(probs[order[0]]), abstain, verdict, predictor.threshold)
            record = _record(path, names, probs, order, words.confidence, verdict.reason)
            if sets is not None:  # the conformal set: "A or B (95% set)"; none when refused
                level = float(predictor.conformal["level"])
                described = describe_set(sets[row], level)
                record["prediction_set"] = described if verdict.accepted else ""
            record["model"] = Path(cfg.ckpt).name
            if explainer is not None and verdict.accepted:
                record.update(explainer.explain(path, scan, int(order[0])))
            elif explainer is not None:  # no class, no heatmap (as on the web page)
                record.update(gradcam_class="", gradcam="")
            rows.append(record)
    _write(out, rows, skipped)
    _print_table(rows, skipped, out)
    return rows, skipped


def _record(path: Path, names: Sequence[str], probs, order, confidence: str,
            reason: str) -> dict[str, Any]:  # fmt: skip
    """One CSV row: the top class and its calibrated probability, the confidence in words,
    then the next classes of the top k; a refused image gets no class."""
    refused = confidence in REFUSED
    record: dict[str, Any] = {
        "file": str(path),
        "class": "" if refused else names[order[0]],
        "probability": "" if refused else round(float(probs[order[0]]), 6),
        "confidence": f"{confidence}: {reason}" if refused else confidence,
    }
    for k, c in enumerate(order[1:], start=2):
        record[f"class_{k}"] = "" if refused else names[c]
        record[f"probability_{k}"] = "" if refused else round(float(probs[c]), 6)
    return record


class _Explainer:
    """Grad-CAM overlays of predicted scans (PyTorch: checkpoints only)."""

    def __init__(self, predictor: Predictor, out: Path, base: Path, target: int | None) -> None:
        from braintumor.inference.explain import target_layer

        self.predictor, self.out, self.base, self.target = predictor, out, base, target
        self.layer = target_layer(predictor.module)

    def explain(self, path: Path, scan: DecodedScan, predicted: int) -> dict[str, str]:
        import torch

        from braintumor.inference.explain import explain_picture, grad_cam

        predictor = self.predictor
        explained = self.target if self.target is not None else predicted
        batch = predictor.preprocess([scan.pixels]).to(predictor.device)
        maps, _ = grad_cam(predictor.module, self.layer, batch, [explained])
        label = predictor.class_names[explained]
        overlay = _overlay_path(self.out, self.base, path, label)
        overlay.parent.mkdir(parents=True, exist_ok=True)
        png = io.BytesIO()
        explain_picture(torch.from_numpy(scan.pixels), maps[0]).save(png, format="PNG")
        write_atomically(overlay, png.getvalue())
        return {"gradcam_class": label, "gradcam": str(overlay)}


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
    width = min(40, max([len(r["file"]) for r in rows[:limit]] + [4]))
    lines = [f"{'file':<{width}}  {'class':<24} {'prob':>6}  confidence"]
    for r in rows[:limit]:
        name = r["file"] if len(r["file"]) <= width else "..." + r["file"][-width + 3 :]
        prob = f"{r['probability']:>6.3f}" if r["class"] else f"{'-':>6}"
        lines.append(f"{name:<{width}}  {r['class'] or '-':<24} {prob}  {r['confidence']}")
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
    with user_errors():
        predict(parse_args(argv))


if __name__ == "__main__":
    main()
