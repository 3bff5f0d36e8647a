"""How an answer is put into words, the same in ``predict``'s CSV and on the web page: the
headline follows the calibrated confidence, "uncertain - refer" below the abstention
threshold, and, when the out-of-distribution check refuses the image, "not an MRI scan" only for
what the image checks establish (blank, colour; a DICOM of another modality is refused by its
reader) and "not an image of the kind this model was trained on" for an image that may well be
an MRI scan, but unlike the training scans."""

from __future__ import annotations

from dataclasses import dataclass

from braintumor.inference.ood import OodVerdict

# calibrated top probability -> the word for it (the first band it reaches)
BANDS = ((0.9, "high"), (0.7, "moderate"), (0.0, "low"))
NOT_MRI = "not an MRI scan"
UNFAMILIAR = "not an image of the kind this model was trained on"
REFUSED = (NOT_MRI, UNFAMILIAR)
REFER = "uncertain - refer"


@dataclass(frozen=True)
class Wording:
    """``confidence``: one of the :data:`BANDS` words, :data:`REFER` or :data:`NOT_MRI`;
    ``headline`` and ``detail``: what the page shows in large and below it."""

    confidence: str
    headline: str
    detail: str


def band(probability: float) -> str:
    """The confidence word of a calibrated probability."""
    return next(word for low, word in BANDS if probability >= low)


def word_answer(
    best: str,
    probability: float,
    abstain: bool,
    verdict: OodVerdict,
    threshold: float | None = None,
) -> Wording:
    """The words for the top class ``best`` at calibrated ``probability``."""
    percent = f"{100 * probability:.1f} %"
    if not verdict.accepted and verdict.kind == "not_mri":
        return Wording(NOT_MRI, "Not an MRI scan", f"{verdict.reason[:1].upper()}"
                       f"{verdict.reason[1:]}. No class is given.")  # fmt: skip
    if not verdict.accepted:
        return Wording(
            UNFAMILIAR,
            "Not an image of the kind this model was trained on",
            f"It may well be an MRI scan, but {verdict.reason}, so the model's answer would not "
            "be trustworthy. No class is given.",
        )
    if abstain:
        limit = f" (the threshold is {100 * threshold:.1f} %)" if threshold is not None else ""
        return Wording(
            REFER,
            "Uncertain - refer",
            f"Best guess {best} at {percent}, below the confidence the model needs to answer"
            f"{limit}: a specialist should read this scan.",
        )
    word = band(probability)
    if word == "high":
        return Wording(word, best, f"High confidence: {percent}.")
    if word == "moderate":
        return Wording(word, f"Probably {best}", f"Moderate confidence: {percent}.")
    return Wording(
        word,
        "Low confidence - refer",
        f"Best guess {best} at only {percent}: the model cannot tell; a specialist should "
        "read this scan.",
    )
