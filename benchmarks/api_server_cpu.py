"""Server CPU per lead of a real API process (uvicorn on loopback), one request at a time, as the
APIs see them at 20 leads/s, for two or more versions of the code in the same minutes.

Each version runs as its own ``python -m <service> api`` whose PYTHONPATH points at a copy of the
tree (its services and ``shared``), all on one PostgreSQL database (durability as the server
has it). Rounds alternate between them (the order reversed every other round); each round sends
N leads' requests over one keep-alive connection (a minimal HTTP/1.1 client in this process,
whose own CPU is not measured), waiting GAP seconds after each lead, and reads the server's CPU
time (``/proc/<pid>/task/*/schedstat``: every thread, to the nanosecond) before and after.

``ingest``: ``POST /v1/leads`` (JSON) per lead. ``qualify``: per lead, the operator's poll of the
queue (``limit=1``), claim and qualification (leads queued beforehand in process, as
``lead.received.v1`` queues them).

    .venv/bin/python -m benchmarks.api_server_cpu ingest base=/tmp/main-copy new=. [--rounds 8]
    git -C /work/main archive main | tar -x -C /tmp/main-copy  # e.g.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import IO

import orjson

from benchmarks.bench_ingest import lead_body
from tests.support.infra import KAFKA_BOOTSTRAP, create_database, drop_database
from tests.support.ports import free_port

TOKEN = "vo_bench-token-with-every-role"
QUALIFICATION = orjson.dumps({"intent": "buy", "channel": "in_store", "site": "LYON-01"})
SERVICES = ("ingest", "qualify", "dispatch", "crm")


def server_cpu(pid: int) -> float:
    """CPU seconds of every thread of ``pid`` so far."""
    total = 0
    for task in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{task}/schedstat") as stat:
                total += int(stat.read().split()[0])
        except FileNotFoundError:  # a thread that ended meanwhile
            pass
    return total / 1e9


class Connection:
    """HTTP/1.1 keep-alive, blocking, one request at a time."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.sock = socket.create_connection(("127.0.0.1", port))
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.file = self.sock.makefile("rb")

    def request(self, method: str, target: str, body: bytes | None = None) -> tuple[int, bytes]:
        head = (
            f"{method} {target} HTTP/1.1\r\nHost: 127.0.0.1:{self.port}\r\n"
            f"Authorization: Bearer {TOKEN}\r\n"
        )
        if body is not None:
            head += f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n"
        self.sock.sendall(head.encode() + b"\r\n" + (body or b""))
        status = int(self.file.readline().split(b" ", 2)[1])
        length = 0
        while (line := self.file.readline()) not in (b"\r\n", b""):
            if line.lower().startswith(b"content-length:"):
                length = int(line.split(b":", 1)[1])
        return status, self.file.read(length)

    def close(self) -> None:
        self.file.close()
        self.sock.close()


def _expect(answer: tuple[int, bytes], status: int) -> None:
    if answer[0] != status:
        raise RuntimeError(f"unexpected answer {answer[0]}: {answer[1][:300]!r}")


def _pythonpath(root: str) -> str:
    root = str(Path(root).resolve())
    return ":".join([f"{root}/services/{service}" for service in SERVICES] + [root])


def _wait_ready(port: int, process: subprocess.Popen[bytes]) -> None:
    for _ in range(300):
        if process.poll() is not None:
            raise RuntimeError("the server exited")
        try:
            connection = Connection(port)
        except OSError:
            time.sleep(0.1)
            continue
        try:
            if connection.request("GET", "/healthz")[0] == 200:
                return
        finally:
            connection.close()
        time.sleep(0.1)
    raise RuntimeError("the server did not start")


