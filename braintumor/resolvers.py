"""OmegaConf resolvers used by ``conf/``: ``${run_name:${hydra:job.override_dirname}}``."""

from __future__ import annotations

import hashlib
import re

from omegaconf import OmegaConf

MAX_RUN_NAME = 120
_UNSAFE = re.compile(r"[^0-9A-Za-z_.,=+\-\[\]()]+")


def _short_value(value: str) -> str:
    """``0.000123456789`` -> ``0.0001235``: long floats shortened for display."""
    try:
        number = float(value)
    except ValueError:
        return value
    if "." not in value and "e" not in value.lower():
        return value  # an int stays as written
    return f"{number:.4g}"


def run_name(override_dirname: str) -> str:
    """A folder name that shows a run's overrides: Hydra's ``hydra.job.override_dirname``
    (the overrides, sorted, without ``hydra.job.config.override_dirname.exclude_keys``) made
    fit for a folder, since Hydra leaves it as typed and unbounded.

    Long floats are shortened, characters unsafe in a path (``/``, spaces, quotes) become
    ``_``, and a name longer than ``MAX_RUN_NAME`` is cut and ends with a hash of the whole,
    so different runs keep different names. No overrides: ``""``.
    """
    items = []
    for item in str(override_dirname).split(",") if override_dirname else []:
        key, sep, value = item.partition("=")
        items.append(f"{key}{sep}{_short_value(value)}" if sep else item)
    whole = ",".join(items)
    name = _UNSAFE.sub("_", whole)
    if len(name) > MAX_RUN_NAME:
        digest = hashlib.sha1(whole.encode()).hexdigest()[:8]
        name = f"{name[: MAX_RUN_NAME - 9]}~{digest}"
    return name


def register_resolvers() -> None:
    """Register the resolvers once (importing :mod:`braintumor` does it)."""
    if not OmegaConf.has_resolver("run_name"):
        OmegaConf.register_new_resolver("run_name", run_name)
