"""A checkpoint file: the checksum of its weights, loading it verified, reading what a trained
model is made of (:func:`read_checkpoint`), recording its calibration. No Lightning here (the
checkpoint prediction path imports only torch)."""

from __future__ import annotations

import hashlib
import io
import pickle
import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from braintumor.atomic import write_atomically
from braintumor.data.preprocessing import Preprocessing
from braintumor.errors import CheckpointError

# The key of a checkpoint that holds the SHA-256 of its weights (the state dict).
CHECKSUM = "checksum"
# The key of the calibration fitted after training (temperature, abstention threshold, the
# out-of-distribution check's statistics).
CALIBRATION = "calibration"


def weights_checksum(state_dict: Mapping[str, Any]) -> str:
    """SHA-256 of a state dict: every tensor's name, dtype, shape and bytes, in name order."""
    digest = hashlib.sha256()
    for name in sorted(state_dict):
        value = state_dict[name]
        if not isinstance(value, torch.Tensor):
            continue
        tensor = value.detach().cpu().contiguous()
        digest.update(f"{name}|{tensor.dtype}|{tuple(tensor.shape)}\n".encode())
        digest.update(tensor.reshape(-1).view(torch.uint8).numpy())
    return digest.hexdigest()


def load_checkpoint(path: str | Path, map_location: Any = "cpu") -> dict[str, Any]:
    """A checkpoint written by braintumor, its weights verified against the stored checksum.

    Raises :class:`CheckpointError` for an empty, unreadable or corrupt file. A checkpoint
    without a checksum (written before they were stored) loads with a warning.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint '{path}' does not exist.")
    advice = (
        "Use another checkpoint of the run (last.ckpt, epoch_*.ckpt in the same folder), "
        "a good copy of this one, or train again."
    )
    if path.stat().st_size == 0:
        raise CheckpointError(
            f"checkpoint '{path}' is empty (0 bytes): it was never completely written (a full "
            f"disk or a process killed while saving?). {advice}"
        )
    try:
        checkpoint = torch.load(path, map_location=map_location, weights_only=True)
    except (EOFError, RuntimeError, ValueError, pickle.UnpicklingError, OSError) as error:
        raise CheckpointError(
            f"checkpoint '{path}' is not a readable checkpoint ({_reason(error)}): it is "
            f"truncated or damaged, or not a braintumor checkpoint at all. {advice}"
        ) from None
    if not isinstance(checkpoint, dict) or not isinstance(checkpoint.get("state_dict"), Mapping):
        raise CheckpointError(
            f"checkpoint '{path}' is not a readable checkpoint (no state_dict in it): not a "
            f"Lightning checkpoint of braintumor. {advice}"
        )
    stored = checkpoint.get(CHECKSUM)
    if stored is None:
        warnings.warn(
            f"checkpoint '{path}' has no checksum (written before braintumor stored one): its "
            "weights cannot be verified.",
            stacklevel=2,
        )
    elif weights_checksum(checkpoint["state_dict"]) != stored.get("state_dict"):
        raise CheckpointError(
            f"checkpoint '{path}' is corrupt: its weights do not match the checksum stored when "
            f"it was written (damaged on disk or in a copy). {advice}"
        )
    return checkpoint


@dataclass(frozen=True)
class TrainedCheckpoint:
    """What a checkpoint of braintumor's training holds to rebuild its model: the module's
    ``hyper_parameters`` (``net``, ``preprocessing``, ``gradcam_layer``, ...), its verified
    ``state_dict``, the ``preprocessing`` (class names, size, normalization) and the
    ``calibration`` fitted after training (empty when none was)."""

    path: Path
    hyper_parameters: Mapping[str, Any]
    state_dict: Mapping[str, Any]
    preprocessing: Preprocessing
    calibration: Mapping[str, Any]

    @property
    def class_names(self) -> tuple[str, ...]:
        """The labels of the network's outputs, in order."""
        return self.preprocessing.class_names


def read_checkpoint(path: str | Path) -> TrainedCheckpoint:
    """The checkpoint at ``path`` (on the CPU, verified by :func:`load_checkpoint`) as a
    :class:`TrainedCheckpoint`.

    Raises :class:`CheckpointError` for an empty, unreadable or corrupt file and for one that
    names no network or preprocessing (not written by braintumor's training).
    """
    checkpoint = load_checkpoint(path)
    hparams = dict(checkpoint.get("hyper_parameters") or {})
    if "net" not in hparams or "preprocessing" not in hparams:
        raise CheckpointError(
            f"checkpoint '{path}' names no network or preprocessing (hyper_parameters): it "
            "was not written by braintumor's training. Use a checkpoint of a run."
        )
    preprocessing = Preprocessing.from_dict(hparams["preprocessing"], f"checkpoint '{path}'")
    return TrainedCheckpoint(
        Path(path),
        hparams,
        checkpoint["state_dict"],
        preprocessing,
        dict(checkpoint.get(CALIBRATION) or {}),
    )


def store_calibration(path: str | Path, calibration: Mapping[str, Any]) -> None:
    """Record ``calibration`` in the checkpoint at ``path`` (verified, rewritten atomically;
    its weights and their checksum are unchanged)."""
    checkpoint = load_checkpoint(path)
    checkpoint[CALIBRATION] = dict(calibration)
    buffer = io.BytesIO()
    torch.save(checkpoint, buffer)
    write_atomically(Path(path), buffer.getvalue())


def _reason(error: BaseException) -> str:
    """The informative line of a ``torch.load`` error (not its advice about ``weights_only``)."""
    text = str(error).strip()
    marker = "WeightsUnpickler error:"
    if marker in text:  # a pickle, but not of tensors and plain values
        detail = text.split(marker, 1)[1].strip().splitlines()[0]
        return f"it holds other objects than tensors and plain values: {detail}"
    return text.splitlines()[0].split(". ")[0] if text else type(error).__name__
