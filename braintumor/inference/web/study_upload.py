"""A study uploaded to the page (a zip of DICOM files, one DICOM file, a NIfTI volume): held in
a private temporary folder only while it is answered (removed after, also on error), answered
once for the study (:mod:`braintumor.inference.study`), with the slices that drove the answer
as pictures (and their Grad-CAM when the page has a checkpoint)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from braintumor.data.pseudonyms import study_salt
from braintumor.errors import DataError
from braintumor.inference.study import answer_study, as_channels, private_folder, read_study

ZIP, GZIP = b"PK\x03\x04", b"\x1f\x8b"


def study_kind(data: bytes, name: str) -> str | None:
    """``zip``, ``dicom``, ``nifti`` (``.nii``/``.nii.gz``) or ``None`` for an image upload."""
    lower = name.lower()
    if data[:4] == ZIP:
        return "zip"
    if len(data) > 132 and data[128:132] == b"DICM":
        return "dicom"
    if (lower.endswith(".nii.gz") and data[:2] == GZIP) or (
        lower.endswith(".nii") and data[344:348] in (b"n+1\0", b"ni1\0")
    ):
        return "nifti"
    return None


def classify_study(backend: Any, data: bytes, kind: str) -> dict[str, Any]:
    """The page's answer for an uploaded study (``backend``: the :class:`PageBackend`)."""
    name = {"zip": "study.zip", "dicom": "slice.dcm",
            "nifti": "volume.nii.gz" if data[:2] == GZIP else "volume.nii"}[kind]  # fmt: skip
    return _answered(backend, lambda private: _written(private / name, data))


def classify_pacs_study(backend: Any, url: str, study_uid: str) -> dict[str, Any]:
    """The page's answer for study ``study_uid`` of the DICOMweb server ``url``."""
    from braintumor.inference.dicomweb import fetch_study

    def fetched(private: Path) -> Path:
        fetch_study(url, study_uid, private / "study")
        return private / "study"

    return _answered(backend, fetched)


def _written(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def _answered(backend: Any, place) -> dict[str, Any]:
    """Put the study into a private temporary folder (``place(folder) -> its path``), answer
    it, remove the folder (also on error)."""
    from braintumor.inference.web.backend import UploadError, png_data_url, scan_picture

    started = time.perf_counter()
    with private_folder() as private:
        try:
            study = read_study([place(private)], study_salt())
        except DataError as error:
            raise UploadError(f"the study could not be read: {error}") from None
        with backend.lock:
            answer = answer_study(backend.predictor, study, topk=3)
            by_name = {s.name: s for s in study.series}
            shown = []
            for row in answer.get("driving_slices", []):
                series = by_name[row["series"]]
                pixels = as_channels(series.slices[series.indices.index(row["slice"])],
                                     backend.predictor.channels)  # fmt: skip
                picture = {**row, "image": png_data_url(scan_picture(pixels, 512))}
                if backend.explainer is not None and answer.get("answer"):
                    target = backend.predictor.class_names.index(answer["answer"])
                    picture["gradcam"] = backend._gradcam(pixels, target)
                shown.append(picture)
    summary = {k: v for k, v in answer.items() if k not in ("slices", "driving_slices")}
    return {"kind": "study", **summary, "driving": shown,
            "seconds": time.perf_counter() - started}  # fmt: skip
