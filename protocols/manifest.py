"""The release manifest (docs/architecture.md, "The trust model") and what it carries."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, NonNegativeFloat, PositiveInt, model_validator

from .messages import SCHEMA_VERSION, Label, ReleaseId, WireModel, added, utc_now

Sha256 = Annotated[str, Field(pattern=r"^[0-9a-f]{64}$")]
Precision = Literal["fp32", "int8"]
INPUT_STAT_NAMES: tuple[str, ...] = ("brightness", "contrast", "sharpness", "saturation")


class _Frozen(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ArtifactRef(_Frozen):
    """A content-addressed model file, fetched over HTTP by its sha256."""

    sha256: Sha256
    size_bytes: PositiveInt
    precision: Precision = "fp32"
    format: Literal["onnx"] = "onnx"


class InputSpec(_Frozen):
    """How a camera frame becomes the model's input tensor (NCHW float32).

    ``x = (resize(frame, width, height) [in color_order] * scale - mean) / std``
    with a bilinear resize. The golden inputs check that an agent does exactly this.
    """

    width: Annotated[int, Field(ge=8, le=1024)]
    height: Annotated[int, Field(ge=8, le=1024)]
    color_order: Literal["RGB", "BGR"] = "RGB"
    scale: float = 1.0 / 255.0
    mean: tuple[float, float, float] = (0.485, 0.456, 0.406)
    std: tuple[float, float, float] = (0.229, 0.224, 0.225)
    layout: Literal["NCHW"] = "NCHW"


class OutputSpec(_Frozen):
    """Names of the ONNX outputs and how to turn logits into calibrated confidence."""

    logits: str = "logits"
    embedding: str = "embedding"
    embedding_dim: PositiveInt
    temperature: Annotated[float, Field(gt=0)] = 1.0  # softmax(logits / temperature)


class Histogram(_Frozen):
    """Bin edges (n+1, increasing) and counts (n). Values outside go to the end bins."""

    edges: Annotated[list[float], Field(min_length=2, max_length=257)]
    counts: Annotated[list[NonNegativeFloat], Field(min_length=1, max_length=256)]

    @model_validator(mode="after")
    def _check_shape(self) -> Histogram:
        if len(self.edges) != len(self.counts) + 1:
            raise ValueError("a histogram needs exactly one more edge than counts")
        if any(b <= a for a, b in zip(self.edges, self.edges[1:], strict=False)):
            raise ValueError("histogram edges must be strictly increasing")
        return self


class ReferenceProfile(_Frozen):
    """What the training data looked like, binned the way agents bin telemetry."""

    sample_count: PositiveInt
    class_counts: dict[Label, NonNegativeFloat]
    confidence: Histogram
    input_stats: dict[str, Histogram]  # keys from INPUT_STAT_NAMES
    embedding_mean: Annotated[list[float], Field(max_length=4096)]
    embedding_axes: Annotated[list[list[float]], Field(max_length=16)]  # k x embedding_dim
    embedding_hists: Annotated[list[Histogram], Field(max_length=16)]

    @model_validator(mode="after")
    def _check_axes(self) -> ReferenceProfile:
        if len(self.embedding_axes) != len(self.embedding_hists):
            raise ValueError("one embedding histogram per principal axis")
        dim = len(self.embedding_mean)
        if any(len(axis) != dim for axis in self.embedding_axes):
            raise ValueError("every embedding axis must have the embedding's dimension")
        return self


class CropSpec(_Frozen):
    """How the agent cuts a region into the model's input, as the trainer trained it.

    A region's box becomes a square on its longer side, grown by ``context`` of that side
    on every edge (the animal with some of its surroundings), clipped to the frame and
    padded with ``pad_value`` where it leaves the frame, then resized like a frame.
    With ``destreak`` (pixels, 0: never) a square that is streaked (``STREAK_LEVELS``)
    is first opened with a horizontal line of that many frame pixels: a grey opening
    that takes out bright lines narrower than it (rain) and keeps everything wider.
    """

    context: Annotated[float, Field(ge=0, le=1)] = 0.15
    pad_value: Annotated[int, Field(ge=0, le=255)] = 114
    destreak: int = added(0, ge=0, le=15)


# When a square counts as streaked, for the agent and the trainer alike: a horizontal
# opening ``destreak`` wide takes at least ``STREAK_LEVELS`` grey levels out of it on
# average, what only many thin bright lines give. On the park clips' squares (severity
# 0.8) rain's streaks lose 11.7-21.7 and day, dusk and IR at most 5.3, night's gain noise
# 6.3 (docs/performance.md). A test of the lines' direction (what a vertical opening takes)
# missed rain slanted by the wind, whose streaks a vertical opening cuts too.
STREAK_LEVELS = 9.0


# The oldest agent that reads a manifest's fields: agents forbid unknown keys, so one
# older than a field refuses every manifest that sets it. ``needed_agent_version`` names
# it as the manifest's ``min_agent_version``; the control plane keeps such a release from
# agents that report an older version.
BASE_AGENT_VERSION = "0.1.0"
DESTREAK_AGENT_VERSION = "0.2.0"  # the first to read ``CropSpec.destreak``


def version_tuple(version: str) -> tuple[int, ...]:
    """``"0.2.0"`` -> ``(0, 2, 0)``, to compare; a piece's non-digits are ignored."""
    parts = []
    for piece in version.split("."):
        digits = "".join(ch for ch in piece if ch.isdigit())
        parts.append(int(digits) if digits else 0)
    return tuple(parts)


