"""Bad input: schemathesis fuzzes every operation of the OpenAPI spec against a live API
(real uvicorn, real SQLite store) with an admin token; no answer may be a 5xx.

Bounded: a fixed number of examples per operation, derandomised so a run is repeatable.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

schemathesis = pytest.importorskip(
    "schemathesis", reason="pip install schemathesis (in the dev extra)"
)
from hypothesis import HealthCheck, given, settings  # noqa: E402
from schemathesis.checks import not_a_server_error  # noqa: E402
from schemathesis.core.failures import Failure, FailureGroup  # noqa: E402
from schemathesis.openapi.checks import RejectedPositiveData  # noqa: E402

from control_plane.api import create_app  # noqa: E402
from control_plane.config import ControlPlaneSettings  # noqa: E402
from control_plane.testing import registration  # noqa: E402
from tests.conftest import free_port, serving  # noqa: E402

EXAMPLES = 8


@dataclass(frozen=True)
class LiveApi:
    url: str
    headers: dict[str, str]
    spec: dict[str, Any]


def _seed(url: str, headers: dict[str, str]) -> None:
    """A model, release, device, group and job, so fuzzed ids sometimes hit real objects."""
    with httpx.Client(base_url=f"{url}/api/v1", headers=headers) as http:
        sha = http.post("/artifacts", content=b"m" * 64).json()["sha256"]
        spec = registration("petnet", [(sha, 64, "int8")])
        http.post("/models/petnet/versions", json=spec.model_dump(mode="json"))
        http.post("/releases", json={"model_name": "petnet"})
        http.post("/devices", json={"device_id": "cam-1", "labels": {"park": "p1"}})
        http.post("/groups", json={"name": "p1", "selector": {"park": "p1"}})
        http.post("/jobs", json={"model_name": "petnet"})


@pytest.fixture(scope="module")
def live_api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveApi]:
    data_dir: Path = tmp_path_factory.mktemp("fuzz") / "data"
    port = free_port()
    # Limits that would answer 429 to the fuzzer itself are out of the way here.
    app = create_app(ControlPlaneSettings(data_dir=data_dir, port=port,
                                          auth_failure_limit=1_000_000,
                                          sample_uploads_per_hour=1_000_000),
                     enable_mqtt=False)
    with serving(app, port, log_level="error") as url:
        headers = {"Authorization": f"Bearer {(data_dir / 'admin.token').read_text().strip()}"}
        _seed(url, headers)
        yield LiveApi(url=url, headers=headers, spec=app.openapi())


def _fuzz(operation: Any, live_api: LiveApi) -> None:
    """Run one operation's bounded, derandomised examples; the first 5xx raises."""

    @given(case=operation.as_strategy())
    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    def run(case: Any) -> None:
        case.call_and_validate(
            base_url=live_api.url, headers=live_api.headers, checks=[not_a_server_error]
        )

    run()


# One plain test walking every operation (schemathesis's pytest plugin breaks on pytest 9);
# failures are collected so one run reports every operation that answered 5xx.
@pytest.mark.slow
def test_no_server_errors(live_api: LiveApi) -> None:
    schema = schemathesis.openapi.from_dict(live_api.spec)
    failures: list[str] = []
    operations = 0
    for result in schema.get_all_operations():
        operation = result.ok()
        operations += 1
        try:
            _fuzz(operation, live_api)
        except Exception as exc:
            failures.append(f"{operation.label}: {type(exc).__name__}: {str(exc)[:400]}")
    assert operations > 20, f"only {operations} operations in the spec"
    assert not failures, "\n".join(failures)


# Operations whose schema once told clients that input was valid which the server refuses:
# dict keys off their pattern (selectors, labels, class counts) and strings with a format
# checked in code (label filters, metric thresholds, aliases). Schema-valid must be accepted.
CONFORMING = ("POST /api/v1/groups", "POST /api/v1/datasets", "GET /api/v1/devices",
              "GET /api/v1/versions", "PUT /api/v1/models/{name}/aliases/{alias}")


@pytest.mark.slow
def test_schema_valid_input_is_accepted(live_api: LiveApi) -> None:
    schema = schemathesis.openapi.from_dict(live_api.spec)
    rejected: list[str] = []
    for result in schema.get_all_operations():
        operation = result.ok()
        if operation.label not in CONFORMING:
            continue

        @given(case=operation.as_strategy())
        @settings(max_examples=25, deadline=None, derandomize=True, database=None,
                  suppress_health_check=list(HealthCheck))
        def run(case: Any) -> None:
            response = case.call(base_url=live_api.url, headers=live_api.headers)
            assert response.status_code < 500, response.text
            try:
                case.validate_response(response)
            except (Failure, FailureGroup) as exc:
                for failure in getattr(exc, "exceptions", [exc]):
                    if isinstance(failure, RejectedPositiveData):
                        rejected.append(f"{case.operation.label}: {response.text[:200]}")

        run()
    assert not rejected, "schema-valid requests refused:\n" + "\n".join(rejected)


@pytest.mark.slow
def test_stateful_link_following_finds_no_server_error(live_api: LiveApi) -> None:
    """Chains calls through the links schemathesis infers (POST /devices -> GET
    /devices/{device_id} ...), so ids are real and calls reach past the 404s."""
    machine = schemathesis.openapi.from_dict(live_api.spec).as_state_machine()
    calls: dict[tuple[str, int], int] = {}

    class Api(machine):  # type: ignore[misc, valid-type]
        def get_call_kwargs(self, case: Any) -> dict[str, Any]:
            return {"base_url": live_api.url, "headers": live_api.headers}

        def validate_response(self, response: Any, case: Any,
                              additional_checks: Any = None, **kwargs: Any) -> None:
            key = (case.operation.label, response.status_code)
            calls[key] = calls.get(key, 0) + 1
            case.validate_response(response, checks=[not_a_server_error])

    Api.run(settings=settings(max_examples=EXAMPLES * 2, stateful_step_count=6, deadline=None,
                              derandomize=True, database=None,
                              suppress_health_check=list(HealthCheck)))
    reached = {label for label, _status in calls}
    found = sum(n for (_label, status), n in calls.items() if status < 300)
    print(f"injected: {sum(calls.values())} linked calls -> observed {len(reached)} operations, "
          f"{found} answered 2xx, no 5xx")
    assert len(reached) > 10 and found > 0, calls
