"""The words of an answer: the headline follows the calibrated confidence."""

from braintumor.inference.ood import ACCEPTED, OodVerdict
from braintumor.inference.wording import NOT_MRI, REFER, band, word_answer


def test_the_headline_follows_the_calibrated_confidence():
    assert [band(p) for p in (0.95, 0.9, 0.75, 0.69, 0.075)] == [
        "high", "high", "moderate", "low", "low"
    ]  # fmt: skip
    high = word_answer("Meningioma T1", 0.93, False, ACCEPTED)
    assert (high.confidence, high.headline) == ("high", "Meningioma T1")
    assert "93.0 %" in high.detail
    assert word_answer("Meningioma T1", 0.8, False, ACCEPTED).headline == "Probably Meningioma T1"
    low = word_answer("Astrocitoma T1C+", 0.075, False, ACCEPTED)  # the 44-class page
    assert low.confidence == "low" and "refer" in low.headline
    assert "Astrocitoma T1C+" not in low.headline and "7.5 %" in low.detail


def test_below_the_threshold_it_refers_and_a_refused_image_gets_no_class():
    refer = word_answer("Glioma T2", 0.95, True, ACCEPTED, threshold=0.97)
    assert refer.confidence == REFER and refer.headline == "Uncertain - refer"
    assert "Glioma T2 at 95.0 %" in refer.detail and "97.0 %" in refer.detail
    refused = word_answer("Glioma T2", 0.99, False, OodVerdict(False, "it is blank"))
    assert refused.confidence == NOT_MRI and refused.headline == "Not an MRI scan"
    assert "it is blank" in refused.detail and "Glioma" not in refused.detail
