"""Checkpoints: written whole or not at all, with a checksum of their weights; loaded only
when that checksum holds; which one to resume from, and whether it fits this run's data."""

from __future__ import annotations

import io
import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from lightning.pytorch.plugins.io import TorchCheckpointIO

from braintumor.atomic import remove_stale_temporaries, write_atomically
from braintumor.data.preprocessing import Preprocessing
from braintumor.errors import DataError
from braintumor.runs.checkpoint_file import (
    CHECKSUM,
    load_checkpoint,
    read_checkpoint,
    weights_checksum,
)
from braintumor.runs.layout import RunDir
from braintumor.runs.record import add_to_run_info

log = logging.getLogger(__name__)


# Files a run writes into <run>/checkpoints/ that a resume may start from (newest wins):
# last.ckpt every epoch, step.ckpt every N steps (optional), interrupted.ckpt on SIGTERM/SIGINT.
RESUMABLE = ("last.ckpt", "step.ckpt", "interrupted.ckpt")


def latest_checkpoint(run_dir: Path) -> Path | None:
    """The newest resumable checkpoint of a run directory, or ``None``."""
    return newest_in(RunDir(run_dir).checkpoints)


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


def checkpoint_preprocessing(path: str | Path) -> Preprocessing:
    """The class names, image size, channels and normalization a checkpoint was trained with."""
    return read_checkpoint(path).preprocessing


def check_compatible(path: str | Path, theirs: Preprocessing, ours: Preprocessing) -> None:
    """Raise a :class:`DataError` comparing the two setups if a checkpoint's preprocessing
    (``theirs``) differs from this run's data (``ours``)."""
    lines = theirs.differences(ours)
    if lines:
        raise DataError(
            f"checkpoint '{path}' was made for another setup than this run's data:\n"
            + "\n".join(f"  {line}" for line in lines)
            + "\nUse the data, taxonomy and data.image_size/channels of the run that wrote it, "
            "or start a new run without ckpt_path."
        )


class SafeCheckpointIO(TorchCheckpointIO):
    """Lightning's checkpoint IO, made safe: every checkpoint is written atomically in its own
    folder (the previous file stays until the new one is complete) with a checksum of its
    weights, and every checkpoint loaded is verified (:func:`load_checkpoint`).

    A failed write (a full disk) leaves no partial file, is added to ``checkpoint_failures``
    in ``run_dir/run_info.json`` and ends the run with a message saying what to do.
    """

    def __init__(self, run_dir: str | Path | None = None) -> None:
        self.run_dir = Path(run_dir) if run_dir is not None else None
        self._cleaned: set[Path] = set()

    def save_checkpoint(
        self, checkpoint: dict[str, Any], path: str | Path, storage_options: Any | None = None
    ) -> None:
        if storage_options is not None:
            raise TypeError(f"{type(self).__name__} takes no storage_options.")
        path = Path(path)
        checksum = weights_checksum(checkpoint["state_dict"])
        stamped = {**checkpoint, CHECKSUM: {"algorithm": "sha256", "state_dict": checksum}}
        buffer = io.BytesIO()  # serialized first: a write error is then a plain OSError
        torch.save(stamped, buffer)
        existed = path.is_file()
        if path.parent not in self._cleaned:  # a killed run's unfinished temporary files
            self._cleaned.add(path.parent)
            remove_stale_temporaries(path.parent)
        try:
            write_atomically(path, buffer.getvalue())
        except OSError as error:
            self._record_failure(path, checkpoint, error)
            kept = "its previous version is unchanged" if existed else "nothing partial was left"
            good = newest_in(path.parent)
            then = f"resume with ckpt_path={good}" if good else "start the run again"
            raise OSError(
                error.errno,
                f"could not write checkpoint '{path}': {error.strerror or error}; {kept}. Make "
                f"room (free disk space in '{path.parent}', or set paths.log_dir to a larger "
                f"disk), then {then}.",
            ) from error

    def load_checkpoint(
        self, path: str | Path, map_location: Any = "cpu", weights_only: bool | None = None
    ) -> dict[str, Any]:
        return load_checkpoint(path, map_location=map_location)

    def _record_failure(self, path: Path, checkpoint: Mapping[str, Any], error: OSError) -> None:
        if self.run_dir is None:
            return
        entry = {
            "path": str(path),
            "epoch": checkpoint.get("epoch"),
            "global_step": checkpoint.get("global_step"),
            "error": f"{type(error).__name__}: {error}",
        }
        if not add_to_run_info(self.run_dir, "checkpoint_failures", entry):
            log.error(f"could not record the failed checkpoint write in {self.run_dir}: {entry}")
