"""PetNet: shapes, width and input size, seeded initialisation."""

from __future__ import annotations

import pytest
import torch

from trainer.model import InvertedResidual, PetNet, make_divisible


@pytest.mark.parametrize("arch", ["compact", "small"])
@pytest.mark.parametrize(("width", "size", "classes"), [(0.35, 32, 2), (0.5, 96, 3), (1.0, 64, 5)])
def test_forward_returns_logits_and_pooled_embedding(
    arch: str, width: float, size: int, classes: int
) -> None:
    model = PetNet(classes, width_mult=width, input_size=size, arch=arch).eval()
    with torch.no_grad():
        logits, embedding = model(torch.randn(3, 3, size, size))
    assert logits.shape == (3, classes)
    assert embedding.shape == (3, model.embedding_dim)
    assert model.embedding_dim == 6 * make_divisible(96 * width)


def test_depthwise_convs_hard_swish_and_squeeze_excite_are_there() -> None:
    model = PetNet(2, width_mult=0.5)
    convs = [m for m in model.modules() if isinstance(m, torch.nn.Conv2d)]
    assert any(c.groups == c.in_channels > 1 for c in convs)
    assert any(isinstance(m, torch.nn.Hardswish) for m in model.modules())
    assert any(type(m).__name__ == "SqueezeExcite" for m in model.modules())


def test_initialisation_is_seeded() -> None:
    torch.manual_seed(4)
    a = PetNet(2, 0.35)
    torch.manual_seed(4)
    b = PetNet(2, 0.35)
    pairs = zip(a.state_dict().values(), b.state_dict().values(), strict=True)
    assert all(torch.equal(x, y) for x, y in pairs)


def test_compact_keeps_more_resolution_than_small() -> None:
    x = torch.randn(1, 3, 64, 64)
    sizes = {}
    for arch in ("compact", "small"):
        features = PetNet(2, 1.0, 64, arch=arch).eval().features
        with torch.no_grad():
            sizes[arch] = features(x).shape[-1]
    assert sizes == {"compact": 4, "small": 2}  # total stride 16 vs 32


def test_residual_blocks_start_as_identity_and_bn_momentum_is_set() -> None:
    model = PetNet(2, 0.5, arch="compact", bn_momentum=0.05)
    residual = [m for m in model.modules() if isinstance(m, InvertedResidual) and m.use_residual]
    assert residual and all(float(m.project_bn.weight.abs().sum()) == 0 for m in residual)
    bns = [m for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    assert all(m.momentum == 0.05 for m in bns)


def test_unknown_arch_is_refused() -> None:
    with pytest.raises(ValueError, match="arch"):
        PetNet(2, arch="large")


def test_too_small_input_is_refused() -> None:
    with pytest.raises(ValueError, match="input_size"):
        PetNet(2, input_size=16)
