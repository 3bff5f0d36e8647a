"""A multirun's jobs as rows: status, swept parameters, objective, metrics, epochs, wall time.

Reads each job folder's ``run_info.json`` (see :mod:`braintumor.runs.record`), falling back on
``.hydra/overrides.yaml`` and ``reports/*_metrics.json`` for jobs that have none, so partial,
failed and killed sweeps are read too. Plain data in, plain data out: no Lightning here.
"""

from __future__ import annotations

import json
import math
import socket
import statistics
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from omegaconf import OmegaConf

from braintumor.atomic import process_alive
from braintumor.runs.layout import RunDir
from braintumor.runs.record import read_run_info
from braintumor.vocabulary import current_name

LOWER_IS_BETTER = ("loss", "ece", "error")


def job_dirs(sweep_dir: Path) -> list[Path]:
    """The job folders of a sweep (those with a run_info.json or Hydra's overrides.yaml)."""
    jobs = [
        p
        for p in sweep_dir.iterdir()
        if p.is_dir() and (RunDir(p).run_info.is_file() or RunDir(p).overrides.is_file())
    ]
    numbered = [p for p in jobs if p.name.isdigit()]
    return sorted(numbered, key=lambda p: int(p.name)) + sorted(set(jobs) - set(numbered))


def parse_overrides(overrides: Iterable[str]) -> dict[str, str]:
    """``["model.net.dropout=0.3", "+x=1"]`` -> ``{"model.net.dropout": "0.3", "x": "1"}``."""
    parsed = {}
    for override in overrides:
        key, _, value = override.partition("=")
        parsed[key.lstrip("+~")] = value
    return parsed


def _metrics_from_reports(job_dir: Path) -> dict[str, float]:
    metrics = {}
    for split in ("val", "test"):
        path = RunDir(job_dir).metrics(split)
        if path.is_file():
            values = json.loads(path.read_text())
            metrics.update({f"{split}/{k}": v for k, v in values.items() if isinstance(v, float)})
    return metrics


def read_job(job_dir: Path) -> dict[str, Any]:
    """One job as a row: ``job``, ``status``, ``overrides`` (dict), ``objective``, ``metrics``,
    ``epochs``, ``wall_time_s``, ``error``. A job still marked ``running`` whose process is
    gone (same host) is ``interrupted``; one without run_info.json is ``unknown``."""
    info = read_run_info(job_dir) or {}
    overrides = info.get("overrides")
    if overrides is None and (job_dir / ".hydra/overrides.yaml").is_file():
        overrides = list(OmegaConf.load(job_dir / ".hydra/overrides.yaml") or [])
    status = info.get("status", "unknown")
    if (
        status == "running"
        and info.get("host") == socket.gethostname()
        and not process_alive(int(info.get("pid", -1)))
    ):
        status = "interrupted"
    metrics = {**_metrics_from_reports(job_dir), **(info.get("metrics") or {})}
    metrics = {current_name(k): v for k, v in metrics.items()}  # older runs' names too
    objective_name = info.get("objective_name")
    return {
        "job": int(job_dir.name) if job_dir.name.isdigit() else job_dir.name,
        "status": status,
        "overrides": parse_overrides(overrides or []),
        "objective_name": current_name(objective_name) if objective_name else None,
        "objective": info.get("objective"),
        "metrics": metrics,
        "epochs": info.get("epochs"),
        "wall_time_s": info.get("wall_time_s"),
        "error": info.get("error", ""),
        "dir": str(job_dir),
    }


def swept_keys(rows: Sequence[dict[str, Any]], always: Iterable[str] = ()) -> list[str]:
    """Override keys whose values differ between jobs (plus ``always``), in first-seen order."""
    keys: dict[str, set[str | None]] = {}
    for row in rows:
        for key in row["overrides"]:
            keys.setdefault(key, set())
    for key, values in keys.items():
        values.update(row["overrides"].get(key) for row in rows)
    forced = set(always)
    return [k for k, v in keys.items() if len(v) > 1 or k in forced]


def is_maximized(metric: str | None, direction: str | None = None) -> bool:
    """``direction`` (maximize/minimize) when given, else guessed from the metric's name."""
    if direction and direction != "auto":
        return direction.lower().startswith("max")
    return not any(word in (metric or "") for word in LOWER_IS_BETTER)


def _finite(value: Any) -> bool:
    return isinstance(value, (int, float)) and math.isfinite(value)


def sort_rows(rows: list[dict[str, Any]], maximize: bool) -> list[dict[str, Any]]:
    """Best objective first (ties: lower job number first); jobs without one last."""

    def key(row: dict[str, Any]) -> tuple:
        value = row["objective"]
        job = row["job"] if isinstance(row["job"], int) else 10**9
        if not _finite(value):
            return (1, 0.0, job)
        return (0, -value if maximize else value, job)

    return sorted(rows, key=key)


def seed_groups(rows: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Completed jobs grouped by their overrides except ``seed``: for each group, the seeds
    and ``mean``/``std`` (sample standard deviation; 0 for one run) of every metric."""
    groups: dict[tuple, list[dict[str, Any]]] = {}
    for row in rows:
        if row["status"] != "completed":
            continue
        rest = tuple(sorted((k, v) for k, v in row["overrides"].items() if k != "seed"))
        groups.setdefault(rest, []).append(row)
    summaries = []
    for rest, members in groups.items():
        names = sorted({k for m in members for k, v in m["metrics"].items() if _finite(v)})
        stats = {}
        for name in names:
            values = [m["metrics"][name] for m in members if _finite(m["metrics"].get(name))]
            std = statistics.stdev(values) if len(values) > 1 else 0.0
            stats[name] = {"mean": statistics.fmean(values), "std": std, "n": len(values)}
        summaries.append(
            {
                "overrides": dict(rest),
                "seeds": [m["overrides"].get("seed") for m in members],
                "n": len(members),
                "metrics": stats,
            }
        )
    return summaries
