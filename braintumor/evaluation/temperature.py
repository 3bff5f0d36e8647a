"""Temperature scaling (Guo et al., 2017): one scalar ``T`` fitted on validation predictions so
that ``softmax(logits / T)`` is calibrated; the predicted class never changes.

Works from probabilities too: ``log p`` equals the logits up to a constant per row, which a
softmax ignores, so ``softmax(log p / T)`` is the temperature-scaled prediction.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from braintumor.softmax import softmax_tensor

MIN_IMAGES = 20  # fewer validation images than this cannot pin a temperature down
BOUNDS = (0.05, 20.0)  # a fitted temperature outside these is not trusted


@dataclass(frozen=True)
class TemperatureFit:
    """The fitted temperature (1.0 when none could be fitted) and why, in words."""

    temperature: float
    fitted: bool
    reason: str
    nll_before: float | None = None
    nll_after: float | None = None


def log_probabilities(probs: np.ndarray) -> np.ndarray:
    """``log p`` with zeros clamped (a float32 softmax can underflow to exactly 0)."""
    return np.log(np.clip(np.asarray(probs, dtype=np.float64), 1e-45, None))


def scale(probs: np.ndarray, temperature: float) -> np.ndarray:
    """Probabilities ``softmax(log p / T)``: the temperature-scaled version of ``probs``."""
    if temperature == 1.0:
        return np.asarray(probs, dtype=np.float64)
    return softmax_tensor(torch.from_numpy(log_probabilities(probs)), temperature).numpy()


def _nll(logits: torch.Tensor, y: torch.Tensor, temperature: torch.Tensor) -> torch.Tensor:
    return torch.nn.functional.cross_entropy(logits / temperature, y)


def fit_temperature(probs: np.ndarray, y_true: np.ndarray) -> TemperatureFit:
    """Fit ``T`` by minimizing the negative log-likelihood (LBFGS on ``log T``).

    Falls back to ``T = 1`` (with the reason) when the set is too small (under
    :data:`MIN_IMAGES` images), holds a single class, or the fit leaves :data:`BOUNDS`.
    """
    probs, y_true = np.asarray(probs), np.asarray(y_true)
    if len(y_true) < MIN_IMAGES:
        return TemperatureFit(
            1.0, False, f"not fitted: {len(y_true)} validation images, fewer than {MIN_IMAGES}"
        )
    if len(np.unique(y_true)) < 2:
        return TemperatureFit(1.0, False, "not fitted: the validation set holds a single class")
    logits = torch.from_numpy(log_probabilities(probs))
    y = torch.from_numpy(y_true.astype(np.int64))
    log_t = torch.zeros((), dtype=torch.float64, requires_grad=True)
    optimizer = torch.optim.LBFGS([log_t], lr=0.5, max_iter=200, line_search_fn="strong_wolfe")

    def closure() -> torch.Tensor:
        optimizer.zero_grad()
        loss = _nll(logits, y, log_t.exp())
        loss.backward()
        return loss

    with torch.no_grad():
        before = float(_nll(logits, y, torch.ones((), dtype=torch.float64)))
    optimizer.step(closure)
    temperature = float(log_t.detach().exp())
    with torch.no_grad():
        after = float(_nll(logits, y, torch.tensor(temperature, dtype=torch.float64)))
    if not (np.isfinite(temperature) and BOUNDS[0] <= temperature <= BOUNDS[1]) or after > before:
        return TemperatureFit(
            1.0, False, f"not fitted: the fit gave T={temperature:.3g}, outside {BOUNDS}", before
        )
    return TemperatureFit(
        temperature, True, f"fitted on {len(y_true)} validation images (NLL)", before, after
    )
