"""Labelled samples are compared with what the model scored on data like them."""

from control_plane.drift.realized import reference_accuracy


def test_a_regions_model_is_judged_on_its_crop_accuracy_not_its_photo_accuracy() -> None:
    metrics = {"test_accuracy": 0.976, "regions_clip_accuracy": 0.74, "test_macro_f1": 0.97}
    assert reference_accuracy(metrics) == 0.74


def test_a_whole_frame_model_as_the_trainer_registers_it() -> None:
    assert reference_accuracy({"test_accuracy": 0.93, "test_macro_f1": 0.92}) == 0.93


def test_plain_accuracy_and_nothing() -> None:
    assert reference_accuracy({"accuracy": 0.9}) == 0.9
    assert reference_accuracy({"test_macro_f1": 0.9, "test_accuracy": "n/a"}) is None
