"""Hydra sweep overrides as Optuna distributions: ``choice(a,b)`` -> categorical,
``range(1,5)`` -> integers (step), ``interval(a,b)`` -> floats (or ints), ``tag(log, ...)`` -> a
log scale; a plain ``key=value`` is a fixed parameter."""

from __future__ import annotations

import math
from typing import Any

from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.override_parser.types import Override, Transformer
from optuna.distributions import (
    BaseDistribution,
    CategoricalDistribution,
    FloatDistribution,
    IntDistribution,
)

from braintumor.errors import UsageError


def distribution(override: Override) -> BaseDistribution | str:
    """The distribution of one override, or its value (a string) when it is fixed."""
    if not override.is_sweep_override():
        return override.get_value_element_as_str()
    value = override.value()
    key = override.get_key_element()
    if override.is_choice_sweep() or (override.is_range_sweep() and value.shuffle):
        choices = list(override.sweep_iterator(transformer=Transformer.encode))
        return CategoricalDistribution(choices)
    if override.is_range_sweep():  # its stop is excluded, as in Python's range
        count = math.ceil((value.stop - value.start) / value.step)
        if count < 1:
            raise UsageError(f"{key}: '{override.input_line}' is an empty range.")
        if any(isinstance(v, float) for v in (value.start, value.stop, value.step)):
            last = value.start + (count - 1) * value.step
            return FloatDistribution(value.start, last, step=value.step)
        last = int(value.start) + (count - 1) * int(value.step)
        return IntDistribution(int(value.start), last, step=int(value.step))
    if override.is_interval_sweep():
        log = "log" in value.tags
        if isinstance(value.start, int) and isinstance(value.end, int):
            return IntDistribution(value.start, value.end, log=log)
        return FloatDistribution(float(value.start), float(value.end), log=log)
    raise UsageError(f"{key}: '{override.input_line}' is not a search space Optuna can sample "
                     "(use choice(...), range(...) or interval(...)).")  # fmt: skip


def search_space(arguments: list[str]) -> tuple[dict[str, BaseDistribution], dict[str, Any]]:
    """``({param: distribution}, {param: fixed value})`` of the sweep's overrides (later
    overrides of a key replace earlier ones: the command line wins over the config)."""
    space: dict[str, BaseDistribution] = {}
    fixed: dict[str, Any] = {}
    for override in OverridesParser.create().parse_overrides(arguments):
        key = override.get_key_element()
        value = distribution(override)
        space.pop(key, None)
        fixed.pop(key, None)
        if isinstance(value, BaseDistribution):
            space[key] = value
        else:
            fixed[key] = value
    return space, fixed


def grid(space: dict[str, BaseDistribution]) -> dict[str, list[Any]]:
    """The GridSampler's choices of a search space of choices and ranges."""
    out: dict[str, list[Any]] = {}
    for name, dist in space.items():
        if isinstance(dist, CategoricalDistribution):
            out[name] = list(dist.choices)
        elif isinstance(dist, (IntDistribution, FloatDistribution)) and dist.step and not dist.log:
            n = round((dist.high - dist.low) / dist.step) + 1
            out[name] = [dist.low + i * dist.step for i in range(n)]
        else:
            raise UsageError(f"{name}: the grid sampler needs choice(...) or range(...), "
                             "not an interval.")  # fmt: skip
    return out
