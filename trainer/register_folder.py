"""Register a finished run's output folder later: ``parkwatch register OUT_DIR``.

For a run trained without ``--api-url``, or whose control plane was away at the end.
The folder's registration.json is the payload; its model files and report.json are the
artifacts, found by content hash (a file changed since training is refused, not
uploaded). Registering the same folder twice is a no-op: the control plane numbers
every registration anew, so the folder's run is looked up first (same primary
artifact and report) and an existing version is reported instead.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

from pydantic import ValidationError

from protocols import ModelVersionCreate

from .config import ApiAccess, resolve_token
from .errors import RegistryError, TrainerError
from .registry_client import RegistryClient, register_model

REGISTERED_FILE = "registered.json"


@dataclass(frozen=True)
class FolderRegistration:
    model_name: str
    version: str
    already: bool  # the run was registered before: nothing uploaded or created
    control_plane: str


def _refused_reason(out_dir: Path) -> str | None:
    """The quality gate's reasons when the folder holds a refused model's report."""
    try:
        report = json.loads((out_dir / "report.json").read_text())
        quality = report["evaluation"]["quality"]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return None if quality.get("passed", True) else "; ".join(quality.get("reasons", []))


def load_registration(out_dir: Path) -> ModelVersionCreate:
    """The folder's registration.json, or a TrainerError saying why there is none."""
    if not out_dir.is_dir():
        raise TrainerError(f"{out_dir} is not a folder: pass the --out folder of a `parkwatch "
                           "train` run")
    path = out_dir / "registration.json"
    if not path.is_file():
        refused = _refused_reason(out_dir)
        if refused:
            raise TrainerError(
                f"{out_dir} holds a model the quality gate refused ({refused}): train a better "
                "one, or train again with --allow-weak-model to register it anyway"
            )
        raise TrainerError(f"{out_dir} has no registration.json: it is not the output of a "
                           "finished `parkwatch train` run (train again with --out there)")
    try:
        return ModelVersionCreate.model_validate_json(path.read_bytes())
    except (ValidationError, OSError) as exc:
        first = str(exc).splitlines()[0]
        raise TrainerError(f"{path} is not a valid registration ({first}): train again") from None


def folder_artifacts(out_dir: Path, registration: ModelVersionCreate) -> list[bytes]:
    """The bytes of every artifact the registration names (models, then report), each
    checked against its sha256; a TrainerError naming a missing or changed file."""
    by_sha: dict[str, bytes] = {}
    for path in sorted([*out_dir.glob("*.onnx"), out_dir / "report.json"]):
        if path.is_file():
            data = path.read_bytes()
            by_sha[hashlib.sha256(data).hexdigest()] = data
    wanted = [(a.sha256, f"{a.precision} model") for a in registration.artifacts]
    if registration.report_sha256:
        wanted.append((registration.report_sha256, "report.json"))
    missing = [f"{what} {sha[:12]}" for sha, what in wanted if sha not in by_sha]
    if missing:
        raise TrainerError(
            f"{out_dir}: registration.json names files that are missing or changed since "
            f"training ({', '.join(missing)}): register the folder as training left it, or "
            "train again"
        )
    return [by_sha[sha] for sha, _ in wanted]


def register_folder(out_dir: Path, access: ApiAccess) -> FolderRegistration:
    """Register the run in ``out_dir`` with the control plane of ``access`` (idempotent)."""
    registration = load_registration(out_dir)
    artifacts = folder_artifacts(out_dir, registration)
    if not access.api_url:
        raise RegistryError("registering needs the control plane's URL: pass --api-url or set "
                            "PARKWATCH_API_URL")
    with RegistryClient(access.api_url, resolve_token(access)) as client:
        where = client.check_can_register(registration.model_name)
        found = client.find_registered(registration)
        already = found is not None
        if found is None:
            found = register_model(client, registration, artifacts)
    answer = json.dumps(found.response, indent=2, sort_keys=True, default=str) + "\n"
    (out_dir / REGISTERED_FILE).write_text(answer)
    return FolderRegistration(registration.model_name, found.version, already, where)


__all__ = ["FolderRegistration", "folder_artifacts", "load_registration", "register_folder"]
