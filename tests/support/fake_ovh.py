"""A local OVHcloud SMS API over real HTTP on 127.0.0.1, for the SMS adapter's tests.

It checks what OVH checks (application key, consumer key, the ``X-Ovh-Signature`` of method, full
URL, body and timestamp, the timestamp against its own clock), records the jobs, and plays OVH's
part afterwards: ``deliver()`` calls the account's ``callBack`` URL with ``id`` and ``dlr`` and
updates ``GET /sms/{serviceName}/outgoing/{id}``; ``receive()`` stores a reply that
``GET /sms/{serviceName}/incoming`` lists until it is deleted.

    async with serve_fake_ovh() as ovh:
        provider = OvhSmsProvider(ovh.settings())
"""

from __future__ import annotations

import hashlib
import itertools
import json
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import httpx
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, PlainTextResponse, Response

from shared.messaging.settings import OvhSmsSettings
from tests.support.http_server import serve

JOB_FIELDS = frozenset(
    {
        "charset",
        "class",
        "coding",
        "differedPeriod",
        "message",
        "noStopClause",
        "priority",
        "receivers",
        "receiversDocumentUrl",
        "receiversSlotId",
        "sender",
        "senderForResponse",
        "tag",
        "validityPeriod",
    }
)
ACCOUNT_FIELDS = frozenset({"callBack", "stopCallBack", "description", "smsResponse"})
TIMESTAMP_TOLERANCE_S = 30


def _error(status: int, message: str, code: str | None = None) -> JSONResponse:
    body: dict[str, Any] = {"message": message}
    if code:
        body["errorCode"] = code
    return JSONResponse(body, status_code=status)


