"""SMS text: GSM-7 or UCS-2, segment counting, and fitting a text plus its opt-out line.

A single SMS carries 140 bytes: 160 GSM-7 septets or 70 UCS-2 code units. A longer text is split
into parts that each lose 6 bytes to the concatenation header: 153 septets or 67 code units. A
character of the GSM-7 extension table (``€ [ ] { } ^ ~ | \\`` and form feed) takes two septets
(escape + code); a character outside both tables switches the whole text to UCS-2, where a
character outside the BMP (most emojis) takes two code units. Neither an escape sequence nor a
surrogate pair is ever split between two parts, so parts are packed greedily.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass
from typing import Literal

SmsEncoding = Literal["GSM-7", "UCS-2"]

# GSM 03.38 default alphabet (the escape code 0x1B excluded) and its extension table.
GSM7_BASIC = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
GSM7_EXTENSION = frozenset("\f^{}\\[~]|€")
_GSM7 = GSM7_BASIC | GSM7_EXTENSION

SINGLE_CAPACITY: dict[SmsEncoding, int] = {"GSM-7": 160, "UCS-2": 70}
PART_CAPACITY: dict[SmsEncoding, int] = {"GSM-7": 153, "UCS-2": 67}

DEFAULT_OPT_OUT = "STOP au 36111"


@dataclass(frozen=True)
class SmsLength:
    encoding: SmsEncoding
    units: int  # septets (GSM-7) or UTF-16 code units (UCS-2)
    segments: int  # 0 for an empty text

    @property
    def capacity(self) -> int:
        """Units available in the segments this text uses."""
        if self.segments <= 1:
            return SINGLE_CAPACITY[self.encoding]
        return PART_CAPACITY[self.encoding] * self.segments


def is_gsm7(text: str) -> bool:
    return _GSM7.issuperset(text)


def sms_encoding(text: str) -> SmsEncoding:
    return "GSM-7" if is_gsm7(text) else "UCS-2"


def _unit_sizes(text: str, encoding: SmsEncoding) -> list[int]:
    if encoding == "GSM-7":
        return [2 if char in GSM7_EXTENSION else 1 for char in text]
    return [2 if ord(char) > 0xFFFF else 1 for char in text]


def measure_sms(text: str) -> SmsLength:
    """Encoding, length in units and number of segments of ``text`` sent as one SMS."""
    encoding = sms_encoding(text)
    sizes = _unit_sizes(text, encoding)
    units = sum(sizes)
    if units == 0:
        return SmsLength(encoding, 0, 0)
    if units <= SINGLE_CAPACITY[encoding]:
        return SmsLength(encoding, units, 1)
    part = PART_CAPACITY[encoding]
    segments, used = 1, 0
    for size in sizes:  # greedy: a two-unit character never straddles two parts
        if used + size > part:
            segments += 1
            used = 0
        used += size
    return SmsLength(encoding, units, segments)


def fit_sms(
    text: str,
    *,
    opt_out: str = DEFAULT_OPT_OUT,
    max_segments: int = 1,
    separator: str = "\n",
) -> str:
    """``text`` followed by the opt-out line, in at most ``max_segments`` segments.

    When the whole does not fit, the text is cut (at a word boundary when one is near) and ends
    with an ellipsis ("..." in GSM-7, so that the cut never switches the text to UCS-2). Raises
    ``ValueError`` when even the opt-out line alone does not fit.
    """
    if max_segments < 1:
        raise ValueError("max_segments must be at least 1")
    tail = f"{separator}{opt_out}" if opt_out else ""
    whole = f"{text}{tail}"
    if measure_sms(whole).segments <= max_segments:
        return whole
    if measure_sms(opt_out).segments > max_segments:
        raise ValueError("the opt-out line alone does not fit in the allowed segments")

    def candidate(length: int) -> str:
        head = text[:length].rstrip()
        if not head:
            return opt_out
        ellipsis = "..." if is_gsm7(head) else "…"
        return f"{head}{ellipsis}{tail}"

    def fits(length: int) -> bool:
        return measure_sms(candidate(length)).segments <= max_segments

    # Adding characters never removes units nor leaves UCS-2: fits() is monotone in length.
    low, high = 0, len(text)
    while low < high:
        middle = (low + high + 1) // 2
        if fits(middle):
            low = middle
        else:
            high = middle - 1
    cut = low
    # Prefer a word boundary when one lies in the last fifth of what fits.
    boundary = text.rfind(" ", 0, cut + 1)
    if cut < len(text) and not text[cut].isspace() and boundary > cut * 4 // 5:
        cut = boundary
    return candidate(cut)


# Replies that ask to stop messages (the French operators' STOP keyword and common variants).
_STOP_WORDS = frozenset(
    {"stop", "stop sms", "arret", "arreter", "stopper", "desabonner", "desinscrire", "unsubscribe"}
)


def is_stop_request(text: str) -> bool:
    """Whether an inbound SMS asks to stop receiving messages (case, accents, punctuation aside)."""
    folded = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode().casefold()
    words = "".join(char if char.isalnum() else " " for char in folded).split()
    return " ".join(words) in _STOP_WORDS
