"""The words of an answer: the headline follows the calibrated confidence."""

from braintumor.inference.ood import ACCEPTED, OodVerdict
from braintumor.inference.wording import NOT_MRI, REFER, UNFAMILIAR, band, word_answer


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
    refused = word_answer("Glioma T2", 0.99, False, OodVerdict(False, "it is blank", "not_mri"))
    assert refused.confidence == NOT_MRI and refused.headline == "Not an MRI scan"
    assert "It is blank" in refused.detail and "Glioma" not in refused.detail


def test_a_scan_unlike_the_training_scans_is_not_called_not_an_mri_scan():
    odd = OodVerdict(False, "its intensities and texture are unlike the training scans",
                     "unfamiliar")  # fmt: skip
    words = word_answer("Glioma T2", 0.99, False, odd)
    assert words.confidence == UNFAMILIAR and "MRI scan" not in words.headline
    assert words.headline == "Not an image of the kind this model was trained on"
    assert "may well be an MRI scan" in words.detail and "Glioma" not in words.detail
