"""`make run` (scripts/run_local.sh) for real: the newcomer's first lead on non-default ports.

The script runs as a child process with every API on a free port and its data in a temporary
VAR_DIR: it must refuse a port another process holds before doing anything, say "ready" only once
its own processes answer, seed the demo directory so a first in-store lead is offered at once
(whatever the hour), hand dispatch a public base URL on its own port, and stop every process it
started on SIGTERM or SIGINT.
"""

from __future__ import annotations

import asyncio
import fcntl
import os
import signal
import socket
import sys
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.harness import eventually
from tests.support.ports import free_ports
from tests.support.webhook_receiver import Receiver

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "run_local.sh"
SERVICES = ("ingest", "qualify", "dispatch", "crm")
TOKEN = "vo_dev_system-test-run-local"
WEBHOOK_SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
READY = "VO leads is ready"
# Four migrations and eight Python processes (about 45 CPU-seconds): 2-3 minutes were measured on
# a 2-core machine shared with other jobs; generous on purpose.
READY_TIMEOUT_S = 300.0
STOP_TIMEOUT_S = 20.0

pytestmark = pytest.mark.skipif(
    not sys.platform.startswith("linux"), reason="reads /proc to find the script's processes"
)


def script_env(var_dir: Path, ports: dict[str, int], **extra: str) -> dict[str, str]:
    """The caller's environment minus anything that would point the stack elsewhere."""
    own = ("BUS", "EMBEDDED_BUS_PATH", "LOG_JSON", "DEMO_SEED", "DEV_TOKEN", "VAR_DIR")
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in own and not key.startswith(tuple(f"{s.upper()}_" for s in SERVICES))
    }
    env.update({f"{name.upper()}_HTTP_PORT": str(port) for name, port in ports.items()})
    env.update(VAR_DIR=str(var_dir), DEV_TOKEN=TOKEN, **extra)
    return env


def _stat(pid: int) -> list[str] | None:
    """Fields of /proc/<pid>/stat after the command name (state first), or None when gone."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    except OSError:
        return None


def is_running(pid: int) -> bool:
    fields = _stat(pid)
    return fields is not None and fields[0] != "Z"


def descendants(root: int) -> dict[int, list[str]]:
    """Every live process under ``root``, with its command line."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and (fields := _stat(int(entry.name))) is not None:
            children.setdefault(int(fields[1]), []).append(int(entry.name))
    found: dict[int, list[str]] = {}
    pending = list(children.get(root, []))
    while pending:
        pid = pending.pop()
        try:
            found[pid] = Path(f"/proc/{pid}/cmdline").read_bytes().decode().split("\0")[:-1]
        except OSError:
            continue
        pending.extend(children.get(pid, []))
    return found


def environ_of(pid: int) -> dict[str, str]:
    raw = Path(f"/proc/{pid}/environ").read_bytes().decode()
    return dict(item.split("=", 1) for item in raw.split("\0") if "=" in item)


@dataclass
class Run:
    process: asyncio.subprocess.Process
    lines: list[str] = field(default_factory=list)

    @property
    def output(self) -> str:
        return "\n".join(self.lines)

    async def until(self, text: str, timeout_s: float) -> None:
        """Read the output until a line contains ``text``; fail on exit or timeout."""
        assert self.process.stdout is not None
        deadline = time.monotonic() + timeout_s
        while not any(text in line for line in self.lines):
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(f"no {text!r} within {timeout_s:.0f} s:\n{self.output}")
            try:
                raw = await asyncio.wait_for(self.process.stdout.readline(), remaining)
            except TimeoutError:
                continue
            if not raw:
                await self.process.wait()
                raise AssertionError(
                    f"exited ({self.process.returncode}) before {text!r}:\n{self.output}"
                )
            self.lines.append(raw.decode().rstrip("\n"))

    async def rest(self, timeout_s: float) -> int:
        """Read to the end; the exit status."""
        assert self.process.stdout is not None
        remaining = await asyncio.wait_for(self.process.stdout.read(), timeout_s)
        self.lines.extend(remaining.decode().splitlines())
        return await asyncio.wait_for(self.process.wait(), timeout_s)


def _default_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)


@asynccontextmanager
async def run_local(env: dict[str, str]) -> AsyncIterator[Run]:
    process = await asyncio.create_subprocess_exec(
        str(SCRIPT),
        env=env,
        cwd=ROOT,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
        start_new_session=True,  # its own group: the safety net below ends only what it started
        # A job started in the background by a non-interactive shell (nohup … &, some CI
        # runners) inherits SIGINT ignored, and a shell cannot trap a signal ignored on entry:
        # the script gets Ctrl-C's default, as a terminal would give it.
        preexec_fn=_default_sigint,
    )
    try:
        yield Run(process)
    finally:
        if process.returncode is None:
            os.killpg(process.pid, signal.SIGKILL)
            await process.wait()


