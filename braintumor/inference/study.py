"""A study in, one answer out: DICOM series or NIfTI volumes -> the case-level answer.

A study is a folder of DICOM files (one or more series), a ``.zip`` of one, several DICOM
files, or NIfTI volumes (``.nii``/``.nii.gz``, one series each). Each series' slices without
brain are skipped (:mod:`braintumor.data.slice_selection`, counted and listed); every other
slice is classified with the model's calibration and out-of-distribution check. The study's
answer follows the evidence reports' case rule: the mean calibrated probability over the
slices the check accepts (:mod:`braintumor.evaluation.cases`); each series gets its own mean;
the top-k slices with the highest probability of the study's class are the ones that drove
it. Below the model's abstention threshold the study is "uncertain - refer"; with no accepted
slice, it gets no class.

Nothing of the patient's identity is kept: the study is named by a salted hash of its
``StudyInstanceUID`` (a NIfTI file by a hash of its content), series by their sequence and
number, slices by their index; file names, which sites often make of patient names, are not
repeated. A zip is unpacked into a private temporary folder that is removed after the answer,
also on error.
"""

from __future__ import annotations

import hashlib
import shutil
import tempfile
import zipfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from braintumor.conformal import ConformalScore, describe_set, prediction_sets
from braintumor.data.dicom import dicom_files, infer_sequence_of_name, read_series
from braintumor.data.nifti import is_nifti, read_volume
from braintumor.data.pseudonyms import pseudonym
from braintumor.data.slice_selection import select_slices
from braintumor.data.taxonomy import tumor_types
from braintumor.errors import DataError
from braintumor.inference.ood import ACCEPTED as _ACCEPTED
from braintumor.inference.predictor import Predictor
from braintumor.inference.preprocess import DecodedScan
from braintumor.inference.wording import UNFAMILIAR, word_answer

RULE = "mean calibrated probability of the accepted slices"
MAX_ZIP_BYTES = 4 * 1024**3  # unpacked; a larger archive is refused (zip bombs)


@dataclass
class StudySeries:
    """One series of a study: its name (sequence and number), the kept slices and the
    skipped ones (index, reason)."""

    name: str
    sequence: str
    slices: list[np.ndarray]
    indices: list[int]
    skipped: list[tuple[int, str]] = field(default_factory=list)


@dataclass
class Study:
    """A study: its pseudonymous id, its series, the input files skipped (count, reasons)."""

    id: str
    series: list[StudySeries]
    skipped_files: list[str] = field(default_factory=list)


def is_study(inputs: Sequence[str | Path]) -> bool:
    """Whether ``inputs`` hold a study (DICOM files, NIfTI volumes or a zip) rather than image
    files."""
    for item in map(Path, inputs):
        files = [item] if item.is_file() else [p for p in item.rglob("*") if p.is_file()]
        for path in files[:200]:
            if is_nifti(path) or path.suffix.lower() == ".zip" or _is_dicom(path):
                return True
    return False


def _is_dicom(path: Path) -> bool:
    try:
        with path.open("rb") as f:
            f.seek(128)
            return f.read(4) == b"DICM"
    except OSError:
        return False


@contextmanager
def private_folder() -> Iterator[Path]:
    """A temporary folder only this user can read (``mkdtemp`` makes it 0700), for a study's
    files while it is answered; removed when the block ends, also on error."""
    private = Path(tempfile.mkdtemp(prefix="braintumor-study-"))
    try:
        yield private
    finally:
        shutil.rmtree(private, ignore_errors=True)


@contextmanager
def unpacked(inputs: Sequence[str | Path], unsafe: list[str]) -> Iterator[list[Path]]:
    """``inputs`` with every zip unpacked into a :func:`private_folder`; members whose path
    would leave it are not unpacked (described in ``unsafe``)."""
    with private_folder() as private:
        out: list[Path] = []
        for k, item in enumerate(map(Path, inputs)):
            if item.is_file() and item.suffix.lower() == ".zip":
                target = private / f"zip{k}"
                target.mkdir()
                try:
                    with zipfile.ZipFile(item) as archive:
                        size = sum(i.file_size for i in archive.infolist())
                        if size > MAX_ZIP_BYTES:
                            raise DataError(f"'{item.name}' unpacks to {size / 1e9:.1f} GB: too "
                                            "large for one study.")  # fmt: skip
                        for info in archive.infolist():  # no path may leave the folder
                            name = Path(info.filename)
                            if name.is_absolute() or ".." in name.parts:
                                unsafe.append(f"a member of '{item.name}' with a path leaving "
                                              "the archive's folder: not unpacked")  # fmt: skip
                                continue
                            archive.extract(info, target)
                except zipfile.BadZipFile:
                    raise DataError(f"'{item.name}' is not a readable zip archive.") from None
                out.append(target)
            else:
                out.append(item)
        yield out


