"""The worker and the commands run on uvloop, as uvicorn runs the APIs."""

from __future__ import annotations

import asyncio
import inspect

import uvloop

from shared import cli, event_loop


async def _loop_type() -> type:
    return type(asyncio.get_running_loop())


def test_run_uses_uvloop() -> None:
    assert event_loop.loop_name() == "uvloop"
    assert event_loop.run(_loop_type()) is uvloop.Loop


def test_the_cli_runs_its_coroutines_through_it() -> None:
    source = inspect.getsource(cli)
    assert "asyncio.run(" not in source
    assert source.count("event_loop.run(") == 2  # the worker and create-token
