"""Is there enough data to train and evaluate, and is the model better than guessing?

Pure logic over counts and the test split's classification report (no I/O, no torch),
so the rules have unit tests of their own. Three checks, each as early as it can be:

1. before anything is decoded (pre-flight, by file count): each label needs about
   ``min_test_images_per_label / test_fraction`` images, or its test share is too
   small to measure;
2. after the hash split, before training: every label in the train and test splits,
   and a test split big enough that even a perfect score would beat always answering
   the majority label (``majority_share ** n <= alpha``; ``allow_weak_model`` lets a
   smaller one through, and the verdict below then records the override);
3. after evaluation: the model's test accuracy is at least ``min_test_accuracy`` and
   beats the test split's majority label (one-sided exact binomial test, p <= alpha).
   A model that fails is not written as registrable unless ``allow_weak_model``,
   which the registration's metrics record for the control plane to audit.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from .config import TrainerSettings
from .errors import DatasetError
from .imagefolder import format_counts

log = logging.getLogger(__name__)

GET_PHOTOS = ("add photos (`parkwatch data fetch oxford-pets --out DIR` downloads about 7,400 "
              "CC BY-SA pet photos; `parkwatch data import SRC --out DIR` adds a local folder)")


def images_needed_per_label(settings: TrainerSettings) -> int:
    """Images per label that put about ``min_test_images_per_label`` in the smaller
    held-out split (test or validation)."""
    held_out = min(settings.test_fraction, settings.val_fraction)
    # The epsilon keeps 3 / 0.15 at 20, not 21 from the float's last bit.
    return math.ceil(settings.min_test_images_per_label / held_out - 1e-9)


def check_label_counts(where: str, counts: Mapping[str, int], settings: TrainerSettings) -> None:
    """Refuse (DatasetError) fewer than two labels or a label below the per-label minimum."""
    usable = {label: n for label, n in counts.items() if n > 0}
    if len(usable) < 2:
        raise DatasetError(
            f"{where} has images in {len(usable)} label folder(s) ({format_counts(counts)}); a "
            "classifier needs at least two labels: put images in one sub-folder per label"
        )
    need = images_needed_per_label(settings)
    short = {label: n for label, n in counts.items() if n < need}
    if short:
        raise DatasetError(
            f"too few images to train and evaluate: {where} has {format_counts(counts)} "
            f"image(s); each label needs at least {need} (so that about "
            f"{settings.min_test_images_per_label} land in the {settings.test_fraction:.0%} "
            f"test split): {GET_PHOTOS}, or lower min_test_images_per_label"
        )


def majority_p_value(correct: int, total: int, majority_share: float) -> float:
    """P(at least ``correct`` of ``total`` right) for a guesser right ``majority_share`` of
    the time: the one-sided exact binomial test."""
    if total == 0:
        return 1.0
    from scipy.stats import binomtest  # seconds of import: only where a run needs it

    return float(binomtest(correct, total, majority_share, alternative="greater").pvalue)


def check_splits(
    where: str, split_counts: Mapping[str, Mapping[str, int]], settings: TrainerSettings
) -> None:
    """Refuse, before training, a hash split that leaves a label out of train or test, or a
    test split too small for even a perfect model to beat the majority label."""
    for split in ("train", "test"):
        missing = sorted(label for label, n in split_counts[split].items() if n == 0)
        if missing:
            shares = "; ".join(
                f"{label}: " + ", ".join(f"{s} {split_counts[s][label]}" for s in split_counts)
                for label in missing[:4]
            )
            raise DatasetError(
                f"the split of {where} (by file hash, seed {settings.seed}) leaves no image of "
                f"{missing} in the {split} split ({shares}): {GET_PHOTOS} for those labels, "
                "or try another --seed"
            )
    test = split_counts["test"]
    n = sum(test.values())
    majority = max(test.values()) / n
    best_p = majority**n  # the p-value of a perfect score
    if best_p > settings.weak_model_alpha and settings.allow_weak_model:
        log.warning("the test split holds %d image(s) (%s): too few to show any model beats "
                    "the majority label; going on (allow_weak_model)", n, format_counts(test))
    elif best_p > settings.weak_model_alpha:
        raise DatasetError(
            f"the test split of {where} holds {n} image(s) ({format_counts(test)}): even "
            f"a perfect model could not be told from always answering the majority label "
            f"(p = {best_p:.2f} > {settings.weak_model_alpha}): {GET_PHOTOS}, or raise "
            "test_fraction (or accept an unproven model: --allow-weak-model)"
        )


@dataclass(frozen=True)
class Verdict:
    """The quality checks on the test split, and whether the override was used."""

    accuracy: float
    samples: int
    majority_label: str
    majority_accuracy: float  # share of the test split's most common label
    p_value: float  # of the accuracy against always answering the majority label
    min_accuracy: float
    alpha: float
    reasons: tuple[str, ...]  # empty: passed
    allowed: bool  # allow_weak_model was set

    @property
    def passed(self) -> bool:
        return not self.reasons

    @property
    def registrable(self) -> bool:
        return self.passed or self.allowed

    @property
    def status(self) -> str:
        if self.passed:
            return "passed"
        return "failed, allowed by allow_weak_model" if self.allowed else "failed"

    def metrics(self) -> dict[str, float]:
        """Numbers for the registration, so a control-plane policy can audit the gate."""
        out = {
            "test_majority_accuracy": self.majority_accuracy,
            "test_accuracy_p_vs_majority": self.p_value,
            "quality_gate_passed": 1.0 if self.passed else 0.0,
            "quality_min_test_accuracy": self.min_accuracy,
        }
        if self.allowed and not self.passed:
            out["weak_model_allowed"] = 1.0
        return out

    def evaluation_sections(self) -> dict[str, Any]:
        return {"quality": {
            "status": self.status, "passed": self.passed, "allowed_by_override": self.allowed,
            "reasons": list(self.reasons), "test_accuracy": self.accuracy,
            "test_samples": self.samples, "majority_label": self.majority_label,
            "majority_accuracy": self.majority_accuracy, "p_value_vs_majority": self.p_value,
            "min_test_accuracy": self.min_accuracy, "alpha": self.alpha,
        }}

    def figures(self) -> dict[str, float | int | str]:
        return {"verdict": self.status, "accuracy": self.accuracy,
                "majority": self.majority_accuracy, "p": self.p_value}

    def refusal(self, out_dir: str) -> str:
        """The one-line error of a refused model, naming the fixes."""
        return (
            f"model refused: {'; '.join(self.reasons)}. Nothing registrable was written (the "
            f"report is in {out_dir}/report.md): add data, train longer (--epochs) or use "
            "--arch lite0; or pass --allow-weak-model to write and register it anyway (recorded "
            "in its metrics as weak_model_allowed)"
        )


def judge(test: Mapping[str, Any], settings: TrainerSettings) -> Verdict:
    """The verdict on ``test`` (a ``classification_report`` of the test split)."""
    support = {label: int(c["support"]) for label, c in test["per_class"].items()}
    n = sum(support.values())
    majority_label = max(sorted(support), key=lambda label: support[label])
    majority = support[majority_label] / n if n else 1.0
    accuracy = float(test["accuracy"])
    p_value = majority_p_value(round(accuracy * n), n, majority)
    reasons = []
    if accuracy < settings.min_test_accuracy:
        reasons.append(f"test accuracy {accuracy:.3f} on {n} images is below the floor "
                       f"min_test_accuracy {settings.min_test_accuracy}")
    if p_value > settings.weak_model_alpha:
        reasons.append(
            f"test accuracy {accuracy:.3f} is no better than always answering "
            f"{majority_label!r} ({majority:.3f} of the {n} test images; p = {p_value:.3g} > "
            f"{settings.weak_model_alpha})"
        )
    return Verdict(accuracy, n, majority_label, majority, p_value, settings.min_test_accuracy,
                   settings.weak_model_alpha, tuple(reasons), settings.allow_weak_model)


__all__ = ["GET_PHOTOS", "Verdict", "check_label_counts", "check_splits",
           "images_needed_per_label", "judge", "majority_p_value"]
