"""One table and one plot for a multirun (grid, seeds or Optuna):

    python -m braintumor sweep-report outputs/multirun/<date>_<time>
    python -m braintumor sweep-report outputs/optuna/cnn_optuna --out report/

Writes ``sweep_summary.csv`` (every metric), ``sweep_summary.md`` (the main columns) and
``sweep_summary.png``, sorted best first by the optimized metric; ``seed_summary.{csv,md}``
(mean ± std per metric) when the jobs differ by ``seed``. Works on unfinished, failed and
killed sweeps. With an Optuna study (``optuna.db``) in the folder, each job gets its trial's
state, and the report names Optuna's best trial. Run automatically after every multirun by
:class:`braintumor.pipeline.sweep_callback.SweepReportCallback` (``conf/hydra/default.yaml``).
"""

from __future__ import annotations

import argparse
import csv
import io
import logging
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from omegaconf import OmegaConf

from braintumor.atomic import write_atomically
from braintumor.sweeps.cross_validation import write_cv_summary
from braintumor.sweeps.study import open_storage, redact, sweep_study
from braintumor.sweeps.table import (
    is_maximized,
    job_dirs,
    read_job,
    seed_groups,
    sort_rows,
    swept_keys,
)
from braintumor.vocabulary import current_name, metric_key, names_in

log = logging.getLogger(__name__)

MD_METRICS = [metric_key(s, k) for s in ("val", "test") for k in names_in("sweep")]
DEFAULT_METRIC = metric_key("val", "f1_macro_best")  # conf/train.yaml's optimized_metric


def _sweep_settings(sweep_dir: Path) -> tuple[str | None, dict[str, str]]:
    """(direction, {swept param: its search space}) from Hydra's ``multirun.yaml``."""
    path = sweep_dir / "multirun.yaml"
    if not path.is_file():
        return None, {}
    sweeper = OmegaConf.select(OmegaConf.load(path), "hydra.sweeper") or {}
    direction = sweeper.get("direction")
    if OmegaConf.is_list(direction):
        direction = direction[0]
    params = {str(k): str(v) for k, v in (sweeper.get("params") or {}).items()}
    return (str(direction) if direction else None), params


def optuna_trials(sweep_dir: Path) -> tuple[dict[int, dict[str, Any]], int | None]:
    """``({trial number: {state, value}}, best trial number)`` of the sweep folder's study
    (its ``optuna_study.yaml``, or an ``optuna.db``/``optuna.journal`` in it; empty when
    there is none or it cannot be read)."""
    found = sweep_study(sweep_dir)
    if found is None:
        return {}, None
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    name, spec = found
    try:
        storage = open_storage(spec)
        names = [name] if name else [s.study_name for s in optuna.get_all_studies(storage)]
        if len(names) != 1:
            log.warning(f"{redact(spec)} holds {len(names)} studies: not matching trials to jobs")
            return {}, None
        study = optuna.load_study(study_name=names[0], storage=storage)
    except Exception as error:  # a report of the job folders still helps
        log.warning(f"the study in {redact(spec)} could not be read: {error}")
        return {}, None
    trials = {t.number: {"state": t.state.name, "value": t.value} for t in study.trials}
    complete = [t for t in study.trials if t.state.name == "COMPLETE"]
    best = study.best_trial.number if complete and len(study.directions) == 1 else None
    return trials, best


def _fmt(value: Any) -> str:
    """Numbers (overrides' too) to 4 significant digits; ints and text as they are."""
    if isinstance(value, str) and ("." in value or "e" in value.lower()):
        try:
            value = float(value)
        except ValueError:
            return value
    if isinstance(value, float):
        return "" if not math.isfinite(value) else f"{value:.4g}"
    return "" if value is None else str(value)


def table_rows(rows: Sequence[dict[str, Any]], params: Sequence[str], metric: str) -> list[dict]:
    """Flat rows for the CSV: rank, job, status, objective, params, metrics, epochs, time."""
    metric_names = sorted({k for r in rows for k in r["metrics"]})
    flat = []
    for rank, row in enumerate(rows, start=1):
        out: dict[str, Any] = {"rank": rank, "job": row["job"], "status": row["status"]}
        if "optuna_state" in row:
            out["optuna_state"] = row["optuna_state"]
        out[metric] = row["objective"]
        out.update({p: row["overrides"].get(p, "") for p in params})
        out.update({m: row["metrics"].get(m) for m in metric_names if m != metric})
        out.update(epochs=row["epochs"], wall_time_s=row["wall_time_s"], error=row["error"])
        flat.append(out)
    return flat


def markdown_table(flat: Sequence[dict], columns: Sequence[str]) -> str:
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    for row in flat:
        cells = [_fmt(row.get(c)).replace("|", "/").replace("\n", " ")[:80] for c in columns]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _write_csv(path: Path, flat: Sequence[dict]) -> None:
    columns = list(dict.fromkeys(k for row in flat for k in row))
    text = io.StringIO(newline="")
    writer = csv.DictWriter(text, fieldnames=columns)
    writer.writeheader()
    writer.writerows(flat)
    write_atomically(path, text.getvalue())  # several sweep workers may write at once


