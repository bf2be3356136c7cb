"""The worker and the commands run on uvloop, as uvicorn runs the APIs."""

from __future__ import annotations

import asyncio
from types import CoroutineType
from typing import Any

import pytest
import uvloop

from ingest.bootstrap import SERVICE as INGEST
from shared import cli, event_loop


async def _loop_type() -> type:
    return type(asyncio.get_running_loop())


def test_run_uses_uvloop() -> None:
    assert event_loop.run(_loop_type()) is uvloop.Loop


@pytest.mark.parametrize(
    ("argv", "coroutine"),
    [
        (["worker"], "run_forever"),
        (["create-token", "--name", "t", "--roles", "operator"], "_store"),
    ],
)
def test_the_cli_runs_the_worker_and_commands_through_it(
    monkeypatch: pytest.MonkeyPatch, argv: list[str], coroutine: str
) -> None:
    ran: list[str] = []

    def record(main: CoroutineType[Any, Any, Any]) -> None:
        ran.append(main.cr_code.co_name)
        main.close()  # not run: only which loop runner the CLI hands it to matters here

    monkeypatch.setattr(event_loop, "run", record)
    monkeypatch.setattr(cli, "freeze_startup_heap", lambda: None)  # no gc.freeze in the tests
    assert INGEST.main(argv) == 0
    assert ran == [coroutine]