async def _queue_leads(url: str, count: int) -> list[str]:
    from tests.qualify.conftest import open_api, qualify_settings
    from tests.support.clock import Clock

    with tempfile.TemporaryDirectory() as folder:
        clock = Clock(datetime.now(UTC) - timedelta(minutes=5))
        async with open_api(qualify_settings(url, Path(folder)), clock) as api:
            return [await api.add_lead() for _ in range(count)]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("service", choices=("ingest", "qualify"))
    parser.add_argument("versions", nargs="+", help="name=root of a copy of the tree")
    parser.add_argument("--rounds", type=int, default=8)
    parser.add_argument("--n", type=int, default=300, help="leads per round and version")
    parser.add_argument("--gap", type=float, default=0.003, help="seconds after each lead")
    args = parser.parse_args()
    versions = [version.split("=", 1) for version in args.versions]
    service, prefix = args.service, args.service.upper()
    url = asyncio.run(create_database()).replace("postgresql://", "postgresql+asyncpg://")
    processes: list[subprocess.Popen[bytes]] = []
    logs: list[IO[bytes]] = []
    try:
        env = {
            f"{prefix}_DATABASE_URL": url,
            f"{prefix}_BUS": "kafka",
            f"{prefix}_KAFKA_BOOTSTRAP_SERVERS": KAFKA_BOOTSTRAP,
            f"{prefix}_TOPIC_PREFIX": f"cpu{uuid.uuid4().hex[:8]}.",
            f"{prefix}_DEV_TOKEN": TOKEN,
        }
        python = sys.executable
        first = {**os.environ, **env, "PYTHONPATH": _pythonpath(versions[0][1])}
        subprocess.run([python, "-m", service, "migrate"], env=first, check=True)
        leads: list[str] = []
        if service == "qualify":
            leads = asyncio.run(_queue_leads(url, args.n * len(versions) * (args.rounds + 1)))
        run = uuid.uuid4().hex[:8]
        counter = 0

        def ingest_lead(connection: Connection) -> None:
            nonlocal counter
            counter += 1
            body = orjson.dumps(lead_body(counter, run))
            _expect(connection.request("POST", "/v1/leads", body), 202)

        def qualify_lead(connection: Connection) -> None:
            lead_id = leads.pop()
            _expect(connection.request("GET", "/v1/queue?limit=1"), 200)
            _expect(connection.request("POST", f"/v1/leads/{lead_id}/claim", b""), 200)
            answer = connection.request("POST", f"/v1/leads/{lead_id}/qualification", QUALIFICATION)
            _expect(answer, 201)

        one_lead: Callable[[Connection], None] = (
            ingest_lead if service == "ingest" else qualify_lead
        )
        servers = []
        for name, root in versions:
            port = free_port()
            # The server's output to a file: a pipe nobody reads would block it once full.
            log = tempfile.TemporaryFile()  # noqa: SIM115 - closed after the server stopped
            logs.append(log)
            process = subprocess.Popen(
                [python, "-m", service, "api"],
                env={
                    **os.environ,
                    **env,
                    f"{prefix}_HTTP_PORT": str(port),
                    "PYTHONPATH": _pythonpath(root),
                },
                stdout=log,
                stderr=subprocess.STDOUT,
            )
            processes.append(process)
            servers.append((name, port, process))
        for _, port, process in servers:
            _wait_ready(port, process)
        results: dict[str, list[float]] = {name: [] for name, _ in versions}
        for round_ in range(args.rounds + 1):  # round 0 warms up
            for name, port, process in servers if round_ % 2 else servers[::-1]:
                # A new connection each round: an idle one is closed by the keep-alive timeout.
                connection = Connection(port)
                _expect(connection.request("GET", "/healthz"), 200)
                time.sleep(0.3)
                before = server_cpu(process.pid)
                for _ in range(args.n):
                    one_lead(connection)
                    if args.gap:
                        time.sleep(args.gap)
                spent = server_cpu(process.pid) - before
                connection.close()
                if round_:
                    results[name].append(spent * 1000 / args.n)
        for name, values in results.items():
            sys.stdout.write(
                f"{name:>8}: server CPU per lead median {statistics.median(values):.3f} ms, "
                f"range {min(values):.3f}-{max(values):.3f} ({args.rounds} rounds of {args.n}): "
                + " ".join(f"{value:.3f}" for value in values)
                + "\n"
            )
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        for output in logs:
            output.close()
        asyncio.run(drop_database(url))


if __name__ == "__main__":
    main()
