"""Learning-rate schedules that torch does not ship as one class, and re-planning a schedule
restored from a checkpoint for a run of another length."""

from __future__ import annotations

import math
from typing import Any

from torch.optim import Optimizer
from torch.optim.lr_scheduler import LambdaLR, LRScheduler

# Scheduler attributes that fix how long a schedule runs (cosine's T_max, linear/polynomial
# decay's total_iters, one-cycle's total_steps): planned from trainer.max_epochs.
LENGTH_KEYS = ("T_max", "total_iters", "total_steps")


def warmup_cosine(
    optimizer: Optimizer, max_epochs: int, warmup_epochs: int = 1, min_lr_ratio: float = 0.01
) -> LambdaLR:
    """Linear warmup over ``warmup_epochs`` (from 1/(warmup+1) of the base rate), then cosine
    decay to ``min_lr_ratio`` x the base rate at ``max_epochs``; stepped once per epoch."""

    def factor(epoch: int) -> float:
        if epoch < warmup_epochs:
            return (epoch + 1) / (warmup_epochs + 1)
        span = max(1, max_epochs - warmup_epochs)
        progress = min(1.0, (epoch - warmup_epochs) / span)
        return min_lr_ratio + (1 - min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * progress))

    return LambdaLR(optimizer, factor)


def planned_length(scheduler: LRScheduler) -> dict[str, Any]:
    """The length settings of a freshly configured scheduler (see :data:`LENGTH_KEYS`)."""
    return {k: getattr(scheduler, k) for k in LENGTH_KEYS if hasattr(scheduler, k)}


def replan(scheduler: LRScheduler, planned: dict[str, Any]) -> str | None:
    """Re-plan a scheduler just restored from a checkpoint for this run's length.

    Loading a scheduler's state also loads the length it was planned for: a run extended from
    1 to 2 epochs would train at cosine's final rate (0), one extended from 20 to 30 epochs
    would climb a second cosine cycle. Here the restored scheduler gets ``planned`` (from
    :func:`planned_length` before the restore) and every group the learning rate that plan
    gives at the restored epoch, as if the run had been planned that long from its start.
    A ``LambdaLR``'s functions are not restored, so only its rates are recomputed.

    Returns a description of what changed, or ``None``. Raises ``ValueError`` for a changed
    length of a scheduler that has no closed form to recompute its rates from.
    """
    groups = scheduler.optimizer.param_groups
    changed = {k: (getattr(scheduler, k), v) for k, v in planned.items()}
    changed = {k: (old, new) for k, (old, new) in changed.items() if old != new}
    settings = ", ".join(f"{k} {old} -> {new}" for k, (old, new) in changed.items())
    if isinstance(scheduler, LambdaLR):
        epoch = scheduler.last_epoch
        lambdas = zip(scheduler.base_lrs, scheduler.lr_lambdas, strict=True)
        rates = [base * f(epoch) for base, f in lambdas]
    elif not changed:
        return None
    elif hasattr(scheduler, "_get_closed_form_lr"):
        for key, (_, new) in changed.items():
            setattr(scheduler, key, new)
        rates = list(scheduler._get_closed_form_lr())
    else:
        raise ValueError(
            f"the checkpoint's {type(scheduler).__name__} was planned for another length "
            f"({settings}) and cannot be re-planned from its restored state. Resume with the "
            "trainer.max_epochs of the run that wrote it, or start a new run."
        )
    before = [group["lr"] for group in groups]
    if before == rates and not changed:
        return None
    for group, rate in zip(groups, rates, strict=True):
        group["lr"] = rate
    scheduler._last_lr = rates
    return (
        f"{type(scheduler).__name__} re-planned for this run's length"
        + (f" ({settings})" if settings else "")
        + f": learning rate {before[0]:.3g} -> {rates[0]:.3g} at epoch {scheduler.last_epoch}"
    )
