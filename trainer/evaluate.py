"""Classification metrics on a labelled split: accuracy, per-class P/R/F1, confusion matrix.

Pure numpy over logits, so the same code scores the fp32 model now and the
int8 model or a shifted test set later; add a metric by adding a key.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from .calibrate import expected_calibration_error, nll, softmax


def confusion_matrix(
    y_true: npt.NDArray[np.integer], y_pred: npt.NDArray[np.integer], num_classes: int
) -> npt.NDArray[np.int64]:
    """Rows: true label; columns: predicted label."""
    cm = np.zeros((num_classes, num_classes), dtype=np.int64)
    np.add.at(cm, (y_true, y_pred), 1)
    return cm


def roc_auc(scores: npt.NDArray[np.floating], positive: npt.NDArray[np.bool_]) -> float | None:
    """Area under the ROC curve (Mann-Whitney U with tie correction); None with one class."""
    scores = np.asarray(scores, dtype=np.float64)
    positive = np.asarray(positive, dtype=bool)
    n_pos, n_neg = int(positive.sum()), int((~positive).sum())
    if n_pos == 0 or n_neg == 0:
        return None
    order = np.argsort(scores, kind="mergesort")
    sorted_scores = scores[order]
    ranks = np.empty(len(scores), dtype=np.float64)
    i = 0
    while i < len(scores):  # average ranks over ties
        j = i
        while j + 1 < len(scores) and sorted_scores[j + 1] == sorted_scores[i]:
            j += 1
        ranks[order[i : j + 1]] = (i + j) / 2.0 + 1.0
        i = j + 1
    u = ranks[positive].sum() - n_pos * (n_pos + 1) / 2.0
    return float(u / (n_pos * n_neg))


def auc_scores(
    probs: npt.NDArray[np.floating], y_true: npt.NDArray[np.integer], labels: Sequence[str]
) -> dict[str, float | None]:
    """Per-class one-vs-rest ROC-AUC and their macro mean (for 2 classes all three agree)."""
    per = {
        label: roc_auc(probs[:, i], np.asarray(y_true) == i) for i, label in enumerate(labels)
    }
    defined = [v for v in per.values() if v is not None]
    return {**per, "macro": float(np.mean(defined)) if defined else None}


def _mean(values: list[float]) -> float:
    return float(np.mean(values)) if values else 0.0


def classification_report(
    logits: npt.NDArray[np.floating],
    y_true: npt.NDArray[np.integer],
    labels: Sequence[str],
    temperature: float = 1.0,
) -> dict[str, Any]:
    """Metrics of ``logits`` against ``y_true`` (JSON-ready)."""
    k = len(labels)
    y_true = np.asarray(y_true, dtype=np.int64)
    probs = softmax(logits, temperature)
    y_pred = probs.argmax(axis=1)
    cm = confusion_matrix(y_true, y_pred, k)
    per_class: dict[str, dict[str, float]] = {}
    for i, label in enumerate(labels):
        tp = float(cm[i, i])
        predicted, actual = float(cm[:, i].sum()), float(cm[i, :].sum())
        precision = tp / predicted if predicted else 0.0
        recall = tp / actual if actual else 0.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        per_class[label] = {
            "precision": precision, "recall": recall, "f1": f1, "support": actual,
            "predicted": predicted,
        }
    n = len(y_true)
    aucs = auc_scores(probs, y_true, labels) if n else {"macro": None}
    return {
        "samples": n,
        "accuracy": float((y_pred == y_true).mean()) if n else 0.0,
        # Over the classes that occur (as sklearn does): a class no test photo has and the
        # model never predicted (``other`` of a regions model on photos) says nothing.
        "macro_f1": _mean([c["f1"] for c in per_class.values()
                           if c["support"] or c["predicted"]]),
        "balanced_accuracy": _mean([c["recall"] for c in per_class.values() if c["support"]]),
        "nll": nll(logits, y_true, temperature) if n else 0.0,
        "roc_auc": aucs["macro"],
        "roc_auc_per_class": {label: aucs.get(label) for label in labels},
        "ece": expected_calibration_error(probs, y_true),
        "ece_uncalibrated": expected_calibration_error(softmax(logits), y_true),
        "mean_confidence": float(probs.max(axis=1).mean()) if n else 0.0,
        "per_class": per_class,
        "confusion_matrix": {"labels": list(labels), "rows_true_cols_pred": cm.tolist()},
    }


def registry_metrics(report: dict[str, Any], prefix: str = "test_") -> dict[str, float]:
    """The flat numeric metrics that go into ``ModelVersionCreate.metrics``."""
    flat = {
        f"{prefix}{key}": float(report[key])
        for key in ("accuracy", "macro_f1", "balanced_accuracy", "nll", "ece")
    }
    for key in ("roc_auc", "ece_uncalibrated"):
        if report.get(key) is not None:
            flat[f"{prefix}{key}"] = float(report[key])
    for label, scores in report["per_class"].items():
        flat[f"{prefix}f1_{label}"] = float(scores["f1"])
    return flat


__all__ = [
    "auc_scores", "classification_report", "confusion_matrix", "registry_metrics", "roc_auc",
]
