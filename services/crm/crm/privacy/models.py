"""Erasure requests and per-service progress: the audit trail (ids, hashes, counts, times)."""

from __future__ import annotations

from sqlalchemy import JSON, Boolean, Column, ForeignKey, Integer, MetaData, String, Table

from shared.db.types import UtcDateTime


def erasure_tables(metadata: MetaData) -> tuple[Table, Table, Table, Table]:
    request = Table(
        "erasure_request",
        metadata,
        Column("id", String(36), primary_key=True),
        # One request per client: asking again answers the same request (idempotent).
        Column("client_id", String(36), nullable=False, unique=True),
        Column("reason", String(32), nullable=False),
        Column("requested_by", String(36), nullable=True),
        Column("requested_at", UtcDateTime(), nullable=False),
        Column("due_at", UtcDateTime(), nullable=False),
        Column("completed_at", UtcDateTime(), nullable=True),
        Column("lead_ids", JSON, nullable=False),
        Column("contact_hashes", JSON, nullable=False),
    )
    progress = Table(
        "erasure_progress",
        metadata,
        Column(
            "request_id",
            String(36),
            ForeignKey("erasure_request.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        Column("service", String(32), primary_key=True),
        Column("completed_at", UtcDateTime(), nullable=False),
        Column("erased", JSON, nullable=False),
        Column("rows_total", Integer, nullable=False),
    )
    # Evidence of each retention run (CNIL: prospects' data 3 years after their last contact).
    retention_run = Table(
        "retention_run",
        metadata,
        Column("id", String(36), primary_key=True),
        Column("started_at", UtcDateTime(), nullable=False, index=True),
        Column("finished_at", UtcDateTime(), nullable=True),
        Column("dry_run", Boolean, nullable=False),
        Column("trigger", String(16), nullable=False),
        Column("cutoff", UtcDateTime(), nullable=False),
        Column("clients_matched", Integer, nullable=False),
        Column("erasures_requested", Integer, nullable=False),
    )
    # Do-not-contact list (Art. 21): keyed hashes only, never the phone or e-mail itself.
    objection = Table(
        "contact_objection",
        metadata,
        Column("contact_hash", String(64), primary_key=True),
        Column("kind", String(8), nullable=False),
        Column("reason", String(32), nullable=False),
        Column("recorded_at", UtcDateTime(), nullable=False),
        Column("recorded_by", String(36), nullable=True),
    )
    return request, progress, retention_run, objection


def export_tables(metadata: MetaData) -> tuple[Table, Table]:
    """Access/portability exports (Art. 15/20). The parts hold personal data: erased with the
    client, and purged by the daily retention job after EXPORT_KEPT_DAYS."""
    request = Table(
        "export_request",
        metadata,
        Column("id", String(36), primary_key=True),
        Column("client_id", String(36), nullable=False, index=True),
        Column("requested_by", String(36), nullable=True),
        Column("requested_at", UtcDateTime(), nullable=False),
        Column("completed_at", UtcDateTime(), nullable=True),
        Column("lead_ids", JSON, nullable=False),
    )
    part = Table(
        "export_part",
        metadata,
        Column(
            "request_id",
            String(36),
            ForeignKey("export_request.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        Column("service", String(32), primary_key=True),
        Column("received_at", UtcDateTime(), nullable=False),
        Column("data", JSON, nullable=False),
    )
    return request, part
