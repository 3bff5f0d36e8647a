"""The constraints of the ``data.*`` parameters, declared once and checked in one place
(:func:`braintumor.constraints.check`: a :class:`~braintumor.errors.UsageError` naming the key,
what it allows and what it got): by the datamodule, and by ``train.py``'s config check before
torch is imported (:mod:`braintumor.pipeline.config_check`), so this module imports the
standard library only."""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from braintumor.constraints import NULL, Constraint, Either, Interval, Options, check
from braintumor.data.sources import LAYOUTS

AUGMENT_ON = ("loader", "batch", "device")  # where training images are augmented
CACHE_MODES = ("memory", "disk", "none")  # where decoded scans are kept
FRACTION = Interval(0.0, 1.0)
SPLIT_FRACTION = Interval(0, 1, closed="left")
WHOLE = Interval(0, whole=True)
CONSTRAINTS: dict[str, Constraint] = {  # every constrained parameter, declared once
    "layout": Options(tuple(LAYOUTS)),
    "image_size": Interval(8, whole=True),
    "batch_size": Interval(1, whole=True),
    "channels": Options((1, 3)),
    "val_fraction": SPLIT_FRACTION,
    "test_fraction": SPLIT_FRACTION,
    "num_workers": Either((NULL, WHOLE)),
    "split_seed": WHOLE,
    "cache": Options(CACHE_MODES),
    "augment_on": Options(AUGMENT_ON),
    "sampler": Options((None, "balanced")),
    "multiprocessing_context": Options((None, "fork", "spawn", "forkserver")),
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
