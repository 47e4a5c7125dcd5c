"""The trainer's error hierarchy: callers catch :class:`TrainerError`.

Every message says what went wrong and, where there is one, the fix.
"""

from __future__ import annotations


class TrainerError(RuntimeError):
    """Base class of every error the trainer raises on purpose."""


class DatasetError(TrainerError):
    """The image folder cannot be used (missing, too few classes or images)."""


class ParityError(TrainerError):
    """The exported ONNX model does not reproduce the torch model within tolerance."""


class RegistryError(TrainerError):
    """Registering the model version with the control plane failed."""


class SourceError(TrainerError):
    """Fetching or importing photos failed (network, checksum, unsafe archive, bad folder)."""


class ModelQualityError(TrainerError):
    """The trained model failed the quality checks (no better than guessing, below the floor)."""


__all__ = ["DatasetError", "ModelQualityError", "ParityError", "RegistryError", "SourceError",
           "TrainerError"]
