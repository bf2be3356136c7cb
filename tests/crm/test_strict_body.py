"""``"dry_run": 0`` is not ``false`` (issue 11, item 6): pydantic's lax mode would read it as
``false`` and run the retention for real, erasing people; it is a 422 naming the field, and no
run is recorded."""

from __future__ import annotations

import pytest

from tests.crm.conftest import CrmFactory


@pytest.mark.parametrize("value", [0, 1, "false", "no", 0.0])
async def test_dry_run_is_true_or_false_only(crm: CrmFactory, value: object) -> None:
    async with crm.running() as system:
        answer = await system.crm.post("/v1/privacy/retention-runs", json={"dry_run": value})
        assert answer.status_code == 422, answer.text
        assert [error["field"] for error in answer.json()["errors"]] == ["dry_run"]
        assert (await system.crm.get("/v1/privacy/retention-runs")).json()["items"] == []
