"""Tables every service has beside its own: outbox, processed events, dead letters, API tokens,
and the copy of the people directory the tokens and sign-ins are checked against.

They are Core tables added to each service's own MetaData, so each service's Alembic history
creates them in its own database.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
)

from shared.db.types import UtcDateTime

# BIGINT on PostgreSQL, INTEGER (rowid alias, autoincrement) on SQLite.
BigIntId = BigInteger().with_variant(Integer(), "sqlite")


@dataclass(frozen=True)
class InfraTables:
    outbox_event: Table
    processed_event: Table
    dead_letter: Table
    api_token: Table
    erased_subject: Table
    access_person: Table
    access_revision: Table


def add_infra_tables(metadata: MetaData) -> InfraTables:
    outbox_event = Table(
        "outbox_event",
        metadata,
        Column("id", BigIntId, primary_key=True, autoincrement=True),
        Column("event_id", String(64), nullable=False, unique=True),
        Column("event_type", String(128), nullable=False),
        Column("topic", String(255), nullable=False),
        Column("key", LargeBinary, nullable=True),
        Column("value", LargeBinary, nullable=False),
        Column("headers", JSON, nullable=False),
        Column("subject", String(64), nullable=True, index=True),
        Column("created_at", UtcDateTime(), nullable=False),
        Column("attempts", Integer, nullable=False, default=0),
        Column("last_error", Text, nullable=True),
        # SQLite: never hand out an id again (a plain rowid reuses the largest after a delete,
        # and a relay may still hold the deleted row). PostgreSQL sequences never reuse one.
        sqlite_autoincrement=True,
    )
    processed_event = Table(
        "processed_event",
        metadata,
        Column("consumer", String(128), primary_key=True),
        Column("event_id", String(64), primary_key=True),
        Column("event_type", String(128), nullable=False),
        Column("processed_at", UtcDateTime(), nullable=False),
    )
    # What this service sent to a DLQ: ids and the error only, the payload stays on the topic.
    dead_letter = Table(
        "dead_letter",
        metadata,
        Column("id", BigIntId, primary_key=True, autoincrement=True),
        Column("consumer", String(128), nullable=False),
        Column("topic", String(255), nullable=False),
        Column("partition", Integer, nullable=False),
        Column("offset", BigInteger, nullable=False),
        Column("event_id", String(64), nullable=True),
        Column("event_type", String(128), nullable=True),
        Column("error", Text, nullable=False),
        Column("attempts", Integer, nullable=False),
        Column("created_at", UtcDateTime(), nullable=False),
    )
    api_token = Table(
        "api_token",
        metadata,
        Column("id", String(36), primary_key=True),
        Column("name", String(120), nullable=False),
        Column("token_hash", String(64), nullable=False, unique=True),
        Column("roles", String(255), nullable=False),
        Column("created_at", UtcDateTime(), nullable=False),
        Column("revoked_at", UtcDateTime(), nullable=True),
        # A person's token (dispatch's people directory): its name, roles and sites are the
        # person's (``access_person``); None: a token of nobody (machines, ``make token``).
        Column("person_id", String(36), nullable=True, index=True),
        Column("expires_at", UtcDateTime(), nullable=True),
    )
    # Leads erased here: their late events (another topic may lag) are skipped, not re-stored.
    erased_subject = Table(
        "erased_subject",
        metadata,
        Column("subject", String(64), primary_key=True),
        Column("erased_at", UtcDateTime(), nullable=False),
    )
    # The people of dispatch's directory as this service knows them (``shared.access`` applies
    # their events): the authority on a person token's rights and on a signed-in person's.
    # A person's name is staff data: never logged; prospects' erasure does not touch it.
    access_person = Table(
        "access_person",
        metadata,
        Column("id", String(36), primary_key=True),
        Column("name", String(120), nullable=False),
        Column("roles", String(255), nullable=False),
        Column("sites", JSON, nullable=True),  # null: not limited to sites
        Column("active", Boolean, nullable=False),
        # uuid5 of the single sign-on identity (issuer, subject): neither is kept here.
        Column("sso_key", String(36), nullable=True, index=True),
        # The directory's version of the record: an older one arriving late changes nothing.
        Column("version", Integer, nullable=False),
        Column("updated_at", UtcDateTime(), nullable=False),
    )
    # One row whose counter moves (database triggers) whenever ``api_token`` or
    # ``access_person`` changes: what an API process's token cache checks (``shared.access``).
    access_revision = Table(
        "access_revision",
        metadata,
        Column("id", Integer, primary_key=True, autoincrement=False),
        Column("revision", BigInteger, nullable=False),
    )
    return InfraTables(
        outbox_event,
        processed_event,
        dead_letter,
        api_token,
        erased_subject,
        access_person,
        access_revision,
    )
