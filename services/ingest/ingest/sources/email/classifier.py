"""Which kind of e-mail is this, and which parser reads it. ``parse_email`` never raises: any
failure becomes a quarantine reason naming the exception type."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable

from ingest.canonical import Ignore, Outcome, Quarantine
from ingest.sources.adf.parser import AdfSyntaxError, parse_adf
from ingest.sources.email import layouts
from ingest.sources.email.mime import InboundEmail, MimeLimits, MimeTooComplex, parse_mime
from ingest.sources.email.relay import with_relay

LEBONCOIN_DOMAINS = ("leboncoin.fr", "mail.leboncoin.fr")
LACENTRALE_DOMAINS = ("lacentrale.fr",)
ALERT_SENDERS = {
    "alertes@leboncoin.fr": "portal_search_alert",
    "alerte@lacentrale.fr": "portal_search_alert",
    "alertes@lacentrale.fr": "portal_search_alert",
    "info@mail-alerte.lacentrale.fr": "portal_search_alert",
    "no-reply@info1.lacentrale.fr": "portal_newsletter",
    "info@news.leboncoin.fr": "portal_newsletter",
}
NON_LEAD_SUBJECTS = (
    (re.compile(r"appels?\s+manqu", re.I), "missed_call_report"),
    (re.compile(r"annonce\s+(est|a\s+été)\s+(en\s+ligne|publiée|désactivée|expirée)", re.I),
     "portal_notice"),
    (re.compile(r"votre\s+facture", re.I), "portal_invoice"),
    (re.compile(r"^(r[ée]ponse\s+automatique|automatic\s+reply|out\s+of\s+office|absence)", re.I),
     "auto_reply"),
)  # fmt: skip
LACENTRALE_SUBJECT = re.compile(r"nouveau\s+message\s+pour\s+votre\s+annonce", re.I)

Parser = Callable[[InboundEmail, str], Outcome | None]


def _is_domain(domain: str, family: tuple[str, ...]) -> bool:
    return any(domain == d or domain.endswith("." + d) for d in family)


def ignore_reason(mail: InboundEmail) -> str | None:
    headers = mail.headers
    auto = headers.get("auto-submitted", "no").lower()
    if auto and auto != "no":
        return "auto_reply"
    if "x-autoreply" in headers or "x-autorespond" in headers:
        return "auto_reply"
    sender = mail.from_addr or ""
    if mail.content_type == "multipart/report" or sender.split("@")[0] in (
        "mailer-daemon", "postmaster",
    ):  # fmt: skip
        return "bounce"
    if sender in ALERT_SENDERS:
        return ALERT_SENDERS[sender]
    for pattern, reason in NON_LEAD_SUBJECTS:
        if pattern.search(mail.subject):
            return reason
    return None


def _first_match(mail: InboundEmail, ref: str, parsers: tuple[Parser, ...]) -> Outcome | None:
    for parser in parsers:
        outcome = parser(mail, ref)
        if outcome is not None:
            return outcome
    return None


def classify(mail: InboundEmail, ref: str) -> Outcome:
    reason = ignore_reason(mail)
    if reason is not None:
        return Ignore(reason)
    domain = mail.from_domain
    lacentrale_subject = LACENTRALE_SUBJECT.search(mail.subject) is not None
    if _is_domain(domain, LACENTRALE_DOMAINS) or lacentrale_subject:
        outcome = _first_match(
            mail,
            ref,
            (layouts.lacentrale_xml, layouts.lacentrale_labels, layouts.lacentrale_vitrine),
        )
        return outcome or Quarantine("lacentrale_layout_unknown")
    if _is_domain(domain, LEBONCOIN_DOMAINS):
        outcome = _first_match(mail, ref, (layouts.leboncoin_form, layouts.leboncoin_message))
        return outcome or Quarantine("leboncoin_layout_unknown")
    if mail.xml_parts:
        try:
            return parse_adf(mail.xml_parts[0], fallback_ref=ref, fallback_date=mail.date)[0]
        except AdfSyntaxError as exc:
            return Quarantine("xml_not_well_formed", str(exc))
    precedence = mail.headers.get("precedence", "").lower()
    if "list-unsubscribe" in mail.headers and precedence in ("bulk", "list", "junk"):
        return Ignore("newsletter")
    return layouts.generic(mail, ref)


def parse_email(raw: bytes, limits: MimeLimits = MimeLimits()) -> list[Outcome]:
    """Every outcome of one raw message (ADF bodies may hold several prospects); a message
    beyond ``limits`` is quarantined (``mime_too_complex``, naming the limit)."""
    ref = "sha256:" + hashlib.sha256(raw).hexdigest()
    try:
        mail = parse_mime(raw, limits)
        if not mail.headers:
            return [Quarantine("not_an_email", "no header found")]
        if (
            mail.xml_parts
            and not _is_domain(mail.from_domain, LACENTRALE_DOMAINS)
            and ignore_reason(mail) is None
        ):
            try:
                outcomes = parse_adf(
                    mail.xml_parts[0], fallback_ref=mail.message_id or ref, fallback_date=mail.date
                )
            except AdfSyntaxError as exc:
                return [Quarantine("xml_not_well_formed", str(exc))]
            return [with_relay(mail, outcome) for outcome in outcomes]
        return [with_relay(mail, classify(mail, ref))]
    except MimeTooComplex as exc:
        return [Quarantine("mime_too_complex", exc.detail)]
    except RecursionError:
        return [Quarantine("parser_error", "RecursionError")]
    except Exception as exc:  # a parser bug must quarantine the input, never lose it
        return [Quarantine("parser_error", type(exc).__name__)]
