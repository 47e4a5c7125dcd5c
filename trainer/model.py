"""PetNet: a MobileNetV3-small-class classifier in our own code (no torchvision).

Inverted residual blocks with depthwise convolutions, hard-swish and
squeeze-excite (Howard et al., 2019, table 2), with a width multiplier.
``forward`` returns ``(logits, embedding)``; the embedding is the pooled
feature vector that the classifier head reads, used for drift monitoring.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn


def make_divisible(value: float, divisor: int = 8) -> int:
    """Round channels to a multiple of ``divisor``, never more than 10 % below ``value``."""
    rounded = max(divisor, int(value + divisor / 2) // divisor * divisor)
    return rounded + divisor if rounded < 0.9 * value else rounded


@dataclass(frozen=True)
class BlockSpec:
    kernel: int
    expanded: int
    out: int
    squeeze_excite: bool
    hard_swish: bool
    stride: int


# MobileNetV3-small: kernel, expansion channels, output channels, SE, activation, stride.
MOBILENET_V3_SMALL: tuple[BlockSpec, ...] = (
    BlockSpec(3, 16, 16, True, False, 2),
    BlockSpec(3, 72, 24, False, False, 2),
    BlockSpec(3, 88, 24, False, False, 1),
    BlockSpec(5, 96, 40, True, True, 2),
    BlockSpec(5, 240, 40, True, True, 1),
    BlockSpec(5, 240, 40, True, True, 1),
    BlockSpec(5, 120, 48, True, True, 1),
    BlockSpec(5, 144, 48, True, True, 1),
    BlockSpec(5, 288, 96, True, True, 2),
    BlockSpec(5, 576, 96, True, True, 1),
    BlockSpec(5, 576, 96, True, True, 1),
)

# The same family cut down for the 64-128 px crops parkwatch classifies: the first block
# keeps the stem's resolution (fine detail: eyes, ears, whiskers), the three 96-channel
# blocks at 1/32 of a small input (3x3 pixels) are replaced by one at 1/16, and the
# expansions are lighter. Total stride 16.
MOBILENET_V3_COMPACT: tuple[BlockSpec, ...] = (
    BlockSpec(3, 16, 16, True, False, 1),
    BlockSpec(3, 64, 24, False, False, 2),
    BlockSpec(3, 72, 24, False, False, 1),
    BlockSpec(5, 96, 40, True, True, 2),
    BlockSpec(5, 160, 40, True, True, 1),
    BlockSpec(5, 160, 48, True, True, 1),
    BlockSpec(5, 288, 96, True, True, 2),
    BlockSpec(5, 384, 96, True, True, 1),
)

ARCHITECTURES: dict[str, tuple[BlockSpec, ...]] = {
    "compact": MOBILENET_V3_COMPACT,
    "small": MOBILENET_V3_SMALL,
}


def conv_bn_act(
    cin: int, cout: int, kernel: int, stride: int = 1, groups: int = 1, act: nn.Module | None = None
) -> nn.Sequential:
    layers: list[nn.Module] = [
        nn.Conv2d(cin, cout, kernel, stride, (kernel - 1) // 2, groups=groups, bias=False),
        nn.BatchNorm2d(cout, eps=1e-3),
    ]
    if act is not None:
        layers.append(act)
    return nn.Sequential(*layers)


class SqueezeExcite(nn.Module):
    def __init__(self, channels: int) -> None:
        super().__init__()
        squeezed = make_divisible(channels / 4)
        self.fc1 = nn.Conv2d(channels, squeezed, 1)
        self.fc2 = nn.Conv2d(squeezed, channels, 1)
        self.relu = nn.ReLU(inplace=True)
        self.gate = nn.Hardsigmoid(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        scale = x.mean(dim=(2, 3), keepdim=True)
        scale = self.gate(self.fc2(self.relu(self.fc1(scale))))
        out: torch.Tensor = x * scale
        return out


class InvertedResidual(nn.Module):
    """Expand 1x1 -> depthwise kxk -> [squeeze-excite] -> project 1x1; residual if shapes match."""

    def __init__(self, cin: int, spec: BlockSpec, width_mult: float) -> None:
        super().__init__()
        expanded = make_divisible(spec.expanded * width_mult)
        cout = make_divisible(spec.out * width_mult)
        self.use_residual = spec.stride == 1 and cin == cout
        act: type[nn.Module] = nn.Hardswish if spec.hard_swish else nn.ReLU
        layers: list[nn.Module] = []
        if expanded != cin:
            layers.append(conv_bn_act(cin, expanded, 1, act=act()))
        layers.append(
            conv_bn_act(expanded, expanded, spec.kernel, spec.stride, groups=expanded, act=act())
        )
        if spec.squeeze_excite:
            layers.append(SqueezeExcite(expanded))
        project = conv_bn_act(expanded, cout, 1)
        layers.append(project)
        self.block = nn.Sequential(*layers)
        bn = project[1]
        assert isinstance(bn, nn.BatchNorm2d)
        self.project_bn = bn
        self.out_channels = cout

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y: torch.Tensor = self.block(x)
        return x + y if self.use_residual else y


class PetNet(nn.Module):
    """MobileNetV3-small backbone + classifier head; ``forward -> (logits, embedding)``."""

    def __init__(
        self,
        num_classes: int,
        width_mult: float = 1.0,
        input_size: int = 96,
        dropout: float = 0.2,
        arch: str = "small",
        bn_momentum: float = 0.1,
    ) -> None:
        super().__init__()
        if input_size < 32:
            raise ValueError(f"input_size {input_size} is below the minimum of 32 pixels")
        if arch not in ARCHITECTURES:
            raise ValueError(f"unknown arch {arch!r}; expected one of {sorted(ARCHITECTURES)}")
        self.num_classes = num_classes
        self.width_mult = width_mult
        self.input_size = input_size
        self.arch = arch
        stem = make_divisible(16 * width_mult)
        layers: list[nn.Module] = [conv_bn_act(3, stem, 3, 2, act=nn.Hardswish())]
        channels = stem
        for spec in ARCHITECTURES[arch]:
            block = InvertedResidual(channels, spec, width_mult)
            layers.append(block)
            channels = block.out_channels
        self.embedding_dim = 6 * channels
        layers.append(conv_bn_act(channels, self.embedding_dim, 1, act=nn.Hardswish()))
        self.features = nn.Sequential(*layers)
        hidden = make_divisible(1024 * width_mult)
        self.classifier = nn.Sequential(
            nn.Linear(self.embedding_dim, hidden),
            nn.Hardswish(),
            nn.Dropout(dropout),
            nn.Linear(hidden, num_classes),
        )
        self._init_weights(bn_momentum)

    def _init_weights(self, bn_momentum: float) -> None:
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out")
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
            elif isinstance(m, nn.BatchNorm2d):
                m.momentum = bn_momentum
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
        for m in self.modules():
            # Residual blocks start as the identity (zero gamma on the projection's BN):
            # the untrained deep net passes its stem through and learns faster from scratch.
            if isinstance(m, InvertedResidual) and m.use_residual:
                nn.init.zeros_(m.project_bn.weight)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        embedding = self.features(x).mean(dim=(2, 3))
        logits = self.classifier(embedding)
        return logits, embedding


__all__ = [
    "ARCHITECTURES", "MOBILENET_V3_COMPACT", "MOBILENET_V3_SMALL", "BlockSpec", "PetNet",
    "make_divisible",
]
