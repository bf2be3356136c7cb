"""CPU per lead of an operator's claim and qualification (``POST /v1/leads/{id}/claim``, then
``POST /v1/leads/{id}/qualification``) in qualify's API process, in process on PostgreSQL: the
app called as uvicorn calls it (an ASGI scope, its ``receive`` and ``send``; no HTTP client in
the measured CPU), an operator's API token (cached after its first use, as in a running
process), the body the pipeline benchmark's operator sends (no consent: one statement in
autocommit). The routes answer as the app wires them (``shared.direct``).

Each round queues a batch of leads (not measured), then claims each (CPU measured), then
qualifies each (CPU measured); the CPU time (``time.process_time``) per claim and per
qualification of each batch, medians over the rounds. Each round runs twice, in alternated
order: on the autocommit connections the app holds between requests (``held``, as it runs) and
with those set aside (``pooled``: a connection from the pool per request, as before they were
held). Run on a checkout without held connections, both lines measure the pool.

    .venv/bin/python -m benchmarks.qualify_operator_cpu [rounds] [leads per batch]
"""

from __future__ import annotations

import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path

import orjson

from benchmarks.cpu_probe import AsgiCaller, figures_out
from benchmarks.qualify_queue_poll_cpu import held_connections
from tests.qualify.conftest import QualifyApi, open_api, qualify_settings
from tests.support.clock import Clock
from tests.support.infra import create_database, drop_database

# As the pipeline benchmark's operator qualifies (``benchmarks.pipeline.flow``).
QUALIFICATION = orjson.dumps({"intent": "buy", "channel": "in_store", "site": "LYON-01"})


class Operator(AsgiCaller):
    """The operator's POSTs, the status checked."""

    async def post(self, path: str, body: bytes, expected: int) -> bytes:
        status, answer = await self.request("POST", path, body=body)
        if status != expected:
            raise RuntimeError(f"unexpected answer {status}: {answer[:300]!r}")
        return answer


async def _round(api: QualifyApi, operator: Operator, leads: int) -> tuple[float, float]:
    lead_ids = [await api.add_lead() for _ in range(leads)]
    start = time.process_time()
    for lead_id in lead_ids:
        await operator.post(f"/v1/leads/{lead_id}/claim", b"", 200)
    claims = time.process_time() - start
    start = time.process_time()
    for lead_id in lead_ids:
        await operator.post(f"/v1/leads/{lead_id}/qualification", QUALIFICATION, 201)
    qualifications = time.process_time() - start
    return claims / leads, qualifications / leads


async def measure(rounds: int, leads: int) -> dict[str, list[float]]:
    url = await create_database()
    results: dict[str, list[float]] = {}
    try:
        with tempfile.TemporaryDirectory() as tmp:
            async with open_api(qualify_settings(url, Path(tmp)), Clock()) as api:
                client = await api.client("alice")
                token = client.headers["authorization"].partition(" ")[2]
                operator = Operator(api.transport.app, token, b"qualify.test")
                held = held_connections(api.runtime.engine)
                for mode in ("held", "pooled"):  # warm-up: caches, statements, pool
                    with held(mode == "held"):
                        await _round(api, operator, leads)
                for index in range(rounds):
                    modes = ("held", "pooled") if index % 2 == 0 else ("pooled", "held")
                    for mode in modes:
                        with held(mode == "held"):
                            claim, qualification = await _round(api, operator, leads)
                        results.setdefault(f"claim {mode}", []).append(claim)
                        results.setdefault(f"qualification {mode}", []).append(qualification)
                        results.setdefault(f"claim + qualification {mode}", []).append(
                            claim + qualification
                        )
    finally:
        await drop_database(url)
    return results


def main() -> None:
    out = figures_out()
    rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 15
    leads = int(sys.argv[2]) if len(sys.argv) > 2 else 40
    results = asyncio.run(measure(rounds, leads))
    for name, cpu in results.items():
        out.write(
            f"{name:>28}: CPU per lead median {statistics.median(cpu) * 1000:.3f} ms, "
            f"best {min(cpu) * 1000:.3f} ms ({rounds} batches of {leads})\n"
        )
    out.flush()


if __name__ == "__main__":
    main()