def needed_agent_version(crops: CropSpec) -> str:
    """The oldest agent that reads a manifest with ``crops``."""
    return DESTREAK_AGENT_VERSION if crops.destreak else BASE_AGENT_VERSION


class GoldenInput(_Frozen):
    """An input image (already at the input size, PNG, RGB) and the logits it must give."""

    name: Annotated[str, Field(max_length=64)]
    image_png_b64: Annotated[str, Field(max_length=512 * 1024)]
    expected_logits: Annotated[list[float], Field(min_length=1, max_length=256)]
    atol: Annotated[float, Field(gt=0)] = 1e-2


class ReleaseManifest(WireModel):
    """Everything an agent needs to install, verify, run and monitor one release."""

    release_id: ReleaseId
    model_name: Annotated[str, Field(min_length=1, max_length=64)]
    model_version: Annotated[str, Field(min_length=1, max_length=128)]
    created_at: datetime = Field(default_factory=utc_now)
    labels: Annotated[list[Label], Field(min_length=2, max_length=256)]
    input: InputSpec
    outputs: OutputSpec
    artifact: ArtifactRef  # the primary artifact
    fallback_artifact: ArtifactRef | None = None
    primary_reason: Annotated[str, Field(max_length=1024)] = ""
    reference_profile: ReferenceProfile
    golden_inputs: Annotated[list[GoldenInput], Field(min_length=1, max_length=16)]
    min_agent_version: Annotated[str, Field(max_length=32)] = BASE_AGENT_VERSION
    # Regions: labels that mean "no animal here" (a person, a ball, leaves, background),
    # counted as classified regions but never as animals; and the confidence below which
    # a region is not trusted to be an animal (calibrated by the trainer on held-out
    # crops). A manifest without them classifies as before: every label is an animal.
    background_labels: list[Label] = added([], max_length=16)
    animal_min_confidence: float = added(0.0, ge=0, le=1)
    crops: CropSpec = added(CropSpec())

    @model_validator(mode="after")
    def _check_background_labels(self) -> ReleaseManifest:
        unknown = set(self.background_labels) - set(self.labels)
        if unknown:
            raise ValueError(f"background labels {sorted(unknown)} are not among the labels")
        if len(set(self.labels) - set(self.background_labels)) < 1:
            raise ValueError("at least one label must be an animal (not a background label)")
        return self


class SignedManifest(_Frozen):
    """A manifest as signed bytes: agents verify ``payload`` before they parse it."""

    schema_: Literal["parkwatch/v1"] = Field(default=SCHEMA_VERSION, alias="schema")
    key_id: Annotated[str, Field(pattern=r"^[0-9a-f]{16}$")]
    payload: Annotated[str, Field(max_length=6 * 1024 * 1024)]  # base64 of canonical JSON
    signature: Annotated[str, Field(max_length=128)]  # base64 Ed25519 signature

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)
