"""The bad-input corpus (``tests/support/bad_input.py``) sent to every operation of the four
services, in every place the operation takes input (path, query, body, each body field): never a
5xx, every answer documented, every 4xx problem+json, and the service still answers
``/healthz`` afterwards. Plus the Facebook webhook's own hostile inputs (signatures, shapes)."""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
import pytest_asyncio

from tests.support.bad_input import (
    BASE_BODIES,
    FIELD_VALUES,
    JSON_BODIES,
    PATH_SEGMENTS,
    QUERY_VALUES,
    body_properties,
)
from tests.support.fuzz import record_figures
from tests.support.harness import DEV_TOKEN, System, run_system, settings_for
from tests.support.openapi_ops import Operation, documents, is_problem, operations, system_settings

FACEBOOK_SECRET = "corpus-app-secret"
# Operations whose corpus finds a defect left to their service (strict xfail: remove the line
# with the fix).
KNOWN: dict[str, str] = {}


@dataclass(frozen=True)
class Probe:
    label: str
    url: str
    content: bytes | None = None
    content_type: str | None = None
    headers: tuple[tuple[str, str], ...] = ()


def probes(operation: Operation) -> Iterator[Probe]:
    for name in operation.path_parameters:
        for label, segment in PATH_SEGMENTS.items():
            yield Probe(f"path {name}: {label}", operation.url(**{name: segment}))
    for parameter in operation.spec.get("parameters", []):
        if parameter["in"] != "query":
            continue
        name = parameter["name"]
        for label, value in QUERY_VALUES.items():
            query = f"{name}={value.replace('{name}', name)}"
            yield Probe(f"query {name}: {label}", f"{operation.url()}?{query}")
    body, content_type = operation.minimal_body()
    if "application/json" in operation.media_types:
        for label, raw in JSON_BODIES.items():
            yield Probe(f"body: {label}", operation.url(), raw, "application/json")
        base = BASE_BODIES.get(operation.key, {})
        document = documents()[operation.service]
        for field in body_properties(document, operation.spec):
            for label, value in FIELD_VALUES.items():
                raw = json.dumps({**base, field: value}).encode()
                yield Probe(f"field {field}: {label}", operation.url(), raw, "application/json")
        yield Probe("JSON sent as text/plain", operation.url(), b"{}", "text/plain")
    elif body is not None:
        declared = content_type.get("content-type")
        yield Probe("empty body", operation.url(), b"", declared)
        yield Probe("no content type", operation.url(), body, None)
        yield Probe("a lying content type", operation.url(), body, "image/png")


@dataclass
class Corpus:
    system: System
    sent: int = 0

    async def send(self, operation: Operation, probe: Probe) -> httpx.Response:
        # Bytes: a header value may hold what no client library would encode (non-ASCII).
        headers = [(b"authorization", f"Bearer {DEV_TOKEN}".encode())]
        headers += [(name.encode(), value.encode()) for name, value in probe.headers]
        if probe.content_type is not None:
            headers.append((b"content-type", probe.content_type.encode()))
        running = self.system.services[operation.service]
        async with httpx.AsyncClient(
            transport=running.transport, base_url=f"http://{operation.service}.test"
        ) as client:
            self.sent += 1
            return await client.request(
                operation.method, probe.url, content=probe.content, headers=headers, timeout=60
            )


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def corpus(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Corpus]:
    folder = tmp_path_factory.mktemp("corpus")
    settings = system_settings(folder)
    settings["ingest"] = settings_for(
        "ingest",
        database_url=f"sqlite+aiosqlite:///{folder / 'ingest.db'}",
        bus="embedded",
        embedded_bus_path=folder / "bus.db",
        facebook_app_secrets=[FACEBOOK_SECRET],
        facebook_verify_token="corpus-verify-token",
    )
    async with run_system(settings, workers=False) as system:
        corpus = Corpus(system)
        yield corpus
        record_figures("bad-input corpus", {"requests": corpus.sent})


