"""Faults on the test servers: Kafka stopped and restarted on its data, PostgreSQL stopped and
restarted (``scripts/infra.sh``, on the ports the environment names). Only with
``ALLOW_BROKER_RESTART=1`` (``make test`` and CI): never on a broker others share."""

from __future__ import annotations

import asyncio
import os
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def require_restarts() -> None:
    if os.environ.get("ALLOW_BROKER_RESTART") != "1":
        pytest.skip("stops and restarts the test servers: set ALLOW_BROKER_RESTART=1 (make test)")


def _infra(action: str, target: str) -> None:
    completed = subprocess.run(
        ["bash", str(ROOT / "scripts" / "infra.sh"), action, target],
        cwd=ROOT,
        env={**os.environ, "KAFKA_KEEP_DATA": "1"},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert completed.returncode == 0, completed.stdout + completed.stderr


async def infra(action: str, target: str) -> None:
    """``scripts/infra.sh <action> <target>`` (Kafka keeps its data across a restart)."""
    await asyncio.to_thread(_infra, action, target)
