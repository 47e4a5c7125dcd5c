"""Regions mode's fine-tune of Lite0's top on cached trunk activations: the trunk and the
top make the embedding, activations cache in their shape, and tuned weights are kept only
when they read the validation crops better than the probe."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from rich.console import Console

from tests.unit.test_trainer_feature_cache import dataset, write_images
from trainer.config import TrainerSettings, load_settings
from trainer.lite0 import TOP_START, Lite0
from trainer.top_tune import train_top, trunk_activations

CPU = torch.device("cpu")


def settings(tmp_path: Path, **over: object) -> TrainerSettings:
    return load_settings(None, data_dir=tmp_path, arch="lite0", input_size=64, regions=True,
                         finetune="last_blocks", batch_size=8, device="cpu", **over)


@pytest.mark.parametrize("part", sorted(TOP_START))
def test_the_trunk_then_the_top_is_the_embedding(part: str) -> None:
    torch.manual_seed(0)
    model = Lite0(3, input_size=64).eval()
    x = torch.randn(2, 3, 64, 64)
    start = TOP_START[part]
    with torch.no_grad():
        torch.testing.assert_close(model.top_embed(model.trunk(x, start), start), model.embed(x))


class CountingTrunk(Lite0):
    calls = 0

    def trunk(self, x: torch.Tensor, start: int) -> torch.Tensor:
        self.calls += len(x)
        return super().trunk(x, start)


def test_cached_activations_come_back_in_their_shape_and_are_computed_once(
    tmp_path: Path,
) -> None:
    torch.manual_seed(0)
    model = CountingTrunk(3, input_size=64).eval()
    write_images(tmp_path / "data", 5, seed=1)
    images = dataset(tmp_path / "data")
    s = settings(tmp_path, feature_cache_dir=tmp_path / "cache")
    start = TOP_START["last_blocks"]
    [(x, y)] = trunk_activations(model, start, [(images, images, "plain")], s, CPU)
    first = model.calls
    with torch.no_grad():
        want = model.trunk(torch.stack([images[i][0] for i in range(len(images))]), start)
    assert x.shape == want.shape and y.tolist() == [0, 0, 0, 1, 1]
    torch.testing.assert_close(x, want, rtol=1e-4, atol=1e-5)
    model.calls = 0
    [(again, _)] = trunk_activations(model, start, [(images, images, "plain")], s, CPU)
    # The first call also ran one dummy batch to learn the shape; a cached one only that.
    assert first == len(images) + 1 and model.calls == 1
    assert torch.equal(again, x)


def activations(n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Activations at block 13's input (192 x 2 x 2 at 64 px): each label lifts its own
    third of the channels, so the top can learn to read it."""
    gen = torch.Generator().manual_seed(seed)
    y = torch.arange(n) % 3
    x = torch.randn(n, 192, 2, 2, generator=gen)
    for label in range(3):
        x[y == label, 64 * label : 64 * (label + 1)] += 2.0
    return x, y


def test_tuned_weights_are_kept_only_when_they_read_the_validation_crops_better(
    tmp_path: Path,
) -> None:
    torch.manual_seed(0)
    model = Lite0(3, input_size=64).eval()
    with torch.no_grad():  # the "probe": a head that answers class 0 for everything
        model.fc.weight.zero_()
        model.fc.bias.copy_(torch.tensor([1.0, 0.0, 0.0]))
    train, val = activations(48, seed=1), activations(24, seed=2)
    start = TOP_START["last_blocks"]
    probe = {k: v.clone() for k, v in model.state_dict().items()}
    quiet = Console(quiet=True)

    # A step too small to change a prediction: a tie, so the probe's weights come back.
    same = train_top(model, start, train, val, val,
                     settings(tmp_path, finetune_lr=1e-12, finetune_epochs=1), CPU, quiet,
                     False)
    assert not same.kept and same.tuned_crop_accuracy == same.probe_crop_accuracy
    assert all(torch.equal(v, probe[k]) for k, v in model.state_dict().items())

    tuned = train_top(model, start, train, val, val,
                      settings(tmp_path, finetune_lr=3e-3, finetune_epochs=2), CPU, quiet,
                      False)
    assert tuned.kept and tuned.tuned_crop_accuracy > tuned.probe_crop_accuracy
    assert tuned.val_accuracy == tuned.tuned_crop_accuracy  # val_all is the crops here
    assert not torch.equal(model.blocks[15].project_conv.conv.weight,
                           probe["blocks.15.project_conv.0.weight"])
    assert torch.equal(model.blocks[12].project_conv.conv.weight,  # below the top: frozen
                       probe["blocks.12.project_conv.0.weight"])
    assert not any(p.requires_grad for n, p in model.named_parameters() if n != "fc.weight"
                   and n != "fc.bias")
