"""Hostile e-mails for ``POST /v1/sources/email``: the real fixtures of tests/ingest/fixtures/email
mutated by Hypothesis (bytes flipped, cut, headers doubled or blown up, charsets and transfer
encodings lied about, NUL and control bytes, UTF-16), and built extremes (thousands of parts,
deep nesting, a huge header, broken base64)."""

from __future__ import annotations

from pathlib import Path

from hypothesis import strategies as st

FIXTURES = Path(__file__).resolve().parents[1] / "ingest" / "fixtures" / "email"


def fixture_messages() -> list[bytes]:
    return [path.read_bytes() for path in sorted(FIXTURES.glob("*.eml"))]


def _split(message: bytes) -> tuple[bytes, bytes]:
    for separator in (b"\r\n\r\n", b"\n\n"):
        head, found, body = message.partition(separator)
        if found:
            return head, body
    return message, b""


@st.composite
def mutated_messages(draw: st.DrawFn) -> bytes:
    """A real e-mail with one to four mutations."""
    message = draw(st.sampled_from(fixture_messages()))
    for _ in range(draw(st.integers(1, 4))):
        message = draw(_mutation(message))
    return message


def _mutation(message: bytes) -> st.SearchStrategy[bytes]:
    head, body = _split(message)
    size = max(len(message), 1)
    return st.one_of(
        # Flip a few bytes anywhere (headers included).
        st.lists(
            st.tuples(st.integers(0, size - 1), st.integers(0, 255)), min_size=1, max_size=8
        ).map(lambda flips: _flip(message, flips)),
        # Cut it short: inside a header, a boundary, an encoded word.
        st.integers(0, size).map(lambda end: message[:end]),
        # Insert bytes the parser must survive: NUL, controls, invalid UTF-8, a BOM.
        st.tuples(
            st.integers(0, size),
            st.sampled_from(
                [
                    b"\x00",
                    b"\x00" * 64,
                    b"\x1b[2J",
                    b"\xff\xfe",
                    b"\xc3\x28",
                    b"\xed\xa0\x80",
                    b"\xef\xbb\xbf",
                    b"\r",
                    b"\n\n",
                    b"=?utf-8?B?AAAA?=",
                    b"=?x-unknown?Q?=FF?=",
                ]
            ),
        ).map(lambda at: message[: at[0]] + at[1] + message[at[0] :]),
        # Lie about the charset or the transfer encoding of the whole message.
        st.sampled_from(
            [
                b"Content-Type: text/plain; charset=x-does-not-exist",
                b"Content-Type: text/plain; charset=utf-16",
                b"Content-Type: text/html; charset=utf-7",
                b"Content-Transfer-Encoding: base64",
                b"Content-Transfer-Encoding: quoted-printable",
                b"Content-Type: multipart/mixed; boundary=",
                b"Content-Type: multipart/mixed",
                b"Content-Type: message/rfc822",
                b"Date: Fri, 31 Dec 9999 23:59:59 -1400",
                b"Date: Mon, 01 Jan 0001 00:00:00 +1400",
                b"From: =?utf-8?q?=00=01?= <\x00@example.org>",
                b"Subject: " + b"=?utf-8?B?" + b"QUFB" * 2000 + b"?=",
            ]
        ).map(lambda header: header + b"\r\n" + message),
        # Every header twice, or the body alone.
        st.just(head + b"\r\n" + head + b"\r\n\r\n" + body),
        st.just(body or b"x"),
        # The body re-encoded as UTF-16 (with its BOM), headers unchanged.
        st.just(head + b"\r\n\r\n" + body.decode("latin-1").encode("utf-16")),
    )


def _flip(message: bytes, flips: list[tuple[int, int]]) -> bytes:
    mutable = bytearray(message)
    for index, value in flips:
        if index < len(mutable):  # an earlier cut may have left it shorter
            mutable[index] = value
    return bytes(mutable)


HEAD = (
    b"From: Prospect <prospect@example.org>\r\nTo: leads@example.com\r\n"
    b"Subject: Demande\r\nMessage-ID: <fuzz@example.org>\r\nMIME-Version: 1.0\r\n"
)


def many_parts(count: int) -> bytes:
    parts = b"".join(
        b"--b\r\nContent-Type: text/plain\r\n\r\nTel 06 12 34 56 78\r\n" for _ in range(count)
    )
    return HEAD + b"Content-Type: multipart/mixed; boundary=b\r\n\r\n" + parts + b"--b--\r\n"


def deep_nesting(depth: int) -> bytes:
    opening = b"".join(
        b"--b%d\r\nContent-Type: multipart/mixed; boundary=b%d\r\n\r\n" % (level, level + 1)
        for level in range(depth)
    )
    closing = b"".join(b"--b%d--\r\n" % level for level in reversed(range(depth + 1)))
    return (
        HEAD
        + b"Content-Type: multipart/mixed; boundary=b0\r\n\r\n"
        + opening
        + b"--b%d\r\nContent-Type: text/plain\r\n\r\nBonjour\r\n" % depth
        + closing
    )


def nested_messages(depth: int) -> bytes:
    """``message/rfc822`` inside ``message/rfc822``… ``depth`` times."""
    message = HEAD + b"Content-Type: text/plain\r\n\r\nBonjour\r\n"
    for _ in range(depth):
        message = HEAD + b"Content-Type: message/rfc822\r\n\r\n" + message
    return message


def extremes() -> dict[str, bytes]:
    """Built messages that cost a careless parser dearly, each under the 15 MiB limit."""
    return {
        "5,000 parts": many_parts(5_000),
        "50,000 parts": many_parts(50_000),
        "multipart nested 200 deep": deep_nesting(200),
        "multipart nested 2,000 deep": deep_nesting(2_000),
        "message/rfc822 nested 500 deep": nested_messages(500),
        "a 2 MB header line": HEAD + b"X-Long: " + b"a" * 2_000_000 + b"\r\n\r\nBonjour\r\n",
        "100,000 headers": HEAD + b"X-H: v\r\n" * 100_000 + b"\r\nBonjour\r\n",
        "broken base64": HEAD
        + b"Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: base64\r\n\r\n"
        + b"!!!!====****" * 1000,
        "a 10 MB body": HEAD + b"Content-Type: text/plain\r\n\r\n" + b"0612345678 " * 950_000,
        "only NUL bytes": b"\x00" * 100_000,
        "UTF-16 with BOM": "From: a@b.c\r\n\r\nBonjour 06 12 34 56 78".encode("utf-16"),
        "no header, binary": bytes(range(256)) * 100,
    }
