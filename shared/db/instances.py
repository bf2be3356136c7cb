"""New ORM instances built without an attribute event per column: ``Model(**values)`` runs the
instrumented ``__set__`` of every value (~15 us for a row of twenty columns), where a new row
on a hot path (a lead, its first answer's messages) only needs its values in its state for the
insert that reads them (a flush, or a prepared statement over the state's dict)."""

from __future__ import annotations

from typing import Any, Generic, TypeVar, cast

from sqlalchemy import Table
from sqlalchemy.orm import configure_mappers
from sqlalchemy.orm.attributes import manager_of_class

T = TypeVar("T")


class QuickConstructor(Generic[T]):
    """``new(**values)``: a transient ``model`` as its constructor makes it, the values put in its
    state directly; a name that is not a column of its table is refused, as the constructor
    refuses an unknown attribute."""

    def __init__(self, model: type[T]) -> None:
        self._model = model
        self._keys = frozenset(column.key for column in cast(Table, model.__table__).columns)  # type: ignore[attr-defined]
        self._manager: Any = None

    def new(self, **values: Any) -> T:
        if not self._keys.issuperset(values):
            unknown = sorted(set(values) - self._keys)
            raise TypeError(f"not columns of {self._model.__name__}: {unknown}")
        if self._manager is None:
            # The constructor's first call configures the mappers (the attributes'
            # implementations are set up then): done once here for the same reason.
            configure_mappers()
            self._manager = manager_of_class(self._model)
        instance: T = self._manager.new_instance()
        instance.__dict__.update(values)
        return instance
