"""``shared.db.prepared``: a statement compiled once for PostgreSQL's driver, its arguments
built by name with the statement's own values (literals, None included) where none is given."""

from __future__ import annotations

import pytest
from sqlalchemy import Column, Integer, MetaData, String, Table, bindparam, update
from sqlalchemy.engine import Dialect
from sqlalchemy.ext.asyncio import create_async_engine

from shared.db.prepared import Prepared

_ITEMS = Table(
    "item",
    MetaData(),
    Column("id", String, primary_key=True),
    Column("note", String, nullable=True),
    Column("count", Integer),
)


def asyncpg_dialect() -> Dialect:
    """PostgreSQL's driver dialect, without a server (an engine connects only when used)."""
    return create_async_engine("postgresql+asyncpg://nobody@127.0.0.1/none").dialect


def test_a_literal_none_is_a_constant_of_the_statement() -> None:
    statement = (
        update(_ITEMS)
        .where(_ITEMS.c.id == bindparam("item_id"))
        .values(note=None, count=_ITEMS.c.count + 1)
    )
    prepared = Prepared.compile(statement, asyncpg_dialect())
    arguments = prepared.arguments_of({"item_id": "a"})
    values = dict(zip(prepared.names, arguments, strict=True))
    assert values[next(name for name in prepared.names if name.startswith("note"))] is None
    assert "a" in arguments
    assert 1 in arguments
    assert prepared.sql.count("$") == len(prepared.names)


def test_a_required_parameter_must_be_given() -> None:
    prepared = Prepared.compile(
        update(_ITEMS).where(_ITEMS.c.id == bindparam("item_id")).values(note=bindparam("note")),
        asyncpg_dialect(),
    )
    with pytest.raises(KeyError):
        prepared.arguments_of({"item_id": "a"})
    assert prepared.arguments_of({"item_id": "a", "note": None}).count(None) == 1
