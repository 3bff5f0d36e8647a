"""Which model a page or a prediction comes from, in words a reader can check: the run folder,
the checkpoint file, its epoch and the date it was saved."""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from braintumor.runs.layout import RunDir


def checkpoint_identity(path: str | Path, checkpoint: dict[str, Any]) -> dict[str, Any]:
    """``{run, checkpoint, epoch, step, saved}`` of a checkpoint file and its loaded dict
    (``epoch``: the epoch it was saved after, counted from 0 as in ``epoch_XXX.ckpt``)."""
    path = Path(path)
    run = RunDir.of_checkpoint(path)
    saved = datetime.fromtimestamp(path.stat().st_mtime, timezone.utc)
    epoch = checkpoint.get("epoch")
    return {
        "run": run.root.name if run is not None else None,
        "checkpoint": path.name,
        "epoch": int(epoch) if isinstance(epoch, int) else None,
        "step": checkpoint.get("global_step"),
        "saved": saved.strftime("%Y-%m-%d %H:%M UTC"),
    }


def read_identity(path: str | Path) -> dict[str, Any]:
    """:func:`checkpoint_identity` of a checkpoint on disk (memory-mapped: its weights are
    not read)."""
    import torch

    checkpoint = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    return checkpoint_identity(path, checkpoint)
