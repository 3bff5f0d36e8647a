"""Selective prediction: risk-coverage, AURC and an abstention threshold chosen on validation."""

from __future__ import annotations

import numpy as np
import pytest

from braintumor.evaluation.selective import abstention_threshold, apply_threshold, risk_coverage


def _predictions(n=1000, seed=0):
    """Confidence that tracks correctness: right answers are more confident on average."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 3, n)
    conf = rng.uniform(0.34, 1.0, n)
    right = rng.random(n) < conf  # calibrated by construction
    pred = np.where(right, y, (y + 1) % 3)
    probs = np.full((n, 3), 0.0)
    probs[np.arange(n), pred] = conf
    probs[np.arange(n), (pred + 1) % 3] = 1 - conf
    return y, probs


def test_risk_falls_with_confidence_and_aurc_beats_random_order():
    y, probs = _predictions()
    curve = risk_coverage(y, probs)
    assert curve.coverage[-1] == 1.0 and curve.risk[-1] == pytest.approx(
        np.mean(probs.argmax(1) != y)
    )
    assert curve.risk[len(y) // 10] < curve.risk[-1]
    assert curve.aurc < curve.risk[-1]


def test_a_threshold_chosen_on_validation_holds_on_test():
    y_val, p_val = _predictions(seed=1)
    chosen = abstention_threshold(y_val, p_val, target_accuracy=0.9)
    assert chosen["accuracy"] >= 0.9 and 0 < chosen["coverage"] < 1
    y_test, p_test = _predictions(seed=2)
    on_test = apply_threshold(y_test, p_test, chosen["threshold"])
    assert on_test["accuracy"] > 0.85 and on_test["answered"] + on_test["referred"] == len(y_test)


def test_an_unreachable_target_gives_no_threshold_and_says_why():
    y = np.array([0, 1, 0, 1])
    probs = np.array([[0.4, 0.6], [0.6, 0.4], [0.45, 0.55], [0.55, 0.45]])  # all wrong
    chosen = abstention_threshold(y, probs, 0.99)
    assert chosen["threshold"] is None and "reaches accuracy 0.99" in chosen["reason"]
    assert apply_threshold(y, probs, None)["coverage"] == 0.0


def test_reliability_and_risk_coverage_figures_render(tmp_path):
    from braintumor.evaluation.evidence_plots import plot_reliability, plot_risk_coverage

    y, probs = _predictions(200)
    plot_reliability(y, probs, probs, 1.0, 0.1, 0.1, 15).savefig(tmp_path / "r.png")
    chosen = abstention_threshold(y, probs, 0.9)
    fig = plot_risk_coverage(risk_coverage(y, probs), chosen["threshold"], 0.9)
    fig.savefig(tmp_path / "rc.png")
    assert (tmp_path / "r.png").stat().st_size > 1000 and (
        tmp_path / "rc.png"
    ).stat().st_size > 1000


def test_a_threshold_no_test_image_reaches_still_plots_without_a_marker(tmp_path):
    import matplotlib.pyplot as plt

    from braintumor.evaluation.evidence_plots import plot_risk_coverage

    y, probs = _predictions(50)
    curve = risk_coverage(y, probs)

    def legend(threshold: float) -> list[str]:
        fig = plot_risk_coverage(curve, threshold, 0.99)
        fig.savefig(tmp_path / "rc.png")  # it draws
        plt.close(fig)
        return [text.get_text() for text in fig.axes[0].get_legend().get_texts()]

    nothing = legend(1.01)  # above every confidence: nothing answered, no point to mark
    assert len(nothing) == 2 and not any(t.startswith("threshold") for t in nothing), nothing
    answered = np.mean(curve.confidence >= 0.5)
    assert f"threshold 0.500: coverage {answered:.2f}" in legend(0.5)  # the marker, when met


def _cases(n_cases=400, per_case=4, seed=0):
    """Cases of ``per_case`` images whose noisy image probabilities average to a surer case."""
    rng = np.random.default_rng(seed)
    truth = rng.integers(0, 3, n_cases)
    y = np.repeat(truth, per_case)
    logits = rng.normal(0, 1.6, (len(y), 3))
    logits[np.arange(len(y)), y] += rng.uniform(0, 2.5, n_cases).repeat(per_case)
    probs = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    return y, probs, np.repeat([f"case{i}" for i in range(n_cases)], per_case)


def test_the_case_threshold_is_chosen_over_cases_and_holds_on_test_cases():
    from braintumor.evaluation.selective import case_abstention, case_selective

    names = ["a", "b", "c"]
    y, probs, groups = _cases(seed=3)
    chosen = case_abstention(y, probs, groups, names, target_accuracy=0.9)
    assert chosen["cases"] == 400 and chosen["taxonomy"] == "folder"
    by_images = abstention_threshold(y, probs, 0.9)
    assert chosen["threshold"] != pytest.approx(by_images["threshold"])  # its own threshold
    y_test, p_test, g_test = _cases(seed=4)
    held = case_selective(y_test, p_test, g_test, names, chosen)
    assert held["answered"] + held["referred"] == 400 and held["accuracy"] > 0.85
    other = case_selective(y_test, p_test, g_test, names, {**chosen, "taxonomy": "tumor_type"})
    assert "not comparable" in other["reason"]


def test_the_model_card_says_which_threshold_a_study_is_held_to():
    from braintumor.evaluation.model_card import _case_selective

    held = {"threshold": 0.62, "taxonomy": "tumor_type", "coverage": 0.4, "accuracy": 0.95}
    (line,) = [x for x in _case_selective({"cases": {"selective": held}}) if x]
    assert "0.620" in line and "tumor_type" in line and "40.0% of the cases" in line
    assert _case_selective({"cases": {"n": 3}}) == []
