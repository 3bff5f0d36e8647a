"""How an answer is put into words, the same in ``predict``'s CSV and on the web page: the
headline follows the calibrated confidence, "uncertain - refer" below the abstention
threshold, and "not an MRI scan" when the out-of-distribution check refuses the image."""

from __future__ import annotations

from dataclasses import dataclass

from braintumor.inference.ood import OodVerdict

# calibrated top probability -> the word for it (the first band it reaches)
BANDS = ((0.9, "high"), (0.7, "moderate"), (0.0, "low"))
NOT_MRI = "not an MRI scan"
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
    if not verdict.accepted:
        return Wording(
            NOT_MRI,
            "Not an MRI scan",
            f"This image does not look like the brain MRI slices the model was trained on: "
            f"{verdict.reason}. No class is given.",
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
