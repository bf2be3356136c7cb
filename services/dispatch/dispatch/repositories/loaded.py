"""ORM instances made from values a statement read as driver rows (``shared.db.prepared``), as
if the session had loaded them: a hot read takes its rows without SQLAlchemy's ORM loading and
makes only the instances its caller uses.

``Columns`` reads a model's columns out of a driver row (each value through its type's result
processor, as a compiled execution's result would), ``loaded`` makes the instance: the
session's own one when it holds it (its expired attributes then filled from the values, as a
load does), else a new one, persistent and clean in the session (its later changes are flushed
as UPDATEs)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from sqlalchemy import ColumnElement, inspect
from sqlalchemy.engine import Dialect
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import make_transient_to_detached
from sqlalchemy.orm.attributes import set_committed_value
from sqlalchemy.orm.util import identity_key

T = TypeVar("T")


class Columns:
    """A model's column attributes read from consecutive values of a row, starting at
    ``start``: their keys, and each one's result processor for ``dialect`` (None: as read)."""

    def __init__(
        self,
        model: type[Any],
        columns: Sequence[ColumnElement[Any]],
        start: int,
        dialect: Dialect,
    ) -> None:
        mapper = inspect(model)
        self.keys = tuple(prop.key for prop in mapper.column_attrs)
        self.start = start
        self.end = start + len(self.keys)
        self.pk = self.keys.index(mapper.primary_key[0].key)
        processors: list[Callable[[Any], Any] | None] = []
        for column in columns:
            processors.append(column.type.dialect_impl(dialect).result_processor(dialect, None))
        self.processors = tuple(processors)

    def values(self, row: Sequence[Any]) -> dict[str, Any] | None:
        """The model's values in ``row`` (None: no row of the model, its key is NULL)."""
        raw = row[self.start : self.end]
        if raw[self.pk] is None:
            return None
        return {
            key: value if processor is None or value is None else processor(value)
            for key, value, processor in zip(self.keys, raw, self.processors, strict=True)
        }


def loaded(session: AsyncSession, model: type[T], values: dict[str, Any]) -> T:
    """The instance of ``model`` with these values (every column attribute) in ``session``."""
    mapper = inspect(model)
    key = identity_key(model, values[mapper.primary_key[0].key])
    known: Any = session.identity_map.get(key)
    if known is not None and isinstance(known, model):
        expired = inspect(known).expired_attributes
        for name in expired & values.keys():
            set_committed_value(known, name, values[name])
        return known
    instance: Any = mapper.class_manager.new_instance()
    instance.__dict__.update(values)
    make_transient_to_detached(instance)
    session.add(instance)
    return instance  # type: ignore[no-any-return]
