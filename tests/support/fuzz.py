"""Schema-driven fuzzing with schemathesis, in one event loop with the apps under test.

Cases are drawn from each operation's OpenAPI entry (valid ones, and invalid ones that break
the schema on purpose) by Hypothesis, derandomised by default so a failure found in CI is found
again on a laptop; they are sent over ``httpx.ASGITransport`` to the running app and the answer is
judged by schemathesis' conformance checks plus ours (every 4xx is problem+json).

Knobs (environment): ``FUZZ_EXAMPLES`` (cases per operation and mode, default 25),
``FUZZ_SEED`` (an integer: random but reproducible cases instead of the derandomised ones),
``RELIABILITY_REPORT`` (a file the run's figures are written to, JSON).
"""

from __future__ import annotations

import json
import os
import time
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeAlias

import httpx
import schemathesis
from hypothesis import HealthCheck, Phase, given, seed, settings
from schemathesis import Case, GenerationMode
from schemathesis.checks import (
    content_type_conformance,
    negative_data_rejection,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)
from schemathesis.core.failures import FailureGroup
from schemathesis.core.result import Err
from schemathesis.schemas import APIOperation as AnyOperation

# Any operation of an OpenAPI schema, and one of its cases.
Operation: TypeAlias = AnyOperation[Any, Any, Any, Any]
FuzzCase: TypeAlias = Case[Operation]

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
    negative_data_rejection,
]


def examples_per_mode() -> int:
    return int(os.environ.get("FUZZ_EXAMPLES", "25"))


@dataclass
class Campaign:
    """Figures and failures of one fuzzing run."""

    requests: int = 0
    statuses: Counter[int] = field(default_factory=Counter)
    failures: list[str] = field(default_factory=list)
    skipped: Counter[str] = field(default_factory=Counter)
    started: float = field(default_factory=time.monotonic)

    def summary(self) -> dict[str, Any]:
        return {
            "requests": self.requests,
            "seconds": round(time.monotonic() - self.started, 1),
            "statuses": dict(sorted(self.statuses.items())),
            "failures": len(self.failures),
            "skipped": dict(self.skipped),
        }

    def report(self, name: str) -> None:
        record_figures(name, self.summary())


def record_figures(name: str, figures: dict[str, Any]) -> None:
    """Adds a run's figures under ``name`` to the file ``RELIABILITY_REPORT`` names, if any."""
    target = os.environ.get("RELIABILITY_REPORT")
    if not target:
        return
    path = Path(target)
    recorded = json.loads(path.read_text()) if path.exists() else {}
    recorded[name] = figures
    path.write_text(json.dumps(recorded, indent=2) + "\n")


def operations_of(document: Mapping[str, Any]) -> list[Operation]:
    schema = schemathesis.openapi.from_dict(dict(document))
    found = []
    for result in schema.get_all_operations():
        if isinstance(result, Err):
            raise result.err()  # an operation schemathesis cannot read: the document is wrong
        found.append(result.ok())
    return found


def draw_cases(operation: Operation, mode: GenerationMode, count: int) -> list[FuzzCase]:
    """``count`` cases of ``operation`` (fewer when the schema allows fewer distinct ones)."""
    drawn: list[FuzzCase] = []
    fixed_seed = os.environ.get("FUZZ_SEED")

    @settings(
        max_examples=count,
        derandomize=fixed_seed is None,
        database=None,
        deadline=None,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(operation.as_strategy(generation_mode=mode))
    def collect(case: FuzzCase) -> None:
        drawn.append(case)

    if fixed_seed is not None:
        collect = seed(int(fixed_seed))(collect)
    collect()
    return drawn


async def send(
    client: httpx.AsyncClient, case: FuzzCase, headers: Mapping[str, str]
) -> httpx.Response:
    kwargs = case.as_transport_kwargs(base_url=str(client.base_url), headers=dict(headers))
    content = kwargs.get("data")
    if "json" in kwargs:  # ``null`` included: httpx would send no body for ``json=None``
        content = json.dumps(kwargs["json"]).encode()
    elif isinstance(content, dict):  # a form: schemathesis leaves its encoding to requests
        content = str(httpx.QueryParams(content)).encode()
    return await client.request(
        kwargs["method"],
        kwargs["url"],
        params=kwargs.get("params") or None,
        headers=kwargs.get("headers"),
        content=content,
        cookies=kwargs.get("cookies") or None,
    )


def problem_on_client_errors(response: httpx.Response) -> str | None:
    if 400 <= response.status_code < 500:
        content_type = response.headers.get("content-type", "")
        if not content_type.startswith("application/problem+json"):
            return f"{response.status_code} without problem+json ({content_type or 'no type'})"
    return None


async def fuzz_operation(
    campaign: Campaign,
    client: httpx.AsyncClient,
    operation: Operation,
    *,
    headers: Mapping[str, str],
    count: int,
    tolerated: Callable[[FuzzCase, httpx.Response, str], bool] = lambda *_: False,
) -> None:
    """Draw, send and judge ``count`` valid and ``count`` invalid cases of ``operation``."""
    for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
        try:
            cases = draw_cases(operation, mode, count)
        except Exception as exc:  # a schema schemathesis cannot serialise (a vendor XML type)
            campaign.skipped[f"{operation.label} {mode.value}: {type(exc).__name__}"] += 1
            continue
        for case in cases:
            response = await send(client, case, headers)
            campaign.requests += 1
            campaign.statuses[response.status_code] += 1
            problems = []
            own = problem_on_client_errors(response)
            if own is not None:
                problems.append(own)
            try:
                case.validate_response(response, checks=CHECKS, headers=dict(headers))
            except FailureGroup as group:
                problems.extend(failure.title for failure in group.exceptions)
            for problem in problems:
                if tolerated(case, response, problem):
                    continue
                campaign.failures.append(
                    f"{operation.label} [{mode.value}] {problem}: {response.status_code} "
                    f"{response.text[:200]!r}\n    {case.as_curl_command()}"
                )
