"""Settings: one module per section of the config file, one loader for them all.

- ``loader``: TOML file + ``PARKWATCH_*`` environment -> a validated settings object;
- ``server``: ``ControlPlaneSettings``, the top-level keys of ``parkwatch serve`` and ``worker``;
- ``drift`` (``[drift]``), ``retention`` (``[retention]``), ``worker`` (``[worker]``),
  ``rollout_policy`` (``[rollout_policy]``), ``release_gate`` (``[release_gate]``): the
  sections, each a frozen pydantic model that forbids unknown keys;
- ``client``: ``ClientSettings`` of the operator CLI (API URL and token).

Nothing here does I/O beyond reading the file and the environment, and nothing here
imports the rest of the control plane.
"""

from .client import ClientSettings
from .drift import DriftSettings, FeatureThreshold
from .loader import CONFIG_ENV, TomlSettings, resolve_config_file
from .release_gate import ReleaseGateSettings
from .retention import RetentionSettings
from .rollout_policy import GatePolicy, RolloutPolicy
from .server import ADMIN_TOKEN_FILE, ControlPlaneSettings, LogLevel, MqttSecurity, Role
from .worker import WorkerSettings

__all__ = [
    "ADMIN_TOKEN_FILE",
    "CONFIG_ENV",
    "ClientSettings",
    "ControlPlaneSettings",
    "DriftSettings",
    "FeatureThreshold",
    "GatePolicy",
    "LogLevel",
    "MqttSecurity",
    "ReleaseGateSettings",
    "RetentionSettings",
    "Role",
    "RolloutPolicy",
    "TomlSettings",
    "WorkerSettings",
    "resolve_config_file",
]
