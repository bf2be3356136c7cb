"""What a benchmark figure was measured on: the machine, the commit, the load, PostgreSQL's
durability. ``benchmarks.run`` stamps every section with it; benchmarks read it too.

Durability: the test cluster of ``scripts/infra.sh`` runs with fsync, synchronous_commit and
full_page_writes off; figures are only honest with production durability, so a run turns them
on (``scripts/pg_durability.sh on``, superuser through the Unix socket) and resets them after.
"""

from __future__ import annotations

import os
import platform
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import asyncpg
from sqlalchemy.engine import make_url

ROOT = Path(__file__).resolve().parent.parent
POSTGRES_URL = os.environ.get(
    "TEST_POSTGRES_URL", "postgresql+asyncpg://vo:vo@127.0.0.1:5432/postgres"
)
KAFKA_BOOTSTRAP = os.environ.get("TEST_KAFKA_BOOTSTRAP", "127.0.0.1:9092")
# The Postfix of scripts/smtp.sh (loopback, no TLS): the first answers are handed to it.
SMTP_PORT = int(os.environ.get("TEST_SMTP_PORT", "10025"))
DURABILITY_SETTINGS = ("fsync", "synchronous_commit", "full_page_writes")


def asyncpg_dsn(url: str = POSTGRES_URL) -> str:
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


def machine() -> str:
    cpu = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    memory_gib = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return (
        f"{cpu}, {os.cpu_count()} cores, {memory_gib:.0f} GiB, {platform.system()} "
        f"{platform.release()}, Python {platform.python_version()}"
    )


def load_average() -> str:
    one, five, fifteen = os.getloadavg()
    return f"{one:.2f} / {five:.2f} / {fifteen:.2f}"


def git_commit() -> str:
    """The commit measured, ``+dirty`` when the work tree has uncommitted changes."""
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "--short=12", "HEAD"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        status = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown commit"
    return f"{commit}+dirty" if status else commit


def utc_now_text() -> str:
    return f"{datetime.now(UTC):%Y-%m-%d %H:%M:%S} UTC"


async def durability() -> dict[str, str]:
    """The server's current fsync / synchronous_commit / full_page_writes, as a session sees
    them (asked as the application role)."""
    connection = await asyncpg.connect(asyncpg_dsn(), timeout=10)
    try:
        return {
            name: str(await connection.fetchval("SELECT current_setting($1)", name))
            for name in DURABILITY_SETTINGS
        }
    finally:
        await connection.close()


def durability_text(settings: dict[str, str]) -> str:
    values = ", ".join(f"{name}={settings.get(name, '?')}" for name in DURABILITY_SETTINGS)
    if all(settings.get(name) == "on" for name in DURABILITY_SETTINGS):
        return f"PostgreSQL with production durability ({values})"
    return f"**PostgreSQL WITHOUT production durability** ({values}): figures are optimistic"


@dataclass
class DurabilityChange:
    """What ``production_durability`` did: ``changed`` when it turned the settings on (and will
    reset them), ``error`` when it could not."""

    changed: bool = False
    error: str | None = None


def _durability_script(action: str) -> subprocess.CompletedProcess[str]:
    port = make_url(POSTGRES_URL).port or 5432
    return subprocess.run(
        [str(ROOT / "scripts/pg_durability.sh"), action],
        env={**os.environ, "PG_PORT": str(port)},
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )


@contextmanager
def production_durability(current: dict[str, str]) -> Iterator[DurabilityChange]:
    """Turn production durability on for the block when it is off; reset it afterwards."""
    change = DurabilityChange()
    if all(current.get(name) == "on" for name in DURABILITY_SETTINGS):
        yield change
        return
    result = _durability_script("on")
    if result.returncode != 0:
        change.error = (result.stderr or result.stdout).strip()[-300:]
        yield change
        return
    change.changed = True
    try:
        yield change
    finally:
        _durability_script("reset")
