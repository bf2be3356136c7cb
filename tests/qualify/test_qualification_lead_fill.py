"""The qualification reads its lead into an object built without the constructor
(``lead_from_row``): it must be readable even when it is the process's first ORM object (a fresh
API replica whose first request is a qualification answered 500 before the mappers were
configured there)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

_FIRST_OBJECT_OF_A_FRESH_PROCESS = """
from qualify.qualification.repository import lead_from_row
lead = lead_from_row({"lead_id": "lead-1", "is_open": True, "status": "waiting"})
print(lead.lead_id, lead.is_open, lead.status)
"""


def test_a_lead_filled_from_a_row_is_readable_as_the_first_orm_object_of_a_process() -> None:
    done = subprocess.run(
        [sys.executable, "-c", _FIRST_OBJECT_OF_A_FRESH_PROCESS],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["lead-1", "True", "waiting"]