async def stop_and_check(run: Run, signum: signal.Signals) -> None:
    """Send ``signum`` to the script alone; it must exit and leave none of its processes."""
    started = descendants(run.process.pid)
    assert started, f"the script runs no process:\n{run.output}"
    run.process.send_signal(signum)
    began = time.monotonic()
    await run.rest(STOP_TIMEOUT_S)
    elapsed = time.monotonic() - began
    left = {pid: command for pid, command in started.items() if is_running(pid)}
    assert not left, f"still running after {signum.name}: {left}\n{run.output}"
    assert "run: stopped" in run.output
    assert elapsed < STOP_TIMEOUT_S


def databases(var_dir: Path) -> list[Path]:
    return sorted(var_dir.glob("*.db"))


@contextmanager
def held_lock(path: Path) -> Iterator[None]:
    """The lock a running run_local.sh holds on its data folder (flock(1) is flock(2))."""
    with path.open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        yield


@contextmanager
def listening_socket() -> Iterator[int]:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        yield taken.getsockname()[1]


async def test_a_port_already_taken_is_refused_before_anything_starts(tmp_path: Path) -> None:
    with listening_socket() as taken:
        ports = dict(zip(SERVICES, free_ports(4), strict=True)) | {"qualify": taken}
        async with run_local(script_env(tmp_path, ports)) as run:
            status = await run.rest(60)
    assert status != 0, run.output
    assert f"127.0.0.1:{taken} (qualify API) is already in use" in run.output
    assert "QUALIFY_HTTP_PORT" in run.output
    assert "migrating" not in run.output
    assert not databases(tmp_path), "nothing may start before the ports are checked"


async def test_a_data_folder_in_use_by_another_run_is_refused(tmp_path: Path) -> None:
    ports = dict(zip(SERVICES, free_ports(4), strict=True))
    with held_lock(tmp_path / "run.lock"):
        async with run_local(script_env(tmp_path, ports)) as run:
            status = await run.rest(60)
    assert status != 0, run.output
    assert f"another make run already uses {tmp_path}/" in run.output
    assert "migrating" not in run.output


async def test_sigint_while_migrating_stops_the_migrations(tmp_path: Path) -> None:
    ports = dict(zip(SERVICES, free_ports(4), strict=True))
    async with run_local(script_env(tmp_path, ports)) as run:
        await run.until("migrating", 60)

        async def migrating() -> bool:
            processes = descendants(run.process.pid).values()
            return any("migrate" in command for command in processes)

        await eventually(migrating, timeout_s=30)
        await stop_and_check(run, signal.SIGINT)
    assert READY not in run.output


async def _queue_ids(qualify: httpx.AsyncClient) -> list[str]:
    response = await qualify.get("/v1/queue")
    assert response.status_code == 200, response.text
    return [item["lead_id"] for item in response.json()["items"]]


async def _offers(dispatch: httpx.AsyncClient, lead_id: str) -> list[dict[str, Any]] | None:
    response = await dispatch.get(f"/v1/leads/{lead_id}/assignments")
    if response.status_code == 404:
        return None  # dispatch has not consumed lead.qualified yet
    assert response.status_code == 200, response.text
    offers: list[dict[str, Any]] = response.json()
    return offers


