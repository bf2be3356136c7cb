"""The wire form of an outgoing e-mail, written directly: 7-bit, CRLF, lines of at most 78
characters where a space allows it and never more than 998 (RFC 5322 2.1.1).

- A header value that is printable ASCII goes as it is, folded only before a space (unfolding
  gives it back exactly); a token is never cut, so a long Message-ID stays on one line.
- Any other value (accents, controls, or a text that looks like an encoded word) becomes RFC 2047
  ``Q`` encoded words of at most 75 characters, a character never split across two words.
- A display name: quoted when it holds specials, encoded words when it is not plain ASCII.
- Bodies: UTF-8 quoted-printable (``binascii.b2a_qp``: lines of at most 76 characters), each
  line break a CRLF and a final one added, like ``EmailMessage.set_content``.

Building an ``EmailMessage`` under ``policy.SMTP`` runs every header through the header parser
and the refolder (~2.4 ms per message); this writes the same message in a tenth of that.
"""

from __future__ import annotations

import binascii
import re
import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from email.headerregistry import Address

CRLF = "\r\n"
MAX_LINE = 78  # RFC 5322 SHOULD
MAX_WIRE_LINE = 998  # RFC 5322 MUST
MAX_ENCODED_WORD = 75  # RFC 2047
_EW_PREFIX = "=?utf-8?q?"
_EW_OVERHEAD = len(_EW_PREFIX) + len("?=")
# RFC 2047 5(3): the characters an encoded word may hold as themselves, even in a phrase.
_Q_LITERAL = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789!*+-/")
# Not sent as it is: anything but printable ASCII and tab, or "=?" (read as an encoded word).
_NEEDS_ENCODING = re.compile(r"[^\t\x20-\x7e]|=\?")
# A display name sent bare: atoms separated by single spaces; any other is quoted.
_ATOMS = re.compile(r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(?: [A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*")
_PLAIN_ADDR_SPEC = re.compile(r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~.-]+@[A-Za-z0-9.-]+")


@dataclass(frozen=True)
class OutgoingEmail:
    """A message ready for SMTP: its bytes and what the envelope needs."""

    data: bytes  # the whole message, CRLF line ends, 7-bit
    message_id: str
    sender: str  # From's addr-spec (the envelope sender unless told otherwise)
    recipients: tuple[str, ...]  # To's addr-specs


def _q_encode(char: str) -> str:
    if char in _Q_LITERAL:
        return char
    if char == " ":
        return "_"
    return "".join(f"={byte:02X}" for byte in char.encode("utf-8"))


def encoded_words(text: str, *, first_room: int = MAX_ENCODED_WORD) -> list[str]:
    """``text`` as RFC 2047 Q encoded words; the first one at most ``first_room`` characters
    long (room left on the header's first line), the others at most 75."""
    words: list[str] = []
    room = max(min(first_room, MAX_ENCODED_WORD), _EW_OVERHEAD + 12) - _EW_OVERHEAD
    current: list[str] = []
    size = 0
    for char in text:
        encoded = _q_encode(char)
        if current and size + len(encoded) > room:
            words.append(_EW_PREFIX + "".join(current) + "?=")
            current, size, room = [], 0, MAX_ENCODED_WORD - _EW_OVERHEAD
        current.append(encoded)
        size += len(encoded)
    words.append(_EW_PREFIX + "".join(current) + "?=")
    return words


def _check(value: str) -> None:
    if "\r" in value or "\n" in value:
        raise ValueError("Header values may not contain linefeed or carriage return characters")


def _fold(name: str, value: str) -> list[str]:
    """``name: value`` cut before spaces into lines of at most 78 characters where possible;
    a continuation line always starts with the space it was cut before and holds more."""
    line = f"{name}: {value}"
    if len(line) <= MAX_LINE:
        return [line]
    lines: list[str] = []
    words = value.split(" ")
    current = f"{name}: {words[0]}"
    for word in words[1:]:
        if word and len(current) + 1 + len(word) > MAX_LINE:
            lines.append(current)
            current = " " + word
        else:
            current += " " + word
    lines.append(current)
    return lines


def text_header(name: str, value: str) -> str:
    """One header line (folded, CRLF-terminated) for a text or structured ASCII value; encoded
    words when the value is not plain ASCII or a line would pass 998 characters."""
    _check(value)
    if not _NEEDS_ENCODING.search(value):
        lines = _fold(name, value)
        if all(len(line) <= MAX_WIRE_LINE for line in lines):
            return CRLF.join(lines) + CRLF
    words = encoded_words(value, first_room=MAX_LINE - len(name) - 2)
    return f"{name}: " + (CRLF + " ").join(words) + CRLF


def _addr_spec(address: str) -> str:
    if _PLAIN_ADDR_SPEC.fullmatch(address):
        return address
    quoted = Address(addr_spec=address).addr_spec  # quotes a local part that needs it
    _check(quoted)
    if not quoted.isascii() or "<" in quoted or ">" in quoted:
        raise ValueError("an e-mail address must be ASCII here (no SMTPUTF8)")
    return quoted


def _phrase(display_name: str) -> str:
    if _ATOMS.fullmatch(display_name):
        return display_name
    return '"' + display_name.replace("\\", "\\\\").replace('"', '\\"') + '"'


def address_header(name: str, display_name: str, address: str) -> str:
    """``name: display name <addr-spec>``, the name bare, quoted or encoded as it needs (blanks
    around it dropped: they mean nothing in a phrase)."""
    _check(display_name)
    addr_spec = _addr_spec(address)
    display_name = display_name.strip(" \t")
    if not display_name:
        return CRLF.join(_fold(name, addr_spec)) + CRLF
    if not _NEEDS_ENCODING.search(display_name):
        lines = _fold(name, f"{_phrase(display_name)} <{addr_spec}>")
        if all(len(line) <= MAX_WIRE_LINE for line in lines):
            return CRLF.join(lines) + CRLF
    lines = encoded_words(display_name, first_room=MAX_LINE - len(name) - 2)
    lines[0] = f"{name}: {lines[0]}"
    tail = f"<{addr_spec}>"
    if len(lines[-1]) + 1 + len(tail) > MAX_LINE:
        lines.append(tail)
    else:
        lines[-1] += " " + tail
    return (CRLF + " ").join(lines) + CRLF


def quoted_printable(text: str) -> bytes:
    """``text`` as UTF-8 quoted-printable lines joined by CRLF, ending with one."""
    lines = text.encode("utf-8").splitlines()
    return binascii.b2a_qp(b"\r\n".join(lines) + b"\r\n", istext=True)


def _part(subtype: str, text: str) -> bytes:
    head = (
        f'Content-Type: text/{subtype}; charset="utf-8"{CRLF}'
        f"Content-Transfer-Encoding: quoted-printable{CRLF}{CRLF}"
    )
    return head.encode("ascii") + quoted_printable(text)


def wire_email(header_lines: Iterable[str], *, text: str, html: str) -> bytes:
    """The message: the given header lines, then ``multipart/alternative`` of ``text`` and
    ``html``. The boundary starts with ``=_``, which quoted-printable never writes."""
    boundary = "=_" + secrets.token_hex(16)
    head = "".join(header_lines) + (
        f"MIME-Version: 1.0{CRLF}"
        f'Content-Type: multipart/alternative;{CRLF} boundary="{boundary}"{CRLF}{CRLF}'
    )
    delimiter = f"{CRLF}--{boundary}{CRLF}".encode("ascii")
    return b"".join(
        (
            head.encode("ascii"),
            f"--{boundary}{CRLF}".encode("ascii"),
            _part("plain", text),
            delimiter,
            _part("html", html),
            f"{CRLF}--{boundary}--{CRLF}".encode("ascii"),
        )
    )
