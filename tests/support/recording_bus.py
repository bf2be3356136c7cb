"""Buses for outbox relay tests: one that records what it is given (and can refuse like a broker
outage), and one that can also hold the publisher inside ``publish_many`` until released."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from shared.bus.protocol import BusUnavailable
from shared.events.envelope import Headers

Published = tuple[str, bytes | None, bytes, Headers]


class RecordingBus:
    """Stores what it is given; refuses the next ``refuse`` calls as a broker outage would."""

    def __init__(self, refuse: int = 0) -> None:
        self.published: list[Published] = []
        self.refuse = refuse

    async def publish_many(self, records: Sequence[Published]) -> None:
        if self.refuse:
            self.refuse -= 1
            raise BusUnavailable("broker down")
        self.published.extend(records)

    def _header(self, name: str) -> list[str]:
        return [dict(headers)[name].decode() for *_, headers in self.published]

    def subjects(self) -> list[str]:
        return self._header("ce_subject")

    def types(self) -> list[str]:
        return self._header("ce_type")


class HeldBus(RecordingBus):
    """Holds the publisher inside ``publish_many`` while ``hold`` is set, until released."""

    def __init__(self) -> None:
        super().__init__()
        self.hold = False
        self.entered = asyncio.Event()
        self.release = asyncio.Event()

    async def publish_many(self, records: Sequence[Published]) -> None:
        if self.hold:
            self.entered.set()
            await self.release.wait()
        await super().publish_many(records)
