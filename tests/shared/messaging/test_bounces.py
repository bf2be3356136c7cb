"""Reading delivery status notifications (RFC 3464) as Postfix and other MTAs write them."""

from __future__ import annotations

import email

from shared.messaging.bounces import parse_bounce, parse_bounce_bytes

POSTFIX_HARD = b"""\
From: Mail Delivery System <MAILER-DAEMON@vo-leads.test>
Subject: Undelivered Mail Returned to Sender
To: concession@vo-leads.test
Auto-Submitted: auto-replied
MIME-Version: 1.0
Content-Type: multipart/report; report-type=delivery-status;
\tboundary="D13605320BE.1796217829/mail.vo-leads.test"
Content-Transfer-Encoding: 8bit
Message-Id: <20261202132349.E16845320CA@mail.vo-leads.test>

This is a MIME-encapsulated message.

--D13605320BE.1796217829/mail.vo-leads.test
Content-Description: Notification
Content-Type: text/plain; charset=utf-8

I'm sorry to have to inform you that your message could not be delivered.

--D13605320BE.1796217829/mail.vo-leads.test
Content-Description: Delivery report
Content-Type: message/delivery-status

Reporting-MTA: dns; mail.vo-leads.test
X-Postfix-Queue-ID: D13605320BE
Arrival-Date: Wed,  2 Dec 2026 13:23:49 +0000 (UTC)

Final-Recipient: rfc822; nobody@vo-leads.test
Original-Recipient: rfc822;nobody@vo-leads.test
Action: failed
Status: 5.1.1
Diagnostic-Code: smtp; 550 5.1.1 <nobody@vo-leads.test> User doesn't exist:
    nobody@vo-leads.test

--D13605320BE.1796217829/mail.vo-leads.test
Content-Description: Undelivered Message
Content-Type: message/rfc822

From: concession@vo-leads.test
To: nobody@vo-leads.test
Subject: Votre demande
Message-ID: <m-k1.uabc.def@vo-leads.test>

Bonjour

--D13605320BE.1796217829/mail.vo-leads.test--
"""

DELAYED_WITH_HEADERS_ONLY = b"""\
From: postmaster@relay.example.fr
To: bounces@vo-leads.test
MIME-Version: 1.0
Content-Type: multipart/report; report-type="delivery-status"; boundary="b1"

--b1
Content-Type: text/plain

Delivery is delayed.

--b1
Content-Type: message/delivery-status

Reporting-MTA: dns; relay.example.fr

Final-Recipient: RFC822; <camille@example.fr>
Action: delayed
Status: 4.4.1 (connection timed out)
Will-Retry-Until: Thu, 3 Dec 2026 13:00:00 +0100

Final-Recipient: rfc822; other@example.fr
Action: failed
Status: 5.2.2
Diagnostic-Code: smtp; 552 5.2.2 mailbox full

--b1
Content-Type: text/rfc822-headers

From: concession@vo-leads.test
Message-ID: <m-k2.uxyz.abc@vo-leads.test>
Subject: Votre demande

--b1--
"""


def test_postfix_hard_bounce() -> None:
    bounce = parse_bounce_bytes(POSTFIX_HARD)
    assert bounce is not None
    assert bounce.original_message_id == "<m-k1.uabc.def@vo-leads.test>"
    assert bounce.reporting_mta == "mail.vo-leads.test"
    assert bounce.hard
    [recipient] = bounce.recipients
    assert recipient.recipient == "nobody@vo-leads.test"
    assert recipient.original_recipient == "nobody@vo-leads.test"
    assert (recipient.action, recipient.status, recipient.smtp_code) == ("failed", "5.1.1", 550)
    assert recipient.hard
    assert not recipient.soft
    assert bounce.failed == (recipient,)


def test_delay_notice_and_headers_only_return() -> None:
    bounce = parse_bounce(email.message_from_bytes(DELAYED_WITH_HEADERS_ONLY))
    assert bounce is not None
    assert bounce.original_message_id == "<m-k2.uxyz.abc@vo-leads.test>"
    delayed, failed = bounce.recipients
    assert (delayed.recipient, delayed.action, delayed.status) == (
        "camille@example.fr",
        "delayed",
        "4.4.1",
    )
    assert delayed.soft
    assert not delayed.hard
    assert delayed.smtp_code is None
    assert failed.hard
    assert failed.status == "5.2.2"
    assert failed.smtp_code == 552
    assert bounce.hard


def test_a_soft_failure_is_not_hard() -> None:
    raw = DELAYED_WITH_HEADERS_ONLY.replace(b"Status: 5.2.2", b"Status: 4.2.2")
    bounce = parse_bounce_bytes(raw)
    assert bounce is not None
    assert not bounce.hard
    assert all(recipient.soft for recipient in bounce.recipients)


def test_what_is_not_a_dsn_gives_none() -> None:
    assert parse_bounce_bytes(b"From: a@b.test\r\nSubject: hello\r\n\r\nBonjour\r\n") is None
    other_report = POSTFIX_HARD.replace(b"report-type=delivery-status", b"report-type=disposition")
    assert parse_bounce_bytes(other_report) is None
    unreadable = POSTFIX_HARD.replace(b"Status: 5.1.1", b"Status: bad")
    assert parse_bounce_bytes(unreadable) is None
