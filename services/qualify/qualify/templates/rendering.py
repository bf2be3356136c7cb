"""Template syntax, checks and rendering.

A placeholder is ``{{name}}`` or ``{{name|fallback}}`` (the fallback when the value is empty).
Names are a fixed list (``VARIABLES``): an unknown name, or a ``{{``/``}}`` that is not a
placeholder, is refused when the template is saved or previewed. In HTML, values and fallbacks
are escaped. After rendering a text, trailing spaces go and runs of blank lines shrink to one,
so an empty optional line (``{{callback}}``) leaves no hole.
"""

from __future__ import annotations

import html as html_lib
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from qualify.messages.state import TemplateKind
from qualify.templates.defaults import TemplateContent
from shared.messaging.outgoing_email import text_to_html
from shared.messaging.sms_text import SmsEncoding, fit_sms, measure_sms

VARIABLES: dict[str, str] = {
    "greeting": '"Bonjour Camille", or "Bonjour" when the first name is unknown',
    "first_name": "the prospect's first name (may be empty)",
    "full_name": "the prospect's name as they gave it (may be empty)",
    "vehicle": 'the vehicle, e.g. "Peugeot 208 (2019)", else its ad reference',
    "ad_ref": "the ad's reference (may be empty)",
    "site": "the site's code (may be empty before qualification)",
    "dealer_name": "the dealer (QUALIFY_MESSAGE_DEALER_NAME)",
    "sender_name": "the operator who writes; the dealer for an automatic message",
    "call_time": 'when the dealer will call, e.g. "aujourd\'hui avant 11h15" (first-contact '
    "deadline in the call centre's business time)",
    "callback_phone": "the dealer's phone (QUALIFY_MESSAGE_CALLBACK_PHONE; may be empty)",
    "callback_link": "a booking link (QUALIFY_MESSAGE_CALLBACK_URL; may be empty)",
    "callback": "a sentence with the call-back phone and/or link (empty when neither is set)",
    "text": "the operator's own text (operator replies only)",
}
OPERATOR_ONLY = frozenset({"text"})

_PLACEHOLDER = re.compile(r"\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*(?:\|([^{}]*))?\}\}")
_BLANK_LINES = re.compile(r"\n{3,}")
_TRAILING_SPACES = re.compile(r"[ \t]+\n")


def allowed_variables(kind: TemplateKind) -> frozenset[str]:
    names = frozenset(VARIABLES)
    return names if kind == "operator_reply" else names - OPERATOR_ONLY


@dataclass(frozen=True)
class TemplateError:
    field: str  # subject, text, html
    type: str  # unknown_variable, syntax
    message: str  # names the variable, never a value


def placeholders(text: str) -> list[str]:
    return [match.group(1) for match in _PLACEHOLDER.finditer(text)]


def check(content: TemplateContent, kind: TemplateKind) -> list[TemplateError]:
    """Every unknown variable and stray brace of the template's fields."""
    allowed = allowed_variables(kind)
    errors: list[TemplateError] = []
    for field, text in (
        ("subject", content.subject),
        ("text", content.text),
        ("html", content.html),
    ):
        if text is None:
            continue
        for name in placeholders(text):
            if name not in allowed:
                hint = " (only in operator replies)" if name in OPERATOR_ONLY else ""
                errors.append(
                    TemplateError(field, "unknown_variable", f"unknown variable '{name}'{hint}")
                )
        rest = _PLACEHOLDER.sub("", text)
        if "{{" in rest or "}}" in rest:
            errors.append(
                TemplateError(field, "syntax", "'{{' or '}}' outside a {{name}} placeholder")
            )
    return errors


def render(
    text: str, values: Mapping[str, str], *, escape: Callable[[str], str] | None = None
) -> str:
    def substitute(match: re.Match[str]) -> str:
        value = values.get(match.group(1), "") or (match.group(2) or "").strip()
        return escape(value) if escape is not None else value

    return _PLACEHOLDER.sub(substitute, text)


def tidy(text: str) -> str:
    """Trailing spaces off, blank-line runs down to one, no blank start or end."""
    lines = _TRAILING_SPACES.sub("\n", text.replace("\r\n", "\n"))
    return _BLANK_LINES.sub("\n\n", lines).strip()


def _subject(text: str) -> str:
    return " ".join(text.split())[:300]  # one line: a header


@dataclass(frozen=True)
class RenderedEmail:
    subject: str
    text: str
    html: str


@dataclass(frozen=True)
class RenderedSms:
    text: str  # opt-out line included, within the segment budget
    encoding: SmsEncoding
    segments: int
    truncated: bool  # the template's text was cut to fit


def email_footer(dealer_name: str, unsubscribe_url: str | None) -> str:
    if unsubscribe_url:
        return (
            f"--\n{dealer_name}\n"
            f"Pour ne plus recevoir nos messages : {unsubscribe_url}\n"
            "(ou répondez STOP à cet e-mail)"
        )
    return f"--\n{dealer_name}\nPour ne plus recevoir nos messages, répondez STOP à cet e-mail."


def render_email(
    content: TemplateContent,
    values: Mapping[str, str],
    *,
    dealer_name: str,
    unsubscribe_url: str | None,
) -> RenderedEmail:
    footer = email_footer(dealer_name, unsubscribe_url)
    text = f"{tidy(render(content.text, values))}\n\n{footer}\n"
    if content.html is None:
        html = text_to_html(text)
    else:
        body = render(content.html, values, escape=html_lib.escape)
        footer_html = "<hr>\n" + text_to_html(footer).split("<body>\n", 1)[-1].split("\n</body>")[0]
        html = (
            body.replace("</body>", f"{footer_html}\n</body>", 1)
            if "</body>" in body
            else f"{body}\n{footer_html}\n"
        )
    subject = _subject(render(content.subject or "", values)) or dealer_name
    return RenderedEmail(subject=subject, text=text, html=html)


def render_sms(
    content: TemplateContent, values: Mapping[str, str], *, opt_out: str, max_segments: int
) -> RenderedSms:
    text = " ".join(tidy(render(content.text, values)).split())  # an SMS is one paragraph
    fitted = fit_sms(text, opt_out=opt_out, max_segments=max_segments)
    length = measure_sms(fitted)
    return RenderedSms(
        text=fitted,
        encoding=length.encoding,
        segments=length.segments,
        truncated=not fitted.startswith(text),
    )
