"""Messages to and from the prospect before a seller has the lead: the automatic first answer,
operators' messages, the sender (an outbox of messages handed to SMTP and the SMS provider),
delivery receipts, replies and bounces from ingest, the conversation. docs/messaging.md."""
