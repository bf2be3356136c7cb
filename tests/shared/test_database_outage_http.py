"""PostgreSQL stops while requests are in flight (issue 11, item 8): the requests whose connection
dies under them, like those arriving while it is down, get a 503 problem with ``Retry-After``,
never a 500; once it is back, the service answers again by itself."""

from __future__ import annotations

import asyncio
import os
import subprocess
from pathlib import Path

import httpx
import pytest
from fastapi import APIRouter
from sqlalchemy import text

from shared.api import SessionDep
from tests.support.harness import eventually
from tests.support.probe_app import probe_client, probe_settings

ROOT = Path(__file__).resolve().parents[2]

router = APIRouter()


@router.get("/slow")
async def slow(session: SessionDep) -> dict[str, int]:
    await session.execute(text("SELECT pg_sleep(5)"))
    return {"slept": 5}


@router.get("/quick")
async def quick(session: SessionDep) -> dict[str, int]:
    return {"one": int((await session.execute(text("SELECT 1"))).scalar_one())}


def infra(*args: str) -> None:
    completed = subprocess.run(
        ["bash", str(ROOT / "scripts" / "infra.sh"), *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    assert completed.returncode == 0, completed.stdout + completed.stderr


def assert_unavailable(response: httpx.Response) -> None:
    assert response.status_code == 503, (response.status_code, response.text)
    assert response.headers["content-type"] == "application/problem+json"
    assert response.headers["retry-after"] == "5"


@pytest.mark.postgres
@pytest.mark.broker_restart
async def test_a_postgres_stop_answers_503_to_requests_in_flight_and_after(
    postgres_url: str, tmp_path: Path
) -> None:
    if os.environ.get("ALLOW_BROKER_RESTART") != "1":
        pytest.skip("stops the PostgreSQL server: set ALLOW_BROKER_RESTART=1 (make test and CI)")
    settings = probe_settings(tmp_path, database_url=postgres_url)
    async with probe_client(settings, [router]) as client:
        assert (await client.get("/quick")).status_code == 200
        in_flight = [asyncio.create_task(client.get("/slow")) for _ in range(4)]
        await asyncio.sleep(1.0)  # every request holds a connection inside pg_sleep
        stopped = False
        try:
            await asyncio.to_thread(infra, "stop", "postgres")
            stopped = True
            for response in await asyncio.gather(*in_flight):
                assert_unavailable(response)
            for _ in range(3):
                assert_unavailable(await client.get("/quick"))
        finally:
            await asyncio.to_thread(infra, "start", "postgres")

        async def answers_again() -> bool:
            return (await client.get("/quick")).status_code == 200

        await eventually(answers_again, timeout_s=60, interval_s=0.5)
        assert stopped
