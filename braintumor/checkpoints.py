"""Which checkpoint to resume from, and whether it fits the data of this run."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from braintumor.data.scan import DataError

# Files a run writes into <run>/checkpoints/ that a resume may start from (newest wins):
# last.ckpt every epoch, step.ckpt every N steps (optional), interrupted.ckpt on SIGTERM/SIGINT.
RESUMABLE = ("last.ckpt", "step.ckpt", "interrupted.ckpt")


def latest_checkpoint(run_dir: Path) -> Path | None:
    """The newest resumable checkpoint of a run directory, or ``None``."""
    return newest_in(run_dir / "checkpoints")


def newest_in(folder: Path) -> Path | None:
    """The newest of the resumable checkpoint files in ``folder``, or ``None``."""
    found = [folder / name for name in RESUMABLE if (folder / name).is_file()]
    return max(found, key=lambda p: p.stat().st_mtime_ns) if found else None


def resolve_checkpoint(ckpt_path: str | Path | None, run_dir: Path) -> str | None:
    """``ckpt_path`` as a file: ``last`` means this run directory's newest checkpoint (resume
    in place with ``hydra.run.dir=<run>``), a directory means that run's newest checkpoint."""
    if ckpt_path is None:
        return None
    if str(ckpt_path) == "last":
        found = latest_checkpoint(run_dir)
        if found is None:
            raise FileNotFoundError(
                f"ckpt_path=last: no checkpoint in '{run_dir / 'checkpoints'}'. Resume a run in "
                "place with hydra.run.dir=<its directory> ckpt_path=last, or pass "
                "ckpt_path=<its directory> or a .ckpt file."
            )
        return str(found)
    path = Path(ckpt_path)
    if path.is_dir():
        found = latest_checkpoint(path)
        if found is None:
            raise FileNotFoundError(
                f"ckpt_path='{path}' is a directory without {', '.join(RESUMABLE)} in "
                f"'{path / 'checkpoints'}': pass a run directory or a .ckpt file."
            )
        return str(found)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint '{path}' does not exist (ckpt_path).")
    return str(path)


def checkpoint_preprocessing(path: str | Path) -> dict[str, Any]:
    """The class names, image size, channels and normalization a checkpoint was trained with."""
    # Checkpoints are pickles: load them only from sources you trust.
    checkpoint = torch.load(path, map_location="cpu", weights_only=False)
    return dict(checkpoint.get("hyper_parameters", {}).get("preprocessing") or {})


def class_difference(theirs: list[str], ours: list[str]) -> str:
    """How a checkpoint's class names (``theirs``) differ from the data's (``ours``)."""
    missing, extra = sorted(set(theirs) - set(ours)), sorted(set(ours) - set(theirs))
    if not missing and not extra:
        return "same names, different order"
    return (
        f"{len(theirs)} classes in the checkpoint, {len(ours)} in the data: missing from the "
        f"data {missing}, not in the checkpoint {extra}"
    )


def check_compatible(path: str | Path, theirs: Mapping[str, Any], ours: Mapping[str, Any]) -> None:
    """Raise a :class:`DataError` comparing the two setups if a checkpoint's preprocessing
    (``theirs``) differs from this run's data (``ours``)."""
    lines = []
    for key in ("class_names", "image_size", "channels", "mean", "std"):
        a, b = theirs.get(key), ours.get(key)
        if key in ("mean", "std") and a is not None and b is not None:
            same = len(a) == len(b) and all(abs(x - y) < 1e-6 for x, y in zip(a, b, strict=True))
        else:
            sequences = isinstance(a, (list, tuple)) and isinstance(b, (list, tuple))
            same = a == b or (sequences and list(a) == list(b))
        if same:
            continue
        if key == "class_names":
            lines.append(f"  class names: {class_difference(a or [], b or [])}")
        else:
            lines.append(f"  {key}: checkpoint {a}, this run {b}")
    if lines:
        raise DataError(
            f"checkpoint '{path}' was made for another setup than this run's data:\n"
            + "\n".join(lines)
            + "\nUse the data, taxonomy and data.image_size/channels of the run that wrote it, "
            "or start a new run without ckpt_path."
        )