def read_study(
    inputs: Sequence[str | Path], salt: bytes, overrides: dict[str, str] | None = None
) -> Study:
    """The study in ``inputs`` (see the module docstring), its slices selected."""
    unsafe: list[str] = []
    with unpacked(inputs, unsafe) as paths:
        files = dicom_files(paths)  # folders searched, hidden files and DICOMDIR left out
        volumes = [p for p in files if is_nifti(p)]
        others = [p for p in files if not is_nifti(p)]  # read as volumes, never "not DICOM"
        series_list: list[StudySeries] = []
        skipped: list[str] = list(unsafe)
        uid = ""
        if others:
            found, bad = read_series(others, overrides)
            # the file's own name only: folder names are often the patient's
            skipped += [f"{path.name}: " + reason.replace(f"'{path}' ", "").replace(
                f"'{path}': ", "").replace(f"'{path}'", "it") for path, reason in bad]  # fmt: skip
            for number, series in enumerate(found, start=1):
                uid = uid or series.study_uid
                series_list.append(_selected(f"{series.sequence} #{number}", series.sequence,
                                             np.stack(series.slices)))  # fmt: skip
        digest = hashlib.sha256()
        for volume_path in volumes:
            digest.update(volume_path.read_bytes())
            sequence = infer_sequence_of_name(volume_path.name.split(".")[0], overrides)
            number = len(series_list) + 1
            series_list.append(_selected(f"{sequence} #{number}", sequence,
                                         read_volume(volume_path)))  # fmt: skip
        if not series_list:
            why = f" ({len(skipped)} file(s) skipped: {skipped[0]})" if skipped else ""
            raise DataError(f"no MR series or NIfTI volume found in the study{why}.")
        uid = uid or f"nifti:{digest.hexdigest()}"
        return Study(pseudonym(uid, salt), series_list, skipped)


def _selected(name: str, sequence: str, volume: np.ndarray) -> StudySeries:
    chosen = select_slices(volume) if len(volume) > 2 else None
    kept = chosen.kept if chosen is not None else list(range(len(volume)))
    return StudySeries(name, sequence, [volume[k] for k in kept], kept,
                       chosen.skipped if chosen is not None else [])  # fmt: skip


def answer_study(predictor: Predictor, study: Study, topk: int = 3) -> dict[str, Any]:
    """The case-level answer of ``study`` (a JSON-able dict, no patient identity in it)."""
    names = predictor.class_names
    rows: list[dict[str, Any]] = []
    accepted_probs: list[np.ndarray] = []
    per_series = []
    for series in study.series:
        scans = [DecodedScan(as_channels(s, predictor.channels), 0.0) for s in series.slices]
        answer = predictor.assess(scans) if scans else None
        kept = []
        for i, index in enumerate(series.indices):
            verdict = answer.verdicts[i]
            probs = answer.probabilities[i]
            rows.append({"series": series.name, "slice": index, "accepted": verdict.accepted,
                         "reason": verdict.reason, "class": names[int(probs.argmax())],
                         "probability": float(probs.max()), "probs": probs})  # fmt: skip
            if verdict.accepted:
                kept.append(probs)
        mean = np.mean(kept, axis=0) if kept else None
        per_series.append({
            "series": series.name, "sequence": series.sequence, "slices": len(series.indices),
            "accepted": len(kept),
            "skipped": [{"slice": k, "reason": r} for k, r in series.skipped],
            "class": names[int(mean.argmax())] if mean is not None else None,
            "probability": float(mean.max()) if mean is not None else None,
        })  # fmt: skip
        accepted_probs += kept
    out: dict[str, Any] = {"study": study.id, "series": per_series,
                           "slices_classified": len(rows), "slices_accepted": len(accepted_probs),
                           "skipped_files": list(study.skipped_files),
                           "rule": RULE}  # fmt: skip
    if not accepted_probs:
        out.update(
            answer=None,
            confidence=UNFAMILIAR,
            headline="No answer for this study",
            detail="None of its slices is like the scans the model was trained on.",
        )
        return {**out, "slices": _plain(rows)}
    mean = np.mean(accepted_probs, axis=0)
    best = int(mean.argmax())
    abstention = study_abstention(predictor, mean, best)
    threshold = abstention["threshold"]
    abstain = threshold is not None and abstention["confidence"] < threshold
    words = word_answer(names[best], float(mean[best]), abstain, _ACCEPTED, threshold)
    out["abstention"] = {k: v for k, v in abstention.items() if k != "confidence"}
    order = np.argsort(-mean)[: max(1, topk)]
    out.update(
        answer=names[best], probability=float(mean[best]), confidence=words.confidence,
        headline=words.headline, detail=words.detail.replace("this scan", "this study"),
        top=[{"class": names[k], "probability": float(mean[k])} for k in order],
    )  # fmt: skip
    case_set = study_set(predictor, mean)
    if case_set is not None:
        out["prediction_set"] = case_set
    drivers = sorted((r for r in rows if r["accepted"]), key=lambda r: -float(r["probs"][best]))
    out["driving_slices"] = [{"series": r["series"], "slice": r["slice"],
                              "probability": float(r["probs"][best])}
                             for r in drivers[: max(1, topk)]]  # fmt: skip
    return {**out, "slices": _plain(rows)}