def _write_seed_summary(out: Path, rows: Sequence[dict[str, Any]]) -> Path | None:
    groups = [g for g in seed_groups(rows) if g["n"] > 1]
    if not groups:
        return None
    names = sorted({m for g in groups for m in g["metrics"]})
    flat, md = [], ["# Seeds: mean ± std (sample) per metric", ""]
    for g in groups:
        label = " ".join(f"{k}={v}" for k, v in g["overrides"].items()) or "(no other overrides)"
        row = {"overrides": label, "seeds": " ".join(map(str, g["seeds"])), "n": g["n"]}
        for name in names:
            stat = g["metrics"].get(name)
            row[f"{name}_mean"] = stat["mean"] if stat else None
            row[f"{name}_std"] = stat["std"] if stat else None
        flat.append(row)
        md += [f"## {label}", "", f"seeds {row['seeds']} ({g['n']} runs)", ""]
        md += ["| metric | mean ± std |", "|---|---|"]
        md += [f"| {n} | {s['mean']:.4f} ± {s['std']:.4f} |" for n, s in g["metrics"].items()]
        md.append("")
    _write_csv(out / "seed_summary.csv", flat)
    write_atomically(out / "seed_summary.md", "\n".join(md))
    return out / "seed_summary.md"


def write_sweep_report(
    sweep_dir: Path, out: Path | None = None, metric: str | None = None, direction: str = "auto"
) -> dict[str, Any]:
    """Write the sweep's table, plot (and seed summary); return what was found."""
    from braintumor.sweeps.plot import plot_sweep

    sweep_dir, out = Path(sweep_dir), Path(out or sweep_dir)
    if not sweep_dir.is_dir():
        raise FileNotFoundError(f"sweep folder '{sweep_dir}' does not exist.")
    rows = [read_job(d) for d in job_dirs(sweep_dir)]
    if not rows:
        raise FileNotFoundError(f"'{sweep_dir}' has no job folders (with run_info.json).")
    sweep_direction, sweep_params = _sweep_settings(sweep_dir)
    metric = current_name(metric) if metric else None
    metric = metric or next((r["objective_name"] for r in rows if r["objective_name"]), None)
    metric = metric or DEFAULT_METRIC
    for row in rows:  # a job's own objective, or the chosen metric
        if row["objective_name"] != metric or row["objective"] is None:
            row["objective"] = row["metrics"].get(metric)
    trials, optuna_best = optuna_trials(sweep_dir)
    for row in rows:
        if isinstance(row["job"], int) and row["job"] in trials:
            row["optuna_state"] = trials[row["job"]]["state"]
    maximize = is_maximized(metric, direction if direction != "auto" else sweep_direction)
    rows = sort_rows(rows, maximize)
    params = swept_keys(rows, always=list(sweep_params))
    flat = table_rows(rows, params, metric)
    out.mkdir(parents=True, exist_ok=True)
    _write_csv(out / "sweep_summary.csv", flat)
    columns = ["rank", "job", "status", *(["optuna_state"] if trials else []), metric, *params]
    columns += [m for m in MD_METRICS if m != metric and any(m in r for r in flat)]
    columns += ["epochs", "wall_time_s", "error"]
    statuses = [r["status"] for r in rows]
    counts = {s: statuses.count(s) for s in dict.fromkeys(statuses)}
    head = [
        f"# Sweep {sweep_dir}",
        "",
        f"{len(rows)} jobs: " + ", ".join(f"{n} {s}" for s, n in counts.items()),
        f"sorted by {metric} ({'higher' if maximize else 'lower'} is better)",
    ]
    if optuna_best is not None:
        head.append(f"Optuna's best trial: {optuna_best}")
    table = "\n".join([*head, "", markdown_table(flat, columns), ""])
    write_atomically(out / "sweep_summary.md", table)
    log_params = {k for k, v in sweep_params.items() if "log" in v} if sweep_params else None
    figure = plot_sweep(rows, params, metric, maximize, log_params)
    write_atomically(out / "sweep_summary.png", lambda f: figure.savefig(f, format="png", dpi=110))
    import matplotlib.pyplot as plt

    plt.close(figure)
    seeds = _write_seed_summary(out, rows) if "seed" in params else None
    cv = write_cv_summary(out, rows)
    best = rows[0] if rows and rows[0]["objective"] is not None else None
    return {
        "rows": rows,
        "params": params,
        "metric": metric,
        "best_job": best["job"] if best else None,
        "optuna_best": optuna_best,
        "table": out / "sweep_summary.md",
        "seed_summary": seeds,
        "cv_summary": cv,
        "markdown": markdown_table(flat, columns),
    }


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m braintumor sweep-report", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("sweep_dir", type=Path, help="a multirun folder (holds job folders)")
    parser.add_argument("--out", type=Path, help="where to write (default: the sweep folder)")
    parser.add_argument("--metric", help="sort by this metric (default: the optimized metric)")
    parser.add_argument("--direction", choices=("auto", "maximize", "minimize"), default="auto")
    args = parser.parse_args(argv)
    result = write_sweep_report(args.sweep_dir, args.out, args.metric, args.direction)
    print(result["markdown"])
    print(f"\nbest job: {result['best_job']}", end="")
    if result["optuna_best"] is not None:
        print(f" (Optuna's best trial: {result['optuna_best']})", end="")
    print(f"\nwritten: {result['table']} (+ .csv, .png)")
    if result["seed_summary"]:
        print(f"seeds:   {result['seed_summary']}")
    if result["cv_summary"]:
        print(f"folds:   {result['cv_summary']}")


if __name__ == "__main__":
    main()
