"""A sweep's figure: the objective of each trial (and the best so far), then the objective
against each swept parameter. Plain rows in (see :mod:`braintumor.sweeps.table`)."""

from __future__ import annotations

import math
from collections.abc import Collection, Sequence
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator


def _number(value: Any) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def _plot_param(
    ax: Axes, rows: Sequence[dict[str, Any]], key: str, metric: str, log: bool | None
) -> None:
    ok = [r for r in rows if _number(r["objective"]) is not None and key in r["overrides"]]
    values = [r["overrides"][key] for r in ok]
    numbers = [_number(v) for v in values]
    y = [r["objective"] for r in ok]
    if values and all(n is not None for n in numbers) and len(set(numbers)) > 3:
        ax.scatter(numbers, y, s=22, color="tab:blue")
        positive = [n for n in numbers if n > 0]
        wide = len(positive) == len(numbers) and max(positive) / min(positive) > 100
        if log or (log is None and wide):
            ax.set_xscale("log")
    else:  # categories (or a few numbers): one column each, in sorted order
        order = sorted(set(values), key=lambda v: (_number(v) is None, _number(v) or 0.0, v))
        where = {v: i for i, v in enumerate(order)}
        ax.scatter([where[v] for v in values], y, s=22, color="tab:blue")
        ax.set_xticks(range(len(order)), order, rotation=30 if len(order) > 3 else 0)
    ax.set_xlabel(key, fontsize=8)
    ax.set_ylabel(metric, fontsize=8)
    ax.grid(alpha=0.3)


def plot_sweep(
    rows: Sequence[dict[str, Any]],
    params: Sequence[str],
    metric: str,
    maximize: bool = True,
    log_params: Collection[str] | None = None,
) -> Figure:
    """Panel 1: objective per job (failed jobs as red crosses at the bottom, best so far as a
    line); then one panel per swept parameter, on a log axis when it is in ``log_params``
    (without them: when its positive values span more than 100x)."""
    panels = 1 + len(params)
    cols = min(3, panels)
    nrows = math.ceil(panels / cols)
    fig, axes = plt.subplots(
        nrows, cols, figsize=(4.6 * cols, 3.4 * nrows), layout="constrained", squeeze=False
    )
    ordered = sorted(rows, key=lambda r: r["job"] if isinstance(r["job"], int) else 10**9)
    ax = axes[0][0]
    done = [(r["job"], r["objective"]) for r in ordered if _number(r["objective"]) is not None]
    failed = [r["job"] for r in ordered if _number(r["objective"]) is None]
    if done:
        jobs, values = zip(*done, strict=True)
        ax.scatter(jobs, values, s=22, color="tab:blue", label="trial")
        best, running = [], None
        for value in values:
            better = running is None or (value > running if maximize else value < running)
            running = value if better else running
            best.append(running)
        ax.step(jobs, best, where="post", color="tab:orange", label="best so far")
    if failed:
        bottom = min((v for _, v in done), default=0.0)
        ax.scatter(failed, [bottom] * len(failed), marker="x", color="tab:red", label="failed")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("job (trial)")
    ax.set_ylabel(metric)
    ax.set_title(f"{metric} per trial ({'max' if maximize else 'min'})", fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    for i, key in enumerate(params, start=1):
        log = None if log_params is None else key in log_params
        _plot_param(axes[i // cols][i % cols], rows, key, metric, log)
    for j in range(panels, nrows * cols):
        axes[j // cols][j % cols].axis("off")
    return fig
