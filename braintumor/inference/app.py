"""A local web page for clinicians and researchers: upload an MRI scan, see the top-5 classes,
a Grad-CAM overlay and the model's validation metrics (only those computed for the very
checkpoint served: a run reports its best checkpoint, not ``last.ckpt``).

    python -m braintumor app outputs/<run>/checkpoints/last.ckpt      # or model.onnx
    python -m braintumor app model.onnx --host 0.0.0.0 --port 8000 --max-upload-mb 20

Binds 127.0.0.1 by default. A small FastAPI app serving one self-contained HTML page (no
external assets, works offline) and a JSON endpoint. With an ONNX file, predictions come
from ONNX Runtime and the Grad-CAM overlay from the checkpoint recorded in its sidecar when
that file is still there (heatmaps need gradients, which the ONNX graph does not carry).
"""

from __future__ import annotations

import argparse
import base64
import io
import json
import threading
from pathlib import Path
from typing import Any
from urllib.parse import unquote

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, JSONResponse, PlainTextResponse
from PIL import Image, UnidentifiedImageError
from starlette.concurrency import run_in_threadpool

from braintumor.inference.app_page import render_page
from braintumor.inference.explain import explain_picture, grad_cam, target_layer
from braintumor.inference.export import (
    model_card_beside,
    run_model_card,
    same_checkpoint,
    validation_metrics,
)
from braintumor.inference.predictor import (
    MAX_PIXELS,
    OnnxPredictor,
    Predictor,
    TorchPredictor,
    load_predictor,
)

TOP = 5


class UploadError(ValueError):
    """An upload the page refuses; ``status`` is the HTTP status to answer with."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


class Classifier:
    """The loaded model(s) behind the page: predictions, Grad-CAM and metrics."""

    def __init__(
        self,
        model: str | Path,
        device: str = "auto",
        metrics: str | None = None,
        threads: int | None = None,
    ) -> None:
        self.path = Path(model)
        self.predictor: Predictor = load_predictor(self.path, device, threads)
        self.explainer: TorchPredictor | None = None
        self.explain_note = ""
        if isinstance(self.predictor, TorchPredictor):
            self.explainer = self.predictor
        elif isinstance(self.predictor, OnnxPredictor):
            source = self.predictor.metadata.get("checkpoint")
            if source and Path(source).is_file():
                self.explainer = TorchPredictor.from_checkpoint(source, device)
            else:
                self.explain_note = (
                    "No Grad-CAM overlay: the checkpoint this ONNX file was exported from "
                    f"({source or 'unknown'}) is not available."
                )
        self.metrics, self.metrics_note = self._metrics(metrics)
        if isinstance(self.predictor, OnnxPredictor):
            beside = model_card_beside(self.path)
            self.model_card = beside if beside.is_file() else None
        else:
            self.model_card = run_model_card(self.path)
        self.lock = threading.Lock()  # Grad-CAM hooks and the ORT session are shared

    def _metrics(self, given: str | None) -> tuple[dict[str, Any] | None, str]:
        """The validation metrics to show and a note: where they come from, or why none."""
        if given:  # shown as asked, with what they were computed for
            metrics = json.loads(Path(given).read_text())
            recorded = metrics.get("checkpoint")
            if isinstance(self.predictor, OnnxPredictor):
                served = self.predictor.metadata.get("checkpoint")
            else:
                served = self.path
            if same_checkpoint(recorded, served):
                return metrics, f"From {given} (--metrics)."
            return metrics, (
                f"From {given} (--metrics): computed for "
                f"{Path(recorded).name if recorded else 'an unrecorded checkpoint'}, not for "
                f"{self.path.name}."
            )
        if not isinstance(self.predictor, OnnxPredictor):
            return validation_metrics(self.path)
        meta = self.predictor.metadata
        metrics = meta.get("validation_metrics")
        if not metrics:
            return None, meta.get("validation_metrics_note") or (
                f"no validation metrics in the sidecar of {self.path.name}."
            )
        recorded, source = metrics.get("checkpoint"), meta.get("checkpoint")
        if not same_checkpoint(recorded, source):  # sidecars exported before the check
            return None, (
                f"no validation metrics: the sidecar of {self.path.name} holds those of "
                f"{Path(recorded).name if recorded else 'an unrecorded checkpoint'}, not of "
                f"{Path(source).name if source else 'the exported checkpoint'}."
            )
        return metrics, ""

    def info(self) -> dict[str, Any]:
        p = self.predictor
        return {
            "model": self.path.name,
            "backend": p.backend,
            "class_names": p.class_names,
            "image_size": p.image_size,
            "channels": p.channels,
            "gradcam": self.explainer is not None,
            "validation_metrics": self.metrics,
            "validation_metrics_note": self.metrics_note,
            "model_card": self.model_card is not None,
        }

    def classify(self, data: bytes, name: str, target: str | None = None) -> dict[str, Any]:
        """Decode an uploaded file and classify it; raises :class:`UploadError` for bad input."""
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
            image = self.predictor.load(io.BytesIO(data))
        except Exception as error:  # truncated or corrupt files fail here
            raise UploadError(f'"{name}" could not be decoded ({error}).') from None
        with self.lock:
            probs = self.predictor.predict_images([image])[0]
            order = probs.argsort()[::-1][:TOP]
            result: dict[str, Any] = {
                "file": name,
                "top": [{"class": names[i], "probability": float(probs[i])} for i in order],
                "abstain": bool(self.predictor.abstains(probs[None])[0]),
                "threshold": self.predictor.threshold,
                "gradcam": None,
                "gradcam_class": None,
                "gradcam_note": self.explain_note,
            }
            if self.explainer is not None:
                explained = names.index(target) if target else int(order[0])
                result["gradcam"] = self._gradcam(image, explained)
                result["gradcam_class"] = names[explained]
        return result

    def _gradcam(self, image, target: int) -> str:
        explainer = self.explainer
        batch = explainer.preprocess([image]).to(explainer.device)
        maps, _ = grad_cam(explainer.module, target_layer(explainer.module), batch, [target])
        picture = explain_picture(image, maps[0])  # at most 1024 px on a side
        buffer = io.BytesIO()
        picture.save(buffer, format="PNG")
        return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()


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
    page = render_page(classifier.info(), max_upload_bytes)

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
    import uvicorn

    classifier = Classifier(args.model, args.device, args.metrics, args.threads)
    app = create_app(classifier, int(args.max_upload_mb * 1e6))
    print(f"braintumor app on http://{args.host}:{args.port} (research use only)", flush=True)
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning")


if __name__ == "__main__":
    main()
