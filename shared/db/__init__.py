"""Database helpers: engine, session scope, infrastructure tables, migrations."""

from shared.db.base import NAMING_CONVENTION, make_metadata
from shared.db.engine import create_engine, is_postgres
from shared.db.infra import InfraTables, add_infra_tables
from shared.db.session import SessionFactory, make_session_factory, session_scope

__all__ = [
    "NAMING_CONVENTION",
    "InfraTables",
    "SessionFactory",
    "add_infra_tables",
    "create_engine",
    "is_postgres",
    "make_metadata",
    "make_session_factory",
    "session_scope",
]
