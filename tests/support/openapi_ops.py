"""The operations of the four services, read from their OpenAPI documents (built from each app
without running it): what the authorization matrix, the fuzzer and the bad-input corpus walk; and
the embedded system they run against."""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from shared.settings import ServiceSettings
from tests.support.harness import SERVICES, settings_for

PLACEHOLDER_ID = "matrix-unknown-id"
# Sites, shifts and the full-web pool open at every hour: routing never waits for opening time.
ALWAYS = "mon-sun 00:00-24:00"
# A small well-formed e-mail for the operations that take ``message/rfc822``.
TINY_EMAIL = (
    b"From: Prospect <prospect@example.org>\r\nTo: leads@example.com\r\n"
    b"Subject: Renseignement\r\nMessage-ID: <matrix@example.org>\r\n\r\nBonjour.\r\n"
)


@dataclass(frozen=True)
class Operation:
    service: str
    method: str  # upper case
    path: str  # the template, ``/v1/leads/{lead_id}``
    spec: dict[str, Any]

    @property
    def key(self) -> str:
        return f"{self.service} {self.method} {self.path}"

    @property
    def roles(self) -> frozenset[str] | None:
        """The roles that reach the handler (``x-roles``), or None for an operation that checks
        no role."""
        roles = self.spec.get("x-roles")
        return None if roles is None else frozenset(roles)

    @property
    def documented(self) -> frozenset[int]:
        return frozenset(int(code) for code in self.spec.get("responses", {}) if code.isdigit())

    @property
    def path_parameters(self) -> list[str]:
        return [p["name"] for p in self.spec.get("parameters", []) if p["in"] == "path"]

    @property
    def media_types(self) -> list[str]:
        return list(self.spec.get("requestBody", {}).get("content", {}))

    def url(self, **values: str) -> str:
        path = self.path
        for name in self.path_parameters:
            path = path.replace("{" + name + "}", values.get(name, PLACEHOLDER_ID))
        return path

    def minimal_body(self) -> tuple[bytes | None, dict[str, str]]:
        """A body of the operation's first media type (JSON preferred), as small as can be:
        enough to pass the content-type check, so that what answers is the role check or the
        handler."""
        types = self.media_types
        if "application/json" in types or (not types and self.method in {"POST", "PUT", "PATCH"}):
            return b"{}", {"content-type": "application/json"}
        if "message/rfc822" in types:
            return TINY_EMAIL, {"content-type": "message/rfc822"}
        if types:
            return b"<x/>", {"content-type": types[0]}
        return None, {}


@functools.cache
def documents() -> dict[str, dict[str, Any]]:
    """Service name → its OpenAPI document, as its app serves it at ``/openapi.json``."""
    built = {}
    for name, definition in SERVICES.items():
        app = definition.create_app(settings_for(name, database_url="sqlite+aiosqlite://"))
        built[name] = app.openapi()
    return built


def operations(service: str | None = None) -> list[Operation]:
    found = []
    for name, document in documents().items():
        if service is not None and name != service:
            continue
        for path, item in document["paths"].items():
            for method, spec in item.items():
                if method in {"get", "post", "put", "patch", "delete"}:
                    found.append(Operation(name, method.upper(), path, spec))
    return found


def system_settings(tmp: Path, **database_urls: str) -> dict[str, ServiceSettings]:
    """The four services on SQLite files (or the given databases) and one embedded bus."""
    settings = {}
    for name in SERVICES:
        extra: dict[str, Any] = {"full_web_hours": ALWAYS} if name == "dispatch" else {}
        settings[name] = settings_for(
            name,
            database_url=database_urls.get(name, f"sqlite+aiosqlite:///{tmp / name}.db"),
            bus="embedded",
            embedded_bus_path=tmp / "bus.db",
            **extra,
        )
    return settings


def is_problem(response: httpx.Response) -> bool:
    content_type: str = response.headers.get("content-type", "")
    return content_type.startswith("application/problem+json")
