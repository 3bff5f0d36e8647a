"""``predict`` on a study (:mod:`braintumor.inference.study`): the case-level answer into
``study.json``, every classified slice into ``study_slices.csv``, Grad-CAM of the slices that
drove the answer (``explain=true``) into ``gradcam/``; a short summary printed. What is written
names the study by its pseudonym, series by sequence and number, slices by index."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any

from braintumor.atomic import write_atomically
from braintumor.data.pseudonyms import study_salt
from braintumor.inference.predictor import Predictor
from braintumor.inference.study import answer_study, as_channels, private_folder, read_study

SLICE_COLUMNS = ("series", "slice", "accepted", "reason", "class", "probability")


def predict_study(predictor: Predictor, inputs: list[str], out: Path, topk: int,
                  explain: bool, model: str = "") -> dict[str, Any]:  # fmt: skip
    """Answer the study in ``inputs`` with ``predictor`` and write the files into ``out``."""
    study = read_study(inputs, study_salt())
    answer = answer_study(predictor, study, topk)
    answer["model"] = model
    if explain and answer.get("answer") is not None:
        answer["gradcam"] = _explain(predictor, study, answer, out)
    text = io.StringIO()
    writer = csv.DictWriter(text, fieldnames=SLICE_COLUMNS)
    writer.writeheader()
    for row in answer["slices"]:
        writer.writerow({k: row[k] for k in SLICE_COLUMNS})
    write_atomically(out / "study_slices.csv", text.getvalue())
    summary = {k: v for k, v in answer.items() if k != "slices"}
    write_atomically(out / "study.json", json.dumps(summary, indent=2))
    _print(answer, out)
    return answer


def predict_pacs_study(
    predictor: Predictor,
    url: str,
    study_uid: str,
    out: Path,
    topk: int,
    explain: bool,
    model: str,
    store: bool = False,
) -> dict[str, Any]:
    """The study ``study_uid`` retrieved from the DICOMweb server ``url`` into a private
    temporary folder (removed after the answer, also on error), answered like a folder; with
    ``store`` the answer goes back to the server as a research-use-only SR."""

    import pydicom

    from braintumor.inference.dicomweb import fetch_study, store_result

    with private_folder() as private:
        files = fetch_study(url, study_uid, private / "study")
        answer = predict_study(predictor, [str(private / "study")], out, topk, explain, model)
        if store:
            source = pydicom.dcmread(files[0], stop_before_pixels=True)
            answer["stored_result"] = store_result(url, answer, source)
            summary = {k: v for k, v in answer.items() if k != "slices"}
            write_atomically(out / "study.json", json.dumps(summary, indent=2))
            print(f"result stored on {url} (SR {answer['stored_result']}, research use)")
        return answer


def _explain(predictor: Predictor, study, answer: dict[str, Any], out: Path) -> list[str]:
    """Grad-CAM overlays of the driving slices (checkpoints only), for the study's class."""
    import torch

    from braintumor.inference.explain import explain_picture, grad_cam, target_layer

    if not hasattr(predictor, "module"):
        return []
    target = predictor.class_names.index(answer["answer"])
    by_name = {s.name: s for s in study.series}
    written = []
    for row in answer["driving_slices"]:
        series = by_name[row["series"]]
        pixels = series.slices[series.indices.index(row["slice"])]
        image = as_channels(pixels, predictor.channels)
        batch = predictor.preprocess([image]).to(predictor.device)
        maps, _ = grad_cam(predictor.module, target_layer(predictor.module), batch, [target])
        png = io.BytesIO()
        explain_picture(torch.from_numpy(image), maps[0]).save(png, format="PNG")
        tag = "".join(c if c.isalnum() else "_" for c in row["series"])
        path = out / "gradcam" / f"{tag}_slice{row['slice']:03d}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        write_atomically(path, png.getvalue())
        written.append(str(path))
    return written


def _print(answer: dict[str, Any], out: Path) -> None:
    lines = [f"{answer['study']}: {answer['headline']} - {answer['detail']}"]
    for series in answer["series"]:
        verdict = (f"{series['class']} ({series['probability']:.3f})" if series["class"]
                   else "no accepted slice")  # fmt: skip
        lines.append(f"  {series['series']:<14} {series['accepted']}/{series['slices']} slices "
                     f"accepted, {len(series['skipped'])} skipped: {verdict}")  # fmt: skip
    lines.append(f"-> {out / 'study.json'}, {out / 'study_slices.csv'}")
    print("\n".join(lines))
