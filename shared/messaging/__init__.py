"""Reaching the prospect: the reusable parts of e-mail and SMS messaging.

- ``sms_text``: GSM-7 / UCS-2, segment counting, a text plus its opt-out line in N segments.
- ``lead_tokens``: signed lead tokens for Reply-To plus-addresses and Message-IDs.
- ``outgoing_email``: an ``EmailMessage`` to a prospect (text + HTML, thread, List-Unsubscribe).
- ``inbound_match``: the lead an inbound e-mail answers (verified tokens only).
- ``bounces``: reading a delivery status notification (RFC 3464).
- ``smtp_sender``: handing a message to the SMTP server (aiosmtplib), failures classified.
- ``sms``: the SMS provider interface and the OVHcloud adapter.
- ``errors``, ``settings``: what they share. See docs/messaging.md.
"""
