"""The base of every repository: SQL lives in repository classes built on the caller's session
(they never commit; the unit of work does)."""

from __future__ import annotations

from typing import Self

from sqlalchemy.ext.asyncio import AsyncSession


class Repository:
    __slots__ = ("session",)

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    @classmethod
    def from_session(cls, session: AsyncSession) -> Self:
        return cls(session)
