"""Synthetic DICOM MR studies written with pydicom (phantom slices as 12-bit pixels), with
canary strings in every identifying tag, for the readers' tests."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from braintumor.data.synthetic import render_scan

CANARY = "CANARY-7f3a"
IDENTIFYING = {
    "PatientName": f"Doe^{CANARY}",
    "PatientID": f"ID-{CANARY}",
    "PatientBirthDate": "19700101",
    "AccessionNumber": f"ACC{CANARY}"[:16],
    "InstitutionName": f"Hospital {CANARY}",
    "ReferringPhysicianName": f"Dr^{CANARY}",
}


def write_series(
    folder: Path,
    class_name: str = "Glioblastoma T1C+",
    description: str = "AX T1 POST GAD",
    slices: int = 4,
    size: int = 48,
    seed: int = 0,
    modality: str = "MR",
    study_uid: str = "1.2.826.0.1.3680043.8.498.1",
    series_uid: str | None = None,
    shuffle: bool = True,
    **tags,
) -> list[Path]:
    """A series of ``slices`` files in ``folder`` (written in shuffled order, so readers must
    sort them by position); extra ``tags`` set on every file."""
    import pydicom
    from pydicom.dataset import FileDataset, FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian, MRImageStorage, generate_uid

    folder.mkdir(parents=True, exist_ok=True)
    series_uid = series_uid or generate_uid(entropy_srcs=[folder.as_posix(), description])
    rng = np.random.default_rng(seed)
    order = rng.permutation(slices) if shuffle else np.arange(slices)
    paths = []
    for k in order:
        pixels = render_scan(class_name, np.random.default_rng([seed, int(k)]), size)
        meta = FileMetaDataset()
        meta.MediaStorageSOPClassUID = MRImageStorage
        meta.MediaStorageSOPInstanceUID = generate_uid()
        meta.TransferSyntaxUID = ExplicitVRLittleEndian
        path = folder / f"IM{int(k) * 7 % 13:04d}_{int(k)}.dcm"
        ds = FileDataset(str(path), {}, file_meta=meta, preamble=b"\0" * 128)
        ds.SOPClassUID, ds.SOPInstanceUID = MRImageStorage, meta.MediaStorageSOPInstanceUID
        ds.Modality, ds.StudyInstanceUID, ds.SeriesInstanceUID = modality, study_uid, series_uid
        ds.SeriesDescription = description
        for name, value in IDENTIFYING.items():
            setattr(ds, name, value)
        ds.InstanceNumber = int(k) + 1
        ds.ImageOrientationPatient = [1, 0, 0, 0, 1, 0]
        ds.ImagePositionPatient = [0.0, 0.0, float(k) * 5.0]
        ds.Rows = ds.Columns = size
        ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
        ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 12, 11, 0
        ds.RescaleSlope, ds.RescaleIntercept = 1, 0
        for name, value in tags.items():
            setattr(ds, name, value)
        stored = (pixels.astype(np.uint16) * 16).astype(np.uint16)  # 12 bits
        if ds.PhotometricInterpretation == "MONOCHROME1":
            stored = (4095 - stored).astype(np.uint16)
        slope, intercept = float(ds.RescaleSlope), float(ds.RescaleIntercept)
        if (slope, intercept) != (1.0, 0.0):
            stored = np.round((stored - intercept) / slope).clip(0, 4095).astype(np.uint16)
        ds.PixelData = stored.tobytes()
        pydicom.dcmwrite(path, ds, enforce_file_format=True)
        paths.append(path)
    return paths


def write_study_zip(folder: Path, slices: tuple[int, int] = (6, 5), size: int = 32) -> Path:
    """``folder/study.zip``: a two-series study (T1C+ and T2 of a glioblastoma, ``slices``
    each), the form a page upload or a PACS export takes."""
    import zipfile

    root = folder / "study"
    write_series(root / "t1c", "Glioblastoma T1C+", "AX T1 POST GAD", slices=slices[0], size=size)
    write_series(root / "t2", "Glioblastoma T2", "AX T2 FSE", slices=slices[1], size=size, seed=2)
    archive = folder / "study.zip"
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as z:
        for path in root.rglob("*.dcm"):
            z.write(path, path.relative_to(root))
    return archive
