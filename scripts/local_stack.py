"""What `scripts/run_local.sh` cannot do well in bash: read each service's listen address from its
own settings (so ``<SVC>_HTTP_HOST``/``<SVC>_HTTP_PORT`` are honoured exactly as the service will
honour them), refuse ports another process already holds, migrate, and wait until the processes
*this* run started answer.

    python scripts/local_stack.py endpoints ingest qualify dispatch crm
        one line per service: ``name base_url``; exit 1 naming the port when one is taken
    python scripts/local_stack.py migrate ingest qualify dispatch crm
        what ``python -m <svc> migrate`` does, for all of them in one process: the import of
        the service's whole app is skipped, so 3-4 s of CPU instead of 15-20 s on a first run
    python scripts/local_stack.py wait --logs DIR [--timeout S] --api ingest=URL@PID…
                                       --worker ingest=PID…
        exit 0 once every API answers ``/readyz`` while every process given still runs; exit 1
        (with the end of its log) as soon as one of them exits, or at the timeout
"""

from __future__ import annotations

import argparse
import importlib
import socket
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from shared.settings import ServiceSettings

if TYPE_CHECKING:
    import httpx

_POLL_S = 0.25


def settings_of(service: str) -> ServiceSettings:
    """The service's settings as its own process will build them (environment included)."""
    module = importlib.import_module(f"{service}.settings")
    for value in vars(module).values():
        if (
            isinstance(value, type)
            and issubclass(value, ServiceSettings)
            and value.service_name == service
        ):
            return value()
    raise SystemExit(f"run: no settings class in {service}.settings")


def connect_host(listen_host: str) -> str:
    """Where a client on this machine reaches a server listening on ``listen_host``."""
    if listen_host in ("", "0.0.0.0"):
        return "127.0.0.1"
    if listen_host == "::":
        return "::1"
    return listen_host


def base_url(host: str, port: int) -> str:
    host = connect_host(host)
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


def port_taken(host: str, port: int) -> bool:
    """True when a listener holds ``host:port`` (binds the way uvicorn does, then lets go)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError:
            return True
    return False


def endpoints(services: list[str]) -> int:
    taken: list[str] = []
    claimed: dict[int, str] = {}  # port → the variable that already asks for it
    for service in services:
        settings = settings_of(service)
        ports = [("API", "HTTP_PORT", settings.http_port)]
        if settings.worker_metrics_port is not None:
            ports.append(("worker metrics", "WORKER_METRICS_PORT", settings.worker_metrics_port))
        for what, suffix, port in ports:
            variable = f"{service.upper()}_{suffix}"
            if port in claimed:
                taken.append(f"run: {variable} and {claimed[port]} are both {port}")
            elif port_taken(settings.http_host, port):
                taken.append(
                    f"run: {settings.http_host}:{port} ({service} {what}) is already in use — "
                    f"another stack still running? Stop it, or set {variable}."
                )
            claimed.setdefault(port, variable)
        print(service, base_url(settings.http_host, settings.http_port))
    for line in taken:
        print(line, file=sys.stderr)
    return 1 if taken else 0


def migrate(services: list[str]) -> int:
    started = time.monotonic()
    from shared.db.migrate import upgrade  # alembic: only this command needs it

    for service in services:
        migrations: Path = importlib.import_module(service).MIGRATIONS_DIR
        try:
            upgrade(migrations, settings_of(service).resolved_database_url())
        except Exception:
            print(f"run: migrating {service} failed:", file=sys.stderr)
            raise
        print(f"run:   {service} migrated ({time.monotonic() - started:.0f} s)", flush=True)
    return 0


@dataclass
class Process:
    """One process started by run_local.sh: ``role`` is ``api`` or ``worker``."""

    service: str
    role: str
    pid: int
    url: str | None = None  # APIs only
    ready_after_s: float | None = None

    @property
    def log_name(self) -> str:
        return f"{self.service}-{self.role}.log"


def is_running(pid: int) -> bool:
    """The process exists and is not a zombie waiting to be reaped."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rpartition(")")[2].split()[0] != "Z"


def _answers(client: httpx.Client, url: str) -> bool:
    import httpx  # already loaded by wait()

    try:
        return client.get(f"{url}/readyz").status_code == 200
    except httpx.HTTPError:
        return False


def _tail(path: Path, lines: int = 15) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return f"({path} is not readable)"


def wait(processes: list[Process], logs: Path, timeout_s: float) -> int:
    """Until every API answers while every process runs; the first exit or the timeout fails."""
    import httpx  # here: the other commands start faster without it

    started = time.monotonic()
    apis = [process for process in processes if process.url is not None]
    with httpx.Client(timeout=2.0, trust_env=False) as client:
        while True:
            for process in processes:
                if not is_running(process.pid):
                    print(
                        f"run: the {process.service} {process.role} exited before the stack was "
                        f"ready; last lines of {logs / process.log_name}:\n"
                        f"{_tail(logs / process.log_name)}",
                        file=sys.stderr,
                    )
                    return 1
            for api in apis:
                if api.ready_after_s is None and api.url and _answers(client, api.url):
                    api.ready_after_s = seconds = time.monotonic() - started
                    print(f"run:   {api.service:<8} {api.url} ready ({seconds:.0f} s)", flush=True)
            if all(api.ready_after_s is not None for api in apis):
                return 0
            if time.monotonic() - started > timeout_s:
                late = ", ".join(api.service for api in apis if api.ready_after_s is None)
                print(
                    f"run: not ready after {timeout_s:.0f} s: {late} (READY_TIMEOUT raises it; "
                    f"logs in {logs})",
                    file=sys.stderr,
                )
                return 1
            time.sleep(_POLL_S)


def _api(text: str) -> Process:
    service, _, rest = text.partition("=")
    url, _, pid = rest.rpartition("@")
    if not (service and url and pid.isdigit()):
        raise argparse.ArgumentTypeError(f"expected service=url@pid, got {text!r}")
    return Process(service, "api", int(pid), url)


def _worker(text: str) -> Process:
    service, _, pid = text.partition("=")
    if not (service and pid.isdigit()):
        raise argparse.ArgumentTypeError(f"expected service=pid, got {text!r}")
    return Process(service, "worker", int(pid))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="local_stack.py")
    commands = parser.add_subparsers(dest="command", required=True)
    listing = commands.add_parser("endpoints")
    listing.add_argument("services", nargs="+")
    migrating = commands.add_parser("migrate")
    migrating.add_argument("services", nargs="+")
    waiting = commands.add_parser("wait")
    waiting.add_argument("--api", action="append", type=_api, default=[], metavar="SVC=URL@PID")
    waiting.add_argument("--worker", action="append", type=_worker, default=[], metavar="SVC=PID")
    waiting.add_argument("--logs", type=Path, required=True, help="folder of <svc>-<role>.log")
    waiting.add_argument("--timeout", type=float, default=300.0)
    args = parser.parse_args(argv)
    if args.command == "endpoints":
        return endpoints(args.services)
    if args.command == "migrate":
        return migrate(args.services)
    return wait([*args.api, *args.worker], args.logs, args.timeout)


if __name__ == "__main__":
    sys.exit(main())
