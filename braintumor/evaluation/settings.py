"""``EvaluationSettings``: how a checkpoint's evidence is computed (``conf/eval/``), one object.

Built once by :mod:`braintumor.pipeline` from the ``eval`` config group and passed down to the
reports of a split (:mod:`~braintumor.evaluation.evidence`) and of an external set. Its defaults
are written once, in ``conf/eval/default.yaml``; the constraints once, in :data:`CONSTRAINTS`,
checked when the object is made (the message names the ``eval.*`` key).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any

from braintumor.conformal import METHODS as CONFORMAL_METHODS
from braintumor.constraints import BOOLEAN, NULL, Either, Interval, Options, check

CALIBRATIONS = ("temperature", "none")
TTA_MODES = ("none", "flip", "flip_shift")
POINTING_TARGETS = ("label", "prediction")

CONSTRAINTS = {
    "calibration": Options(CALIBRATIONS),
    "bootstrap": Interval(0, whole=True),
    "target_accuracy": Interval(0, 1, closed="right"),
    "tta": Options(TTA_MODES),
    "ece_bins": Interval(1, whole=True),
    "min_support": Interval(0, whole=True),
    "remove_near_copies": BOOLEAN,
    "pointing_tolerance": Interval(0, whole=True),
    "pointing_target": Options(POINTING_TARGETS),
    "seed": Interval(0, whole=True),
    "conformal": Either((NULL, Interval(0, 1, closed="neither"))),
    "conformal_method": Options(CONFORMAL_METHODS),
    "conformal_penalty": Interval(0),
    "conformal_k_reg": Interval(0, whole=True),
}
"""Every constrained ``eval.*`` key (``ood`` is checked by its own settings object)."""

NO_SETS = {"conformal": None, "conformal_method": "aps", "conformal_penalty": 0.0,
           "conformal_k_reg": 0}  # fmt: skip
"""The conformal keys of runs recorded before prediction sets existed: none."""


@dataclass(frozen=True)
class EvaluationSettings:
    """The ``eval.*`` keys that shape the evidence (see ``conf/eval/default.yaml``).

    Parameters
    ----------
    calibration : ``temperature`` (one scalar fitted on validation) or ``none``.
    bootstrap : resamples of the 95% intervals (over cases when they exist); 0: none.
    target_accuracy : the abstention threshold is chosen on validation for this accuracy.
    tta : test-time augmentation: ``none``, ``flip`` or ``flip_shift``.
    ece_bins : bins of the expected calibration error.
    min_support : confusion-matrix rows of fewer images are marked.
    remove_near_copies : external sets lose their near-copies of the model's training images.
    pointing_tolerance : pixels a tumour mask grows by for Grad-CAM's pointing game.
    pointing_target : the class Grad-CAM explains there: ``label`` or ``prediction``.
    ood : the out-of-distribution check's settings (``eval.ood``), ``None`` for none.
    seed : the run's seed (bootstrap resampling, reference images).
    conformal : the level of the conformal prediction sets (e.g. 0.95), ``None`` for none.
    conformal_method : their score, ``aps`` or ``raps``.
    conformal_penalty : RAPS' penalty per rank beyond ``conformal_k_reg``.
    conformal_k_reg : RAPS' ranks without penalty.
    """

    calibration: str
    bootstrap: int
    target_accuracy: float
    tta: str
    ece_bins: int
    min_support: int
    remove_near_copies: bool
    pointing_tolerance: int
    pointing_target: str
    ood: Mapping[str, Any] | None
    seed: int
    conformal: float | None
    conformal_method: str
    conformal_penalty: float
    conformal_k_reg: int

    def __post_init__(self) -> None:
        check("eval", {f.name: getattr(self, f.name) for f in fields(self)}, CONSTRAINTS)

    @classmethod
    def from_config(cls, values: Mapping[str, Any], seed: int | None) -> EvaluationSettings:
        """The settings of an ``eval`` mapping (plain values) and the run's ``seed``; keys that
        are not evidence settings (``reuse_split``, ``external``, ...) are left to the caller."""
        names = {f.name for f in fields(cls)} - {"seed"}
        if "conformal" not in values:  # recorded before prediction sets existed: none
            values = {**values, **NO_SETS}
        missing = sorted(names - set(values))
        if missing:
            raise KeyError(f"eval is missing {missing}: compose it from conf/eval/default.yaml.")
        ood = values["ood"]
        return cls(
            **{k: values[k] for k in names if k != "ood"},
            ood=dict(ood) if ood is not None else None,
            seed=int(seed or 0),
        )
