"""``run_info.json``: what one run did — status, wall time, overrides, metrics — written at its
start (status ``running``) and again at its end (``completed`` or ``failed``), so a sweep's
report can read every job, including those that failed or were killed."""

from __future__ import annotations

import json
import math
import os
import socket
import time
import traceback
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

RUN_INFO = "run_info.json"


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def write_run_info(run_dir: Path, info: Mapping[str, Any]) -> None:
    """Write ``run_dir/run_info.json`` atomically (a reader never sees half a file)."""
    run_dir.mkdir(parents=True, exist_ok=True)
    tmp = run_dir / f".{RUN_INFO}.tmp"
    tmp.write_text(json.dumps(info, indent=2, allow_nan=False) + "\n")
    tmp.replace(run_dir / RUN_INFO)


def read_run_info(run_dir: Path) -> dict[str, Any] | None:
    """The run's ``run_info.json``, or ``None`` when it has none (or an unreadable one)."""
    try:
        return json.loads((run_dir / RUN_INFO).read_text())
    except (OSError, ValueError):
        return None


def _finite(metrics: Mapping[str, float]) -> dict[str, float | None]:
    return {k: (float(v) if math.isfinite(float(v)) else None) for k, v in metrics.items()}


class RunRecord:
    """The mutable record :func:`recorded_run` yields; call :meth:`finish` with the metrics."""

    def __init__(self, info: dict[str, Any]) -> None:
        self.info = info

    def finish(self, metrics: Mapping[str, float]) -> float | None:
        """Store ``metrics`` and return the objective (``None`` if absent or not finite).

        A missing or non-finite objective marks the run failed, as a sweeper would.
        """
        name = self.info.get("objective_name")
        self.info["metrics"] = _finite({k: v for k, v in metrics.items() if k != "epoch"})
        if "epoch" in metrics:
            self.info["epochs"] = int(metrics["epoch"])
        value = self.info["metrics"].get(name) if name else None
        self.info["objective"] = value
        if name and value is None:
            self.info["status"] = "failed"
            self.info["error"] = f"objective {name} is {metrics.get(name, 'missing')}"
        return value


@contextmanager
def recorded_run(
    run_dir: Path,
    overrides: list[str],
    objective_name: str | None,
    job_num: int | None = None,
) -> Iterator[RunRecord]:
    """Record a run in ``run_dir/run_info.json``: ``running`` now, then ``completed`` (or
    ``failed`` with the error, which is re-raised) with its wall time and metrics."""
    info: dict[str, Any] = {
        "status": "running",
        "job": job_num,
        "overrides": list(overrides),
        "objective_name": objective_name,
        "objective": None,
        "epochs": None,
        "metrics": {},
        "started": _now(),
        "wall_time_s": None,
        "host": socket.gethostname(),
        "pid": os.getpid(),
    }
    write_run_info(run_dir, info)
    record = RunRecord(info)
    start = time.monotonic()
    try:
        yield record
        if info["status"] == "running":
            info["status"] = "completed"
    except BaseException as error:
        info["status"] = "failed"
        info["error"] = f"{type(error).__name__}: {error}"
        info["traceback"] = traceback.format_exc(limit=-8)
        raise
    finally:
        info["wall_time_s"] = round(time.monotonic() - start, 2)
        info["finished"] = _now()
        write_run_info(run_dir, info)
