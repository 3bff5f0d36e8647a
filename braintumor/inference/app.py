"""A local web page for clinicians and researchers: upload an MRI scan, see it beside its
Grad-CAM, the answer worded by calibrated confidence, the top classes as bars, and the model
(run, epoch, date, classes, input) with its validation metrics (only those computed for the
very checkpoint served: a run reports its best checkpoint, not ``last.ckpt``).

    python -m braintumor app outputs/<run>/export/epoch_007.onnx     # or a .ckpt
    python -m braintumor app model.onnx --host 0.0.0.0 --port 8000 --max-upload-mb 20

Binds 127.0.0.1 by default. A small FastAPI app serving one self-contained HTML page (no
external assets, works offline) and a JSON endpoint. An image the model's out-of-distribution
check refuses (blank, a colour picture, unlike the training scans) is answered "not an MRI
scan" with the reason, and no class. With an ONNX file, predictions come from ONNX Runtime
and the Grad-CAM overlay from the checkpoint recorded in its sidecar when that file is still
there (heatmaps need gradients, which the ONNX graph does not carry).
"""

from __future__ import annotations

import argparse
import base64
import io
import json
import socket
import threading
import time
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import numpy as np
from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, JSONResponse, PlainTextResponse
from PIL import Image, UnidentifiedImageError
from starlette.concurrency import run_in_threadpool

from braintumor.errors import UsageError
from braintumor.inference.app_page import render_page
from braintumor.inference.cli import user_errors
from braintumor.inference.export import (
    model_card_beside,
    run_model_card,
    same_checkpoint,
    validation_metrics,
)
from braintumor.inference.predictor import MAX_PIXELS, Predictor, load_predictor
from braintumor.inference.wording import word_answer

TOP = 5
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


class Classifier:
    """The loaded model(s) behind the page: predictions, Grad-CAM, metrics and identity."""

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
        """Decode an uploaded file and classify it; raises :class:`UploadError` for bad input."""
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
                "image": png_data_url(scan_picture(scan.pixels)),
                "gradcam": None,
                "gradcam_class": None,
                "gradcam_note": self.explain_note,
            }
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


async def read_limited(request: Request, limit: int) -> bytes:
    """The request body, refusing (413) more than ``limit`` bytes without reading it all."""
    declared = request.headers.get("content-length")
    too_big = f"the upload is larger than the {limit / 1e6:g} MB limit."
    if declared and declared.isdigit() and int(declared) > limit:
        raise UploadError(too_big, 413)
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise UploadError(too_big, 413)
        chunks.append(chunk)
    if size == 0:
        raise UploadError("the upload is empty: choose an image file.")
    return b"".join(chunks)


def create_app(classifier: Classifier, max_upload_bytes: int = 10_000_000) -> FastAPI:
    """The FastAPI app around a loaded :class:`Classifier`."""
    app = FastAPI(title="braintumor", docs_url=None, redoc_url=None, openapi_url=None)
    page = render_page(classifier.info(), max_upload_bytes, TOP)

    @app.get("/", response_class=HTMLResponse)
    def index() -> str:
        return page

    @app.get("/model-card", response_class=PlainTextResponse)
    def model_card() -> PlainTextResponse:
        if classifier.model_card is None:
            return PlainTextResponse("No model card was written for this model.", 404)
        return PlainTextResponse(classifier.model_card.read_text())

    @app.get("/api/info")
    def info() -> dict[str, Any]:
        return classifier.info()

    @app.post("/api/predict")
    async def predict(request: Request, target: str = "") -> JSONResponse:
        name = unquote(request.headers.get("x-filename", "upload"))
        try:
            data = await read_limited(request, max_upload_bytes)
            result = await run_in_threadpool(classifier.classify, data, name, target or None)
        except UploadError as error:
            return JSONResponse({"error": str(error)}, status_code=error.status)
        return JSONResponse(result)

    return app


def check_args(args: argparse.Namespace) -> None:
    """Refuse settings that cannot work, before a model is loaded."""
    model = Path(args.model)
    if not model.is_file():
        raise FileNotFoundError(
            f"model '{model}' does not exist: give an exported .onnx file or a .ckpt checkpoint."
        )
    if model.suffix not in (".onnx", ".ckpt"):
        raise UsageError(f"model '{model}' is neither an ONNX file (.onnx) nor a checkpoint.")
    if not 1 <= args.port <= 65535:
        raise UsageError(f"--port {args.port}: a port is a number from 1 to 65535.")
    if not args.max_upload_mb > 0:
        raise UsageError(f"--max-upload-mb {args.max_upload_mb}: it must be positive.")
    if args.threads is not None and args.threads < 1:
        raise UsageError(f"--threads {args.threads}: it must be at least 1.")
    if args.metrics and not Path(args.metrics).is_file():
        raise FileNotFoundError(f"--metrics {args.metrics} does not exist.")
    try:
        with socket.socket() as probe:
            probe.bind((args.host, args.port))
    except OSError as error:
        raise UsageError(
            f"cannot serve on {args.host}:{args.port} ({error.strerror or error}): choose "
            "another --port (or --host)."
        ) from None


def main(argv: list[str] | None = None) -> None:
    """The command line (also installed as ``braintumor-app``)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("model", help="a checkpoint (.ckpt) or an exported ONNX file (.onnx)")
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=7860)
    parser.add_argument("--max-upload-mb", type=float, default=10.0)
    parser.add_argument("--device", default="auto", help="auto, cpu or cuda")
    parser.add_argument("--metrics", help="a val_metrics.json to show (default: the run's)")
    parser.add_argument("--threads", type=int, help="CPU threads for inference (default: all)")
    args = parser.parse_args(argv)
    with user_errors():
        check_args(args)
        classifier = Classifier(args.model, args.device, args.metrics, args.threads)
    import uvicorn

    app = create_app(classifier, int(args.max_upload_mb * 1e6))
    print(f"braintumor app on http://{args.host}:{args.port} (research use only)", flush=True)
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning")


if __name__ == "__main__":
    main()
