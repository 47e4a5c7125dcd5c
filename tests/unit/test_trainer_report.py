"""Slice tags, the confusion-matrix picture and the hyper-parameter search's bookkeeping."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import pytest
import torch

from trainer.config import load_settings
from trainer.data import ImageRecord
from trainer.errors import DatasetError
from trainer.report_md import confusion_png
from trainer.search import SPACE, run_search, sample_trials
from trainer.slices import load_slices, slice_members
from trainer.train import EpochStats, TrainOutcome


def _record(rel: str) -> ImageRecord:
    return ImageRecord(Path(rel), rel, "0" * 64, rel.split("/")[0], 0, 8, 8, "test")


def test_slices_match_path_patterns(tmp_path: Path) -> None:
    (tmp_path / "slices.json").write_text(
        json.dumps({"night": ["*/night_*"], "cam7": ["cat/cam7/*"], "none": ["x/*"]})
    )
    records = [_record(p) for p in ("cat/night_1.jpg", "dog/day_2.jpg", "cat/cam7/night_3.jpg")]
    members = slice_members(records, load_slices(tmp_path))
    assert members == {"cam7": [2], "night": [0, 2], "none": []}


def test_no_slices_file_means_no_slices(tmp_path: Path) -> None:
    assert load_slices(tmp_path) == {}


@pytest.mark.parametrize("content", ["{not json", '{"night": "*/n_*"}', "[1, 2]"])
def test_a_malformed_slices_file_is_a_clear_error(tmp_path: Path, content: str) -> None:
    (tmp_path / "slices.json").write_text(content)
    with pytest.raises(DatasetError, match=r"slices\.json"):
        load_slices(tmp_path)


def test_confusion_png_is_a_readable_picture(tmp_path: Path) -> None:
    path = confusion_png([[40, 3], [5, 52]], ["cat", "dog"], tmp_path / "cm.png")
    img = cv2.imread(str(path))
    assert img is not None and img.shape[0] == img.shape[1] > 200
    assert img.min() < 100 < img.max()  # text and shaded cells on white


def test_search_trials_are_seeded_distinct_and_start_with_the_settings(tmp_path: Path) -> None:
    settings = load_settings(None, data_dir=tmp_path, seed=4)
    trials = sample_trials(settings, 6)
    assert trials == sample_trials(settings, 6)
    assert trials[0] == {key: getattr(settings, key) for key in SPACE}
    assert len({json.dumps(t, sort_keys=True) for t in trials}) == 6
    assert sample_trials(load_settings(None, data_dir=tmp_path, seed=5), 6)[1:] != trials[1:]


def _outcome(val_accuracy: float) -> TrainOutcome:
    stats = EpochStats(1, 0.5, 0.8, 0.4, val_accuracy, 1e-3, 1.0, 10, 10.0)
    return TrainOutcome(torch.nn.Linear(1, 1), "cpu", 1, val_accuracy, [stats])


def test_search_picks_the_best_validation_and_respects_the_budget(tmp_path: Path) -> None:
    settings = load_settings(None, data_dir=tmp_path)
    scores = iter([0.7, 0.9, 0.8, 0.6])
    seen: list[float] = []

    def train(s: object) -> TrainOutcome:
        seen.append(getattr(s, "lr"))  # noqa: B009 - any settings object
        return _outcome(next(scores))

    result = run_search(settings, 4, budget_s=3600, train=train)
    assert result.best_index == 1 and result.best.best_val_accuracy == 0.9
    assert [t["trial"] for t in result.trials] == [0, 1, 2, 3]
    assert result.best_params == sample_trials(settings, 4)[1]
    assert seen[0] == settings.lr
    once = run_search(settings, 4, budget_s=1e-9, train=lambda s: _outcome(0.5))
    assert len(once.trials) == 1  # the first trial always runs, then the budget is spent
