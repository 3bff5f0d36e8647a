"""Learning-rate schedules, and re-planning one restored from a checkpoint for a longer run."""

from __future__ import annotations

import math

import pytest
import torch
from torch.optim.lr_scheduler import CosineAnnealingLR, OneCycleLR

from braintumor.training.schedulers import planned_length, replan, warmup_cosine


def _optimizer(lr: float = 1.0) -> torch.optim.Optimizer:
    return torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=lr)


def _finished(make, epochs: int) -> tuple[dict, dict]:
    """Optimizer and scheduler states after ``epochs`` epochs of ``make(optimizer, epochs)``."""
    optimizer = _optimizer()
    scheduler = make(optimizer, epochs)
    for _ in range(epochs):
        optimizer.step()
        scheduler.step()
    return optimizer.state_dict(), scheduler.state_dict()


def _extended(make, done: int, epochs: int) -> list[float]:
    """The learning rates of epochs ``done..epochs-1`` after resuming a ``done``-epoch run
    with a schedule configured for ``epochs``."""
    optimizer_state, scheduler_state = _finished(make, done)
    optimizer = _optimizer()
    scheduler = make(optimizer, epochs)
    planned = planned_length(scheduler)
    optimizer.load_state_dict(optimizer_state)
    scheduler.load_state_dict(scheduler_state)
    replan(scheduler, planned)
    rates = []
    for _ in range(done, epochs):
        rates.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        scheduler.step()
    return rates


def cosine(optimizer: torch.optim.Optimizer, epochs: int) -> CosineAnnealingLR:
    return CosineAnnealingLR(optimizer, T_max=epochs)


def test_extending_a_cosine_schedule_continues_the_longer_plan_without_a_second_cycle():
    rates = _extended(cosine, done=20, epochs=30)
    expected = [0.5 * (1 + math.cos(math.pi * e / 30)) for e in range(20, 30)]
    assert rates == pytest.approx(expected)  # decreasing to 0 at epoch 30, no restart
    assert _extended(cosine, done=1, epochs=2) == [pytest.approx(0.5)]  # not 0.0


def test_extending_warmup_cosine_continues_the_longer_plan():
    def make(optimizer, epochs):
        return warmup_cosine(optimizer, max_epochs=epochs, warmup_epochs=1, min_lr_ratio=0.0)

    rates = _extended(make, done=3, epochs=6)
    assert rates == pytest.approx([0.5 * (1 + math.cos(math.pi * e / 5)) for e in range(2, 5)])


def test_resuming_with_the_same_plan_changes_nothing():
    optimizer_state, scheduler_state = _finished(cosine, 3)
    optimizer = _optimizer()
    scheduler = cosine(optimizer, 3)
    planned = planned_length(scheduler)
    optimizer.load_state_dict(optimizer_state)
    scheduler.load_state_dict(scheduler_state)
    lr = optimizer.param_groups[0]["lr"]
    assert replan(scheduler, planned) is None
    assert optimizer.param_groups[0]["lr"] == lr


def test_a_schedule_that_cannot_be_replanned_is_refused():
    def make(optimizer, epochs):
        return OneCycleLR(optimizer, max_lr=1.0, total_steps=epochs)

    with pytest.raises(ValueError, match=r"OneCycleLR.*total_steps 4 -> 8"):
        _extended(make, done=4, epochs=8)
