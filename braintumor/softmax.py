"""The calibrated softmax, ``softmax(logits / T)``: the probabilities every predictor, the
exported graph, the reports and the external sets give, ``T`` the temperature fitted after
training (1 when none was). One numpy version (float64; the ONNX path imports no torch) and
one for tensors (needs no torch import of its own: it calls the tensor's methods)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import torch


def log_softmax(logits: np.ndarray) -> np.ndarray:
    """Row-wise ``log softmax`` in float64 (the row's maximum subtracted first)."""
    z = np.asarray(logits, dtype=np.float64)
    z = z - z.max(axis=1, keepdims=True)
    return z - np.log(np.exp(z).sum(axis=1, keepdims=True))


def softmax(logits: np.ndarray, temperature: float = 1.0) -> np.ndarray:
    """Row-wise ``softmax(logits / temperature)`` in float64."""
    return np.exp(log_softmax(np.asarray(logits, dtype=np.float64) / temperature))


def softmax_tensor(logits: torch.Tensor, temperature: float | torch.Tensor = 1.0) -> torch.Tensor:
    """``softmax(logits / temperature)`` over the classes (dimension 1), in ``logits``' dtype
    and on its device; traceable (the exported ONNX graph computes it)."""
    return (logits / temperature).softmax(dim=1)
