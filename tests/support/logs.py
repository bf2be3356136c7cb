"""The services' log lines as tests see them: structlog renders JSON lines straight to stderr
(no stdlib handler to attach to), so tests read them back from pytest's capture."""

from __future__ import annotations

import json
from typing import Any

import pytest


class CapturedLogs:
    def __init__(self, capsys: pytest.CaptureFixture[str]) -> None:
        self._capsys = capsys
        self._events: list[dict[str, Any]] = []

    @property
    def events(self) -> list[dict[str, Any]]:
        """Every JSON log event written so far in this test, in order."""
        captured = self._capsys.readouterr()
        for line in (captured.out + captured.err).splitlines():
            if not line.startswith("{"):
                continue
            try:
                event = json.loads(line)
            except ValueError:
                continue
            if isinstance(event, dict):
                self._events.append(event)
        return self._events
