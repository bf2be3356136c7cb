"""Statements of a hot path compiled once to the driver's SQL, executed with their arguments
built positionally: e.g. dispatch's offer of each lead (75 parameters) skips SQLAlchemy's
per-execution work (compiled-cache look-up, building the parameters dict, the ORM session's
execution layer) and keeps the rest: the session's connection and transaction, its statement
events and its error translation (``sqlalchemy.exc``).

A ``Prepared`` statement is compiled for one dialect; its arguments are the statement's bound
parameters in the order the driver's SQL numbers them, each passed through its type's bind
processor (the same conversions a compiled execution applies)."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy.engine import CursorResult, Dialect
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession
from sqlalchemy.orm import Session
from sqlalchemy.sql import ClauseElement
from sqlalchemy.sql.compiler import SQLCompiler

Processor = Callable[[Any], Any]


@dataclass(frozen=True)
class Prepared:
    """A statement compiled for ``dialect``: its SQL, its parameters' names in the order the SQL
    numbers them, and their bind processors (None: passed as they are)."""

    sql: str
    names: tuple[str, ...]
    processors: tuple[Processor | None, ...]
    # The values the statement holds itself (a literal's anonymous parameter: ``+ 1``).
    constants: Mapping[str, Any]

    @classmethod
    def compile(cls, statement: ClauseElement, dialect: Dialect) -> Prepared:
        compiled = statement.compile(dialect=dialect)
        if not isinstance(compiled, SQLCompiler):
            raise TypeError("only SQL statements are prepared")
        # What the positional path below does not do: expanding IN lists, literal rendering,
        # escaped names; such a statement is not prepared this way.
        if (
            not dialect.positional
            or compiled.positiontup is None
            or compiled.literal_execute_params
            or compiled.post_compile_params
            or compiled.escaped_bind_names
        ):
            raise ValueError("only statements of plain positional parameters are prepared")
        names = tuple(compiled.positiontup)
        processors: Mapping[str, Any] = compiled._bind_processors  # the execution's own
        # A literal None (``.values(column=None)``) is a constant too: the statement's own NULL.
        constants = {
            name: bind.effective_value
            for name, bind in ((name, compiled.binds[name]) for name in names)
            if not bind.required and bind.callable is None
        }
        return cls(compiled.string, names, tuple(processors.get(name) for name in names), constants)

    def arguments(self, values: Sequence[Any]) -> tuple[Any, ...]:
        """The driver's arguments from ``values`` (one per name, in ``names``'s order)."""
        return tuple(
            value if processor is None else processor(value)
            for processor, value in zip(self.processors, values, strict=True)
        )

    def arguments_of(self, params: Mapping[str, Any]) -> tuple[Any, ...]:
        """The driver's arguments from ``params`` by name (the statement's own constants
        where ``params`` has none)."""
        constants = self.constants
        return self.arguments(
            [params[name] if name in params else constants[name] for name in self.names]
        )

    async def execute(
        self, on: AsyncSession | AsyncConnection, arguments: tuple[Any, ...]
    ) -> CursorResult[*tuple[Any, ...]]:
        """Run it on a session's connection (in its transaction, without a flush), or on a
        connection as it is (e.g. ``shared.db.session.autocommit_connection``'s)."""
        if isinstance(on, AsyncSession):
            # One hop into SQLAlchemy's greenlet for the connection and the statement, where
            # ``connection()`` then ``exec_driver_sql`` make two (~50 us per statement).
            return await on.run_sync(_execute, self.sql, arguments)
        return await on.exec_driver_sql(self.sql, arguments)


def _execute(
    session: Session, sql: str, arguments: tuple[Any, ...]
) -> CursorResult[*tuple[Any, ...]]:
    """``sql`` on the session's connection, in its transaction (rows are buffered by the driver:
    the result is read back in asyncio)."""
    return session.connection().exec_driver_sql(sql, arguments)
