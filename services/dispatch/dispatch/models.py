"""Dispatch's tables: for now only the shared infrastructure tables (routing comes next)."""

from __future__ import annotations

from sqlalchemy.orm import DeclarativeBase

from shared.db import add_infra_tables, make_metadata


class Base(DeclarativeBase):
    metadata = make_metadata()


infra = add_infra_tables(Base.metadata)

metadata = Base.metadata
