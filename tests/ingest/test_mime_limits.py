"""An e-mail's parts, nesting and lines are capped while it is parsed (issue 11, item 5): one
message of 200,000 MIME parts cost 7-8 s of CPU; beyond the limits (settings) it is quarantined
(``mime_too_complex``, naming the limit) for the cost of its first parts."""

from __future__ import annotations

import email.message
import uuid
from typing import Any

import pytest

from ingest.canonical import LeadDraft, Quarantine
from ingest.conversations.email import read_conversation_mail
from ingest.sources.email.classifier import parse_email
from ingest.sources.email.mime import MimeLimits, MimeTooComplex, parse_mime
from shared.messaging.lead_tokens import LeadTokens
from tests.ingest.conftest import IngestFactory
from tests.ingest.corpus import FIXTURES

EMAIL = {"Content-Type": "message/rfc822"}
HEAD = b"From: Jean <jean@exemple.fr>\r\nSubject: Bonjour\r\nMIME-Version: 1.0\r\n"


def many_parts(count: int) -> bytes:
    parts = b"".join(
        b"--b\r\nContent-Type: text/plain\r\n\r\nAppelez-moi au 06 12 34 56 78\r\n"
        for _ in range(count)
    )
    return HEAD + b"Content-Type: multipart/mixed; boundary=b\r\n\r\n" + parts + b"--b--\r\n"


def nested(depth: int) -> bytes:
    levels = b"".join(
        b"Content-Type: multipart/mixed; boundary=b%d\r\n\r\n--b%d\r\n" % (level, level)
        for level in range(depth)
    )
    return HEAD + levels + b"Content-Type: text/plain\r\n\r\nAppelez-moi au 06 12 34 56 78\r\n"


def forwarded(depth: int) -> bytes:
    """``depth`` messages forwarded inside each other (``message/rfc822``)."""
    inner = HEAD + b"Content-Type: text/plain\r\n\r\nAppelez-moi au 06 12 34 56 78\r\n"
    for _ in range(depth):
        inner = HEAD + b"Content-Type: message/rfc822\r\n\r\n" + inner
    return inner


class PartsBuilt:
    """How many ``email.message.Message`` objects (parts) every parser in the process built:
    the parser's cost is per part, so this is the cost, counted exactly instead of timed.
    Measured once: 200,000 parts cost 3.4 s in the stdlib parser alone, 7-8 s for the intake."""

    count = 0


@pytest.fixture
def parts_built(monkeypatch: pytest.MonkeyPatch) -> type[PartsBuilt]:
    original = email.message.Message.__init__

    def counting(self: email.message.Message, *args: Any, **kwargs: Any) -> None:
        PartsBuilt.count += 1
        original(self, *args, **kwargs)

    PartsBuilt.count = 0
    monkeypatch.setattr(email.message.Message, "__init__", counting)
    return PartsBuilt


async def test_200000_parts_are_quarantined_after_the_first_thousand(
    ingest_service: IngestFactory, parts_built: type[PartsBuilt]
) -> None:
    raw = many_parts(200_000)
    async with ingest_service(email_max_lines=10_000_000) as service:  # the parts cap, alone
        parts_built.count = 0
        answer = await service.client.post("/v1/sources/email", content=raw, headers=EMAIL)
        assert answer.status_code == 202, answer.text
        body = answer.json()
        assert body["status"] == "quarantined"
        assert body["reason"] == "mime_too_complex"
        entry = (await service.client.get(f"/v1/quarantine/{body['id']}")).json()
        assert entry["detail"] == "more than 1000 MIME parts"
        # every reader of the intake (conversations, classifier) stops at the cap: a few
        # thousand parts in all, where one unbounded parse alone would build 200,001
        assert parts_built.count < 10_000, parts_built.count


@pytest.mark.parametrize(
    ("raw", "limits", "detail"),
    [
        (many_parts(5), MimeLimits(max_parts=5), "more than 5 MIME parts"),
        (nested(30), MimeLimits(), "MIME parts nested deeper than 20"),
        (nested(4), MimeLimits(max_depth=3), "MIME parts nested deeper than 3"),
        (forwarded(21), MimeLimits(), "MIME parts nested deeper than 20"),
        (HEAD + b"\r\n" + b"\r\n" * 600_000, MimeLimits(), "more than 500000 lines"),
    ],
)
def test_beyond_a_limit_is_quarantined_naming_it(
    raw: bytes, limits: MimeLimits, detail: str
) -> None:
    assert parse_email(raw, limits) == [Quarantine("mime_too_complex", detail)]