def study_abstention(predictor: Predictor, mean: np.ndarray, best: int) -> dict[str, Any]:
    """The threshold a study's answer is held to, and the confidence compared with it: the
    case threshold chosen on validation cases when the model has one (in their taxonomy: the
    answer's class, or its tumour type's summed probability), else the image threshold."""
    stored = predictor.calibration.get("case_abstention") or {}
    names = list(predictor.class_names)
    if stored.get("threshold") is not None:
        confidence = float(mean[best])
        if stored.get("taxonomy") == "tumor_type" and (types := tumor_types(names)) is not None:
            confidence = float(sum(p for p, t in zip(mean, types, strict=True)
                                   if t == types[best]))  # fmt: skip
        return {"threshold": float(stored["threshold"]), "level": "cases",
                "taxonomy": stored.get("taxonomy", "folder"), "confidence": confidence,
                "chosen_on_cases": stored.get("cases")}  # fmt: skip
    why = stored.get("reason") if stored else "the model has no case threshold"
    return {"threshold": predictor.threshold, "level": "images", "taxonomy": "folder",
            "confidence": float(mean[best]), "why_not_cases": why}  # fmt: skip


def study_set(predictor: Predictor, mean: np.ndarray) -> dict[str, Any] | None:
    """The study's conformal set, from the model's case-level calibration (``eval.conformal``
    on data with cases), in the taxonomy it was calibrated in (the classes, or the tumour
    types when the validation cases spanned sequences); ``None`` without one."""
    stored = predictor.conformal
    if not stored or "case_threshold" not in stored:
        return None
    names = list(predictor.class_names)
    taxonomy = stored.get("case_taxonomy", "folder")
    labels, probs = names, np.asarray(mean, dtype=np.float64)
    if taxonomy == "tumor_type":
        types = tumor_types(names)
        if types is None:
            return None
        labels = sorted(set(types))
        probs = np.array([sum(p for p, t in zip(probs, types, strict=True) if t == label)
                          for label in labels])  # fmt: skip
    inside = prediction_sets(probs[None], float(stored["case_threshold"]),
                             ConformalScore.of(stored))[0]  # fmt: skip
    members = [labels[k] for k in np.argsort(-probs, kind="stable") if inside[k]]
    level = float(stored["level"])
    return {"classes": members, "level": level, "taxonomy": taxonomy,
            "text": describe_set(members, level),
            "calibrated_on_cases": stored.get("cases")}  # fmt: skip


def _plain(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{k: v for k, v in r.items() if k != "probs"} for r in rows]


def as_channels(pixels: np.ndarray, channels: int) -> np.ndarray:
    grey = np.ascontiguousarray(pixels, dtype=np.uint8)[None]
    return np.repeat(grey, channels, axis=0) if channels > 1 else grey
