"""Raw RFC 822 bytes to an ``InboundEmail``: headers decoded, best text and HTML bodies, XML parts.

Robust by construction: the stdlib's compat32 parser accepts any bytes; each part is decoded with
its declared charset, ``iso-8859-1``/``latin-1``/``us-ascii`` read as ``cp1252`` (the euro sign),
unknown charsets as UTF-8 with replacement characters.

Bounded: the parser counts the parts and their nesting as it builds them and stops at the first
part beyond ``MimeLimits`` (``MimeTooComplex``), so a message of 200,000 tiny parts costs what
its first thousand cost, not seconds of CPU (each part is an object, each line is matched against
the boundaries of every open level).
"""

from __future__ import annotations

import email.header
import email.utils
import re
import unicodedata
from dataclasses import dataclass, field
from datetime import datetime
from email.message import Message
from email.parser import BytesParser
from email.policy import Policy, compat32
from html import unescape as html_unescape
from html.parser import HTMLParser

from ingest.canonical.instants import utc_instant

_CP1252_ALIASES = {"iso-8859-1", "iso8859-1", "latin-1", "latin1", "us-ascii", "ascii", "l1"}
_XML_TYPES = {"application/xml", "text/xml", "application/x-adf+xml"}
_BLOCK_TAGS = {
    "br", "p", "div", "tr", "li", "table", "h1", "h2", "h3", "h4", "h5", "h6", "ul", "ol",
    "blockquote", "hr", "section", "article", "header", "footer", "tbody", "thead",
}  # fmt: skip


@dataclass
class InboundEmail:
    message_id: str | None = None
    date: datetime | None = None
    from_addr: str | None = None
    from_name: str | None = None
    reply_to: str | None = None
    subject: str = ""
    text: str = ""  # the plain body, or the HTML body as text when there is no plain one
    html: str = ""  # the raw HTML body (entities kept), for layout markers
    html_text: str = ""  # the HTML body as text
    xml_parts: list[str] = field(default_factory=list)
    headers: dict[str, str] = field(default_factory=dict)  # lower-cased names, first value
    content_type: str = ""

    @property
    def from_domain(self) -> str:
        return (self.from_addr or "").rsplit("@", 1)[-1].lower()

    @property
    def best_text(self) -> str:
        return self.html_text or self.text


_FOLD = re.compile(r"\r?\n(?=[ \t])")
_LINE_BREAKS = re.compile(r"[\r\n]+")


def unfold(value: str) -> str:
    """RFC 5322 2.2.3: remove every CRLF (or bare LF) that precedes a space or a tab; a header
    value is one line, so any other line break left becomes a space."""
    return _LINE_BREAKS.sub(" ", _FOLD.sub("", value))


def _eight_bit(value: str) -> str:
    """A raw header holding 8-bit bytes (kept as surrogates by the parser): UTF-8, else cp1252."""
    try:
        data = value.encode("ascii", errors="surrogateescape")
    except UnicodeEncodeError:
        return value
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return data.decode("cp1252", errors="replace")


def _unencoded(chunk: bytes) -> str:
    """Text outside RFC 2047 encoded words (the stdlib hands it back as raw-unicode-escape)."""
    try:
        return chunk.decode("raw-unicode-escape")
    except UnicodeDecodeError:
        return chunk.decode("latin-1")


def decode_header(value: object) -> str:
    """A raw header value as one line of text: unfolded, 8-bit bytes and RFC 2047 words decoded."""
    if not value:
        return ""
    text = str(value)
    if text.isascii() and "=?" not in text and "\n" not in text and "\r" not in text:
        return text.strip()  # the common case: nothing to unfold or decode
    raw = unfold(_eight_bit(text))
    try:
        parts = []
        for chunk, charset in email.header.decode_header(raw):
            if isinstance(chunk, str):
                parts.append(chunk)
            elif charset is None:
                parts.append(_unencoded(chunk))
            else:
                parts.append(decode_bytes(chunk, charset))
        text = unfold("".join(parts))  # an encoded word may hold a line break too
    except Exception:
        text = raw
    return normalize_text(text).strip()


def decode_bytes(data: bytes, charset: str | None) -> str:
    name = (charset or "utf-8").strip().strip('"').lower()
    if name in _CP1252_ALIASES:
        name = "cp1252"
    try:
        return data.decode(name, errors="replace")
    except (LookupError, ValueError):
        return data.decode("utf-8", errors="replace")


def normalize_text(text: str) -> str:
    text = text.replace("\xa0", " ").replace("\u202f", " ").replace("\r\n", "\n")
    return unicodedata.normalize("NFC", text)


