"""OVHcloud SMS (``https://eu.api.ovh.com/1.0``), the SMS provider adapter.

- Sending: ``POST /sms/{serviceName}/jobs`` → ``{"ids": [...], "invalidReceivers": [...],
  "validReceivers": [...], "totalCreditsRemoved": n}``; the first id is the message id.
- Every call is signed: ``X-Ovh-Application`` (application key), ``X-Ovh-Consumer`` (consumer
  key), ``X-Ovh-Timestamp`` (OVH's clock, unix seconds) and ``X-Ovh-Signature`` =
  ``"$1$" + sha1(appSecret + "+" + consumerKey + "+" + METHOD + "+" + fullURL + "+" + body + "+"
  + timestamp)``. OVH checks the timestamp against its own clock: like OVH's own clients we read
  ``GET /auth/time`` (unsigned) once and keep the difference.
- Delivery receipts, pushed: the SMS account's ``callBack`` URL (``PUT /sms/{serviceName}``,
  ``set_delivery_callback``) is called with ``id`` (the message id) and ``dlr`` (1 delivered,
  2 not delivered, 4 buffered, 8 accepted by the operator, 16 refused by the operator) in the
  query string. Asked: ``GET /sms/{serviceName}/outgoing/{id}`` (``deliveryReceipt``, same codes,
  0 while none came back).
- Finding a sent SMS by its ``tag`` (our message key): ``GET /sms/{serviceName}/outgoing?tag=…``
  lists the ids (``find_sent``), so that a sender that crashed after the POST learns whether it
  left instead of sending it again.
- Inbound messages (replies to the short number used when no sender name is set,
  ``senderForResponse``): ``GET /sms/{serviceName}/incoming`` lists ids, ``GET …/incoming/{id}``
  gives ``{id, creationDatetime, message, sender, tag, credits}``, ``DELETE …/incoming/{id}``
  removes it once recorded.

We always send ``noStopClause: true``: the opt-out line is ours (``sms_text.fit_sms``), so the
segment count we computed is what is sent, and OVH's own clause would be a second one.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any
from urllib.parse import urlencode

import httpx

from shared.messaging.errors import NotConfigured, PermanentSendError, TransientSendError
from shared.messaging.settings import OvhSmsSettings
from shared.messaging.sms.provider import (
    DeliveryReceipt,
    DeliveryState,
    InboundSms,
    InvalidProviderPayload,
    OutgoingSms,
    SentSms,
)
from shared.messaging.sms_text import sms_encoding
from shared.normalize import normalize_phone

# OVH delivery receipt codes (``dlr`` of the callback, ``deliveryReceipt`` of an outgoing SMS).
DLR_STATES: dict[str, DeliveryState] = {
    "0": "accepted",  # no receipt yet
    "1": "delivered",
    "2": "failed",
    "4": "pending",
    "8": "accepted",
    "16": "failed",
}


def ovh_signature(
    *,
    application_secret: str,
    consumer_key: str,
    method: str,
    url: str,
    body: bytes,
    timestamp: int,
) -> str:
    """``$1$`` + SHA-1 hex of the request's parts joined by ``+`` (OVH API authentication)."""
    parts = [
        application_secret.encode(),
        consumer_key.encode(),
        method.upper().encode(),
        url.encode(),
        body,
        str(timestamp).encode(),
    ]
    return "$1$" + hashlib.sha1(b"+".join(parts)).hexdigest()  # SHA-1: OVH's scheme


# OVH ``errorCode``s that say our set-up is wrong (keys, rights, clock), not the message.
_CONFIGURATION_ERRORS = frozenset(
    {
        "INVALID_SIGNATURE",
        "INVALID_KEY",
        "INVALID_CREDENTIAL",
        "NOT_CREDENTIAL",
        "NOT_GRANTED_CALL",
        "QUERY_TIME_OUT",
    }
)


def _error_code(response: httpx.Response) -> str | None:
    try:
        body = response.json()
    except ValueError:
        return None
    code = body.get("errorCode") if isinstance(body, dict) else None
    return code if isinstance(code, str) else None


def _e164(number: str) -> str:
    number = number.strip().replace(" ", "")
    return "+" + number[2:] if number.startswith("00") else number


def _sender(number: str) -> str:
    """Who wrote, read with the one phone rule (``0033…``, ``0692…`` → E.164, as the lead's
    number is stored, so a STOP blocks the same hash); a short code or a name as OVH gave it."""
    return normalize_phone(number) or _e164(number)


