"""The shared page under load: concurrent signed-in users uploading 20-slice studies.

    python bench/app_load.py [--model MODEL.ckpt] [--users 4] [--uploads 5] [--no-append]

Without ``--model``, trains ``experiment=quick_cpu`` on the demo data first (about a minute).
Writes a 20-slice DICOM study (two series, 256 px, zipped), then measures:

- a study classified cold: ``python -m braintumor predict model.onnx study.zip`` in a new
  process (imports, model load, answer), and warm: the same study answered again in-process;
- the page (``app --users``, bearer tokens, ONNX backend) with ``--users`` clients uploading
  ``--uploads`` studies each at once: throughput, p50/p95 latency, failures, the server's peak
  resident memory, and that the audit log holds exactly one line per upload;
- an upload over the size limit: refused (413) from its Content-Length before it is read.

Appends the table to docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from common import ROOT, append, header

sys.path.insert(0, str(ROOT))
from tests.conftest import free_port
from tests.dicom_studies import write_study_zip


def quick_model(tmp: Path) -> Path:
    run = tmp / "run"
    subprocess.run([sys.executable, "train.py", "experiment=quick_cpu", f"hydra.run.dir={run}",
                    "trainer.enable_progress_bar=false", "logger=none"], cwd=ROOT, check=True,
                   capture_output=True)  # fmt: skip
    return next((run / "checkpoints").glob("epoch_*.ckpt"))


def study_zip(tmp: Path) -> Path:
    """The 20-slice study every user uploads (two series of 10 slices, 256 px)."""
    return write_study_zip(tmp, slices=(10, 10), size=256)


def post(url: str, data: bytes, token: str) -> tuple[int, float]:
    request = urllib.request.Request(url + "/api/predict", data=data, method="POST",
                                     headers={"Authorization": f"Bearer {token}",
                                              "X-Filename": "study.zip"})  # fmt: skip
    started = time.perf_counter()
    try:
        with urllib.request.urlopen(request, timeout=300) as response:
            response.read()
            status = response.status
    except urllib.error.HTTPError as error:
        status = error.code
    return status, time.perf_counter() - started


def peak_rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, default=None)
    parser.add_argument("--users", type=int, default=4)
    parser.add_argument("--uploads", type=int, default=5, help="studies per user")
    parser.add_argument("--no-append", action="store_true")
    args = parser.parse_args()
    from braintumor.inference.export import main as export
    from braintumor.inference.web.auth import add_user

    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        env = {**os.environ, "BRAINTUMOR_STUDY_SALT_FILE": str(tmp / "salt")}
        os.environ.update(env)
        ckpt = args.model or quick_model(tmp)
        onnx = tmp / "model.onnx"
        export([f"ckpt={ckpt}", f"out={onnx}"])
        archive = study_zip(tmp)
        data = archive.read_bytes()
        started = time.perf_counter()
        subprocess.run([sys.executable, "-m", "braintumor", "predict", str(onnx), str(archive),
                        f"out={tmp / 'cold'}"], cwd=ROOT, check=True, capture_output=True,
                       env=env)  # fmt: skip
        cold = time.perf_counter() - started
        from braintumor.inference.loading import load_predictor
        from braintumor.inference.study_predict import predict_study

        predictor = load_predictor(onnx, "cpu")
        predict_study(predictor, [str(archive)], tmp / "warm1", 3, False)
        started = time.perf_counter()
        answer = predict_study(predictor, [str(archive)], tmp / "warm2", 3, False)
        warm = time.perf_counter() - started
        users = tmp / "users.txt"
        tokens = [add_user(users, f"user{k}") for k in range(args.users)]
        port = free_port()
        audit = tmp / "audit.jsonl"
        limit_mb = max(1.0, 2 * len(data) / 1e6)
        server = subprocess.Popen(
            [sys.executable, "-m", "braintumor", "app", str(onnx), "--port", str(port),
             "--users", str(users), "--audit-log", str(audit), "--rate-limit", "1000",
             "--max-upload-mb", f"{limit_mb:.2f}", "--device", "cpu"],
            cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        url = f"http://127.0.0.1:{port}"
        try:
            for _ in range(240):
                try:
                    urllib.request.urlopen(url + "/login", timeout=1).read()
                    break
                except OSError:
                    time.sleep(0.25)
            post(url, data, tokens[0])  # warm the server up
            jobs = [tokens[k % args.users] for k in range(args.users * args.uploads)]
            started = time.perf_counter()
            with ThreadPoolExecutor(args.users) as pool:
                results = list(pool.map(lambda t: post(url, data, t), jobs))
            wall = time.perf_counter() - started
            peak = peak_rss_mib(server.pid)
            big = os.urandom(int(limit_mb * 1e6) + 1_000_000)
            started = time.perf_counter()
            big_status, _ = post(url, big, tokens[0])
            refused_in = time.perf_counter() - started
        finally:
            server.terminate()
            server.wait(timeout=30)
        lines = audit.read_text().splitlines()
    latencies = sorted(seconds for _, seconds in results)
    failed = sum(status != 200 for status, _ in results)
    p95 = latencies[max(0, round(0.95 * len(latencies)) - 1)]
    out = header("The shared page under load (bench/app_load.py)", [
        f"a 20-slice DICOM study (2 series, 256 px, {len(data) / 1e6:.2f} MB zipped; "
        f"{answer['slices_classified']} slices classified after the selection), the ONNX "
        f"backend of {'the given model' if args.model else 'experiment=quick_cpu'}, bearer "
        "tokens, the audit log on"])  # fmt: skip
    out += [
        "| measure | value |", "| --- | ---: |",
        f"| a study cold (new process: imports, model, answer) | {cold:.2f} s |",
        f"| a study warm (in-process, model loaded) | {warm:.2f} s |",
        f"| concurrent users x studies each | {args.users} x {args.uploads} |",
        f"| throughput | {len(results) / wall:.2f} studies/s ({wall:.1f} s in all) |",
        f"| latency p50 / p95 | {statistics.median(latencies):.2f} s / {p95:.2f} s |",
        f"| failed or lost | {failed} of {len(results)}; audit lines {len(lines) - 1} for "
        f"{len(results)} uploads (+1 warm-up) |",
        f"| server peak RSS | {peak:.0f} MiB |",
        f"| an upload over the limit ({len(big) / 1e6:.1f} MB, limit {limit_mb:.2f} MB) | "
        f"HTTP {big_status} in {refused_in:.2f} s |",
    ]  # fmt: skip
    print("\n".join(out)) if args.no_append else append(out)
    print(json.dumps({"failed": failed}))


if __name__ == "__main__":
    main()