@pytest.mark.parametrize(
    ("raw", "limits"),
    [
        (many_parts(4), MimeLimits(max_parts=5)),  # the message and its four parts
        (nested(20), MimeLimits()),
        (forwarded(20), MimeLimits()),
        (HEAD + b"\r\nBonjour, 06 12 34 56 78\r\n", MimeLimits(max_parts=1, max_depth=1)),
    ],
)
def test_within_the_limits_the_message_is_read(raw: bytes, limits: MimeLimits) -> None:
    (outcome,) = parse_email(raw, limits)
    assert isinstance(outcome, LeadDraft)
    assert outcome.contact.phone == "+33612345678"


def test_the_corpus_is_within_the_default_limits() -> None:
    for path in sorted((FIXTURES / "email").glob("*.eml")):
        outcomes = parse_email(path.read_bytes())
        assert all(getattr(o, "reason", None) != "mime_too_complex" for o in outcomes), path


async def test_the_limits_are_settings_and_a_retry_reads_with_today_s(
    ingest_service: IngestFactory,
) -> None:
    raw = many_parts(3)
    async with ingest_service(email_max_parts=3) as service:
        held = (await service.client.post("/v1/sources/email", content=raw, headers=EMAIL)).json()
        assert held["reason"] == "mime_too_complex"
    async with ingest_service(email_max_parts=4) as service:
        retried = (await service.client.post(f"/v1/quarantine/{held['id']}/retry")).json()
        assert retried["status"] == "resolved"
        assert len(retried["lead_ids"]) == 1


def _report(parts: int) -> bytes:
    """A delivery report (``multipart/report``, read as a bounce before any lead parser) of
    ``parts`` parts."""
    body = b"".join(b"--r\r\nContent-Type: text/plain\r\n\r\nx\r\n" for _ in range(parts))
    return (
        b"From: MAILER-DAEMON@vo-leads.test\r\nSubject: Undelivered\r\nMIME-Version: 1.0\r\n"
        b"Content-Type: multipart/report; report-type=delivery-status; boundary=r\r\n\r\n"
        + body
        + b"--r--\r\n"
    )


def _reply_to_a_lead(tokens: LeadTokens, parts: int) -> bytes:
    """A reply to one of qualify's messages (our signed plus-address) of ``parts`` parts."""
    to = tokens.reply_address(str(uuid.uuid4()), mailbox="concession@vo-leads.test")
    return many_parts(parts).replace(b"MIME-Version", f"To: {to}\r\nMIME-Version".encode(), 1)


def test_conversation_mail_is_read_within_the_limits_too() -> None:
    """Replies and bounces are read before the lead parsers (ingest/conversations): within the
    same limits, else left to the parsers, which quarantine them (mime_too_complex)."""
    tokens = LeadTokens("limits-test-key")
    limits = MimeLimits(max_parts=50)
    for raw in (_report(51), _reply_to_a_lead(tokens, 51)):
        with pytest.raises(MimeTooComplex):
            parse_mime(raw, limits)
        assert read_conversation_mail(raw, tokens, limits) is None
        [outcome] = parse_email(raw, limits)
        assert isinstance(outcome, Quarantine)
        assert outcome.reason == "mime_too_complex"
    assert read_conversation_mail(_reply_to_a_lead(tokens, 49), tokens, limits) is not None


async def test_200000_parts_of_a_report_are_read_only_up_to_the_cap(
    ingest_service: IngestFactory, parts_built: type[PartsBuilt]
) -> None:
    raw = _report(200_000)
    async with ingest_service(email_max_lines=10_000_000) as service:
        parts_built.count = 0
        answer = await service.client.post("/v1/sources/email", content=raw, headers=EMAIL)
        assert answer.status_code == 202, answer.text
        assert answer.json()["reason"] == "mime_too_complex"
        assert parts_built.count < 10_000, parts_built.count