def _datetime(value: Any) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        return None


class OvhSmsProvider:
    name = "ovh"

    def __init__(
        self,
        settings: OvhSmsSettings,
        *,
        client: httpx.AsyncClient | None = None,
        local_time: Callable[[], float] = time.time,
    ) -> None:
        self.settings = settings
        self._client = client or httpx.AsyncClient(timeout=settings.ovh_timeout_s)
        self._owns_client = client is None
        self._local_time = local_time
        self._time_delta: int | None = None

    @property
    def configured(self) -> bool:
        return self.settings.ovh_configured

    async def aclose(self) -> None:
        if self._owns_client:
            await self._client.aclose()

    # --- signed calls ---------------------------------------------------------------------

    def _url(self, path: str) -> str:
        return self.settings.ovh_endpoint.rstrip("/") + path

    async def _timestamp(self) -> int:
        if self._time_delta is None:
            response = await self._client.get(self._url("/auth/time"))
            response.raise_for_status()
            self._time_delta = int(response.text.strip()) - int(self._local_time())
        return int(self._local_time()) + self._time_delta

    def _service_path(self, suffix: str = "") -> str:
        return f"/sms/{self.settings.ovh_sms_service_name}{suffix}"

    def _credentials(self) -> tuple[str, str, str]:
        """Application key, application secret, consumer key; ``NotConfigured`` without them."""
        settings = self.settings
        if not (
            settings.ovh_application_key
            and settings.ovh_application_secret
            and settings.ovh_consumer_key
            and settings.ovh_sms_service_name
        ):
            raise NotConfigured("OVH SMS not configured (credentials or service name unset)")
        return (
            settings.ovh_application_key,
            settings.ovh_application_secret.get_secret_value(),
            settings.ovh_consumer_key.get_secret_value(),
        )

    async def _call(self, method: str, path: str, payload: Any = None) -> httpx.Response:
        """One signed call; transport failures and error statuses become ``SendError``s."""
        application_key, application_secret, consumer_key = self._credentials()
        url = self._url(path)
        body = b"" if payload is None else json.dumps(payload, ensure_ascii=False).encode()
        try:
            timestamp = await self._timestamp()
            headers = {
                "X-Ovh-Application": application_key,
                "X-Ovh-Consumer": consumer_key,
                "X-Ovh-Timestamp": str(timestamp),
                "X-Ovh-Signature": ovh_signature(
                    application_secret=application_secret,
                    consumer_key=consumer_key,
                    method=method,
                    url=url,
                    body=body,
                    timestamp=timestamp,
                ),
            }
            if payload is not None:
                headers["Content-Type"] = "application/json; charset=utf-8"
            response = await self._client.request(method, url, content=body, headers=headers)
        except httpx.TimeoutException:
            raise TransientSendError("OVH API timeout") from None
        except (httpx.HTTPError, ValueError) as exc:
            raise TransientSendError(f"OVH API unreachable ({type(exc).__name__})") from None
        status = response.status_code
        if status < 300:
            return response
        if _error_code(response) in _CONFIGURATION_ERRORS:
            raise TransientSendError(
                f"OVH API refused the credentials or the clock ({status})", code=status
            )
        if status in (401, 403):
            raise TransientSendError(f"OVH API refused the credentials ({status})", code=status)
        if status == 404:
            raise TransientSendError("OVH SMS service or object not found (404)", code=404)
        if status == 429 or status >= 500:
            raise TransientSendError(f"OVH API unavailable ({status})", code=status)
        raise PermanentSendError(f"OVH API refused the request ({status})", code=status)

    # --- sending --------------------------------------------------------------------------

    def job_body(self, sms: OutgoingSms) -> dict[str, Any]:
        """The ``POST /sms/{serviceName}/jobs`` body for one SMS."""
        body: dict[str, Any] = {
            "charset": "UTF-8",
            "class": "phoneDisplay",
            "coding": "7bit" if sms_encoding(sms.text) == "GSM-7" else "8bit",
            "message": sms.text,
            "noStopClause": True,
            "priority": "high",
            "receivers": [_e164(sms.to)],
            "validityPeriod": self.settings.ovh_sms_validity_minutes,
        }
        if self.settings.ovh_sms_sender:
            body["sender"] = self.settings.ovh_sms_sender
        else:
            body["senderForResponse"] = True
        if sms.tag:
            body["tag"] = sms.tag
        return body

    async def send(self, sms: OutgoingSms) -> SentSms:
        response = await self._call("POST", self._service_path("/jobs"), self.job_body(sms))
        try:
            report = response.json()
            ids = [str(value) for value in report.get("ids") or []]
            invalid = report.get("invalidReceivers") or []
            credits = report.get("totalCreditsRemoved")
        except (ValueError, AttributeError):
            # Sent or not, we cannot tell: retrying could send twice.
            raise PermanentSendError("OVH sending report unreadable") from None
        if not ids:
            reason = "invalid receiver" if invalid else "no message id in the sending report"
            raise PermanentSendError(f"OVH refused the SMS: {reason}")
        return SentSms(
            provider_message_id=ids[0],
            credits=float(credits) if isinstance(credits, int | float) else None,
        )

    async def find_sent(self, tag: str) -> list[str]:
        """Ids of the SMS sent with ``tag`` (``GET /sms/{serviceName}/outgoing?tag=…``): whether
        a message whose sending report was lost (a crash after the POST) did leave."""
        path = self._service_path("/outgoing") + "?" + urlencode({"tag": tag})
        response = await self._call("GET", path)
        try:
            return [str(int(value)) for value in response.json()]
        except (ValueError, TypeError):
            raise InvalidProviderPayload("OVH outgoing list unreadable") from None

    async def set_delivery_callback(self, url: str) -> None:
        """Point the SMS account's delivery receipts at ``url`` (``PUT /sms/{serviceName}``)."""
        await self._call("PUT", self._service_path(), {"callBack": url})

    # --- delivery receipts ----------------------------------------------------------------

    def parse_delivery_receipt(self, params: Mapping[str, str]) -> DeliveryReceipt:
        message_id = str(params.get("id", "")).strip()
        code = str(params.get("dlr", "")).strip()
        if not message_id.isdigit():
            raise InvalidProviderPayload("OVH receipt without a numeric id")
        state = DLR_STATES.get(code)
        if state is None:
            raise InvalidProviderPayload("OVH receipt with an unknown dlr code")
        return DeliveryReceipt(provider_message_id=message_id, state=state, code=code)

    async def fetch_delivery_receipt(self, provider_message_id: str) -> DeliveryReceipt:
        response = await self._call("GET", self._service_path(f"/outgoing/{provider_message_id}"))
        try:
            outgoing = response.json()
            code = str(outgoing["deliveryReceipt"])
        except (ValueError, KeyError, TypeError):
            raise InvalidProviderPayload("OVH outgoing SMS without deliveryReceipt") from None
        receipt = self.parse_delivery_receipt({"id": provider_message_id, "dlr": code})
        return DeliveryReceipt(
            provider_message_id=receipt.provider_message_id,
            state=receipt.state,
            code=receipt.code,
            at=_datetime(outgoing.get("creationDatetime")),
        )

    # --- inbound messages -----------------------------------------------------------------

    def parse_inbound(self, payload: Mapping[str, Any]) -> InboundSms:
        """An ``sms.Incoming`` object: ``{id, creationDatetime, message, sender, tag}``."""
        message_id, sender, text = payload.get("id"), payload.get("sender"), payload.get("message")
        if not isinstance(message_id, int | str) or not str(message_id).strip():
            raise InvalidProviderPayload("OVH incoming SMS without id")
        if not isinstance(sender, str) or not sender.strip():
            raise InvalidProviderPayload("OVH incoming SMS without sender")
        if not isinstance(text, str):
            raise InvalidProviderPayload("OVH incoming SMS without message")
        tag = payload.get("tag")
        return InboundSms(
            provider_message_id=str(message_id),
            sender=_sender(sender),
            text=text,
            received_at=_datetime(payload.get("creationDatetime")),
            tag=tag if isinstance(tag, str) and tag else None,
        )

    async def fetch_inbound(self) -> list[InboundSms]:
        response = await self._call("GET", self._service_path("/incoming"))
        try:
            ids = [int(value) for value in response.json()]
        except (ValueError, TypeError):
            raise InvalidProviderPayload("OVH incoming list unreadable") from None
        messages = []
        for message_id in sorted(ids):
            detail = await self._call("GET", self._service_path(f"/incoming/{message_id}"))
            try:
                payload = detail.json()
            except ValueError:
                raise InvalidProviderPayload("OVH incoming SMS unreadable") from None
            messages.append(self.parse_inbound(payload))
        return messages

    async def acknowledge_inbound(self, provider_message_id: str) -> None:
        await self._call("DELETE", self._service_path(f"/incoming/{provider_message_id}"))
