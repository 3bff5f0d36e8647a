"""Studies from a PACS over DICOMweb (``dicomweb-client``), and the answer sent back on request.

``fetch_study(url, uid, folder)`` retrieves every instance of a study (WADO-RS) into a folder
(the caller's private temporary one), where :func:`~braintumor.inference.study.read_study`
reads it like any DICOM folder. ``store_result(url, study, answer)`` sends the answer back
(STOW-RS) as a DICOM Basic Text Structured Report in a new series of the same study, marked
"RESEARCH USE ONLY" in its series description and its text: only when asked
(``store_result=true``). The report copies the study's patient module from the retrieved
instances, as a PACS needs to file it; nothing of it is written anywhere else. A server that
is down or answers with an error gives one line naming the URL and the status.
"""

from __future__ import annotations

import datetime
from pathlib import Path
from typing import Any

from braintumor.errors import DataError

RESEARCH = "RESEARCH USE ONLY - not for diagnosis"
PATIENT_MODULE = ("PatientName", "PatientID", "PatientBirthDate", "PatientSex")
STUDY_MODULE = ("StudyInstanceUID", "StudyDate", "StudyTime", "StudyID", "AccessionNumber",
                "ReferringPhysicianName")  # fmt: skip


def _client(url: str):
    from dicomweb_client.api import DICOMwebClient

    client = DICOMwebClient(url=url.rstrip("/"))
    client.set_http_retry_params(retry=False)  # a server that is down: said at once, not in 30 s
    return client


def _fail(url: str, what: str, error: Exception) -> DataError:
    response = getattr(error, "response", None)
    status = getattr(response, "status_code", None)
    why = f"HTTP {status}" if status is not None else type(error).__name__
    detail = str(error).splitlines()[0][:160] if str(error) else ""
    return DataError(
        f"DICOMweb server {url}: {what} failed ({why}{': ' + detail if detail else ''})."
    )


def fetch_study(url: str, study_uid: str, folder: Path) -> list[Path]:
    """Every instance of study ``study_uid`` from ``url`` saved into ``folder``; the files."""
    import requests
    from pydicom.errors import InvalidDicomError

    try:
        instances = _client(url).retrieve_study(study_uid)
    except (requests.RequestException, OSError, ValueError, InvalidDicomError) as error:
        raise _fail(url, f"retrieving study {study_uid}", error) from None
    if not instances:
        raise DataError(f"DICOMweb server {url}: study {study_uid} holds no instances.")
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for k, ds in enumerate(instances):
        path = folder / f"instance{k:05d}.dcm"
        ds.save_as(path, enforce_file_format=True)
        paths.append(path)
    return paths


def result_report(answer: dict[str, Any], source) -> Any:
    """A Basic Text SR of ``answer`` in a new series of ``source``'s study (a dataset of it)."""
    from pydicom.dataset import Dataset, FileDataset, FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian, generate_uid

    sop_class = "1.2.840.10008.5.1.4.1.1.88.11"  # Basic Text SR
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID, meta.MediaStorageSOPInstanceUID = sop_class, generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = FileDataset("result.dcm", {}, file_meta=meta, preamble=b"\0" * 128)  # Part 10
    for name in (*PATIENT_MODULE, *STUDY_MODULE):
        if name in source:
            setattr(ds, name, source.data_element(name).value)
    now = datetime.datetime.now()
    ds.SOPClassUID, ds.SOPInstanceUID = sop_class, meta.MediaStorageSOPInstanceUID
    ds.Modality, ds.SeriesInstanceUID, ds.SeriesNumber = "SR", generate_uid(), 9901
    ds.SeriesDescription = f"braintumor result - {RESEARCH}"
    ds.InstanceNumber, ds.ContentDate, ds.ContentTime = (
        1,
        now.strftime("%Y%m%d"),
        now.strftime("%H%M%S"),
    )
    ds.Manufacturer, ds.CompletionFlag, ds.VerificationFlag = "braintumor", "COMPLETE", "UNVERIFIED"
    ds.ValueType, ds.ContinuityOfContent = "CONTAINER", "SEPARATE"
    title = Dataset()
    title.CodeValue, title.CodingSchemeDesignator = "18748-4", "LN"
    title.CodeMeaning = "Diagnostic imaging report"
    ds.ConceptNameCodeSequence = [title]
    item = Dataset()
    item.RelationshipType, item.ValueType = "CONTAINS", "TEXT"
    name = Dataset()
    name.CodeValue, name.CodingSchemeDesignator, name.CodeMeaning = "121071", "DCM", "Finding"
    item.ConceptNameCodeSequence = [name]
    if answer.get("answer"):
        text = (f"{RESEARCH}. braintumor model {answer.get('model') or ''}: "
                f"{answer['headline']} ({answer['answer']}, calibrated probability "
                f"{answer['probability']:.3f}); {answer['detail']}")  # fmt: skip
    else:
        text = f"{RESEARCH}. braintumor: {answer.get('headline')}. {answer.get('detail')}"
    item.TextValue = text[:1024]
    ds.ContentSequence = [item]
    return ds


def store_result(url: str, answer: dict[str, Any], source) -> str:
    """Send the answer's report to ``url`` (STOW-RS); its SOPInstanceUID."""
    import requests

    report = result_report(answer, source)
    try:
        _client(url).store_instances([report])
    except (requests.RequestException, OSError, ValueError) as error:
        raise _fail(url, "storing the result", error) from None
    return str(report.SOPInstanceUID)
