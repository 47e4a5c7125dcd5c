"""Temperature scaling and the classification report, on numbers with known answers."""

from __future__ import annotations

import numpy as np
import pytest

from trainer.calibrate import expected_calibration_error, fit_temperature, nll, softmax
from trainer.evaluate import (
    auc_scores,
    classification_report,
    confusion_matrix,
    registry_metrics,
    roc_auc,
)


def _sample(temperature: float, n: int = 20000, k: int = 3) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    logits = rng.normal(0, 3, (n, k))
    probs = softmax(logits, temperature)
    labels = np.array([rng.choice(k, p=p) for p in probs])
    return logits, labels


@pytest.mark.parametrize("true_t", [0.5, 1.0, 2.5])
def test_fit_temperature_recovers_the_temperature_that_generated_the_labels(true_t: float) -> None:
    logits, labels = _sample(true_t)
    fit = fit_temperature(logits, labels)
    assert fit.temperature == pytest.approx(true_t, rel=0.08)
    assert fit.nll_after <= fit.nll_before + 1e-12
    assert fit.nll_after == pytest.approx(nll(logits, labels, fit.temperature))


def test_scaling_reduces_ece_of_an_overconfident_model() -> None:
    logits, labels = _sample(3.0)
    fit = fit_temperature(logits, labels)
    assert fit.ece_after < fit.ece_before
    assert expected_calibration_error(softmax(logits, 3.0), labels) < 0.03


def test_classification_report_on_a_known_confusion() -> None:
    y_true = np.array([0, 0, 0, 0, 1, 1, 1, 1, 1, 1])
    y_pred = np.array([0, 0, 0, 1, 1, 1, 1, 1, 0, 0])
    logits = np.eye(2)[y_pred] * 4.0
    report = classification_report(logits, y_true, ["cat", "dog"])
    assert report["confusion_matrix"]["rows_true_cols_pred"] == [[3, 1], [2, 4]]
    assert report["accuracy"] == pytest.approx(0.7)
    cat = report["per_class"]["cat"]
    assert cat["precision"] == pytest.approx(3 / 5) and cat["recall"] == pytest.approx(3 / 4)
    assert cat["f1"] == pytest.approx(2 * 0.6 * 0.75 / 1.35)
    assert report["per_class"]["dog"]["support"] == 6
    flat = registry_metrics(report)
    assert flat["test_accuracy"] == pytest.approx(0.7) and "test_f1_dog" in flat
    assert all(isinstance(v, float) for v in flat.values())


def test_a_class_absent_from_the_test_set_and_never_predicted_is_left_out_of_macros() -> None:
    """A regions model has an ``other`` class; test photos are all animals."""
    y_true = np.array([0, 0, 1, 1])
    right = np.eye(3)[y_true] * 4.0
    report = classification_report(right, y_true, ["cat", "dog", "other"])
    assert report["macro_f1"] == pytest.approx(1.0)
    assert report["balanced_accuracy"] == pytest.approx(1.0)
    # Predicting the absent class is an error that counts.
    wrong = np.eye(3)[[0, 2, 1, 1]] * 4.0
    report = classification_report(wrong, y_true, ["cat", "dog", "other"])
    assert report["macro_f1"] == pytest.approx((2 / 3 + 1.0 + 0.0) / 3)
    assert report["balanced_accuracy"] == pytest.approx(0.75)


def test_confusion_matrix_counts_every_sample() -> None:
    rng = np.random.default_rng(1)
    y, p = rng.integers(0, 4, 100), rng.integers(0, 4, 100)
    cm = confusion_matrix(y, p, 4)
    assert cm.sum() == 100 and np.trace(cm) == int((y == p).sum())


def test_roc_auc_matches_the_pairwise_definition_with_ties() -> None:
    rng = np.random.default_rng(3)
    scores = np.round(rng.random(60), 1)  # many ties
    positive = rng.random(60) < 0.4
    pos, neg = scores[positive], scores[~positive]
    pairwise = np.mean([(p > n) + 0.5 * (p == n) for p in pos for n in neg])
    assert roc_auc(scores, positive) == pytest.approx(pairwise)
    assert roc_auc(scores, np.ones(60, bool)) is None


def test_auc_scores_two_class_and_macro_one_vs_rest() -> None:
    logits = np.array([[2.0, 0.0], [1.0, 0.5], [0.0, 1.0], [0.2, 0.1]])
    y = np.array([0, 1, 1, 0])
    aucs = auc_scores(softmax(logits), y, ["cat", "dog"])
    assert aucs["cat"] == aucs["dog"] == aucs["macro"] == pytest.approx(0.75)
    three = auc_scores(softmax(np.eye(3) * 3), np.array([0, 1, 2]), ["a", "b", "c"])
    assert three["macro"] == 1.0


def test_report_has_auc_and_ece_before_and_after_temperature() -> None:
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 400)
    logits = np.stack([-(y * 2 - 1) * 4.0, (y * 2 - 1) * 4.0], 1) + rng.normal(0, 4, (400, 2))
    report = classification_report(logits, y, ["cat", "dog"], temperature=3.0)
    assert 0.5 < report["roc_auc"] <= 1.0
    assert report["ece_uncalibrated"] != report["ece"]
    flat = registry_metrics(report)
    assert {"test_roc_auc", "test_ece", "test_ece_uncalibrated"} <= set(flat)
