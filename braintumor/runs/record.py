"""``run_info.json``: what one run did — status, wall time, overrides, metrics — written at its
start (status ``running``) and again at its end (``completed``, ``pruned`` or ``failed``), so a
sweep's report can read every job, including those that failed or were killed. It also marks the
folder as taken: a second run started in it while the first is alive is refused."""

from __future__ import annotations

import json
import logging
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

from braintumor.atomic import process_alive, write_atomically
from braintumor.errors import UsageError
from braintumor.runs.layout import RunDir
from braintumor.vocabulary import current_name

log = logging.getLogger(__name__)

RUN_INFO = "run_info.json"


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def write_run_info(run_dir: Path, info: Mapping[str, Any]) -> None:
    """Write ``run_dir/run_info.json`` atomically (a reader never sees half a file)."""
    write_atomically(RunDir(run_dir).run_info, json.dumps(info, indent=2, allow_nan=False) + "\n")


def read_run_info(run_dir: Path) -> dict[str, Any] | None:
    """The run's ``run_info.json``, or ``None`` when it has none (or an unreadable one)."""
    try:
        return json.loads(RunDir(run_dir).run_info.read_text())
    except (OSError, ValueError):
        return None


def add_to_run_info(run_dir: Path, key: str, entry: Mapping[str, Any]) -> bool:
    """Append ``entry`` to the list ``key`` of ``run_dir/run_info.json`` (the run's final
    record keeps it); ``False`` if the file could not be written (e.g. a full disk)."""
    info = read_run_info(run_dir) or {}
    info[key] = [*info.get(key, []), dict(entry)]
    try:
        write_run_info(run_dir, info)
    except OSError:
        return False
    return True


def refuse_if_in_use(run_dir: Path) -> None:
    """Raise :class:`FileExistsError` if another live process of this host is recording a run
    in ``run_dir`` (its ``run_info.json`` says ``running``). A run that was killed leaves a
    ``running`` record behind too; its folder may be reused (resume in place)."""
    info = read_run_info(run_dir) or {}
    pid = info.get("pid")
    if (
        info.get("status") == "running"
        and info.get("host") == socket.gethostname()
        and isinstance(pid, int)
        and pid != os.getpid()
        and process_alive(pid)
    ):
        raise FileExistsError(
            f"'{run_dir / RUN_INFO}' belongs to a run still in progress (pid {pid}, started "
            f"{info.get('started', '?')}): two runs in one folder would mix their checkpoints "
            "and logs. Give this run its own folder (another hydra.run.dir, or none for a new "
            f"timestamped one), or wait for pid {pid} to end."
        )


def _finite(metrics: Mapping[str, float]) -> dict[str, float | None]:
    return {k: (float(v) if math.isfinite(float(v)) else None) for k, v in metrics.items()}


class RunRecord:
    """The mutable record :func:`recorded_run` yields; call :meth:`finish` with the metrics."""

    def __init__(self, info: dict[str, Any], trained: bool = True) -> None:
        self.info = info
        self.trained = trained

    def finish(self, metrics: Mapping[str, float]) -> float | None:
        """Store ``metrics`` and return the objective (``None`` if absent or not finite).

        A missing or non-finite objective marks a training run failed, as a sweeper would; an
        evaluation (``trained=False``) has no objective to miss.
        """
        name = self.info.get("objective_name")
        self.info["metrics"] = _finite({k: v for k, v in metrics.items() if k != "epoch"})
        if "epoch" in metrics:
            self.info["epochs"] = int(metrics["epoch"])
        value = self.info["metrics"].get(name) if name else None
        self.info["objective"] = value
        if name and value is None and self.trained:
            self.info["status"] = "failed"
            self.info["error"] = f"objective {name} is {metrics.get(name, 'missing')}"
        return value


@contextmanager
def recorded_run(
    run_dir: Path,
    overrides: list[str],
    objective_name: str | None,
    job_num: int | None = None,
    trained: bool = True,
) -> Iterator[RunRecord]:
    """Record a run in ``run_dir/run_info.json``: ``running`` now, then ``completed`` (or
    ``failed`` with the error, which is re-raised) with its wall time and metrics.

    ``trained=False``: an evaluation of an existing checkpoint (``mode: evaluate``). Refused
    (:func:`refuse_if_in_use`) while another live run records itself in ``run_dir``.
    """
    if objective_name and current_name(objective_name) != objective_name:
        raise UsageError(
            f"optimized_metric={objective_name}: that metric is now called "
            f"{current_name(objective_name)} (the names: braintumor/evaluation/metrics.py)."
        )
    refuse_if_in_use(run_dir)
    info: dict[str, Any] = {
        "status": "running",
        "mode": "train" if trained else "evaluate",
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
    record = RunRecord(info, trained)
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
        added = {k: v for k, v in (read_run_info(run_dir) or {}).items() if k not in info}
        if info["status"] == "completed" and added.get("pruned"):  # by OptunaPruning
            info["status"] = "pruned"
        try:
            write_run_info(run_dir, {**info, **added})  # e.g. checkpoint_failures
        except OSError as error:
            if info["status"] != "failed":
                raise
            log.error(f"could not record the failure in {run_dir / RUN_INFO}: {error}")