class _TextExtractor(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self._skip = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in ("script", "style", "head", "title"):
            self._skip += 1
        elif tag in _BLOCK_TAGS:
            self.parts.append("\n")
        elif tag == "td" or tag == "th":
            self.parts.append(" ")

    def handle_endtag(self, tag: str) -> None:
        if tag in ("script", "style", "head", "title"):
            self._skip = max(0, self._skip - 1)
        elif tag in _BLOCK_TAGS:
            self.parts.append("\n")

    def handle_data(self, data: str) -> None:
        if not self._skip:
            self.parts.append(data)


_BLANKS = re.compile(r"[ \t\r\f\v]+")
_MANY_NEWLINES = re.compile(r"\n\s*\n+")


def html_to_text(html: str) -> str:
    extractor = _TextExtractor()
    try:
        extractor.feed(html)
        extractor.close()
    except Exception:  # HTMLParser is lenient; this is a last resort
        return normalize_text(re.sub(r"<[^>]*>", " ", html))
    text = normalize_text("".join(extractor.parts))
    lines = [_BLANKS.sub(" ", line).strip() for line in text.split("\n")]
    return _MANY_NEWLINES.sub("\n", "\n".join(line for line in lines if line)).strip()


_BREAK_TAG = re.compile(r"<br\b[^>]{0,500}>", re.I)
_ANY_TAG = re.compile(r"<[^<>]{0,2000}>")


def html_fragment_text(fragment: str) -> str:
    """An inline HTML fragment (a ``<strong>`` content, an attribute value) as one line of text:
    tags dropped (``<br>`` as a space), entities decoded, NBSP as spaces, blanks collapsed."""
    text = _ANY_TAG.sub("", _BREAK_TAG.sub(" ", fragment))
    return " ".join(normalize_text(html_unescape(text)).split())


def _part_text(part: Message) -> str:
    payload = part.get_payload(decode=True)
    if not isinstance(payload, bytes):
        raw = part.get_payload()
        return raw if isinstance(raw, str) else ""
    return decode_bytes(payload, part.get_content_charset())


def _address(value: str) -> tuple[str | None, str | None]:
    name, addr = email.utils.parseaddr(value)
    addr = addr.strip().lower() if "@" in addr else ""
    return (name.strip() or None), (addr or None)


def _date(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        parsed = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    return utc_instant(parsed)


@dataclass(frozen=True)
class MimeLimits:
    """How many parts (the message itself included), how deep a nesting (a part inside a
    multipart or a forwarded ``message/*`` is one level deeper) and how many lines an e-mail
    may have (the parser's cost is per line: 15 MiB of empty lines cost seconds; a 15 MiB
    base64 attachment is about 210,000 lines)."""

    max_parts: int = 1000
    max_depth: int = 20
    max_lines: int = 500_000


class MimeTooComplex(Exception):
    """The message goes beyond ``MimeLimits``; ``detail`` says which limit (no content)."""

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


class _Budget:
    def __init__(self, limits: MimeLimits) -> None:
        self.limits = limits
        self.parts = 1  # the message itself


class _BoundedPart(Message):
    """A compat32 message that counts the parts attached under it while the parser builds the
    tree (the feed parser attaches each new part to its parent as soon as it starts it)."""

    def __init__(self, policy: Policy = compat32, *, budget: _Budget, depth: int = 0) -> None:
        super().__init__(policy)
        self._budget = budget
        self._depth = depth

    def attach(self, payload: Message | str) -> None:
        budget = self._budget
        budget.parts += 1
        if budget.parts > budget.limits.max_parts:
            raise MimeTooComplex(f"more than {budget.limits.max_parts} MIME parts")
        if self._depth + 1 > budget.limits.max_depth:
            raise MimeTooComplex(f"MIME parts nested deeper than {budget.limits.max_depth}")
        if isinstance(payload, _BoundedPart):
            payload._depth = self._depth + 1
        super().attach(payload)


def message_from_bytes(raw: bytes, limits: MimeLimits) -> Message:
    """The stdlib's ``Message`` of ``raw``, built within ``limits`` (``MimeTooComplex`` beyond)."""
    if raw.count(b"\n") > limits.max_lines:  # counted in C before any line is parsed
        raise MimeTooComplex(f"more than {limits.max_lines} lines")
    budget = _Budget(limits)

    def part(policy: Policy = compat32) -> Message:
        return _BoundedPart(policy, budget=budget)

    message: Message = BytesParser(part, policy=compat32).parsebytes(raw)
    return message


def parse_mime(raw: bytes, limits: MimeLimits = MimeLimits()) -> InboundEmail:
    """Never raises for bytes input except ``MimeTooComplex`` beyond ``limits`` and
    interpreter-level failures."""
    message = message_from_bytes(raw, limits)
    result = InboundEmail()
    for name, value in message.raw_items():  # raw values: folding and 8-bit bytes intact
        key = name.lower()
        if key not in result.headers:
            result.headers[key] = decode_header(value)
    result.content_type = message.get_content_type()
    message_id = result.headers.get("message-id", "").strip().strip("<>").strip()
    result.message_id = message_id[:190] or None
    result.date = _date(result.headers.get("date"))
    result.from_name, result.from_addr = _address(result.headers.get("from", ""))
    result.reply_to = _address(result.headers.get("reply-to", ""))[1]
    result.subject = result.headers.get("subject", "")
    plain: list[str] = []
    html: list[str] = []
    for part in message.walk():
        if part.is_multipart():
            continue
        content_type = part.get_content_type()
        filename = (part.get_filename() or "").lower()
        # str(): with 8-bit bytes in it, compat32 hands the header back as a Header object
        disposition = str(part.get("content-disposition") or "").lower()
        if content_type in _XML_TYPES or filename.endswith(".xml"):
            result.xml_parts.append(_part_text(part))
        elif content_type == "text/plain" and "attachment" not in disposition:
            plain.append(_part_text(part))
        elif content_type == "text/html" and "attachment" not in disposition:
            html.append(_part_text(part))
    result.text = normalize_text("\n".join(plain)).strip()
    result.html = "\n".join(html)
    if result.html:
        result.html_text = html_to_text(result.html)
    if not result.text:
        result.text = result.html_text
    stripped = result.text.lstrip("\ufeff \n\t")
    if not result.xml_parts and (stripped.startswith("<?xml") or stripped.startswith("<adf")):
        result.xml_parts.append(stripped)
    return result