def judge(operation: Operation, probe: Probe, response: httpx.Response) -> str | None:
    status = response.status_code
    if status >= 500:
        return f"{probe.label}: {status} {response.text[:160]!r}"
    # A path segment that ends the route (a decoded ``/``) names nothing: 404 is the answer.
    unrouted = status == 404 and probe.label.startswith("path ")
    if status not in operation.documented and not unrouted:
        return f"{probe.label}: {status} not documented ({sorted(operation.documented)})"
    if status >= 400 and not is_problem(response):
        return f"{probe.label}: {status} without problem+json"
    return None


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
async def test_bad_input_is_refused_cleanly(corpus: Corpus, operation: Operation) -> None:
    wrong = []
    for probe in probes(operation):
        verdict = judge(operation, probe, await corpus.send(operation, probe))
        if verdict is not None:
            wrong.append(verdict)
    health = await corpus.system.client(operation.service).get("/healthz")
    assert health.status_code == 200
    assert wrong == [], f"{operation.key}:\n" + "\n".join(wrong)


# --- the Facebook webhook: signatures and shapes ------------------------------------------


def signed(body: bytes) -> dict[str, str]:
    digest = hmac.new(FACEBOOK_SECRET.encode(), body, hashlib.sha256).hexdigest()
    return {"X-Hub-Signature-256": f"sha256={digest}", "content-type": "application/json"}


SIGNATURES: dict[str, str] = {
    "non-ASCII": "sha256=é" + "0" * 63,
    "emoji": "sha256=😀",
    "empty": "",
    "no prefix": "0" * 64,
    "sha1": "sha1=" + "0" * 40,
    "overlong": "sha256=" + "0" * 10_000,
}

SHAPES: dict[str, Any] = {
    "changes is a number": {"object": "page", "entry": [{"id": "1", "changes": 5}]},
    "changes is a boolean": {"object": "page", "entry": [{"id": "1", "changes": True}]},
    "messaging is a number": {"object": "page", "entry": [{"id": "1", "messaging": 7}]},
    "entry is a string": {"object": "page", "entry": "x"},
    "entry items are numbers": {"object": "page", "entry": [1, 2]},
    "a change without value": {"object": "page", "entry": [{"changes": [{"field": "leadgen"}]}]},
    "value is a list": {
        "object": "page",
        "entry": [{"changes": [{"field": "leadgen", "value": [1]}]}],
    },
    "leadgen_id is an object": {
        "object": "page",
        "entry": [{"changes": [{"field": "leadgen", "value": {"leadgen_id": {"a": 1}}}]}],
    },
    "a list": [],
    "null": None,
}


def facebook_cases(table: dict[str, Any]) -> list[Any]:
    return [
        pytest.param(
            label,
            id=label,
            marks=[pytest.mark.xfail(strict=True, reason=KNOWN[f"facebook {label}"])]
            if f"facebook {label}" in KNOWN
            else [],
        )
        for label in table
    ]


def _webhook() -> Operation:
    (operation,) = [
        op
        for op in operations("ingest")
        if (op.method, op.path) == ("POST", "/v1/sources/facebook/webhook")
    ]
    return operation


@pytest.mark.asyncio(loop_scope="module")
@pytest.mark.parametrize("label", facebook_cases(SIGNATURES))
async def test_a_hostile_facebook_signature_is_a_401(corpus: Corpus, label: str) -> None:
    body = json.dumps({"object": "page", "entry": []}).encode()
    probe = Probe(
        f"signature {label}",
        "/v1/sources/facebook/webhook",
        body,
        "application/json",
        (("X-Hub-Signature-256", SIGNATURES[label]),),
    )
    response = await corpus.send(_webhook(), probe)
    assert judge(_webhook(), probe, response) is None
    assert response.status_code == 401, response.text


@pytest.mark.asyncio(loop_scope="module")
@pytest.mark.parametrize("label", facebook_cases(SHAPES))
async def test_a_signed_facebook_body_of_the_wrong_shape_is_a_4xx(
    corpus: Corpus, label: str
) -> None:
    body = json.dumps(SHAPES[label]).encode()
    probe = Probe(
        f"shape {label}",
        "/v1/sources/facebook/webhook",
        body,
        None,
        tuple(signed(body).items()),
    )
    response = await corpus.send(_webhook(), probe)
    assert judge(_webhook(), probe, response) is None