@pytest.mark.timeout(READY_TIMEOUT_S + 180)  # our own assertion, with the output, fires first
async def test_make_run_serves_a_first_in_store_lead_on_its_own_ports(tmp_path: Path) -> None:
    ports = dict(zip(SERVICES, free_ports(4), strict=True))
    urls = {name: f"http://127.0.0.1:{port}" for name, port in ports.items()}
    async with run_local(script_env(tmp_path, ports)) as run:
        await run.until(READY, READY_TIMEOUT_S)
        await run.until("Ctrl-C stops everything", 10)
        for name in SERVICES:
            assert f"{name} migrated" in run.output
            assert f"{urls[name]}/docs" in run.output
        for default in range(8001, 8005):
            assert f":{default}" not in run.output
        assert f"call-backs sent to sellers: {urls['dispatch']}" in run.output

        processes = descendants(run.process.pid)
        [dispatch_api] = [pid for pid, cmd in processes.items() if cmd[-2:] == ["dispatch", "api"]]
        assert environ_of(dispatch_api)["DISPATCH_PUBLIC_BASE_URL"] == urls["dispatch"]
        assert environ_of(dispatch_api)["DISPATCH_DATABASE_URL"].endswith(f"{tmp_path}/dispatch.db")

        headers = {"Authorization": f"Bearer {TOKEN}"}
        clients = {
            name: httpx.AsyncClient(base_url=url, headers=headers, trust_env=False, timeout=30)
            for name, url in urls.items()
        }
        try:
            await _first_lead(clients)
            # The seed is idempotent: a second run finds everything and creates nothing.
            again = await asyncio.create_subprocess_exec(
                sys.executable,
                str(ROOT / "scripts/demo_seed.py"),
                urls["dispatch"],
                env={**os.environ, "DEV_TOKEN": TOKEN},
                stdout=asyncio.subprocess.PIPE,
            )
            out, _ = await again.communicate()
            assert again.returncode == 0
            assert out.decode().count("already there") == 3, out.decode()
            sellers = (await clients["dispatch"].get("/v1/sellers")).json()
            assert sorted(seller["display_name"] for seller in sellers) == [
                "Demo full-web seller",
                "Demo in-store seller",
            ]
        finally:
            for client in clients.values():
                await client.aclose()
        await stop_and_check(run, signal.SIGTERM)


async def _first_lead(clients: dict[str, httpx.AsyncClient]) -> None:
    site = await clients["dispatch"].get("/v1/sites/demo")
    assert site.status_code == 200, site.text
    assert site.json()["opening_hours"] == "mon-sun 00:00-24:00"
    sellers = (await clients["dispatch"].get("/v1/sellers")).json()
    demo_sellers = {seller["mode"]: seller["id"] for seller in sellers}
    # The demo sellers' tool listens on this machine: make run lets webhooks reach loopback
    # (refused by default, docs/dispatch.md), so the offer arrives there, signed.
    receiver = Receiver(WEBHOOK_SECRET)
    await receiver.start()
    try:
        for seller_id in demo_sellers.values():
            hooked = await clients["dispatch"].patch(
                f"/v1/sellers/{seller_id}",
                json={"webhook_url": receiver.url, "webhook_secret": WEBHOOK_SECRET},
            )
            assert hooked.status_code == 200, hooked.text
        lead_id = await _offered_lead(clients, site.json()["open_now"], demo_sellers)

        async def offer_received() -> bool:
            return any(
                delivery.event_type == "assignment.offered" and delivery.lead_id == lead_id
                for delivery in receiver.log
            )

        assert await eventually(offer_received, timeout_s=60, interval_s=0.2), receiver.log
        assert receiver.refused_signatures == 0
    finally:
        await receiver.stop()


async def _offered_lead(
    clients: dict[str, httpx.AsyncClient], open_now: bool, demo_sellers: dict[str, str]
) -> str:
    """A first lead through ingest and a qualification, offered to a demo seller; its id."""
    accepted = await clients["ingest"].post(
        "/v1/leads",
        json={
            "source": "leboncoin",
            "source_ref": "lbc-run-local-1",
            "contact": {"full_name": "Camille Durand", "phone": "06 12 34 56 78"},
            "vehicle": {"ad_ref": "AD-1"},
        },
    )
    assert accepted.status_code == 202, accepted.text
    lead_id = accepted.json()["id"]

    async def queued() -> bool:
        return lead_id in await _queue_ids(clients["qualify"])

    assert await eventually(queued, timeout_s=60, interval_s=0.2)

    claim = await clients["qualify"].post(f"/v1/leads/{lead_id}/claim")
    assert claim.status_code == 200, claim.text
    qualified = await clients["qualify"].post(
        f"/v1/leads/{lead_id}/qualification",
        json={"intent": "buy", "channel": "in_store", "site": "demo"},
    )
    assert qualified.status_code == 201, qualified.text

    # Whatever the hour (lunch, night, Sunday), a demo seller is offered the lead at once: the
    # in-store one, or on a public holiday (every site closed) the full-web one.
    offers = await eventually(lambda: _offers(clients["dispatch"], lead_id), timeout_s=60)
    assert [offer["status"] for offer in offers] == ["offered"]
    lead = (await clients["dispatch"].get(f"/v1/leads/{lead_id}")).json()
    assert lead["status"] == "offered"
    assert lead["escalated_at"] is None
    if open_now:
        assert (offers[0]["site_id"], lead["routed_to"]) == ("demo", "in_store")
        assert offers[0]["seller_id"] == demo_sellers["in_store"]
    else:
        assert lead["routed_to"] == "full_web"
        assert offers[0]["seller_id"] == demo_sellers["full_web"]
    return str(lead_id)
