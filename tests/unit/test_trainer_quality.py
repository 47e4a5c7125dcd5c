"""The quality rules (trainer.quality): enough data per label, a split that can evaluate,
a model better than a floor and than the majority label; and the control plane's names."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pytest

from trainer import DatasetError, load_settings
from trainer.config import TrainerSettings, load_api_access
from trainer.quality import (
    check_label_counts,
    check_splits,
    images_needed_per_label,
    judge,
    majority_p_value,
)


def _settings(**over: Any) -> TrainerSettings:
    return load_settings(None, data_dir="/d", **over)


def _report(support: dict[str, int], accuracy: float) -> dict[str, Any]:
    return {"accuracy": accuracy, "per_class": {k: {"support": float(v)} for k, v in
                                                support.items()}}


def test_images_needed_follow_the_smaller_held_out_fraction() -> None:
    assert images_needed_per_label(_settings()) == 20  # 3 / 0.15
    assert images_needed_per_label(_settings(test_fraction=0.25, val_fraction=0.25)) == 12
    assert images_needed_per_label(_settings(val_fraction=0.1)) == 30


def test_two_images_per_class_are_refused_naming_counts_need_and_fix() -> None:
    with pytest.raises(DatasetError) as err:
        check_label_counts("photos/", {"cat": 2, "dog": 2}, _settings())
    text = str(err.value)
    assert "cat 2, dog 2" in text and "at least 20" in text
    assert "parkwatch data fetch oxford-pets" in text and "\n" not in text
    check_label_counts("photos/", {"cat": 20, "dog": 25}, _settings())


def test_one_label_is_refused() -> None:
    with pytest.raises(DatasetError, match="at least two labels"):
        check_label_counts("photos/", {"cat": 50, "dog": 0}, _settings())


def _splits(test: dict[str, int], train: dict[str, int] | None = None) -> dict[str, Any]:
    train = train or {k: 10 for k in test}
    return {"train": train, "val": {k: 2 for k in test}, "test": test}


def test_a_split_without_a_label_in_test_or_train_is_refused() -> None:
    with pytest.raises(DatasetError, match=r"no image of \['dog'\] in the test split"):
        check_splits("d", _splits({"cat": 4, "dog": 0}), _settings())
    with pytest.raises(DatasetError, match="in the train split"):
        check_splits("d", _splits({"cat": 4, "dog": 4}, {"cat": 0, "dog": 9}), _settings())


def test_a_test_split_too_small_to_beat_the_majority_is_refused_unless_allowed(
    caplog: pytest.LogCaptureFixture,
) -> None:
    # cat 3, dog 1: a perfect score has p = 0.75 ** 4 = 0.32: nothing could be shown.
    with pytest.raises(DatasetError, match=r"p = 0\.32 > 0\.05.*--allow-weak-model"):
        check_splits("d", _splits({"cat": 3, "dog": 1}), _settings())
    with caplog.at_level(logging.WARNING):
        check_splits("d", _splits({"cat": 3, "dog": 1}), _settings(allow_weak_model=True))
    assert "too few to show" in caplog.text
    check_splits("d", _splits({"cat": 3, "dog": 3}), _settings())  # 0.5 ** 6 = 0.016


def test_majority_p_value_is_the_exact_binomial_tail() -> None:
    assert majority_p_value(10, 10, 0.5) == pytest.approx(0.5**10)
    assert majority_p_value(0, 10, 0.5) == pytest.approx(1.0)
    assert majority_p_value(8, 10, 0.5) == pytest.approx((45 + 10 + 1) / 1024)
    assert majority_p_value(0, 0, 0.5) == 1.0


def test_accuracy_zero_is_refused_with_both_reasons() -> None:
    verdict = judge(_report({"cat": 1, "dog": 1}, 0.0), _settings())
    assert not verdict.passed and not verdict.registrable
    assert len(verdict.reasons) == 2 and "below the floor" in verdict.reasons[0]
    message = verdict.refusal("out")
    assert "--allow-weak-model" in message and "out/report.md" in message
    assert verdict.metrics()["quality_gate_passed"] == 0.0
    assert "weak_model_allowed" not in verdict.metrics()


def test_beating_a_majority_needs_more_than_its_share() -> None:
    # 80 % accuracy where 80 % of the test images are cats: always "cat" does as well.
    verdict = judge(_report({"cat": 80, "dog": 20}, 0.8), _settings())
    assert not verdict.passed and verdict.majority_label == "cat"
    assert verdict.majority_accuracy == 0.8 and verdict.p_value > 0.4
    assert "no better than always answering 'cat'" in verdict.reasons[0]
    good = judge(_report({"cat": 80, "dog": 20}, 0.95), _settings())
    assert good.passed and good.registrable and good.p_value < 1e-4
    assert good.metrics()["quality_gate_passed"] == 1.0


def test_the_floor_applies_even_when_chance_is_beaten() -> None:
    # 10 labels, 100 each: 0.5 beats 0.1 by far, but is below a 0.6 floor.
    verdict = judge(_report({str(i): 100 for i in range(10)}, 0.5), _settings())
    assert verdict.reasons == (verdict.reasons[0],) and "below the floor" in verdict.reasons[0]
    assert judge(_report({str(i): 100 for i in range(10)}, 0.5),
                 _settings(min_test_accuracy=0.4)).passed


def test_the_override_is_registrable_and_recorded() -> None:
    verdict = judge(_report({"cat": 5, "dog": 5}, 0.5), _settings(allow_weak_model=True))
    assert not verdict.passed and verdict.registrable
    assert verdict.metrics()["weak_model_allowed"] == 1.0
    section = verdict.evaluation_sections()["quality"]
    assert section["allowed_by_override"] and section["status"].startswith("failed, allowed")


def test_the_operator_cli_names_configure_the_trainer(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    for name in ("PARKWATCH_API_URL", "PARKWATCH_API_TOKEN", "PARKWATCH_TRAINER_API_URL",
                 "PARKWATCH_TRAINER_API_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("PARKWATCH_API_URL", "http://cp:8000/")
    monkeypatch.setenv("PARKWATCH_API_TOKEN", "pw_new")
    settings = _settings()
    assert (settings.api_url, settings.api_token) == ("http://cp:8000", "pw_new")
    assert load_api_access().api_url == "http://cp:8000"
    assert _settings(api_url="http://flag:1").api_url == "http://flag:1"  # a flag wins
    assert "pw_new" not in str(settings.model_dump(exclude={"api_token"}))


def test_the_old_names_still_work_with_a_warning(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture, tmp_path: Path
) -> None:
    for name in ("PARKWATCH_API_URL", "PARKWATCH_API_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("PARKWATCH_TRAINER_API_URL", "http://old:8000")
    monkeypatch.setenv("PARKWATCH_TRAINER_API_TOKEN", "pw_old")
    with caplog.at_level(logging.WARNING):
        settings = _settings()
    assert (settings.api_url, settings.api_token) == ("http://old:8000", "pw_old")
    assert "PARKWATCH_TRAINER_API_URL is deprecated" in caplog.text
    assert "use PARKWATCH_API_TOKEN" in caplog.text
    monkeypatch.setenv("PARKWATCH_API_URL", "http://new:8000")
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        assert _settings().api_url == "http://new:8000"  # the new name wins
    assert "PARKWATCH_TRAINER_API_URL is ignored" in caplog.text
    config = tmp_path / "trainer.toml"
    config.write_text('data_dir = "/d"\napi_url = "http://toml:1"\n')
    monkeypatch.delenv("PARKWATCH_API_URL")
    monkeypatch.delenv("PARKWATCH_TRAINER_API_URL")
    assert load_settings(config).api_url == "http://toml:1"  # the file's key is the field name


def test_an_api_url_without_a_scheme_names_the_fix() -> None:
    from trainer import TrainerError

    with pytest.raises(TrainerError, match=r"'localhost:8000' is not an http\(s\) URL.*http://"):
        _settings(api_url="localhost:8000")
