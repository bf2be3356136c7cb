"""Erased data leaves the disk too (issue 11, item 4), on the embedded default: after an erasure
the raw bytes of every SQLite file, the four databases, the bus and their write-ahead logs, hold
no trace of the person (``secure_delete`` zeroes deleted rows; each service empties its WAL after
its erasure commits, the bus after its scrub). Checked while the system still runs: closing the
last connection would checkpoint the logs anyway and hide a leak."""

from __future__ import annotations

from pathlib import Path

from shared.settings import ServiceSettings
from tests.support.harness import eventually, run_system
from tests.support.pii_scan import file_hits
from tests.system.test_erasure_proof import build_history, erase, export_everything

# The person's phone (national digits), surname and e-mail, as stored.
NEEDLES = ["644556677", "Garnier", "mathilde.garnier@"]


async def test_erasure_leaves_no_byte_of_the_person_in_the_sqlite_files(
    embedded_settings: dict[str, ServiceSettings], tmp_path: Path
) -> None:
    async with run_system(embedded_settings) as system:
        client_id, _ = await build_history(system)
        await export_everything(system, client_id)
        assert file_hits(tmp_path, NEEDLES), "the files held the person's data before"
        await erase(system, client_id)

        async def nothing_on_disk() -> bool:
            return file_hits(tmp_path, NEEDLES) == {}

        try:
            await eventually(nothing_on_disk, timeout_s=15, interval_s=0.25)
        except AssertionError:
            raise AssertionError(f"still on disk: {file_hits(tmp_path, NEEDLES)}") from None