@dataclass
class FakeOvh:
    application_key: str = "fake-application-key"
    application_secret: str = "fake-application-secret"
    consumer_key: str = "fake-consumer-key"
    service_name: str = "sms-vo12345-1"
    clock_offset_s: int = 0  # OVH's clock minus ours
    invalid_numbers: set[str] = field(default_factory=set)  # answered as invalidReceivers
    failures: list[int] = field(default_factory=list)  # statuses for the next job posts
    url: str = ""  # API base, ``http://127.0.0.1:<port>/1.0``
    jobs: list[dict[str, Any]] = field(default_factory=list)
    outgoing: dict[int, dict[str, Any]] = field(default_factory=dict)
    incoming: dict[int, dict[str, Any]] = field(default_factory=dict)
    account: dict[str, Any] = field(default_factory=dict)
    refused: list[str] = field(default_factory=list)  # errorCodes answered to bad requests
    _ids: itertools.count[int] = field(default_factory=lambda: itertools.count(10_000_001))

    def settings(self, **overrides: Any) -> OvhSmsSettings:
        values: dict[str, Any] = {
            "ovh_endpoint": self.url,
            "ovh_application_key": self.application_key,
            "ovh_application_secret": self.application_secret,
            "ovh_consumer_key": self.consumer_key,
            "ovh_sms_service_name": self.service_name,
            **overrides,
        }
        return OvhSmsSettings(**values)

    def now(self) -> int:
        return int(time.time()) + self.clock_offset_s

    # --- OVH's side after sending -------------------------------------------------------

    async def deliver(self, message_id: int | str, dlr: int = 1) -> httpx.Response:
        """A delivery receipt: the SMS's state changes and the account's callBack URL is called
        (GET, ``id`` and ``dlr`` in the query string)."""
        self.outgoing[int(message_id)]["deliveryReceipt"] = dlr
        callback = self.account.get("callBack")
        assert callback, "no callBack URL set on the SMS account"
        async with httpx.AsyncClient(timeout=5) as client:
            return await client.get(callback, params={"id": str(message_id), "dlr": str(dlr)})

    def receive(self, sender: str, text: str, tag: str | None = None) -> int:
        """A reply from a phone to the account's short number."""
        message_id = next(self._ids)
        self.incoming[message_id] = {
            "id": message_id,
            "creationDatetime": datetime.now(UTC).isoformat(timespec="seconds"),
            "credits": 0,
            "message": text,
            "sender": sender,
            "tag": tag or "",
        }
        return message_id

    # --- the API --------------------------------------------------------------------------

    def _authenticate(self, request: Request, body: bytes) -> JSONResponse | None:
        headers = request.headers
        if headers.get("x-ovh-application") != self.application_key:
            return _error(403, "Invalid application key", "INVALID_KEY")
        if headers.get("x-ovh-consumer") != self.consumer_key:
            return _error(403, "Invalid credential", "INVALID_CREDENTIAL")
        timestamp = headers.get("x-ovh-timestamp", "")
        if not timestamp.isdigit() or abs(int(timestamp) - self.now()) > TIMESTAMP_TOLERANCE_S:
            return _error(400, "Query out of time", "QUERY_TIME_OUT")
        parts = [
            self.application_secret.encode(),
            self.consumer_key.encode(),
            request.method.encode(),
            str(request.url).encode(),
            body,
            timestamp.encode(),
        ]
        expected = "$1$" + hashlib.sha1(b"+".join(parts)).hexdigest()
        if headers.get("x-ovh-signature") != expected:
            return _error(400, "Invalid signature", "INVALID_SIGNATURE")
        return None

    def app(self) -> FastAPI:
        app = FastAPI()

        @app.middleware("http")
        async def authenticate(request: Request, call_next: Any) -> Response:
            if request.url.path == "/1.0/auth/time":
                response: Response = await call_next(request)
                return response
            refusal = self._authenticate(request, await request.body())
            if refusal is not None:
                self.refused.append(json.loads(bytes(refusal.body))["errorCode"])
                return refusal
            response = await call_next(request)
            return response

        @app.get("/1.0/auth/time")
        async def auth_time() -> PlainTextResponse:
            return PlainTextResponse(str(self.now()))

        def known(service: str) -> JSONResponse | None:
            if service != self.service_name:
                return _error(404, "This service does not exist", "RESOURCE_NOT_FOUND")
            return None

        @app.put("/1.0/sms/{service}")
        async def update_account(service: str, request: Request) -> Response:
            if (missing := known(service)) is not None:
                return missing
            body = json.loads(await request.body())
            if not isinstance(body, dict) or set(body) - ACCOUNT_FIELDS:
                return _error(400, "Invalid parameter")
            self.account.update(body)
            return JSONResponse(None)

        @app.post("/1.0/sms/{service}/jobs")
        async def add_job(service: str, request: Request) -> Response:
            if (missing := known(service)) is not None:
                return missing
            if self.failures:
                return _error(self.failures.pop(0), "Injected failure")
            body = json.loads(await request.body())
            if not isinstance(body, dict) or set(body) - JOB_FIELDS:
                return _error(400, "Invalid parameter")
            receivers = body.get("receivers")
            if not body.get("message") or not isinstance(receivers, list) or not receivers:
                return _error(400, "Missing message or receivers")
            if body.get("charset", "UTF-8") != "UTF-8" or body.get("coding", "7bit") not in (
                "7bit",
                "8bit",
            ):
                return _error(400, "Invalid charset or coding")
            valid = [
                number
                for number in receivers
                if number.startswith("+") and number[1:].isdigit()
                if number not in self.invalid_numbers
            ]
            invalid = [number for number in receivers if number not in valid]
            ids = []
            for number in valid:
                message_id = next(self._ids)
                ids.append(message_id)
                self.outgoing[message_id] = {
                    "id": message_id,
                    "creationDatetime": datetime.now(UTC).isoformat(timespec="seconds"),
                    "deliveryReceipt": 0,
                    "message": body["message"],
                    "receiver": number,
                    "sender": body.get("sender", "36111"),
                    "tag": body.get("tag", ""),
                    "ptt": 0,
                }
            self.jobs.append({**body, "ids": ids})
            return JSONResponse(
                {
                    "ids": ids,
                    "invalidReceivers": invalid,
                    "validReceivers": valid,
                    "totalCreditsRemoved": float(len(ids)),
                }
            )

        @app.get("/1.0/sms/{service}/outgoing")
        async def outgoing_ids(service: str, tag: str | None = None) -> Response:
            if (missing := known(service)) is not None:
                return missing
            return JSONResponse(
                sorted(
                    message_id
                    for message_id, sms in self.outgoing.items()
                    if tag is None or sms["tag"] == tag
                )
            )

        @app.get("/1.0/sms/{service}/outgoing/{message_id}")
        async def outgoing(service: str, message_id: int) -> Response:
            if (missing := known(service)) is not None:
                return missing
            if message_id not in self.outgoing:
                return _error(404, "The requested object does not exist", "RESOURCE_NOT_FOUND")
            return JSONResponse(self.outgoing[message_id])

        @app.get("/1.0/sms/{service}/incoming")
        async def incoming_ids(service: str) -> Response:
            if (missing := known(service)) is not None:
                return missing
            return JSONResponse(sorted(self.incoming))

        @app.get("/1.0/sms/{service}/incoming/{message_id}")
        async def incoming(service: str, message_id: int) -> Response:
            if (missing := known(service)) is not None:
                return missing
            if message_id not in self.incoming:
                return _error(404, "The requested object does not exist", "RESOURCE_NOT_FOUND")
            return JSONResponse(self.incoming[message_id])

        @app.delete("/1.0/sms/{service}/incoming/{message_id}")
        async def delete_incoming(service: str, message_id: int) -> Response:
            if (missing := known(service)) is not None:
                return missing
            if self.incoming.pop(message_id, None) is None:
                return _error(404, "The requested object does not exist", "RESOURCE_NOT_FOUND")
            return JSONResponse(None)

        return app


@asynccontextmanager
async def serve_fake_ovh(**options: Any) -> AsyncIterator[FakeOvh]:
    ovh = FakeOvh(**options)
    async with serve(ovh.app()) as base:
        ovh.url = f"{base}/1.0"
        yield ovh
