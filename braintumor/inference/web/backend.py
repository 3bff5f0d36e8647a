"""The model(s) behind the web page: an upload -> the answer the page shows (headline in
words, top classes, the scan and its Grad-CAM as pictures, time taken), the validation
metrics to show, the model's identity and card."""

from __future__ import annotations

import base64
import io
import json
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, UnidentifiedImageError

from braintumor.conformal import describe_set
from braintumor.errors import UsageError
from braintumor.inference.export import (
    model_card_beside,
    run_model_card,
    same_checkpoint,
    validation_metrics,
)
from braintumor.inference.loading import load_predictor
from braintumor.inference.predictor import MAX_PIXELS, Predictor
from braintumor.inference.wording import word_answer

TOP = 5  # classes shown per answer
MAX_SIDE = 1024  # pictures sent back are drawn at most this long on a side


class UploadError(ValueError):
    """An upload the page refuses; ``status`` is the HTTP status to answer with."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


def png_data_url(picture: Image.Image) -> str:
    buffer = io.BytesIO()
    picture.save(buffer, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()


def scan_picture(pixels: np.ndarray, max_side: int = MAX_SIDE) -> Image.Image:
    """The ``uint8`` ``(C, H, W)`` scan as a picture, at most ``max_side`` on a side."""
    picture = Image.fromarray(pixels[0] if pixels.shape[0] == 1 else pixels.transpose(1, 2, 0))
    scale = min(1.0, max_side / max(picture.size))
    if scale < 1:
        size = (max(1, round(picture.width * scale)), max(1, round(picture.height * scale)))
        picture = picture.resize(size, Image.Resampling.BILINEAR)
    return picture


class PageBackend:
    """The backend of the web page, the loaded model(s) behind it: predictions, Grad-CAM,
    metrics and identity."""

    def __init__(
        self,
        model: str | Path,
        device: str = "auto",
        metrics: str | None = None,
        threads: int | None = None,
    ) -> None:
        self.path = Path(model)
        self.predictor: Predictor = load_predictor(self.path, device, threads)
        self.explainer: Any = None  # a TorchPredictor when heatmaps can be drawn
        self.explain_note = ""
        metadata = getattr(self.predictor, "metadata", None)
        self.onnx = metadata is not None
        if not self.onnx:
            from braintumor.inference.identity import read_identity

            self.explainer = self.predictor
            self.identity = read_identity(self.path)
        else:
            self.identity = metadata.get("identity") or {}
            source = metadata.get("checkpoint")
            if source and Path(source).is_file():
                from braintumor.inference.torch_predictor import TorchPredictor

                self.explainer = TorchPredictor.from_checkpoint(source, device)
            else:
                self.explain_note = (
                    "No Grad-CAM overlay: the checkpoint this ONNX file was exported from "
                    f"({source or 'unknown'}) is not available."
                )
        self.metrics, self.metrics_note = self._metrics(metrics)
        if self.onnx:
            beside = model_card_beside(self.path)
            self.model_card = beside if beside.is_file() else None
        else:
            self.model_card = run_model_card(self.path)
        self.lock = threading.Lock()  # Grad-CAM hooks and the ORT session are shared

    def _metrics(self, given: str | None) -> tuple[dict[str, Any] | None, str]:
        """The validation metrics to show and a note: where they come from, or why none."""
        served = self.predictor.metadata.get("checkpoint") if self.onnx else self.path
        if given:  # shown as asked, with what they were computed for
            try:
                metrics = json.loads(Path(given).read_text())
            except (OSError, ValueError) as error:
                raise UsageError(
                    f"--metrics {given}: not a readable metrics JSON file ({error}); give a "
                    "run's reports/val_metrics.json."
                ) from None
            recorded = metrics.get("checkpoint")
            if same_checkpoint(recorded, served):
                return metrics, f"From {given} (--metrics)."
            return metrics, (
                f"From {given} (--metrics): computed for "
                f"{Path(recorded).name if recorded else 'an unrecorded checkpoint'}, not for "
                f"{self.path.name}."
            )
        if not self.onnx:
            return validation_metrics(self.path)
        meta = self.predictor.metadata
        metrics = meta.get("validation_metrics")
        if not metrics:
            return None, meta.get("validation_metrics_note") or (
                f"no validation metrics in the sidecar of {self.path.name}."
            )
        recorded = metrics.get("checkpoint")
        if not same_checkpoint(recorded, served):  # sidecars exported before the check
            return None, (
                f"no validation metrics: the sidecar of {self.path.name} holds those of "
                f"{Path(recorded).name if recorded else 'an unrecorded checkpoint'}, not of "
                f"{Path(served).name if served else 'the exported checkpoint'}."
            )
        return metrics, ""

    def info(self) -> dict[str, Any]:
        p = self.predictor
        calibration = p.calibration
        if calibration.get("fitted"):
            note = f"temperature {p.temperature:.2f} fitted on validation"
            if p.threshold is not None:
                note += f"; below {100 * p.threshold:.1f} %: 'uncertain - refer'"
        else:
            note = "probabilities not calibrated"
        if p.conformal is not None:
            note += (
                f"; {100 * float(p.conformal['level']):g}% prediction sets "
                f"({p.conformal['method'].upper()}) calibrated on validation"
            )
        return {
            "model": self.path.name,
            "backend": p.backend,
            "identity": self.identity,
            "class_names": p.class_names,
            "image_size": p.image_size,
            "channels": p.channels,
            "gradcam": self.explainer is not None,
            "validation_metrics": self.metrics,
            "validation_metrics_note": self.metrics_note,
            "model_card": self.model_card is not None,
            "calibration_note": note,
            "calibrated": bool(calibration.get("fitted")),
            "threshold": p.threshold,
            "ood": p.ood,
        }

    def classify(self, data: bytes, name: str, target: str | None = None) -> dict[str, Any]:
        """Decode an uploaded file and classify it (a study: one answer for it); raises
        :class:`UploadError` for bad input."""
        from braintumor.inference.web.study_upload import classify_study, study_kind

        kind = study_kind(data, name)
        if kind is not None:
            return classify_study(self, data, kind)
        started = time.perf_counter()
        too_large = f'"{name}" is too large to process (at most {MAX_PIXELS / 1e6:g} megapixels)'
        try:
            with Image.open(io.BytesIO(data)) as probe:
                width, height = probe.size
        except Image.DecompressionBombError:  # beyond PIL's own limit, before ours
            raise UploadError(f"{too_large}.", 413) from None
        except (UnidentifiedImageError, OSError, ValueError):
            raise UploadError(
                f'"{name}" is not an image this page can read: upload a JPEG, PNG, TIFF, BMP, '
                "GIF or WebP file of an MRI slice."
            ) from None
        if width * height > MAX_PIXELS:
            raise UploadError(f"{too_large}: it is {width}x{height} pixels.", 413)
        names = self.predictor.class_names
        if target and target not in names:
            raise UploadError(f"unknown Grad-CAM class '{target}'; expected one of {names}.")
        try:
            scan = self.predictor.read(io.BytesIO(data))
        except Exception as error:  # truncated or corrupt files fail here
            raise UploadError(f'"{name}" could not be decoded ({error}).') from None
        with self.lock:
            answer = self.predictor.assess([scan])
            probs, verdict = answer.probabilities[0], answer.verdicts[0]
            order = probs.argsort()[::-1][:TOP]
            abstain = bool(answer.abstain[0])
            words = word_answer(names[order[0]], float(probs[order[0]]), abstain, verdict,
                                self.predictor.threshold)  # fmt: skip
            result: dict[str, Any] = {
                "file": name,
                "width": width,
                "height": height,
                "headline": words.headline,
                "detail": words.detail,
                "confidence": words.confidence,
                "in_distribution": verdict.accepted,
                "ood_reason": verdict.reason,
                "top": [{"class": names[i], "probability": float(probs[i])} for i in order]
                if verdict.accepted
                else [],
                "abstain": abstain,
                "threshold": self.predictor.threshold,
                "prediction_set": None,
                "image": png_data_url(scan_picture(scan.pixels)),
                "gradcam": None,
                "gradcam_class": None,
                "gradcam_note": self.explain_note,
            }
            sets = self.predictor.prediction_sets(probs[None])
            if sets is not None and verdict.accepted:
                level = float(self.predictor.conformal["level"])
                result["prediction_set"] = {"classes": sets[0], "level": level,
                                            "text": describe_set(sets[0], level)}  # fmt: skip
            if not verdict.accepted:
                result["gradcam_note"] = "No heatmap: the image was not classified."
            elif self.explainer is not None:
                explained = names.index(target) if target else int(order[0])
                result["gradcam"] = self._gradcam(scan.pixels, explained)
                result["gradcam_class"] = names[explained]
        result["seconds"] = time.perf_counter() - started
        return result

    def _gradcam(self, pixels: np.ndarray, target: int) -> str:
        import torch

        from braintumor.inference.explain import explain_picture, grad_cam, target_layer

        explainer = self.explainer
        batch = explainer.preprocess([pixels]).to(explainer.device)
        maps, _ = grad_cam(explainer.module, target_layer(explainer.module), batch, [target])
        picture = explain_picture(torch.from_numpy(pixels), maps[0], MAX_SIDE)
        return png_data_url(picture)
