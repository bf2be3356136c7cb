"""The new text of an e-mail reply: what the prospect wrote, without the history their mail client
quoted below it, bounded for the event.

Only markers mail clients write on a line of their own are trusted: the attribution line ("Le
lun. 1 déc. 2026 à 10:15, Garage Dupont <…> a écrit :", "On … wrote:", possibly wrapped over two
lines), the separators of Outlook and Thunderbird ("-----Original Message-----", "-------- Message
d'origine --------", a line of underscores), an Outlook header block ("De :" followed by "Envoyé :"
/ "Date :" / "À :" / "Objet :") and quoted lines ("> …"). Everything from the first marker on is
history; quoted lines are dropped anywhere (answers written between quotes are kept). When that
leaves nothing (a reply that is only a forward, or bottom-posted under an unmarked quote) the whole
text is kept: a reply is never emptied by the stripping.
"""

from __future__ import annotations

import re

from shared.messaging.sms_text import is_stop_request

MAX_REPLY_CHARS = 20_000  # lead.message-received.v1's bound

_ATTRIBUTION_END = re.compile(r"(a\s+[ée]crit|wrote)\s*:\s*$", re.I)
_ATTRIBUTION_START = re.compile(r"^\s*(le|on)\s+\S", re.I)
_SEPARATOR = re.compile(
    r"^\s*(-{2,}\s*(original message|message d['\u2019]origine|message original|forwarded message"
    r"|message transf[ée]r[ée])\s*-{2,}|_{10,})\s*$",
    re.I,
)
_HEADER_FROM = re.compile(r"^\s*\**(de|from)\s*:\**\s*\S", re.I)
_HEADER_NEXT = re.compile(r"^\s*\**(envoy[ée]|sent|date|[àa]|to|objet|subject|cc)\s*:", re.I)
_QUOTED = re.compile(r"^\s*>")
# What mail clients add under a short answer (the STOP check looks past it).
_SIGNATURE = re.compile(
    r"^\s*(--\s*$|(envoy[ée]|sent)\s+(de|depuis|from)\s|(obtenir|get)\s+outlook\b)", re.I
)
_RE_PREFIX = re.compile(r"^\s*((re|r[ée]f|tr|fw|fwd|aw|wg)\s*(\[\d+\])?\s*:\s*)+", re.I)


def _history_start(lines: list[str]) -> int | None:
    """The index of the first line of quoted history, if a marker is found."""
    for index, line in enumerate(lines):
        if _SEPARATOR.match(line):
            return index
        if _ATTRIBUTION_START.match(line):
            if _ATTRIBUTION_END.search(line):
                return index
            following = lines[index + 1] if index + 1 < len(lines) else ""
            if following and _ATTRIBUTION_END.search(following) and len(line) < 300:
                return index
        if _HEADER_FROM.match(line) and any(
            _HEADER_NEXT.match(after) for after in lines[index + 1 : index + 4]
        ):
            return index
    return None


def _tidy(lines: list[str]) -> str:
    kept = [line.rstrip() for line in lines if not _QUOTED.match(line)]
    return re.sub(r"\n{3,}", "\n\n", "\n".join(kept)).strip()


def new_text(text: str) -> str:
    """The reply's own text (history stripped when marked), at most ``MAX_REPLY_CHARS``."""
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    start = _history_start(lines)
    own = _tidy(lines[:start] if start is not None else lines)
    if not own:
        own = _tidy(lines) or text.strip()
    return own[:MAX_REPLY_CHARS]


def without_signature(text: str) -> str:
    """The text above a signature delimiter or a "Sent from my phone" line."""
    lines = text.split("\n")
    for index, line in enumerate(lines):
        if index and _SIGNATURE.match(line):
            return "\n".join(lines[:index]).strip()
    return text.strip()


def asks_to_stop(subject: str | None, text: str) -> bool:
    """An unsubscribe or STOP reply: the subject of our List-Unsubscribe mailto ("unsubscribe"),
    a STOP word as the subject, or a new text that is only a STOP word (signature aside)."""
    if subject and is_stop_request(_RE_PREFIX.sub("", subject)):
        return True
    return is_stop_request(without_signature(text))
