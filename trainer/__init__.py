"""parkwatch trainer: image folder -> versioned data -> torch -> ONNX -> registered version.

The public surface is :func:`run_training` with :class:`TrainerSettings`;
importing this package does not import torch (that happens when a run starts).
"""

import os

# The trainer shares its CPUs (the demo runs a control plane and agents beside it).
# With OpenMP's default active wait, torch's threads spin on a busy core and training
# slows 5-10x; passive wait costs little when the cores are free. Must be set before
# torch is imported; an explicit OMP_WAIT_POLICY in the environment wins.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

from .config import TrainerSettings, load_settings
from .errors import (
    DatasetError,
    ModelQualityError,
    ParityError,
    RegistryError,
    SourceError,
    TrainerError,
)
from .pipeline import TrainingResult, run_training

__all__ = [
    "DatasetError",
    "ModelQualityError",
    "ParityError",
    "RegistryError",
    "SourceError",
    "TrainerError",
    "TrainerSettings",
    "TrainingResult",
    "load_settings",
    "run_training",
]
