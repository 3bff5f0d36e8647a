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
import socket
from pathlib import Path
from typing import Any
from urllib.parse import unquote

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, JSONResponse, PlainTextResponse
from starlette.concurrency import run_in_threadpool

from braintumor.errors import UsageError
from braintumor.inference.cli import user_errors
from braintumor.inference.web.backend import TOP, PageBackend, UploadError
from braintumor.inference.web.page import render_page


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


def create_app(backend: PageBackend, max_upload_bytes: int = 10_000_000) -> FastAPI:
    """The FastAPI app around a loaded :class:`PageBackend`."""
    app = FastAPI(title="braintumor", docs_url=None, redoc_url=None, openapi_url=None)
    page = render_page(backend.info(), max_upload_bytes, TOP)

    @app.get("/", response_class=HTMLResponse)
    def index() -> str:
        return page

    @app.get("/model-card", response_class=PlainTextResponse)
    def model_card() -> PlainTextResponse:
        if backend.model_card is None:
            return PlainTextResponse("No model card was written for this model.", 404)
        return PlainTextResponse(backend.model_card.read_text())

    @app.get("/api/info")
    def info() -> dict[str, Any]:
        return backend.info()

    @app.post("/api/predict")
    async def predict(request: Request, target: str = "") -> JSONResponse:
        name = unquote(request.headers.get("x-filename", "upload"))
        try:
            data = await read_limited(request, max_upload_bytes)
            result = await run_in_threadpool(backend.classify, data, name, target or None)
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
        backend = PageBackend(args.model, args.device, args.metrics, args.threads)
    import uvicorn

    app = create_app(backend, int(args.max_upload_mb * 1e6))
    print(f"braintumor app on http://{args.host}:{args.port} (research use only)", flush=True)
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning")


if __name__ == "__main__":
    main()
