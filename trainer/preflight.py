"""Checks a run makes before it spends minutes: data folder, output folder, control plane.

Each failure is a one-line TrainerError naming the fix, within a second or two (no
image is decoded, torch is not imported yet): a missing or empty data folder, a folder
that is not an ImageFolder, too few images per label, an output folder that cannot be
written, a control plane that does not answer, refuses the token or its scope. The
stages check again what only they can see (decodable images, the hash split, the
model's quality).
"""

from __future__ import annotations

import os
import time
from pathlib import Path

from .config import TrainerSettings, resolve_token
from .errors import TrainerError
from .imagefolder import image_counts
from .quality import check_label_counts
from .runner import Figure, StageRecord

PREFLIGHT_TIMEOUT_S = 10.0


def check_out_dir(out_dir: Path, flag: str = "--out") -> None:
    """Create ``out_dir`` if needed and prove a file can be written there."""
    probe = out_dir / f".parkwatch-write-check-{os.getpid()}"
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as exc:
        raise TrainerError(
            f"cannot write to the output folder {out_dir} ({exc.strerror or exc}): pass a "
            f"writable folder with {flag}"
        ) from None


def check_control_plane(settings: TrainerSettings) -> str:
    """Reachable, token known, scope allows registering; a line for the console."""
    if not settings.api_url:
        return "not used (no --api-url)"
    from .registry_client import RegistryClient  # httpx: only for a run that registers

    with RegistryClient(settings.api_url, resolve_token(settings),
                        timeout=PREFLIGHT_TIMEOUT_S) as client:
        return client.check_can_register(settings.model_name)


def preflight(settings: TrainerSettings) -> StageRecord:
    """Run every check; the record the run's console and report show as stage ``preflight``."""
    started = time.perf_counter()
    counts = image_counts(settings.data_dir)
    check_label_counts(str(settings.data_dir), counts, settings)
    check_out_dir(settings.out_dir)
    control_plane = check_control_plane(settings)
    figures: dict[str, Figure] = {"images": ", ".join(f"{k} {v}" for k, v in counts.items()),
                                  "control_plane": control_plane}
    return StageRecord("preflight", "ok", round(time.perf_counter() - started, 3), figures)


__all__ = ["check_control_plane", "check_out_dir", "preflight"]
