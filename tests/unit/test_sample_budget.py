"""The uploader's budget for candidate negatives: apart from the low-confidence samples',
a third for the empty scene, one token deep, and nothing unless samples are opted in."""

from __future__ import annotations

import pytest

from edge_agent.samples import SampleUploader, TokenBucket


def uploader(per_hour: int, enabled: bool = True) -> SampleUploader:
    return SampleUploader("http://127.0.0.1:9", "t", confidence_below=0.6, max_per_hour=30,
                          enabled=enabled, negatives_per_hour=per_hour)


def test_a_bucket_holds_one_token_and_refills_at_its_rate() -> None:
    bucket = TokenBucket(3600.0, 1.0)  # one a second
    assert bucket.take() and not bucket.take()
    bucket._refilled -= 1.0  # a second later
    assert bucket.take() and not bucket.take()
    assert not TokenBucket(0, 1.0).ready()


def test_negatives_need_samples_opted_in_and_a_budget() -> None:
    assert not uploader(6, enabled=False).wants_negative(False)
    assert not uploader(0).wants_negative(False) and not uploader(0).wants_negative(True)
    on = uploader(6)
    assert on.wants_negative(False) and on.wants_negative(True)
    on.negatives_refused = True  # a control plane older than negatives
    assert not on.wants_negative(False)


def test_distractors_and_the_empty_scene_spend_their_own_tokens() -> None:
    up = uploader(6)  # 4 an hour for distractors, 2 for the empty scene
    up._negatives["distractor"].take()
    assert not up.wants_negative(False) and up.wants_negative(True)
    up._negatives["distractor"]._refilled -= 900.0  # a quarter of an hour: one token
    assert up.wants_negative(False)


def test_a_control_plane_older_than_negatives_stops_mining_only(
        monkeypatch: pytest.MonkeyPatch) -> None:
    from datetime import UTC, datetime

    import numpy as np

    from edge_agent import samples

    answers: list[OSError] = [OSError("POST /api/v1/samples answered 503: busy"), OSError(
        'POST /api/v1/samples answered 422: {"detail":"invalid request: body.candidate: '
        'Extra inputs are not permitted"}')]
    sent: list[dict[str, object]] = []

    def post(_url: str, _path: str, _token: str, body: dict[str, object], _t: float) -> None:
        sent.append(body)
        raise answers.pop(0)

    monkeypatch.setattr(samples, "post_json", post)
    up = uploader(6)
    item = samples._Pending("lawn", np.zeros((8, 8, 3), np.uint8), "r1", "1", {"other": 1.0},
                            "other", 1.0, datetime.now(UTC), "background")
    for _ in range(2):
        with pytest.raises(OSError):
            up._upload(item)
        assert up.negatives_refused == (not answers)
    assert all(b["candidate"] == "background" for b in sent)
    assert not up.wants_negative(True) and not up.wants_negative(False)
    plain = samples._Pending("lawn", np.zeros((8, 8, 3), np.uint8), "r1", "1", {"cat": 0.5},
                             "cat", 0.5, datetime.now(UTC))
    answers.append(OSError("POST /api/v1/samples answered 500: oops"))
    with pytest.raises(OSError):
        up._upload(plain)
    assert "candidate" not in sent[-1]  # off the wire for a low-confidence sample
