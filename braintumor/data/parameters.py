"""The constraints of the ``data.*`` parameters, declared once and checked in one place
(:func:`braintumor.constraints.check`: a :class:`~braintumor.errors.UsageError` naming the key,
what it allows and what it got)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from braintumor.constraints import Constraint, Interval, Options, check
from braintumor.data.augmentation import AUGMENT_ON
from braintumor.data.cache import CACHE_MODES
from braintumor.data.sources import LAYOUTS

FRACTION = Interval(0.0, 1.0)
CONSTRAINTS: dict[str, Constraint] = {  # every constrained parameter, declared once
    "layout": Options(tuple(LAYOUTS)),
    "channels": Options((1, 3)),
    "cache": Options(CACHE_MODES),
    "augment_on": Options(AUGMENT_ON),
    "sampler": Options((None, "balanced")),
    "multiprocessing_context": Options((None, "fork", "spawn", "forkserver")),
    "image_size": Interval(8),
    "crop_margin": FRACTION,
    "group_file_unmatched": FRACTION,
    "cropped_copy_similarity": FRACTION,
}


def check_parameters(values: Mapping[str, Any]) -> None:
    """Raise :class:`~braintumor.errors.UsageError` (a ``ValueError``) naming the ``data.*``
    key, what it allows and what it got."""
    check("data", values, CONSTRAINTS)


def default_num_workers() -> int:
    """Loader workers when ``num_workers`` is null: CPU count - 1, between 1 and 8."""
    return max(1, min(8, (os.cpu_count() or 2) - 1))
