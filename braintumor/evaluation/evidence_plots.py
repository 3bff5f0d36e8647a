"""Figures of how far the predictions can be trusted: the reliability diagram (before and after
temperature scaling) and the risk-coverage curve with the abstention threshold."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
from matplotlib.figure import Figure

from braintumor.evaluation.selective import RiskCoverage


def _reliability(y_true: np.ndarray, y_prob: np.ndarray, bins: int) -> tuple[np.ndarray, ...]:
    """Per confidence bin: mean confidence, accuracy and image count."""
    confidence = y_prob.max(1)
    right = y_prob.argmax(1) == y_true
    edges = np.linspace(0, 1, bins + 1)
    which = np.clip(np.digitize(confidence, edges[1:-1], right=True), 0, bins - 1)
    count = np.bincount(which, minlength=bins)
    with np.errstate(invalid="ignore", divide="ignore"):
        conf = np.bincount(which, confidence, bins) / count
        acc = np.bincount(which, right.astype(float), bins) / count
    return edges, conf, acc, count


def plot_reliability(
    y_true: np.ndarray, before: np.ndarray, after: np.ndarray, temperature: float,
    ece_before: float, ece_after: float, bins: int, title: str = "",
) -> Figure:  # fmt: skip
    """Accuracy against confidence per bin, uncalibrated and at ``temperature``, with the
    diagonal of perfect calibration and the image count per bin."""
    fig, axes = plt.subplots(1, 2, figsize=(9, 4.2), layout="constrained", sharey=True)
    panels = [(before, "uncalibrated", ece_before), (after, f"T = {temperature:.2f}", ece_after)]
    for ax, (probs, name, ece) in zip(axes, panels, strict=True):
        edges, conf, acc, count = _reliability(np.asarray(y_true), np.asarray(probs), bins)
        centres = (edges[:-1] + edges[1:]) / 2
        ax.bar(centres, np.nan_to_num(acc), width=1 / bins, edgecolor="#1f4e79", color="#9ecae1",
               label="accuracy in bin")  # fmt: skip
        ax.plot([0, 1], [0, 1], "--", color="0.4", label="perfect calibration")
        ax.plot(conf, acc, "o", color="#1f4e79", markersize=3)
        for x, n in zip(centres, count, strict=True):
            if n:
                ax.text(x, 0.02, str(n), ha="center", fontsize=6, rotation=90, color="0.3")
        ax.set(xlim=(0, 1), ylim=(0, 1), xlabel="confidence (top probability)",
               title=f"{name}: ECE {ece:.3f}")  # fmt: skip
    axes[0].set_ylabel("accuracy")
    axes[0].legend(loc="upper left", fontsize=8)
    if title:
        fig.suptitle(title)
    return fig


def plot_risk_coverage(
    curve: RiskCoverage, threshold: float | None, target_accuracy: float, title: str = ""
) -> Figure:
    """Error rate of the answered images against the share answered, most confident first."""
    fig, ax = plt.subplots(figsize=(5.2, 4), layout="constrained")
    ax.plot(curve.coverage, curve.risk, color="#1f4e79", label=f"AURC {curve.aurc:.3f}")
    ax.axhline(1 - target_accuracy, ls=":", color="0.4", label=f"target accuracy {target_accuracy}")
    answered = np.nonzero(curve.confidence >= threshold)[0] if threshold is not None else []
    if len(answered):  # (no image may reach the threshold chosen on validation)
        at = int(answered.max())
        ax.plot(curve.coverage[at], curve.risk[at], "o", color="#c0392b",
                label=f"threshold {threshold:.3f}: coverage {curve.coverage[at]:.2f}")  # fmt: skip
    top = max(0.05, float(curve.risk.max()) * 1.1) if len(curve.risk) else 1.0
    ax.set(xlim=(0, 1), ylim=(0, top),
           xlabel="coverage (share of images answered)", ylabel="risk (error rate)",
           title=title or "risk-coverage")  # fmt: skip
    ax.legend(fontsize=8)
    return fig
