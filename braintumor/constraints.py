"""Parameter constraints, declared once next to the settings they check, checked in one place.

In the manner of scikit-learn's ``_parameter_constraints``: a settings class declares a table
``{name: constraint}`` and :func:`check` raises one :class:`~braintumor.errors.UsageError` that
names the config key, what it allows and what it got (``eval.bootstrap must be a whole number
>= 0, got -1.``). Standard library only: ``train.py``'s checks run before torch is imported.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from braintumor.errors import UsageError


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


@dataclass(frozen=True)
class Options:
    """One of ``values`` (compared with ``==``; ``True`` is not ``1``)."""

    values: tuple

    def accepts(self, value: Any) -> bool:
        return any((value == v and type(value) is type(v)) or value is v for v in self.values)

    def __str__(self) -> str:
        return f"one of {', '.join(repr(v) for v in self.values)}"


@dataclass(frozen=True)
class Interval:
    """A number in an interval; ``whole``: an integer. ``None`` bounds are open ends."""

    low: float | None = None
    high: float | None = None
    closed: str = "both"  # both | left | right | neither
    whole: bool = False

    def accepts(self, value: Any) -> bool:
        if not _number(value) or (self.whole and not isinstance(value, int)):
            return False
        if isinstance(value, float) and not math.isfinite(value):
            return False
        left = self.low is None or (
            value >= self.low if self.closed in ("both", "left") else value > self.low
        )
        right = self.high is None or (
            value <= self.high if self.closed in ("both", "right") else value < self.high
        )
        return left and right

    def __str__(self) -> str:
        kind = "a whole number" if self.whole else "a number"
        if self.low is not None and self.high is not None:
            opening = "[" if self.closed in ("both", "left") else "("
            closing = "]" if self.closed in ("both", "right") else ")"
            return f"{kind} in {opening}{self.low}, {self.high}{closing}"
        if self.low is not None:
            return f"{kind} {'>=' if self.closed in ('both', 'left') else '>'} {self.low}"
        if self.high is not None:
            return f"{kind} {'<=' if self.closed in ('both', 'right') else '<'} {self.high}"
        return kind


@dataclass(frozen=True)
class Either:
    """Any of several constraints (e.g. ``null`` or a whole number)."""

    choices: tuple

    def accepts(self, value: Any) -> bool:
        return any(c.accepts(value) for c in self.choices)

    def __str__(self) -> str:
        return " or ".join(str(c) for c in self.choices)


NULL = Options((None,))
BOOLEAN = Options((True, False))
Constraint = Options | Interval | Either


def check(prefix: str, values: Mapping[str, Any], constraints: Mapping[str, Constraint]) -> None:
    """Raise :class:`UsageError` for the first of ``values`` its constraint refuses, naming
    ``<prefix>.<name>``, what is allowed and what was given. Keys without a constraint, and
    constraints without a value, are not checked."""
    for name, constraint in constraints.items():
        if name in values and not constraint.accepts(values[name]):
            raise UsageError(f"{prefix}.{name} must be {constraint}, got {values[name]!r}.")
