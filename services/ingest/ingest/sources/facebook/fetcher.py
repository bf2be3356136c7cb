"""Pending Lead Ads notifications: fetch each lead from the Graph API, retry with exponential
backoff, quarantine after the configured number of attempts (the retry endpoint re-queues)."""

from __future__ import annotations

import json
from datetime import timedelta

import httpx
import structlog

from ingest.canonical import Outcome, Quarantine
from ingest.intake.metrics import count_input
from ingest.intake.service import quarantine, settle
from ingest.raw_inputs.repository import RawInputRepository
from ingest.settings import IngestSettings
from ingest.sources.facebook.leads import map_lead
from ingest.sources.facebook.repository import FacebookFetchRepository
from shared.db.session import session_scope
from shared.runtime import Runtime

log = structlog.get_logger(__name__)

FIELDS = "id,created_time,ad_id,form_id,platform,is_organic,field_data,custom_disclaimer_responses"
BATCH = 50


class GraphError(Exception):
    """The Graph API refused or failed; the text names the status only."""


def graph_client(settings: IngestSettings) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        base_url=settings.facebook_graph_url.rstrip("/"),
        timeout=settings.facebook_fetch_timeout_s,
    )


async def fetch_lead(client: httpx.AsyncClient, settings: IngestSettings, leadgen_id: str) -> bytes:
    token = settings.facebook_page_token.get_secret_value() if settings.facebook_page_token else ""
    try:
        response = await client.get(
            f"/{settings.facebook_graph_version}/{leadgen_id}",
            params={"fields": FIELDS, "access_token": token},
        )
    except httpx.HTTPError as exc:
        raise GraphError(type(exc).__name__) from None
    if response.status_code != 200:
        code = ""
        try:
            error = response.json().get("error", {})
            code = f" code {int(error.get('code'))}" if error.get("code") is not None else ""
        except (ValueError, AttributeError, TypeError):
            pass
        raise GraphError(f"http {response.status_code}{code}")
    return response.content


def backoff(settings: IngestSettings, attempts: int) -> timedelta:
    seconds = settings.facebook_fetch_backoff_s * 2 ** max(0, attempts - 1)
    return timedelta(seconds=min(seconds, settings.facebook_fetch_max_backoff_s))


async def run_due(runtime: Runtime[IngestSettings], client: httpx.AsyncClient) -> int:
    """Try every due fetch once. Returns how many were tried."""
    async with runtime.session_factory() as session:
        ids = await FacebookFetchRepository.from_session(session).due_ids(
            now=runtime.clock(), limit=BATCH
        )
    for fetch_id in ids:
        outcome = await _try_one(runtime, client, fetch_id)
        if outcome is not None:  # committed
            count_input(runtime.metrics, "facebook_graph", outcome)
    return len(ids)


async def _try_one(
    runtime: Runtime[IngestSettings], client: httpx.AsyncClient, fetch_id: str
) -> str | None:
    """The fetch's outcome once settled (``quarantined`` after the last failed attempt), None
    while it waits for another attempt or belongs to another replica."""
    settings = runtime.settings
    async with session_scope(runtime.session_factory) as session:
        fetch = await FacebookFetchRepository.from_session(session).claim(fetch_id)
        if fetch is None:
            return None  # another replica has it, or it is done
        fetch.attempts += 1
        try:
            body = await fetch_lead(client, settings, fetch.leadgen_id)
        except GraphError as exc:
            now = runtime.clock()
            fetch.last_error = str(exc)[:200]
            if fetch.attempts >= settings.facebook_fetch_max_attempts:
                fetch.status = "quarantined"
                raw = await RawInputRepository.from_session(session).get(fetch.raw_input_id)
                if raw is not None:
                    await quarantine(
                        session,
                        raw,
                        Quarantine("graph_fetch_failed", fetch.last_error),
                        now=now,
                        facebook_fetch_id=fetch.id,
                    )
            else:
                fetch.next_attempt_at = now + backoff(settings, fetch.attempts)
            log.warning(
                "facebook.fetch_failed",
                fetch_id=fetch.id,
                attempts=fetch.attempts,
                error=fetch.last_error,
            )
            return "quarantined" if fetch.status == "quarantined" else None
        now = runtime.clock()
        raw = await RawInputRepository.from_session(session).store(
            channel="facebook_graph", content_type="application/json", body=body, received_at=now
        )
        outcome = parse_graph_body(body, leadgen_id=fetch.leadgen_id, page_id=fetch.page_id)
        answer = await settle(session, raw, [outcome], outbox=runtime.outbox, now=now)
        fetch.status = "done"
        fetch.lead_id = answer.id if answer.leads else None
        fetch.last_error = None if answer.leads else answer.reason
        return answer.status


def parse_graph_body(
    body: bytes, *, leadgen_id: str | None = None, page_id: str | None = None
) -> Outcome:
    """Never raises: a Graph response that cannot be read is a quarantine reason."""
    try:
        document = json.loads(body)
    except (ValueError, RecursionError):
        return Quarantine("graph_response_not_json")
    if leadgen_id is None:
        found = document.get("id") if isinstance(document, dict) else None
        if not isinstance(found, str | int) or isinstance(found, bool) or not str(found):
            return Quarantine("graph_response_without_id")
        leadgen_id = str(found)[:64]
    try:
        return map_lead(document, leadgen_id=leadgen_id, page_id=page_id)
    except Exception as exc:
        return Quarantine("parser_error", type(exc).__name__)
