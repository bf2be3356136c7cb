"""Schema-driven fuzzing of the four OpenAPI documents (schemathesis): for every operation, valid
and invalid cases drawn from its own entry are sent with a token holding every role; no answer
is a server error, every answer is documented (status, content type, body schema), every 4xx is
problem+json, and an invalid request is never accepted. Derandomised: the same cases every run
(``FUZZ_SEED``/``FUZZ_EXAMPLES`` for a deeper campaign, docs/reliability.md)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
import pytest_asyncio

from tests.support.fuzz import (
    Campaign,
    Operation as SchemaOperation,
    examples_per_mode,
    fuzz_operation,
    operations_of,
)
from tests.support.harness import DEV_TOKEN, System, run_system
from tests.support.openapi_ops import Operation, operations, system_settings

# Operations whose fuzzing finds a defect left to their service (strict: a fix turns red until
# the line goes).
KNOWN: dict[str, str] = {}


@dataclass
class Fuzzed:
    system: System
    schemas: dict[str, dict[str, SchemaOperation]]
    campaign: Campaign


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def fuzzed(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Fuzzed]:
    settings = system_settings(tmp_path_factory.mktemp("fuzz"))
    async with run_system(settings, workers=False) as system:
        schemas = {}
        for name in settings:
            # The document as served, not as built here.
            document = (await system.client(name).get("/openapi.json")).json()
            schemas[name] = {op.label: op for op in operations_of(document)}
        campaign = Campaign()
        yield Fuzzed(system, schemas, campaign)
        campaign.report("schema")


def cases() -> list[Any]:
    return [
        pytest.param(
            operation,
            id=operation.key,
            marks=[pytest.mark.xfail(strict=True, reason=KNOWN[operation.key])]
            if operation.key in KNOWN
            else [],
        )
        for operation in operations()
    ]


@pytest.mark.asyncio(loop_scope="module")
@pytest.mark.parametrize("operation", cases())
async def test_fuzzing_finds_no_server_error_and_no_drift(
    fuzzed: Fuzzed, operation: Operation
) -> None:
    schema_operation = fuzzed.schemas[operation.service][f"{operation.method} {operation.path}"]
    running = fuzzed.system.services[operation.service]
    before = len(fuzzed.campaign.failures)
    async with httpx.AsyncClient(
        transport=running.transport, base_url=f"http://{operation.service}.test"
    ) as client:
        await fuzz_operation(
            fuzzed.campaign,
            client,
            schema_operation,
            headers={"Authorization": f"Bearer {DEV_TOKEN}"},
            count=examples_per_mode(),
        )
    found = fuzzed.campaign.failures[before:]
    assert found == [], "\n".join(found)
