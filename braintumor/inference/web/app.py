"""A local web page for clinicians and researchers: upload an MRI scan, see it beside its
Grad-CAM, the answer worded by calibrated confidence, the top classes as bars, and the model
(run, epoch, date, classes, input) with its validation metrics (only those computed for the
very checkpoint served: a run reports its best checkpoint, not ``last.ckpt``).

    python -m braintumor app outputs/<run>/export/epoch_007.onnx     # or a .ckpt
    python -m braintumor app model.onnx --host 0.0.0.0 --users users.txt --max-upload-mb 20

Binds 127.0.0.1 by default; any other address needs ``--users`` (who may use the page:
:mod:`braintumor.inference.web.guard`; ``python -m braintumor app adduser USERS NAME``). A small
FastAPI app serving one self-contained HTML page (no external assets, works offline) and a JSON
endpoint. An image the model's out-of-distribution check refuses (blank, a colour picture, unlike
the training scans) is answered "not an MRI scan" with the reason, and no class. With an ONNX file,
predictions come from ONNX Runtime and the Grad-CAM overlay from the checkpoint recorded in its
sidecar when that file is still there (heatmaps need gradients, which the ONNX graph does not
carry).
"""

from __future__ import annotations

import argparse
import getpass
import json
import socket
import sys
import time
from pathlib import Path
from typing import Any
from urllib.parse import unquote

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, JSONResponse, PlainTextResponse
from starlette.concurrency import run_in_threadpool

from braintumor.errors import UsageError
from braintumor.inference.cli import user_errors
from braintumor.inference.web.auth import add_user
from braintumor.inference.web.backend import TOP, PageBackend, UploadError
from braintumor.inference.web.guard import LOOPBACK, Access, audit, install_guard
from braintumor.inference.web.page import render_page
from braintumor.inference.web.study_upload import classify_pacs_study


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


def create_app(
    backend: PageBackend,
    max_upload_bytes: int = 10_000_000,
    access: Access | None = None,
    dicomweb: str | None = None,
) -> FastAPI:
    """The FastAPI app around a loaded :class:`PageBackend`; with ``access``, only for the
    users it lets in (:mod:`braintumor.inference.web.guard`)."""
    app = FastAPI(title="braintumor", docs_url=None, redoc_url=None, openapi_url=None)
    page = render_page(backend.info(), max_upload_bytes, TOP, pacs=dicomweb is not None)
    install_guard(app, access)

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
        started, data = time.perf_counter(), b""
        try:
            data = await read_limited(request, max_upload_bytes)
            result = await run_in_threadpool(backend.classify, data, name, target or None)
        except UploadError as error:
            audit(access, request, data, None, time.perf_counter() - started, error.status)
            return JSONResponse({"error": str(error)}, status_code=error.status)
        audit(access, request, data, result, time.perf_counter() - started, 200)
        return JSONResponse(result)

    @app.post("/api/pacs")
    async def pacs(request: Request) -> JSONResponse:
        started = time.perf_counter()
        if dicomweb is None:
            return JSONResponse({"error": "this page has no DICOMweb server (--dicomweb)."}, 404)
        try:
            body = json.loads((await read_limited(request, 4096)).decode())
            uid = str(body.get("study", "")).strip()
        except (UploadError, ValueError, AttributeError):
            return JSONResponse({"error": 'send {"study": "<StudyInstanceUID>"}.'}, 400)
        if not uid or not all(c.isdigit() or c == "." for c in uid) or len(uid) > 64:
            return JSONResponse({"error": "a StudyInstanceUID is digits and dots (at most 64)."},
                                400)  # fmt: skip
        try:
            result = await run_in_threadpool(classify_pacs_study, backend, dicomweb, uid)
        except UploadError as error:
            audit(access, request, b"", None, time.perf_counter() - started, error.status)
            return JSONResponse({"error": str(error)}, status_code=error.status)
        audit(access, request, b"", result, time.perf_counter() - started, 200)
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
    if args.host not in LOOPBACK and not args.users:
        raise UsageError(
            f"--host {args.host} opens the page to the network: give --users FILE (made with "
            "python -m braintumor app adduser FILE NAME), or keep --host 127.0.0.1."
        )
    if args.users and not Path(args.users).is_file():
        raise FileNotFoundError(f"--users {args.users} does not exist: make it with "
                                "python -m braintumor app adduser FILE NAME.")  # fmt: skip
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


def adduser(argv: list[str]) -> None:
    """``app adduser USERS NAME [--token]``: a login (the password asked twice, or read from
    stdin when it is not a terminal) or a bearer token for scripts (printed once)."""
    parser = argparse.ArgumentParser(prog="python -m braintumor app adduser")
    parser.add_argument("users", type=Path, help="the users file (made when absent)")
    parser.add_argument("name")
    parser.add_argument("--token", action="store_true", help="a bearer token instead")
    args = parser.parse_args(argv)
    with user_errors():
        if args.token:
            token = add_user(args.users, args.name)
            print(f"token of {args.name} (shown once; send it as 'Authorization: Bearer "
                  f"<token>'):\n{token}")  # fmt: skip
            return
        if sys.stdin.isatty():
            password = getpass.getpass(f"password for {args.name}: ")
            if getpass.getpass("again: ") != password:
                raise UsageError("the two passwords differ.")
        else:
            password = sys.stdin.readline().rstrip("\n")
        add_user(args.users, args.name, password)
        print(f"{args.name} added to {args.users}")


def main(argv: list[str] | None = None) -> None:
    """The command line (also installed as ``braintumor-app``)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["adduser"]:
        adduser(argv[1:])
        return
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("model", help="a checkpoint (.ckpt) or an exported ONNX file (.onnx)")
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=7860)
    parser.add_argument("--max-upload-mb", type=float, default=10.0)
    parser.add_argument("--device", default="auto", help="auto, cpu or cuda")
    parser.add_argument("--metrics", help="a val_metrics.json to show (default: the run's)")
    parser.add_argument("--threads", type=int, help="CPU threads for inference (default: all)")
    parser.add_argument("--users", help="users file: only they may use the page (needed for "
                        "any --host but loopback)")  # fmt: skip
    parser.add_argument("--session-minutes", type=float, default=30.0)
    parser.add_argument("--rate-limit", type=int, default=30, help="uploads per user per minute")
    parser.add_argument("--audit-log", help="append-only JSON lines of every answer "
                        "(default with --users: audit.jsonl beside the users file)")  # fmt: skip
    parser.add_argument("--dicomweb", help="a DICOMweb server: the page can fetch a study from "
                        "it by its StudyInstanceUID")  # fmt: skip
    parser.add_argument("--secure-cookies", action="store_true",
                        help="session cookies only over HTTPS (behind a TLS proxy)")  # fmt: skip
    args = parser.parse_args(argv)
    with user_errors():
        check_args(args)
        backend = PageBackend(args.model, args.device, args.metrics, args.threads)
        access = Access.of_args(args) if args.users else None
    import uvicorn

    app = create_app(backend, int(args.max_upload_mb * 1e6), access, args.dicomweb)
    print(f"braintumor app on http://{args.host}:{args.port} (research use only)", flush=True)
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning")


if __name__ == "__main__":
    main()
