"""parkwatch edge agent: capture -> infer -> report, on park devices.

``import edge_agent`` stays light (settings and errors); the daemon's
heavier parts (OpenCV, ONNX Runtime, paho) load with :class:`Agent`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.2.0"  # 0.2.0: reads CropSpec.destreak

from .config import AgentSettings, CameraConfig, load_settings
from .errors import (
    AgentError,
    ConfigError,
    DownloadError,
    ModelError,
    OutboxError,
    ReleaseError,
    VerificationError,
)

if TYPE_CHECKING:
    from .daemon import Agent

__all__ = [
    "Agent",
    "AgentError",
    "AgentSettings",
    "CameraConfig",
    "ConfigError",
    "DownloadError",
    "ModelError",
    "OutboxError",
    "ReleaseError",
    "VerificationError",
    "__version__",
    "load_settings",
]


def __getattr__(name: str) -> Any:
    if name == "Agent":
        from .daemon import Agent

        return Agent
    raise AttributeError(f"module 'edge_agent' has no attribute {name!r}")
